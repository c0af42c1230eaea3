"""Access control of manifests and segments (issue 17): CloudFront signed URLs and cookies,
Akamai EdgeAuth tokens, the CDN-only origin header, end to end against the real server.

Oracles, none of them ours:
- botocore's `CloudFrontSigner` makes every CloudFront URL (canned and custom policies, with
  the signer callback signing with `cryptography`: RSA or ECDSA P-256 over SHA-1, CloudFront's
  default, or over SHA-256 with `Hash-Algorithm=SHA256` appended); signed cookies are the `Policy`/`Expires`, `Signature` and `Key-Pair-Id` values of a
  URL botocore signed, as CloudFront's documentation builds them.
- `akamai-edgeauth` (Akamai's own generator) makes every EdgeAuth token.
- shaka-player and hls.js in Debian's Chromium play what the signatures open, and fail
  without them; shaka plays a signed cenc asset only with both the cookie and the licence
  token.

Assets (fixtures, one catalog): `multi` clear under a CloudFront policy, `ladder` clear under
an EdgeAuth policy, `demo` DASH cenc with token-restricted keys under the CloudFront policy,
`hevc` open (no access rule).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
import urllib.parse
from pathlib import Path

import pytest

from oracle import (metrics_url, FIXTURES, fetch, get_ok, oracle_missing, prometheus_samples, require_browser, resolve,
                    run_player_script, start_server_config, stop_server)
from test_keys import ISSUER, AUDIENCE, SECRET, KID_PRIMARY, DEMO_CENC, b64, claims, jwt_hs256

try:
    from akamai.edgeauth import EdgeAuth
    from botocore.signers import CloudFrontSigner
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
    SIGNERS_MISSING = None
except ImportError as e:  # reported by the fixtures: a skip, or a failure under CI=true
    SIGNERS_MISSING = f"{e.name}: pip install -r tests/e2e/requirements.txt"

EA_KEY = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"
EA_OTHER = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"
ORIGIN_SECRETS = ("origin-secret-2026-old-0123456789", "origin-secret-2026-new-9876543210")
SKEW = 5


# --------------------------------------------------------------------------- keys and signers


def _rsa() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pub_pem(key) -> str:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def _signer(key_id: str, key, sha256: bool = False) -> CloudFrontSigner:
    """SHA-1 is CloudFront's default; SHA-256 needs `Hash-Algorithm=SHA256` in the URL."""
    h = hashes.SHA256() if sha256 else hashes.SHA1()
    if isinstance(key, rsa.RSAPrivateKey):
        return CloudFrontSigner(key_id, lambda msg: key.sign(msg, padding.PKCS1v15(), h))
    return CloudFrontSigner(key_id, lambda msg: key.sign(msg, ec.ECDSA(h)))


def _when(secs_from_now: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(int(time.time() + secs_from_now), tz=dt.timezone.utc)


class Keys:
    """CloudFront keys: two RSA keys active at once (rotation), an EC key, and an RSA key the
    server does not know."""

    def __init__(self):
        self.k_old, self.k_new, self.k_unknown = _rsa(), _rsa(), _rsa()
        self.k_ec = ec.generate_private_key(ec.SECP256R1())
        self.signers = {"K1OLD": _signer("K1OLD", self.k_old), "K2NEW": _signer("K2NEW", self.k_new),
                        "KEC": _signer("KEC", self.k_ec), "K9UNKNOWN": _signer("K9UNKNOWN", self.k_unknown),
                        "KEC-sha256": _signer("KEC", self.k_ec, sha256=True), "K2NEW-sha256": _signer("K2NEW", self.k_new, sha256=True),
                        # A known ID, the wrong private key: a forged signature.
                        "K1OLD-forged": _signer("K1OLD", self.k_unknown)}

    def canned(self, url: str, expires_in: float = 300, key: str = "K2NEW") -> str:
        return self.signers[key].generate_presigned_url(url, date_less_than=_when(expires_in))

    def custom(self, url: str, resource: str, expires_in: float = 300, starts_in: float | None = None,
               ip: str | None = None, key: str = "K2NEW") -> str:
        s = self.signers[key]
        policy = s.build_policy(resource, _when(expires_in), date_greater_than=_when(starts_in) if starts_in is not None else None,
                                ip_address=ip)
        return s.generate_presigned_url(url, policy=policy)


def signing_params(signed_url: str) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(signed_url).query, keep_blank_values=True))


def cf_cookies(signed_url: str) -> str:
    """The signed-cookie header of a URL botocore signed: its Policy or Expires, Signature and
    Key-Pair-Id as `CloudFront-*` cookies."""
    p = signing_params(signed_url)
    names = {"Policy": "CloudFront-Policy", "Expires": "CloudFront-Expires", "Signature": "CloudFront-Signature",
             "Key-Pair-Id": "CloudFront-Key-Pair-Id"}
    return "; ".join(f"{names[k]}={v}" for k, v in p.items() if k in names)


def ea_token(acl: str | None = None, url: str | None = None, key: str = EA_KEY, expires_in: int = 300,
             starts_in: int | None = None, ip: str | None = None, algorithm: str = "sha256", escape_early: bool = False) -> str:
    now = int(time.time())
    gen = EdgeAuth(key=key, algorithm=algorithm, start_time=(now + starts_in) if starts_in is not None else None,
                   end_time=now + expires_in, ip=ip, escape_early=escape_early)
    return gen.generate_acl_token(acl) if acl is not None else gen.generate_url_token(url)


# --------------------------------------------------------------------------- servers


def catalog_toml(keys_dir: Path) -> str:
    return f'''
[access.cf]
mode = "signed"
carry = true
skew_secs = {SKEW}
cloudfront = {{ keys = [ {{ id = "K1OLD", pem_file = "k1.pem" }}, {{ id = "K2NEW", pem_file = "k2.pem" }}, {{ id = "KEC", pem_file = "kec.pem" }} ] }}

[access.ea]
mode = "signed"
carry = true
skew_secs = {SKEW}
edgeauth = {{ keys = [ "{EA_KEY}" ] }}

[[access_rule]]
prefix = "multi"
access = "cf"

[[access_rule]]
prefix = "ladder"
access = "ea"

[authorization.viewers]
type = "TokenRestricted"
token_type = "Jwt"
issuer = "{ISSUER}"
audience = "{AUDIENCE}"
keys = [ {{ symmetric = "{b64(SECRET)}", kid = "{KID_PRIMARY}" }} ]

[[asset]]
path = "demo"
dash = "DynamicCommonEncryption"
clear_lead_secs = 0
authorization = "viewers"
license = {{ clearkey = "/clearkey" }}
access = "cf"
keys = [ {", ".join(f'{{ kid = "{k}", key = "{v}" }}' for k, v in DEMO_CENC.items())} ]
'''


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    if SIGNERS_MISSING:
        oracle_missing(SIGNERS_MISSING)
    d = tmp_path_factory.mktemp("signed")
    keys = Keys()
    (d / "k1.pem").write_text(_pub_pem(keys.k_old))
    (d / "k2.pem").write_text(_pub_pem(keys.k_new))
    (d / "kec.pem").write_text(_pub_pem(keys.k_ec))
    (d / "catalog.toml").write_text(catalog_toml(d))
    cfg = d / "sealcast.toml"
    cfg.write_text(f'listen = "127.0.0.1:0"\nroot = {json.dumps(str(FIXTURES.resolve()))}\n'
                   f'catalog = {json.dumps(str(d / "catalog.toml"))}\nallow_clear_without_policy = true\n')
    server = start_server_config(cfg, d / "sealcast.stderr.log")
    try:
        yield {"dir": d, "server": server, "base": server.base_url, "keys": keys}
    finally:
        stop_server(server)


@pytest.fixture(autouse=True)
def _server_alive(request):
    yield
    for name in ("env", "gated"):
        if name in request.fixturenames:
            s = request.getfixturevalue(name)["server"]
            if not s.alive():
                pytest.fail(f"sealcast exited (code {s.proc.returncode}) during this test; stderr tail:\n{s.log_tail()}")


def metrics(base: str, headers: dict[str, str] | None = None) -> dict[str, float]:
    # Metrics are on the metrics listener, outside the CDN gate.
    return prometheus_samples(get_ok(metrics_url(base), headers=headers).text())


def refusals(m: dict[str, float], reason: str) -> float:
    return m.get(f'sealcast_access_refused_total{{reason="{reason}"}}', 0.0)


def _fails(errors: list[str]) -> None:
    assert not errors, f"{len(errors)} problem(s):\n" + "\n".join(errors)


def _first_media_playlist(master: str) -> str:
    return next(line for line in master.splitlines() if line and not line.startswith("#"))


# --------------------------------------------------------------------------- the table


def cases(base: str, k: Keys) -> list[tuple[str, str, dict[str, str], int, str | None]]:
    """(case, URL, headers, status, refusal reason)."""
    M = f"{base}/multi"
    mpd, m3u8 = f"{M}/manifest.mpd", f"{M}/master.m3u8"
    L = "/ladder"
    lmpd = f"{base}{L}/manifest.mpd"
    ck = lambda url: {"Cookie": cf_cookies(url)}  # noqa: E731
    tok_q = lambda url, t: f"{url}?hdnts={urllib.parse.quote(t, safe='')}"  # noqa: E731
    custom_star = lambda url, **kw: k.custom(url, f"{M}/*", **kw)  # noqa: E731

    def tampered_policy(url: str) -> str:
        p = signing_params(url)
        pol = p["Policy"]
        # Flip one base64 character of the policy (the signature stays the original's).
        i = len(pol) // 2
        bad = pol[:i] + ("A" if pol[i] != "A" else "B") + pol[i + 1:]
        return url.replace(f"Policy={pol}", f"Policy={bad}")

    def ea(t: str, where: str, url: str = lmpd) -> tuple[str, dict[str, str]]:
        if where == "query":
            return tok_q(url, t), {}
        if where == "cookie":
            return url, {"Cookie": f"hdnts={t}"}
        return url, {"hdnts": t}

    t = []
    add = lambda name, url, hdrs, status, reason=None: t.append((name, url, hdrs, status, reason))  # noqa: E731
    # CloudFront, canned policy (the signed URL is the resource itself).
    add("cf canned mpd", k.canned(mpd), {}, 200)
    add("cf canned m3u8", k.canned(m3u8), {}, 200)
    add("cf canned with other query params", k.canned(mpd + "?x=1&y=two"), {}, 200)
    add("cf canned old key (rotation)", k.canned(mpd, key="K1OLD"), {}, 200)
    add("cf canned EC key (SHA-1, the default)", k.canned(mpd, key="KEC"), {}, 200)
    add("cf canned EC key, SHA-256", k.canned(mpd, key="KEC-sha256") + "&Hash-Algorithm=SHA256", {}, 200)
    add("cf canned RSA, SHA-256", k.canned(mpd, key="K2NEW-sha256") + "&Hash-Algorithm=SHA256", {}, 200)
    add("cf canned RSA, SHA-256 unannounced", k.canned(mpd, key="K2NEW-sha256"), {}, 403, "bad_signature")
    add("cf canned RSA, SHA-1 announced as SHA-256", k.canned(mpd) + "&Hash-Algorithm=SHA256", {}, 403, "bad_signature")
    add("cf canned expired", k.canned(mpd, expires_in=-60), {}, 403, "expired")
    add("cf canned expired within skew", k.canned(mpd, expires_in=-2), {}, 200)
    add("cf canned for another URL", k.canned(m3u8).replace("/master.m3u8", "/manifest.mpd"), {}, 403, "bad_signature")
    add("cf canned, query param added", k.canned(mpd) + "&x=1", {}, 403, "bad_signature")
    add("cf canned, Expires changed", re.sub(r"Expires=(\d+)", lambda m: f"Expires={int(m.group(1)) + 3600}", k.canned(mpd)), {}, 403, "bad_signature")
    add("cf canned, unknown key", k.canned(mpd, key="K9UNKNOWN"), {}, 403, "unknown_key")
    add("cf canned, forged with a known key ID", k.canned(mpd, key="K1OLD-forged"), {}, 403, "bad_signature")
    add("cf canned, Signature removed", re.sub(r"&Signature=[^&]*", "", k.canned(mpd)), {}, 403, "missing")
    add("cf canned, HEAD", k.canned(mpd), {"_method": "HEAD"}, 200)
    # CloudFront, custom policy.
    add("cf custom wildcard mpd", custom_star(mpd), {}, 200)
    add("cf custom wildcard m3u8", custom_star(m3u8), {}, 200)
    add("cf custom exact resource", k.custom(mpd, mpd), {}, 200)
    add("cf custom ? wildcard", k.custom(mpd, f"{M}/manifest.mp?"), {}, 200)
    add("cf custom resource *", k.custom(mpd, "*"), {}, 200)
    add("cf custom other asset", k.custom(mpd, f"{base}/ladder/*"), {}, 403, "resource_mismatch")
    add("cf custom other host", k.custom(mpd, "https://d111111abcdef8.cloudfront.net/multi/*"), {}, 403, "resource_mismatch")
    add("cf custom exact resource, other URL", k.custom(m3u8, mpd), {}, 403, "resource_mismatch")
    add("cf custom expired", custom_star(mpd, expires_in=-60), {}, 403, "expired")
    add("cf custom not yet valid", custom_star(mpd, starts_in=600), {}, 403, "not_yet_valid")
    add("cf custom started", custom_star(mpd, starts_in=-60), {}, 200)
    add("cf custom my IP", custom_star(mpd, ip="127.0.0.1"), {}, 200)
    add("cf custom my network", custom_star(mpd, ip="127.0.0.0/8"), {}, 200)
    add("cf custom another IP", custom_star(mpd, ip="192.0.2.10"), {}, 403, "ip_mismatch")
    add("cf custom another network", custom_star(mpd, ip="198.51.100.0/24"), {}, 403, "ip_mismatch")
    add("cf custom tampered policy", tampered_policy(custom_star(mpd)), {}, 403, "bad_signature")
    add("cf custom unknown key", custom_star(mpd, key="K9UNKNOWN"), {}, 403, "unknown_key")
    add("cf custom EC key", custom_star(mpd, key="KEC"), {}, 200)
    add("cf cookies EC key, SHA-256", mpd, {"Cookie": cf_cookies(custom_star(mpd, key="KEC-sha256")) + "; CloudFront-Hash-Algorithm=SHA256"}, 200)
    add("cf custom old key", custom_star(mpd, key="K1OLD"), {}, 200)
    # CloudFront signed cookies.
    add("cf cookies custom", mpd, ck(custom_star(mpd)), 200)
    add("cf cookies canned", mpd, ck(k.canned(mpd)), 200)
    add("cf cookies canned for another URL", m3u8, ck(k.canned(mpd)), 403, "bad_signature")
    add("cf cookies expired", mpd, ck(custom_star(mpd, expires_in=-60)), 403, "expired")
    add("cf cookies other asset", mpd, ck(k.custom(mpd, f"{base}/ladder/*")), 403, "resource_mismatch")
    add("cf cookies another IP", mpd, ck(custom_star(mpd, ip="192.0.2.10")), 403, "ip_mismatch")
    add("cf cookies unknown key", mpd, ck(custom_star(mpd, key="K9UNKNOWN")), 403, "unknown_key")
    add("cf cookies without signature", mpd, {"Cookie": re.sub(r"; CloudFront-Signature=[^;]*", "", cf_cookies(custom_star(mpd)))}, 403, "missing")
    add("cf nothing", mpd, {}, 403, "missing")
    # Refused before storage is asked: an asset that does not exist is not a 404 to strangers.
    add("cf nothing, no such asset", f"{M}/no/such/asset/manifest.mpd", {}, 403, "missing")
    add("cf EdgeAuth token on a CloudFront asset", tok_q(mpd, ea_token(acl="/multi/*")), {}, 403, "missing")
    # Akamai EdgeAuth.
    for where in ("query", "cookie", "header"):
        u, h = ea(ea_token(acl=f"{L}/*"), where)
        add(f"ea acl via {where}", u, h, 200)
    u, h = ea(ea_token(acl=f"{L}/*"), "query")
    add("ea __token__ name", u.replace("hdnts=", "__token__="), h, 200)
    add("ea acl list", *ea(ea_token(acl=f"/elsewhere/*!{L}/*"), "query"), 200)
    add("ea acl other path", *ea(ea_token(acl="/multi/*"), "query"), 403, "resource_mismatch")
    add("ea url token", *ea(ea_token(url=f"{L}/manifest.mpd"), "query"), 200)
    add("ea url token, other path", *ea(ea_token(url=f"{L}/master.m3u8"), "query"), 403, "bad_signature")
    add("ea expired", *ea(ea_token(acl=f"{L}/*", expires_in=-60), "query"), 403, "expired")
    add("ea expired within skew", *ea(ea_token(acl=f"{L}/*", expires_in=-2), "query"), 200)
    add("ea not yet valid", *ea(ea_token(acl=f"{L}/*", starts_in=600, expires_in=900), "cookie"), 403, "not_yet_valid")
    add("ea started", *ea(ea_token(acl=f"{L}/*", starts_in=-60), "cookie"), 200)
    add("ea my IP", *ea(ea_token(acl=f"{L}/*", ip="127.0.0.1"), "query"), 200)
    add("ea another IP", *ea(ea_token(acl=f"{L}/*", ip="192.0.2.10"), "query"), 403, "ip_mismatch")
    add("ea other key", *ea(ea_token(acl=f"{L}/*", key=EA_OTHER), "query"), 403, "bad_signature")
    add("ea sha1 token, sha256 policy", *ea(ea_token(acl=f"{L}/*", algorithm="sha1"), "query"), 403, "bad_signature")
    good = ea_token(acl=f"{L}/*")
    add("ea tampered exp", *ea(re.sub(r"exp=(\d+)", lambda m: f"exp={int(m.group(1)) + 3600}", good), "query"), 403, "bad_signature")
    add("ea tampered acl", *ea(good.replace(f"acl={L}/*", "acl=/*"), "header"), 403, "bad_signature")
    add("ea hmac cut", *ea(good[:-4], "query"), 403, "bad_signature")
    add("ea garbage", *ea("exp=1~~~hmac", "query"), 403, "bad_signature")
    add("ea nothing", lmpd, {}, 403, "missing")
    add("ea CloudFront URL on an EdgeAuth asset", k.custom(lmpd, f"{base}{L}/*"), {}, 403, "missing")
    # Open asset and the routes outside asset access.
    add("open asset, nothing", f"{base}/hevc/manifest.mpd", {}, 200)
    add("healthz", f"{base}/healthz", {}, 200)
    return t


def test_signed_url_table(env):
    """≥ 40 requests signed by botocore and akamai-edgeauth: each answered 200 or refused 403 with
    the right reason, `no-store`, no credential echoed, and counted per reason."""
    base, k = env["base"], env["keys"]
    table = cases(base, k)
    assert len(table) >= 40
    before = metrics(base)
    want: dict[str, int] = {}
    errors = []
    for name, url, hdrs, status, reason in table:
        hdrs = dict(hdrs)
        method = hdrs.pop("_method", "GET")
        r = fetch(url, method=method, headers=hdrs)
        if r.status != status:
            errors.append(f"{name}: {r.status}, expected {status}: {r.body[:120]!r}")
            continue
        if status == 403:
            want[reason] = want.get(reason, 0) + 1
            if r.body.decode(errors="replace").strip() != f"forbidden: {reason}":
                errors.append(f"{name}: body {r.body[:120]!r}, expected 'forbidden: {reason}'")
            if r.header("cache-control") != "no-store":
                errors.append(f"{name}: Cache-Control {r.header('cache-control')!r} on a refusal")
            secrets = [v for v in list(signing_params(url).values()) + list(hdrs.values()) if len(v) > 20]
            if any(s in r.body.decode(errors="replace") for s in secrets):
                errors.append(f"{name}: the refusal echoes the credential")
    after = metrics(base)
    for reason, n in want.items():
        got = refusals(after, reason) - refusals(before, reason)
        if got != n:
            errors.append(f"sealcast_access_refused_total{{reason={reason!r}}} grew by {got}, expected {n}")
    _fails(errors)


def test_credentials_never_logged(env):
    k, base = env["keys"], env["base"]
    signed = k.custom(f"{base}/multi/manifest.mpd", f"{base}/multi/*", expires_in=-60)
    tok = ea_token(acl="/ladder/*", key=EA_OTHER)
    assert fetch(signed).status == 403 and fetch(f"{base}/ladder/manifest.mpd?hdnts={tok}").status == 403
    log = env["server"].log_path.read_text(errors="replace")
    for secret in (signing_params(signed)["Signature"], signing_params(signed)["Policy"], tok.rsplit("hmac=", 1)[1]):
        assert secret not in log, "a credential reached the server log"


def test_signatures_are_verified_once(env):
    """The same RSA signature on many requests costs one verification (cached by its bytes)."""
    base, k = env["base"], env["keys"]
    # A policy no other test signs (RSA PKCS#1 v1.5 signatures are deterministic).
    url = k.custom(f"{base}/multi/manifest.mpd", f"{base}/multi/*?", expires_in=777)
    before = metrics(base)["sealcast_access_signatures_verified_total"]
    for _ in range(8):
        get_ok(url)
    after = metrics(base)["sealcast_access_signatures_verified_total"]
    assert after - before == 1, f"{after - before} verifications for 8 requests with one signature"


def test_query_signed_hls_carries_to_playlists_and_segments(env):
    """A custom-policy URL on the multivariant playlist: the playlist is the viewer's own
    (`private, no-store`), its media playlist URIs carry the signing parameters, which carry on
    to init and media segments; all fetch with them and none without. Segment ETags do not
    depend on the signature."""
    base, k = env["base"], env["keys"]
    master_url = k.custom(f"{base}/multi/master.m3u8", f"{base}/multi/*")
    p = signing_params(master_url)
    q = f"Policy={p['Policy']}&Signature={p['Signature']}&Key-Pair-Id={p['Key-Pair-Id']}"
    r = get_ok(master_url)
    assert "no-store" in r.header("cache-control", "") and "private" in r.header("cache-control", "")
    media_ref = _first_media_playlist(r.text())
    assert media_ref.endswith(q), f"media playlist URI {media_ref!r} does not carry the signature"
    media_url = resolve(master_url, media_ref)
    m = get_ok(media_url)
    assert "no-store" in m.header("cache-control", "")
    lines = m.text().splitlines()
    seg_refs = [x for x in lines if x and not x.startswith("#")]
    maps = re.findall(r'#EXT-X-MAP:URI="([^"]+)"', m.text())
    assert seg_refs and all(x.endswith(q) for x in seg_refs + maps), f"segments not carried: {seg_refs[:3]} {maps}"
    seg_url = resolve(media_url, seg_refs[0])
    seg = get_ok(seg_url)
    assert "public" in seg.header("cache-control", "")
    bare = seg_url.split("?")[0]
    assert fetch(bare).status == 403 and fetch(resolve(media_url, maps[0]).split("?")[0]).status == 403
    get_ok(resolve(media_url, maps[0]))
    # Another viewer's signature (other key, cookie) gets the same segment ETag and bytes.
    other = get_ok(bare, headers={"Cookie": cf_cookies(k.custom(bare, f"{base}/multi/*", key="K1OLD"))})
    assert other.header("etag") == seg.header("etag") and other.body == seg.body
    assert p["Signature"] not in (seg.header("etag") or "")
    # A canned URL covers one URL only: nothing is carried, the playlist stays cacheable.
    canned = get_ok(k.canned(f"{base}/multi/master.m3u8"))
    assert "Signature=" not in canned.text() and "no-store" not in canned.header("cache-control", "")
    # DASH: the segment templates carry it.
    mpd = get_ok(k.custom(f"{base}/multi/manifest.mpd", f"{base}/multi/*"))
    assert "no-store" in mpd.header("cache-control", "")
    templates = re.findall(r'<SegmentTemplate[^>]*>', mpd.text())
    assert templates and all("Signature=" in t and "&amp;Key-Pair-Id=" in t for t in templates), templates[:1]


def test_edgeauth_acl_token_carries(env):
    base = env["base"]
    tok = ea_token(acl="/ladder/*")
    r = get_ok(f"{base}/ladder/master-ts.m3u8?hdnts={tok}")
    media_ref = _first_media_playlist(r.text())
    assert media_ref.endswith(f"hdnts={tok}"), media_ref
    m = get_ok(resolve(f"{base}/ladder/master-ts.m3u8", media_ref))
    seg_ref = next(x for x in m.text().splitlines() if x and not x.startswith("#"))
    assert seg_ref.endswith(f"hdnts={tok}")
    # A URL token is for one URL: not carried.
    url_tok = ea_token(url="/ladder/master-ts.m3u8")
    r = get_ok(f"{base}/ladder/master-ts.m3u8?hdnts={url_tok}")
    assert "hdnts" not in r.text()


# --------------------------------------------------------------------------- CDN-only origin


@pytest.fixture(scope="module")
def gated(tmp_path_factory):
    """A server reachable through the CDN only (`X-Origin-Verify`, two secrets), whose default
    policy is EdgeAuth with the viewer's address from `X-Forwarded-For`."""
    if SIGNERS_MISSING:
        oracle_missing(SIGNERS_MISSING)
    d = tmp_path_factory.mktemp("gated")
    cfg = d / "sealcast.toml"
    secrets = ", ".join(json.dumps(s) for s in ORIGIN_SECRETS)
    cfg.write_text(f'listen = "127.0.0.1:0"\nroot = {json.dumps(str(FIXTURES.resolve()))}\n'
                   f'allow_clear_without_policy = true\n'
                   f'[access]\nclient_ip_header = "X-Forwarded-For"\n'
                   f'[access.origin_verify]\nheader = "X-Origin-Verify"\nsecrets = [{secrets}]\n'
                   f'[access.default]\nmode = "signed"\nedgeauth = {{ keys = ["{EA_KEY}"], escape_early = true }}\n')
    server = start_server_config(cfg, d / "sealcast.stderr.log")
    try:
        yield {"server": server, "base": server.base_url}
    finally:
        stop_server(server)


def test_cdn_only_origin(gated):
    base = gated["base"]
    old, new = ({"X-Origin-Verify": s} for s in ORIGIN_SECRETS)
    tok = ea_token(acl="/*", ip="203.0.113.7")
    url = f"{base}/multi/manifest.mpd?hdnts={tok}"
    fwd = {"X-Forwarded-For": "203.0.113.7, 10.0.0.1"}
    esc = ea_token(url="/multi/manifest.mpd", escape_early=True)
    assert "url=" not in esc
    errors = []
    for name, u, h, status, body in [
        ("no origin header", url, fwd, 403, "forbidden: origin_header"),
        ("wrong secret", url, {**fwd, "X-Origin-Verify": "origin-secret-2026-new-9876543211"}, 403, "forbidden: origin_header"),
        ("secret prefix", url, {**fwd, "X-Origin-Verify": ORIGIN_SECRETS[1][:-1]}, 403, "forbidden: origin_header"),
        ("metrics without header", f"{base}/metrics", {}, 403, "forbidden: origin_header"),
        ("key route without header", f"{base}/key/abba271e8bcf552bbd2e86a434a9a5d9", {}, 403, "forbidden: origin_header"),
        ("healthz without header", f"{base}/healthz", {}, 200, None),
        ("old secret", url, {**fwd, **old}, 200, None),
        ("new secret", url, {**fwd, **new}, 200, None),
        ("default policy: no token", f"{base}/multi/manifest.mpd", new, 403, "forbidden: missing"),
        ("default policy: other forwarded IP", url, {**new, "X-Forwarded-For": "198.51.100.1"}, 403, "forbidden: ip_mismatch"),
        # escape_early: the generator signed the quote_plus'd path of a URL token.
        ("escape_early URL token", f"{base}/multi/manifest.mpd?hdnts={esc}", new, 200, None),
        ("escape_early URL token, other path", f"{base}/multi/master.m3u8?hdnts={esc}", new, 403, "forbidden: bad_signature"),
    ]:
        r = fetch(u, headers=h)
        if r.status != status or (body and r.body.decode(errors="replace").strip() != body):
            errors.append(f"{name}: {r.status} {r.body[:100]!r}, expected {status} {body}")
        if status == 403 and r.header("cache-control") != "no-store":
            errors.append(f"{name}: Cache-Control {r.header('cache-control')!r}")
    m = metrics(base, headers=new)
    if refusals(m, "origin_header") < 5:
        errors.append(f"origin_header refusals counted: {refusals(m, 'origin_header')}")
    _fails(errors)


# --------------------------------------------------------------------------- players


@pytest.fixture(scope="module")
def players(env):
    require_browser("shaka-player", "hls.js")
    base, k = env["base"], env["keys"]
    M = f"{base}/multi"
    cookies = lambda url: [dict(zip(("name", "value"), c.split("=", 1))) for c in cf_cookies(url).split("; ")]  # noqa: E731
    star = k.custom(f"{M}/manifest.mpd", f"{M}/*")
    token = jwt_hs256(claims(), SECRET)
    demo_cookies = cookies(k.custom(f"{base}/demo/manifest.mpd", f"{base}/demo/*"))
    jobs = [
        {"id": "shaka-dash-cookies", "engine": "shaka", "url": f"{M}/manifest.mpd", "cookies": cookies(star), "clear": True},
        {"id": "hlsjs-hls-cookies", "engine": "hlsjs", "url": f"{M}/master.m3u8", "cookies": cookies(star), "clear": True},
        {"id": "hlsjs-hls-query-carried", "engine": "hlsjs", "url": k.custom(f"{M}/master.m3u8", f"{M}/*"), "clear": True},
        {"id": "shaka-dash-query-carried", "engine": "shaka", "url": k.custom(f"{M}/manifest.mpd", f"{M}/*"), "clear": True},
        {"id": "hlsjs-edgeauth-query-carried", "engine": "hlsjs", "url": f"{base}/ladder/master-ts.m3u8?hdnts={ea_token(acl='/ladder/*')}", "clear": True},
        {"id": "shaka-dash-unsigned", "engine": "shaka", "url": f"{M}/manifest.mpd", "clear": True},
        {"id": "hlsjs-hls-unsigned", "engine": "hlsjs", "url": f"{M}/master.m3u8", "clear": True},
        {"id": "hlsjs-hls-canned-not-carried", "engine": "hlsjs", "url": k.canned(f"{M}/master.m3u8"), "clear": True},
        {"id": "shaka-cenc-cookies-and-token", "engine": "shaka", "url": f"{base}/demo/manifest.mpd", "cookies": demo_cookies,
         "license": f"{base}/clearkey", "token": token},
        {"id": "shaka-cenc-token-only", "engine": "shaka", "url": f"{base}/demo/manifest.mpd",
         "license": f"{base}/clearkey", "token": token},
        {"id": "shaka-cenc-cookies-only", "engine": "shaka", "url": f"{base}/demo/manifest.mpd", "cookies": demo_cookies,
         "license": f"{base}/clearkey"},
    ]
    results, stderr = run_player_script("cenc_player.mjs", jobs, env["dir"] / "player-jobs.json", 15)
    return {"results": results, "stderr": stderr}


def _explain(r: dict) -> str:
    keep = {k: r.get(k) for k in ("url", "ok", "error", "currentTime", "decodedFrames", "mediaError", "keyRequests",
                                  "playerErrors", "failedRequests")}
    return json.dumps(keep, indent=1)[:3000]


def _result(players, job):
    r = players["results"].get(job)
    assert r is not None, f"no result for {job}; stderr:\n{players['stderr'][-2000:]}"
    return r


@pytest.mark.parametrize("job", ["shaka-dash-cookies", "hlsjs-hls-cookies", "hlsjs-hls-query-carried", "shaka-dash-query-carried",
                                 "hlsjs-edgeauth-query-carried", "shaka-cenc-cookies-and-token"])
def test_players_play_with_signatures(players, job):
    r = _result(players, job)
    assert r["ok"], f"{job}: expected playback past 4 s:\n{_explain(r)}"
    refused = [x for x in r.get("failedRequests", []) if "-> 403" in x]
    assert not refused, f"{job}: refused requests {refused}"
    if job.startswith("shaka-cenc"):
        assert r.get("mediaKeys") and r.get("keySystem") == "org.w3.clearkey", _explain(r)


@pytest.mark.parametrize("job,refused_path", [("shaka-dash-unsigned", "/multi/manifest.mpd"), ("hlsjs-hls-unsigned", "/multi/master.m3u8"),
                                              ("hlsjs-hls-canned-not-carried", "/multi/"), ("shaka-cenc-token-only", "/demo/manifest.mpd"),
                                              ("shaka-cenc-cookies-only", "/clearkey")])
def test_players_fail_without(players, job, refused_path):
    r = _result(players, job)
    assert not r["ok"], f"{job}: played although it must not:\n{_explain(r)}"
    if refused_path == "/clearkey":
        got = [x for x in r.get("keyRequests", []) if "/clearkey" in x]
        assert got and all(x.endswith(" 401") for x in got), f"{job}: licence responses {got}:\n{_explain(r)}"
    else:
        assert any(refused_path in x and "-> 403" in x for x in r.get("failedRequests", [])), \
            f"{job}: no 403 under {refused_path} (the failure must be the refusal):\n{_explain(r)}"
