"""Key delivery, token-restricted policies, HLS AES-128 / SAMPLE-AES, the ClearKey licence
server and TLS (issue 5), end to end against the real server.

Oracles, none of them ours:
- ffmpeg 8.1 plays AES-128 HLS (TS and fMP4) and SAMPLE-AES TS over HTTP, fetching the key
  itself; its decoded frames (`framemd5` without `-c copy`) must equal the same ffmpeg's
  decoded frames of the clear source. Without a token, or with a bad one, it must not get
  the source back (and the server must have refused the key).
- hls.js (AES-128 and SAMPLE-AES TS, keys fetched by the player) and shaka-player (cenc DASH,
  keys from OUR `POST /clearkey` with a bearer token added by a request filter) in Debian's
  Chromium; without the token each must fail.
- RFC 7519/7515 token rules, checked at the HTTP level with tokens minted here (hmac/hashlib
  for HS256, `openssl dgst -sha256 -sign` for RS256, an SWT built by hand): status 401/403,
  no token echo in the body or the log, the server survives, `/metrics` counts each reason.
- curl + a test CA made with openssl: HTTPS and HTTP/2 (ALPN) key delivery.

Fixed values: the content keys below (ORACLES.md's pair plus made-up ones) and the token
secrets. Which key a playlist uses is never assumed: the KID is read from its EXT-X-KEY.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import shutil
import subprocess
import time
import urllib.parse
from pathlib import Path

import pytest

from oracle import (metrics_url, require_browser, run_cenc_player, FFMPEG, FIXTURES, FrameHashes, fetch, get_ok, hex_kid, normalize_lang,
                    parse_framemd5, prometheus_samples, require_tool, source_decoded_hashes, source_tracks,
                    start_server_config, start_tls_server_config, stop_server, uuid_kid)


# --------------------------------------------------------------------------- catalog

ISSUER, AUDIENCE = "https://sts.example", "urn:sealcast"
SECRET = b"sealcast-e2e-primary-hs256-secret"        # primary verification key
SECRET_ALT = b"sealcast-e2e-alternate-hs256-key!"     # alternate (rotation)
# Two HS256 keys in one policy: tokens name theirs with the JWT header's kid.
KID_PRIMARY, KID_ALT = "e2e-primary", "e2e-alternate"
SECRET_OTHER = b"not-the-policy-key-at-all-0123456"   # signs "bad signature" tokens
SWT_SECRET = b"sealcast-e2e-swt-hmacsha256-secret"

# demo: DASH cenc (ClearKey licence server) + HLS AES-128, token policy, token carried.
DEMO_CENC = {"abba271e8bcf552bbd2e86a434a9a5d9": "69eaa802a6763af979e8d1940fb88392",
             "5ea1ca57000040008000000000000002": "00112233445566778899aabbccddeeff"}
DEMO_AES = {"ae5ae5ae000040008000000000000005": "11112222333344445555666677778888",
            "ae5ae5ae000040008000000000000006": "99990000aaaabbbbccccddddeeeeffff"}
# multi: HLS cbcs -> SAMPLE-AES TS, Open policy (hls.js and ffmpeg fetch the key unaided).
MULTI_CBCS = {"cbc5cbc5000040008000000000000003": "ffeeddccbbaa99887766554433221100",
              "cbc5cbc5000040008000000000000004": "0f1e2d3c4b5a69788796a5b4c3d2e1f0"}
# hevc: HLS cbcs, keys WITHOUT a policy (never delivered); SAMPLE-AES TS is H.264 only.
HEVC_CBCS = {"cbc5cbc5000040008000000000000007": "00000000111111112222222233333333",
             "cbc5cbc5000040008000000000000008": "44444444555555556666666677777777"}
# Progressive MP4 sources (issue 15), Open policy: AES-128 over HLS (TS and fMP4), and cbcs
# (SAMPLE-AES over TS).
PROG_AES = {"ae5ae5ae000040008000000000000021": "21212121212121212121212121212121"}
PROG_CBCS = {"cbc5cbc5000040008000000000000022": "22222222222222222222222222222222"}
# Keys of a catalog-only asset (no folder), one per policy of the token table.
K_RSA = ("a5a5a5a5000040008000000000000011", "0102030405060708090a0b0c0d0e0f10")
K_CK1 = ("c1c1c1c1000040008000000000000012", "1112131415161718191a1b1c1d1e1f20")
K_CK2 = ("c2c2c2c2000040008000000000000013", "2122232425262728292a2b2c2d2e2f30")
K_SWT = ("5a5a5a5a000040008000000000000014", "3132333435363738393a3b3c3d3e3f40")
ALL_KEYS = {**DEMO_CENC, **DEMO_AES, **MULTI_CBCS, **HEVC_CBCS, **dict([K_RSA, K_CK1, K_CK2, K_SWT])}
K_VIEW = next(iter(DEMO_AES.items()))  # a key under the "viewers" policy


def b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def catalog_toml() -> str:
    def keys(d: dict[str, str], kind: str | None = None, auth: str | None = None) -> list[str]:
        extra = (f', kind = "{kind}"' if kind else "") + (f', authorization = "{auth}"' if auth else "")
        return [f'{{ kid = "{k}", key = "{v}"{extra} }}' for k, v in d.items()]

    def asset(path: str, body: str, ks: list[str]) -> str:
        return f'[[asset]]\npath = "{path}"\n{body}keys = [\n  ' + ",\n  ".join(ks) + ",\n]\n"

    return "\n".join([
        f'''[authorization.viewers]
type = "TokenRestricted"
token_type = "Jwt"
issuer = "{ISSUER}"
audience = "{AUDIENCE}"
keys = [ {{ symmetric = "{b64(SECRET)}", kid = "{KID_PRIMARY}" }}, {{ symmetric = "{b64(SECRET_ALT)}", kid = "{KID_ALT}" }} ]
required_claims = [ {{ name = "sub" }} ]

[authorization.rsa]
type = "TokenRestricted"
token_type = "Jwt"
issuer = "{ISSUER}"
audience = "{AUDIENCE}"
keys = [ {{ rsa_pem_file = "rsa_public.pem" }} ]

[authorization.perkey]
type = "TokenRestricted"
token_type = "Jwt"
issuer = "{ISSUER}"
audience = "{AUDIENCE}"
keys = [ {{ symmetric = "{b64(SECRET)}" }} ]
content_key_claim = true

[authorization.swt]
type = "TokenRestricted"
token_type = "Swt"
issuer = "{ISSUER}"
audience = "{AUDIENCE}"
keys = [ {{ symmetric = "{b64(SWT_SECRET)}" }} ]

[authorization.open]
type = "Open"
''',
        asset("demo", 'dash = "DynamicCommonEncryption"\nhls = "DynamicEnvelopeEncryption"\nclear_lead_secs = 0\n'
                      'authorization = "viewers"\ncarry_token = true\nlicense = { clearkey = "/clearkey" }\n',
              keys(DEMO_CENC) + keys(DEMO_AES, "EnvelopeEncryption")),
        asset("multi", 'hls = "DynamicCommonEncryptionCbcs"\nclear_lead_secs = 0\nauthorization = "open"\n',
              keys(MULTI_CBCS, "CommonEncryptionCbcs")),
        asset("hevc", 'hls = "DynamicCommonEncryptionCbcs"\nclear_lead_secs = 0\n',
              keys(HEVC_CBCS, "CommonEncryptionCbcs")),
        asset("progressive/tail", 'hls = "DynamicEnvelopeEncryption"\nclear_lead_secs = 0\nauthorization = "open"\n',
              keys(PROG_AES, "EnvelopeEncryption")),
        asset("progressive/faststart", 'hls = "DynamicCommonEncryptionCbcs"\nclear_lead_secs = 0\nauthorization = "open"\n',
              keys(PROG_CBCS, "CommonEncryptionCbcs")),
        asset("tokens/table", "",
              keys(dict([K_RSA]), auth="rsa") + keys(dict([K_CK1, K_CK2]), auth="perkey")
              + keys(dict([K_SWT]), auth="swt")),
    ])


# --------------------------------------------------------------------------- tokens


def b64u(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def claims(**over) -> dict:
    now = int(time.time())
    c = {"iss": ISSUER, "aud": AUDIENCE, "sub": "viewer-1", "iat": now, "exp": now + 900}
    for k, v in over.items():
        k = k.replace("__", ":")
        if v is None:
            c.pop(k, None)
        else:
            c[k] = v
    return c


def jwt_hs256(payload: dict, secret: bytes, header: dict | None = None) -> str:
    """HS256; the header names the key (`kid`) as an STS with two keys would, unless given."""
    if header is None:
        header = {"alg": "HS256", "typ": "JWT", "kid": KID_ALT if secret == SECRET_ALT else KID_PRIMARY}
    h = b64u(json.dumps(header).encode())
    p = b64u(json.dumps(payload).encode())
    return f"{h}.{p}.{b64u(hmac.new(secret, f'{h}.{p}'.encode(), hashlib.sha256).digest())}"


def jwt_rs256(payload: dict, private_pem: Path) -> str:
    h = b64u(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
    p = b64u(json.dumps(payload).encode())
    r = subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(private_pem)], input=f"{h}.{p}".encode(),
                       capture_output=True, timeout=30)
    assert r.returncode == 0, f"openssl dgst -sign failed: {r.stderr.decode()[-500:]}"
    return f"{h}.{p}.{b64u(r.stdout)}"


def swt(fields: dict[str, str], secret: bytes) -> str:
    """Simple Web Token: form-encoded claims, then `&HMACSHA256=` + url-encoded base64 HMAC."""
    signed = "&".join(f"{urllib.parse.quote_plus(k)}={urllib.parse.quote_plus(v)}" for k, v in fields.items())
    sig = base64.b64encode(hmac.new(secret, signed.encode(), hashlib.sha256).digest()).decode()
    return f"{signed}&HMACSHA256={urllib.parse.quote_plus(sig)}"


def swt_fields(**over) -> dict[str, str]:
    f = {"Issuer": ISSUER, "Audience": AUDIENCE, "ExpiresOn": str(int(time.time()) + 900)}
    f.update({k: v for k, v in over.items()})
    return f


def good_token() -> str:
    return jwt_hs256(claims(), SECRET)


def q(token: str) -> str:
    return urllib.parse.quote(token, safe="")


# --------------------------------------------------------------------------- servers


def _openssl(*args: str, cwd: Path) -> None:
    r = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"openssl {' '.join(args)} failed: {r.stderr[-800:]}"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    if shutil.which("openssl") is None:
        pytest.fail("openssl not installed (needed to make RSA keys and a test CA)")
    d = tmp_path_factory.mktemp("keys")
    _openssl("genrsa", "-out", "rsa_private.pem", "2048", cwd=d)
    _openssl("rsa", "-in", "rsa_private.pem", "-pubout", "-out", "rsa_public.pem", cwd=d)
    _openssl("genrsa", "-out", "rsa_other.pem", "2048", cwd=d)
    (d / "catalog.toml").write_text(catalog_toml())
    cfg = d / "sealcast.toml"
    cfg.write_text(f'listen = "127.0.0.1:0"\nroot = {json.dumps(str(FIXTURES.resolve()))}\n'
                   f'catalog = {json.dumps(str(d / "catalog.toml"))}\nallow_clear_without_policy = true\n')
    server = start_server_config(cfg, d / "sealcast.stderr.log")
    try:
        yield {"dir": d, "server": server, "base": server.base_url}
    finally:
        stop_server(server)


@pytest.fixture(autouse=True)
def _server_alive(request):
    yield
    if "env" in request.fixturenames:
        s = request.getfixturevalue("env")["server"]
        if not s.alive():
            pytest.fail(f"sealcast exited (code {s.proc.returncode}) during this test; stderr tail:\n{s.log_tail()}")


def metrics(base: str) -> dict[str, float]:
    r = get_ok(metrics_url(base))
    return prometheus_samples(r.text())


def refused(m: dict[str, float], service: str, reason: str) -> float:
    return m.get(f'sealcast_keys_refused_total{{service="{service}",reason="{reason}"}}', 0.0)


def delivered(m: dict[str, float], service: str) -> float:
    return m.get(f'sealcast_keys_delivered_total{{service="{service}"}}', 0.0)


def _fails(errors: list[str]) -> None:
    assert not errors, f"{len(errors)} problem(s):\n" + "\n".join(errors)


# --------------------------------------------------------------------------- playlists


def m3u8_attrs(line: str) -> dict[str, str]:
    return {m.group(1): m.group(2).strip('"')
            for m in re.finditer(r'([A-Z0-9-]+)=("[^"]*"|[^,]*)', line.split(":", 1)[1])}


def media_playlists(base: str, asset: str, master: str) -> list[tuple[str, str, str | None]]:
    """(playlist URL, track, muxed-audio track or None) for every variant and rendition of a
    multivariant playlist. The muxed audio of a TS variant is the EXT-X-MEDIA without URI
    (DEFAULT=YES), mapped to the source track by NAME or LANGUAGE."""
    murl = f"{base}/{asset}/{master}"
    lines = get_ok(murl).text().splitlines()
    muxed = None
    srcs = source_tracks(asset)
    out = []
    for i, line in enumerate(lines):
        if line.startswith("#EXT-X-MEDIA:") and "TYPE=AUDIO" in line:
            a = m3u8_attrs(line)
            if "URI" in a:
                out.append((urllib.parse.urljoin(murl, a["URI"]), None, None))
            else:
                cands = [t.name for t in srcs.values() if t.codec_type == "audio" and
                         (t.name == a.get("NAME") or (a.get("LANGUAGE") and
                                                       normalize_lang(t.language) == normalize_lang(a["LANGUAGE"])))]
                assert len(cands) == 1, f"{murl}: muxed audio {line!r} matches source tracks {cands}"
                muxed = cands[0]
        elif line.startswith("#EXT-X-STREAM-INF:"):
            uri = next(x for x in lines[i + 1:] if x and not x.startswith("#"))
            out.append((urllib.parse.urljoin(murl, uri), "variant", None))
    res = []
    for url, kind, _ in out:
        path = urllib.parse.urlsplit(url).path
        track = path[len(f"/{asset}/"):].split("/")[0]
        res.append((url, track, muxed if kind == "variant" and master == "master-ts.m3u8" else None))
    return res


def carried(uri: str) -> str | None:
    """The `token` query parameter of a URI, decoded (any valid percent-encoding)."""
    v = urllib.parse.parse_qs(urllib.parse.urlsplit(uri).query).get("token")
    return v[0] if v else None


def key_tags(text: str) -> list[dict[str, str]]:
    return [m3u8_attrs(x) for x in text.splitlines() if x.startswith("#EXT-X-KEY:")]


# --------------------------------------------------------------------------- ffmpeg


def ffmpeg_decode(src: str, map_spec: str, input_args: list[str] | None = None,
                  timeout: float = 180) -> tuple[int, FrameHashes | None, str]:
    """Decoded-frame md5s of one stream, or (rc, None, stderr) when ffmpeg fails or decodes
    nothing. Never asserts: the refusal tests need the failure."""
    cmd = [require_tool(FFMPEG, "ffmpeg"), "-hide_banner", "-nostdin", "-v", "error", *(input_args or []),
           "-i", src, "-map", map_spec, "-fps_mode", "passthrough", "-f", "framemd5", "-"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    try:
        h = parse_framemd5(r.stdout)
    except AssertionError:
        h = None
    if h is not None and not h.packets:
        h = None
    return r.returncode, h, r.stderr


def frames(h: FrameHashes | None) -> list[tuple[int, str]]:
    return [] if h is None else [(p.size, p.md5) for p in h.packets]


def compare_decoded(got: FrameHashes | None, asset: str, track: str, what: str, errors: list[str],
                    may_differ_at_end: int = 0, want: FrameHashes | None = None) -> None:
    want = frames(want if want is not None else source_decoded_hashes(asset, track))
    g = frames(got)
    if len(g) != len(want):
        errors.append(f"{what}: decoded {len(g)} frames, source {asset}/{track} decodes to {len(want)}")
        return
    bad = [i for i, (a, b) in enumerate(zip(g, want)) if a != b]
    if may_differ_at_end:
        # ffmpeg leaves the last two SAMPLE-AES video packets (decode order) encrypted; in
        # presentation order they land among the last frames (B-frame reordering).
        tail = set(range(len(want) - may_differ_at_end, len(want)))
        late = [i for i in bad if i in tail]
        if len(late) > 2 or [i for i in bad if i not in tail]:
            errors.append(f"{what}: decoded frames {bad[:10]} differ from the source's {asset}/{track} "
                          f"(allowed: at most 2 among the last {may_differ_at_end})")
    elif bad:
        errors.append(f"{what}: {len(bad)} of {len(want)} decoded frames differ from the source's "
                      f"{asset}/{track}; first at frame {bad[0]}: got {g[bad[0]]}, source {want[bad[0]]}")


def equal_frames(got: FrameHashes | None, asset: str, track: str) -> int:
    want = set(frames(source_decoded_hashes(asset, track)))
    return sum(1 for f in frames(got) if f in want)


# =========================================================================== 1. ffmpeg + AES-128


AES_CASES = [("ts", "master-ts.m3u8"), ("fmp4", "master.m3u8")]


@pytest.mark.parametrize("fmt,master", AES_CASES, ids=[c[0] for c in AES_CASES])
def test_aes128_playlists_signal_keys(env, fmt, master):
    """Every media segment under one EXT-X-KEY METHOD=AES-128 with an explicit IV and a key
    URI of this origin naming an EnvelopeEncryption KID; fMP4's init stays clear (key tags
    after EXT-X-MAP); a carried token reaches key URIs and media playlist URIs, never segments."""
    base = env["base"]
    errors = []
    token = good_token()
    mtext = get_ok(f"{base}/demo/{master}?token={q(token)}").text()
    for line in mtext.splitlines():
        uris = [line] if line and not line.startswith("#") else re.findall(r'URI="([^"]+)"', line)
        for u in uris:
            if carried(u) != token:
                errors.append(f"/demo/{master}?token=…: media playlist URI {u.split('?')[0]!r} does not carry the "
                              f"token (its token parameter: {str(carried(u))[:12]!r}…)")
    for purl, track, _ in media_playlists(base, "demo", master):
        text = get_ok(purl).text()
        lines = text.splitlines()
        keys = key_tags(text)
        segs = [x for x in lines if x and not x.startswith("#")]
        if not keys or any(k.get("METHOD") != "AES-128" for k in keys):
            errors.append(f"{purl}: EXT-X-KEY tags {keys[:3]}, expected METHOD=AES-128")
            continue
        for k in keys:
            uri = k.get("URI", "")
            m = re.fullmatch(r"/key/([0-9a-fA-F-]{32,36})", uri)
            if not m or hex_kid(m.group(1)) not in DEMO_AES:
                errors.append(f"{purl}: key URI {uri!r} is not /key/{{an EnvelopeEncryption KID of demo}} {sorted(DEMO_AES)}")
            if not re.fullmatch(r"0[xX][0-9a-fA-F]{32}", k.get("IV", "")):
                errors.append(f"{purl}: EXT-X-KEY IV {k.get('IV')!r}, expected an explicit 128-bit 0x… IV")
        # each segment is preceded by a key tag (per-segment IV), or one tag covers them all
        ivs = [k.get("IV") for k in keys]
        if len(set(ivs)) != len(ivs):
            errors.append(f"{purl}: IVs repeat across segments: {len(ivs)} tags, {len(set(ivs))} distinct")
        first_key = next(i for i, x in enumerate(lines) if x.startswith("#EXT-X-KEY:"))
        first_seg = next(i for i, x in enumerate(lines) if x and not x.startswith("#"))
        if first_key > first_seg:
            errors.append(f"{purl}: first segment comes before any EXT-X-KEY")
        if fmt == "fmp4":
            maps = [i for i, x in enumerate(lines) if x.startswith("#EXT-X-MAP:")]
            if len(maps) != 1 or maps[0] > first_key:
                errors.append(f"{purl}: EXT-X-MAP at lines {maps}, first EXT-X-KEY at {first_key}: the init "
                              f"must be outside the encryption (key tags after EXT-X-MAP)")
            init = get_ok(urllib.parse.urljoin(purl, m3u8_attrs(lines[maps[0]])["URI"])).body if maps else b""
            if init[4:8] != b"ftyp":
                errors.append(f"{purl}: init segment does not start with ftyp (encrypted?): {init[:16].hex()}")
        ctext = get_ok(f"{purl}?token={q(token)}").text()
        for u in re.findall(r'#EXT-X-KEY:[^\n]*URI="([^"]+)"', ctext):
            if carried(u) != token:
                errors.append(f"{purl}?token=…: key URI {u.split('?')[0]!r} does not carry the token "
                              f"(its token parameter: {str(carried(u))[:12]!r}…)")
        for x in ctext.splitlines():
            if x and not x.startswith("#") and "token" in x:
                errors.append(f"{purl}?token=…: segment URI {x!r} carries the token (never into segments)")
            if x.startswith("#EXT-X-MAP:") and "token" in x:
                errors.append(f"{purl}?token=…: {x!r} carries the token into the init URI")
        cc = (get_ok(f"{purl}?token={q(token)}").header("cache-control") or "").lower()
        if "no-store" not in cc and "private" not in cc:
            errors.append(f"{purl}?token=…: Cache-Control {cc!r} for a playlist carrying a viewer's token "
                          f"(expected private/no-store)")
        if not segs:
            errors.append(f"{purl}: no segments")
    _fails(errors)


@pytest.mark.parametrize("fmt,master", AES_CASES, ids=[c[0] for c in AES_CASES])
def test_ffmpeg_plays_aes128_with_bearer_token(env, fmt, master):
    """ffmpeg's HLS demuxer fetches /key/{kid} with `-headers Authorization: Bearer …`,
    decrypts every segment; decoded frames of every stream of every media playlist equal the
    clear source's."""
    base = env["base"]
    hdr = ["-headers", f"Authorization: Bearer {good_token()}\r\n"]
    before = metrics(base)
    errors = []
    runs = 0
    for purl, track, muxed in media_playlists(base, "demo", master):
        for spec, name in [("0:v:0" if track.startswith("video") else "0:a:0", track)] + ([("0:a:0", muxed)] if muxed else []):
            rc, h, err = ffmpeg_decode(purl, spec, hdr)
            runs += 1
            if rc != 0 or h is None:
                errors.append(f"ffmpeg {purl} ({spec}) with a valid bearer token: exit {rc}, "
                              f"{len(frames(h))} frames; stderr: {err[-600:]}")
                continue
            compare_decoded(h, "demo", name, f"ffmpeg {purl} {spec}", errors)
    after = metrics(base)
    if delivered(after, "key") - delivered(before, "key") < runs:
        errors.append(f"/metrics: sealcast_keys_delivered_total{{service=\"key\"}} rose by "
                      f"{delivered(after, 'key') - delivered(before, 'key')}, expected ≥ {runs} (one per ffmpeg run)")
    _fails(errors)


@pytest.mark.parametrize("fmt,master", AES_CASES, ids=[c[0] for c in AES_CASES])
def test_ffmpeg_plays_aes128_with_carried_token(env, fmt, master):
    """No header: `?token=` on the multivariant playlist is carried into the media playlist
    URIs and from there into the key URIs; ffmpeg plays the first variant's video."""
    base = env["base"]
    token = good_token()
    murl = f"{base}/demo/{master}?token={q(token)}"
    first_video = next(t for _, t, _ in media_playlists(base, "demo", master) if t.startswith("video"))
    rc, h, err = ffmpeg_decode(murl, "0:v:0")
    errors = []
    if rc != 0 or h is None:
        errors.append(f"ffmpeg {murl} (0:v:0): exit {rc}; stderr: {err[-800:]}")
    else:
        compare_decoded(h, "demo", first_video, f"ffmpeg {murl} 0:v:0 (token carried from the master)", errors)
    # and a media playlist alone, token on it
    purl = next(u for u, t, _ in media_playlists(base, "demo", master) if t == "audio_fr")
    rc, h, err = ffmpeg_decode(f"{purl}?token={q(token)}", "0:a:0")
    if rc != 0 or h is None:
        errors.append(f"ffmpeg {purl}?token=…: exit {rc}; stderr: {err[-800:]}")
    else:
        compare_decoded(h, "demo", "audio_fr", f"ffmpeg {purl}?token=…", errors)
    _fails(errors)


REFUSAL_CASES = [("none", None, "token_missing"),
                 ("bad-signature", "bad", "token_signature"),
                 ("expired", "expired", "token_expired")]


@pytest.mark.parametrize("fmt,master", AES_CASES, ids=[c[0] for c in AES_CASES])
@pytest.mark.parametrize("case,kind,reason", REFUSAL_CASES, ids=[c[0] for c in REFUSAL_CASES])
def test_ffmpeg_aes128_without_valid_token_fails(env, fmt, master, case, kind, reason):
    """Without a token / with a bad one the key request is refused (401, counted under its
    reason) and ffmpeg does not reproduce a single source frame."""
    base = env["base"]
    purl, track, _ = next(x for x in media_playlists(base, "demo", master) if x[1].startswith("video"))
    token = {None: None, "bad": jwt_hs256(claims(), SECRET_OTHER),
             "expired": jwt_hs256(claims(exp=int(time.time()) - 3600), SECRET)}[kind]
    args = ["-headers", f"Authorization: Bearer {token}\r\n"] if token else []
    before = metrics(base)
    rc, h, err = ffmpeg_decode(purl, "0:v:0", args, timeout=120)
    after = metrics(base)
    n = refused(after, "key", reason) - refused(before, "key", reason)
    same = equal_frames(h, "demo", track)
    total = len(frames(source_decoded_hashes("demo", track)))
    assert n >= 1, (f"ffmpeg {purl} with {case} token: the server counted {n} key refusals for reason {reason!r} "
                    f"(expected ≥ 1: ffmpeg must have asked for the key and been refused); ffmpeg exit {rc}, "
                    f"stderr: {err[-600:]}")
    assert same == 0, (f"ffmpeg {purl} with {case} token: exit {rc}, {len(frames(h))} frames decoded, {same} of "
                       f"{total} equal the clear source's (expected none: the key was refused)")


# =========================================================================== 2. SAMPLE-AES TS


def test_sample_aes_ts_signalling_and_hevc_left_out(env):
    base = env["base"]
    errors = []
    for purl, track, _ in media_playlists(base, "multi", "master-ts.m3u8"):
        text = get_ok(purl).text()
        if "/cbcs/" not in purl:
            errors.append(f"{purl}: expected /{{track}}/cbcs/ts.m3u8 for SAMPLE-AES TS")
        ks = key_tags(text)
        if not ks:
            errors.append(f"{purl}: no EXT-X-KEY")
        for k in ks:
            want = {"METHOD": "SAMPLE-AES", "KEYFORMAT": "identity", "KEYFORMATVERSIONS": "1"}
            if any(k.get(a) != v for a, v in want.items()) or not re.fullmatch(r"0[xX][0-9a-fA-F]{32}", k.get("IV", "")):
                errors.append(f"{purl}: EXT-X-KEY {k}, expected {want} with a 128-bit IV")
            m = re.fullmatch(r"/key/([0-9a-fA-F-]{32,36})", k.get("URI", ""))
            if not m or hex_kid(m.group(1)) not in MULTI_CBCS:
                errors.append(f"{purl}: key URI {k.get('URI')!r} names no cbcs KID of multi {sorted(MULTI_CBCS)}")
            else:
                r = fetch(base + k["URI"])
                if r.status != 200 or r.body != bytes.fromhex(MULTI_CBCS[hex_kid(m.group(1))]):
                    errors.append(f"{base + k['URI']} (Open policy): {r.describe()}, expected the 16 key bytes")
        if "#EXT-X-MAP" in text:
            errors.append(f"{purl}: TS playlist has EXT-X-MAP")
    # SAMPLE-AES TS is H.264/AAC only: HEVC is left out of the TS presentation (issue 12; it
    # stays in HLS fMP4), its AAC audio stays, and the HEVC video has no TS playlist or segment.
    r = fetch(f"{base}/hevc/master-ts.m3u8")
    text = r.body.decode(errors="replace")
    if r.status != 200 or "video/" in text or "hvc1" in text or "audio/cbcs/ts.m3u8" not in text:
        errors.append(f"/hevc/master-ts.m3u8 (HEVC + AAC, cbcs HLS): {r.status}, expected an audio-only SAMPLE-AES "
                      f"TS playlist without the HEVC video:\n{text[:600]}")
    for leaf in ("video/cbcs/ts.m3u8", "video/cbcs/1.ts"):
        r = fetch(f"{base}/hevc/{leaf}")
        if r.status not in (403, 404):
            errors.append(f"/hevc/{leaf}: {r.status}, expected 404/403 (HEVC is not carried over MPEG-TS)")
    _fails(errors)


def test_ffmpeg_decrypts_sample_aes_ts(env, tmp_path):
    """ffmpeg fetches the key (Open policy) and decrypts SAMPLE-AES: decoded video equals the
    source except for the last two packets ffmpeg leaves encrypted; audio equals it whole.
    Control: the same segments read as a plain TS file (no key) reproduce no source frame."""
    base = env["base"]
    errors = []
    plist = media_playlists(base, "multi", "master-ts.m3u8")
    for purl, track, muxed in plist:
        streams = [("0:v:0", track, 4)] if track in source_tracks("multi") and \
            source_tracks("multi")[track].codec_type == "video" else [("0:a:0", track, 0)]
        if muxed:
            streams.append(("0:a:0", muxed, 0))
        for spec, name, tail in streams:
            rc, h, err = ffmpeg_decode(purl, spec)
            if rc != 0 or h is None:
                errors.append(f"ffmpeg {purl} ({spec}): exit {rc}; stderr {err[-600:]}")
                continue
            compare_decoded(h, "multi", name, f"ffmpeg {purl} {spec} (SAMPLE-AES)", errors, may_differ_at_end=tail)
        if track.startswith("movie") and source_tracks("multi")[track].codec_type == "video":
            text = get_ok(purl).text()
            segs = [urllib.parse.urljoin(purl, x) for x in text.splitlines() if x and not x.startswith("#")]
            raw = tmp_path / f"{track}-nokey.ts"
            raw.write_bytes(b"".join(get_ok(u).body for u in segs))
            rc, h, err = ffmpeg_decode(str(raw), "0:v:0")
            same = equal_frames(h, "multi", track)
            if same > 2:
                errors.append(f"control: {raw.name} (segments of {purl} without the key) decodes {same} source "
                              f"frames; SAMPLE-AES should leave none intact")
    _fails(errors)


PROGRESSIVE_KEY_CASES = [("progressive/tail", "master-ts.m3u8", 0), ("progressive/tail", "master.m3u8", 0),
                         ("progressive/faststart", "master-ts.m3u8", 4)]


@pytest.mark.parametrize("asset,master,tail", PROGRESSIVE_KEY_CASES, ids=[f"{a}-{m}" for a, m, _ in PROGRESSIVE_KEY_CASES])
def test_ffmpeg_decrypts_progressive_sources(env, asset, master, tail):
    """Progressive MP4 sources (issue 15) under AES-128 (TS and fMP4) and SAMPLE-AES (TS):
    ffmpeg fetches the key (Open policy), decrypts, and every decoded frame of every stream
    equals the source's — decoded with its edit list ignored, as MPEG-TS has none and carries
    the AAC priming frame the edit list hides (fMP4 keeps the edit list: plain decode). For
    SAMPLE-AES ffmpeg leaves the last two video packets encrypted (`tail`)."""
    base = env["base"]
    errors = []
    ts = master == "master-ts.m3u8"
    for purl, track, muxed in media_playlists(base, asset, master):
        video = track in source_tracks(asset) and source_tracks(asset)[track].codec_type == "video"
        streams = [("0:v:0", track, tail)] if video else [("0:a:0", track, 0)]
        if muxed:
            streams.append(("0:a:0", muxed, 0))
        for spec, name, may_differ in streams:
            rc, h, err = ffmpeg_decode(purl, spec)
            if rc != 0 or h is None:
                errors.append(f"ffmpeg {purl} ({spec}): exit {rc}; stderr {err[-600:]}")
                continue
            want = _source_without_edits(asset, name) if ts else None
            compare_decoded(h, asset, name, f"ffmpeg {purl} {spec}", errors, may_differ_at_end=may_differ, want=want)
    _fails(errors)


def _source_without_edits(asset: str, track: str) -> FrameHashes:
    t = source_tracks(asset)[track]
    rc, h, err = ffmpeg_decode(str(t.path), f"0:{t.index}", ["-ignore_editlist", "1"])
    assert rc == 0 and h is not None, err
    return h


# =========================================================================== 2+3. Chromium


@pytest.fixture(scope="module")
def browser(env):
    require_browser()
    base = env["base"]
    token = good_token()
    jobs = [
        {"id": "hlsjs-sample-aes-ts", "engine": "hlsjs", "url": f"{base}/multi/master-ts.m3u8"},
        {"id": "hlsjs-aes128-ts-carried-token", "engine": "hlsjs", "url": f"{base}/demo/master-ts.m3u8?token={q(token)}"},
        {"id": "hlsjs-aes128-ts-no-token", "engine": "hlsjs", "url": f"{base}/demo/master-ts.m3u8"},
        {"id": "shaka-clearkey-server-bearer", "engine": "shaka", "url": f"{base}/demo/manifest.mpd",
         "license": f"{base}/clearkey", "token": token},
        {"id": "shaka-mpd-laurl-bearer", "engine": "shaka", "url": f"{base}/demo/manifest.mpd", "token": token},
        {"id": "shaka-clearkey-server-no-token", "engine": "shaka", "url": f"{base}/demo/manifest.mpd",
         "license": f"{base}/clearkey"},
        {"id": "shaka-clearkey-server-bad-token", "engine": "shaka", "url": f"{base}/demo/manifest.mpd",
         "license": f"{base}/clearkey", "token": jwt_hs256(claims(), SECRET_OTHER)},
    ]
    results, stderr = run_cenc_player(jobs, env["dir"] / "browser-jobs.json", 15)
    return {"results": results, "stderr": stderr, "token": token}


def _explain(r: dict, token: str) -> str:
    keep = {k: r.get(k) for k in ("url", "ok", "error", "currentTime", "decodedFrames", "mediaError", "keySystem",
                                  "mediaKeys", "keyRequests", "playerErrors", "failedRequests", "console")}
    return json.dumps(keep, indent=1)[:4000].replace(token, "<token>").replace(q(token), "<token>")


def _result(browser, job):
    r = browser["results"].get(job)
    assert r is not None, f"no result for {job}; stderr:\n{browser['stderr'][-2000:]}"
    return r


@pytest.mark.parametrize("job,path", [("hlsjs-sample-aes-ts", "/key/"), ("hlsjs-aes128-ts-carried-token", "/key/"),
                                      ("shaka-clearkey-server-bearer", "/clearkey"),
                                      ("shaka-mpd-laurl-bearer", "/clearkey")])
def test_browser_plays_with_keys_from_origin(browser, job, path):
    r = _result(browser, job)
    assert r["ok"], f"{job}: expected playback past 4 s with frames decoded:\n{_explain(r, browser['token'])}"
    got = [x for x in r.get("keyRequests", []) if path in x]
    assert got and all(x.endswith(" 200") for x in got), \
        f"{job}: key/licence responses {got}, expected ≥ 1 and all 200:\n{_explain(r, browser['token'])}"
    if r["engine"] == "shaka":
        assert r.get("mediaKeys") and r.get("keySystem") == "org.w3.clearkey", \
            f"{job}: played without ClearKey EME:\n{_explain(r, browser['token'])}"


@pytest.mark.parametrize("job,path", [("hlsjs-aes128-ts-no-token", "/key/"), ("shaka-clearkey-server-no-token", "/clearkey"),
                                      ("shaka-clearkey-server-bad-token", "/clearkey")])
def test_browser_fails_without_valid_token(browser, job, path):
    r = _result(browser, job)
    assert not r["ok"], f"{job}: played past 4 s although the key/licence must be refused:\n{_explain(r, browser['token'])}"
    got = [x for x in r.get("keyRequests", []) if path in x]
    assert got and all(x.endswith(" 401") for x in got), \
        (f"{job}: key/licence responses {got}, expected ≥ 1 request, every one 401 (so the failure is the "
         f"refusal, not something else):\n{_explain(r, browser['token'])}")
    if r["engine"] == "shaka":
        codes = [e.get("code") for e in r.get("playerErrors", [])]
        assert 6007 in codes, f"{job}: shaka errors {codes}, expected 6007 LICENSE_REQUEST_FAILED:\n{_explain(r, browser['token'])}"


# =========================================================================== 4. the token table


def _cases(d: Path) -> list[tuple]:
    """(id, kid, how, token, status, reason). how: bearer | query | none | basic."""
    now = int(time.time())
    kv, kr, kc1, kc2, ks = K_VIEW[0], K_RSA[0], K_CK1[0], K_CK2[0], K_SWT[0]
    good = jwt_hs256(claims(), SECRET)
    rsa_pub = (d / "rsa_public.pem").read_bytes()
    big = jwt_hs256(claims(pad="x" * 9000), SECRET)
    assert len(big) > 8192
    none_tok = f"{b64u(json.dumps({'alg': 'none', 'typ': 'JWT'}).encode())}.{b64u(json.dumps(claims()).encode())}."
    return [
        ("hs256-bearer", kv, "bearer", good, 200, None),
        ("hs256-query", kv, "query", good, 200, None),
        ("hs256-guid-kid", uuid_kid(kv), "bearer", good, 200, None),
        ("hs256-alternate-key", kv, "bearer", jwt_hs256(claims(), SECRET_ALT), 200, None),
        ("hs256-no-kid-two-keys", kv, "bearer", jwt_hs256(claims(), SECRET, {"alg": "HS256", "typ": "JWT"}), 401,
         "token_kid_missing"),
        ("hs256-aud-array", kv, "bearer", jwt_hs256(claims(aud=["urn:other", AUDIENCE]), SECRET), 200, None),
        ("no-token", kv, "none", None, 401, "token_missing"),
        ("basic-auth-not-bearer", kv, "basic", good, 401, "token_missing"),
        ("expired", kv, "bearer", jwt_hs256(claims(exp=now - 3600), SECRET), 401, "token_expired"),
        ("not-yet-valid", kv, "bearer", jwt_hs256(claims(nbf=now + 3600), SECRET), 401, "token_not_yet_valid"),
        ("no-expiry", kv, "bearer", jwt_hs256(claims(exp=None), SECRET), 401, "token_no_expiry"),
        ("wrong-issuer", kv, "bearer", jwt_hs256(claims(iss="https://evil.example"), SECRET), 401, "token_issuer"),
        ("wrong-audience", kv, "bearer", jwt_hs256(claims(aud="urn:other"), SECRET), 401, "token_audience"),
        ("bad-signature", kv, "bearer", jwt_hs256(claims(), SECRET_OTHER), 401, "token_signature"),
        ("tampered-payload", kv, "bearer",
         good.split(".")[0] + "." + b64u(json.dumps(claims(sub="admin")).encode()) + "." + good.split(".")[2],
         401, "token_signature"),
        ("alg-none", kv, "bearer", none_tok, 401, "token_algorithm"),
        ("alg-none-query", kv, "query", none_tok, 401, "token_algorithm"),
        ("alg-HS512", kv, "bearer", jwt_hs256(claims(), SECRET, {"alg": "HS512", "typ": "JWT"}), 401, "token_algorithm"),
        ("missing-required-claim", kv, "bearer", jwt_hs256(claims(sub=None), SECRET), 403, "claim_missing"),
        ("truncated", kv, "bearer", good[:len(good) // 2], 401, "token_malformed"),
        # a cut signature may or may not still be valid base64url: either refusal is right
        ("truncated-signature", kv, "bearer", good[:-6], 401, ("token_signature", "token_malformed")),
        ("truncated-signature-4", kv, "bearer", good[:-4], 401, ("token_signature", "token_malformed")),
        ("oversized", kv, "bearer", big, 401, "token_too_large"),
        ("garbage-base64", kv, "bearer", "!!!$$$.@@@***.%%%^^^", 401, "token_malformed"),
        ("garbage-json", kv, "bearer", f"{b64u(b'not json')}.{b64u(b'{')}.{b64u(b'x')}", 401, "token_malformed"),
        ("swt-for-jwt-policy", kv, "bearer", swt(swt_fields(), SECRET), 401, "token_malformed"),
        ("rs256-valid", kr, "bearer", jwt_rs256(claims(), d / "rsa_private.pem"), 200, None),
        ("rs256-other-key", kr, "bearer", jwt_rs256(claims(), d / "rsa_other.pem"), 401, "token_signature"),
        ("hs256-with-rsa-public-pem", kr, "bearer", jwt_hs256(claims(), rsa_pub), 401, "token_algorithm"),
        ("content-key-claim-match", kc1, "bearer",
         jwt_hs256(claims(**{"urn__microsoft__azure__mediaservices__contentkeyidentifier": uuid_kid(kc1)}), SECRET),
         200, None),
        ("content-key-claim-other-kid", kc2, "bearer",
         jwt_hs256(claims(**{"urn__microsoft__azure__mediaservices__contentkeyidentifier": uuid_kid(kc1)}), SECRET),
         403, "content_key_mismatch"),
        ("content-key-claim-missing", kc1, "bearer", jwt_hs256(claims(), SECRET), 403, "content_key_claim_missing"),
        ("swt-valid", ks, "bearer", swt(swt_fields(), SWT_SECRET), 200, None),
        ("swt-valid-query", ks, "query", swt(swt_fields(), SWT_SECRET), 200, None),
        ("swt-bad-signature", ks, "bearer", swt(swt_fields(), SECRET_OTHER), 401, "token_signature"),
        ("swt-expired", ks, "bearer", swt(swt_fields(ExpiresOn=str(now - 3600)), SWT_SECRET), 401, "token_expired"),
        ("swt-wrong-issuer", ks, "bearer", swt(swt_fields(Issuer="https://evil.example"), SWT_SECRET), 401, "token_issuer"),
        ("jwt-for-swt-policy", ks, "bearer", good, 401, "token_malformed"),
        ("key-without-policy", next(iter(HEVC_CBCS)), "bearer", good, 403, "no_policy"),
        ("unknown-kid", "0123456789abcdef0123456789abcdef", "bearer", good, 404, "unknown_key"),
    ]


def test_token_table(env):
    base, d = env["base"], env["dir"]
    cases = _cases(d)
    before = metrics(base)
    errors = []
    want_reasons: dict[str, int] = {}
    want_delivered = 0
    for cid, kid, how, token, status, reason in cases:
        url = f"{base}/key/{kid}"
        headers = {}
        if how == "bearer":
            headers["Authorization"] = f"Bearer {token}"
        elif how == "basic":
            headers["Authorization"] = "Basic " + b64(b"viewer:" + token.encode())
        elif how == "query":
            url += f"?token={q(token)}"
        r = fetch(url, headers=headers)
        shown = f"{cid}: GET /key/{kid} ({how})"
        if r.status != status:
            errors.append(f"{shown}: status {r.status}, expected {status}; body {r.body[:200]!r}")
        if status == 200:
            want_delivered += 1
            if r.status == 200:
                if r.body != bytes.fromhex(ALL_KEYS[hex_kid(kid)]):
                    errors.append(f"{shown}: body {r.body.hex()} is not the key of {kid}")
                if r.header("content-type") != "application/octet-stream" or "no-store" not in (r.header("cache-control") or ""):
                    errors.append(f"{shown}: Content-Type {r.header('content-type')!r}, Cache-Control "
                                  f"{r.header('cache-control')!r}; expected application/octet-stream, no-store")
            continue
        try:
            j = json.loads(r.body)
        except ValueError:
            errors.append(f"{shown}: refusal body is not JSON: {r.body[:200]!r}")
            j = {}
        allowed = reason if isinstance(reason, tuple) else (reason,)
        if j.get("error") not in allowed:
            errors.append(f"{shown}: error {j.get('error')!r}, expected {' or '.join(allowed)} (body {r.body[:200]!r})")
        counted = j.get("error") if j.get("error") in allowed else allowed[0]
        want_reasons[counted] = want_reasons.get(counted, 0) + 1
        if token and len(token) >= 8:
            parts = [token] + [p for p in re.split(r"[.&=]", token) if len(p) >= 16]
            leaked = [p[:20] + "…" for p in parts if p.encode() in r.body or q(p).encode() in r.body]
            if leaked:
                errors.append(f"{shown}: refusal body echoes token content {leaked}")
        if status == 401 and "bearer" not in (r.header("www-authenticate") or "").lower():
            errors.append(f"{shown}: 401 without WWW-Authenticate: Bearer (got {r.header('www-authenticate')!r})")
        if "no-store" not in (r.header("cache-control") or ""):
            errors.append(f"{shown}: refusal Cache-Control {r.header('cache-control')!r}, expected no-store")
        if not env["server"].alive():
            errors.append(f"{shown}: the server died; stderr tail:\n{env['server'].log_tail()}")
            break
    after = metrics(base)
    for reason, n in sorted(want_reasons.items()):
        got = refused(after, "key", reason) - refused(before, "key", reason)
        if got != n:
            errors.append(f'/metrics sealcast_keys_refused_total{{service="key",reason="{reason}"}} rose by {got:g}, '
                          f"expected {n}")
    got = delivered(after, "key") - delivered(before, "key")
    if got != want_delivered:
        errors.append(f'/metrics sealcast_keys_delivered_total{{service="key"}} rose by {got:g}, expected {want_delivered}')
    log = env["server"].log_path.read_text(errors="replace")
    for cid, _, _, token, _, _ in cases:
        if token:
            sig = re.split(r"[.&=]", token)[-1]
            for needle in {token, sig} - {""}:
                if len(needle) >= 16 and needle in log:
                    errors.append(f"{cid}: the server log contains token content ({needle[:16]}…)")
    _fails(errors)


def test_clearkey_licence_server(env):
    """POST /clearkey: W3C ClearKey licence for the requested KIDs with a valid bearer (or
    ?token=); 401 without; 403 for a token that does not grant the key; CORS preflight allows
    POST with Authorization."""
    base = env["base"]
    token = good_token()
    kids = sorted(DEMO_CENC)
    body = json.dumps({"kids": [b64u(bytes.fromhex(k)) for k in kids], "type": "temporary"}).encode()
    errors = []

    def post(url: str, headers: dict[str, str]):
        import http.client
        parts = urllib.parse.urlsplit(url)
        c = http.client.HTTPConnection(parts.hostname, parts.port, timeout=20)
        try:
            c.request("POST", parts.path + (f"?{parts.query}" if parts.query else ""), body=body,
                      headers={"Content-Type": "application/json", **headers})
            r = c.getresponse()
            return r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read()
        finally:
            c.close()

    for label, url, hdr in (("bearer", f"{base}/clearkey", {"Authorization": f"Bearer {token}"}),
                            ("query", f"{base}/clearkey?token={q(token)}", {})):
        status, h, b = post(url, hdr)
        if status != 200:
            errors.append(f"POST /clearkey ({label}): {status} {b[:200]!r}, expected 200")
            continue
        lic = json.loads(b)
        got = {base64.urlsafe_b64decode(k["kid"] + "==").hex(): base64.urlsafe_b64decode(k["k"] + "==").hex()
               for k in lic.get("keys", []) if k.get("kty") == "oct"}
        if got != {k: DEMO_CENC[k] for k in kids}:
            errors.append(f"POST /clearkey ({label}): keys {got}, expected {({k: DEMO_CENC[k] for k in kids})}")
        if lic.get("type") != "temporary":
            errors.append(f"POST /clearkey ({label}): type {lic.get('type')!r}, expected 'temporary'")
        if any("=" in k.get("k", "") + k.get("kid", "") for k in lic.get("keys", [])):
            errors.append(f"POST /clearkey ({label}): base64url with padding: {lic}")
    for label, hdr, want in (("no token", {}, 401), ("bad token", {"Authorization": f"Bearer {jwt_hs256(claims(), SECRET_OTHER)}"}, 401),
                             ("no sub claim", {"Authorization": f"Bearer {jwt_hs256(claims(sub=None), SECRET)}"}, 403)):
        status, h, b = post(f"{base}/clearkey", hdr)
        if status != want:
            errors.append(f"POST /clearkey ({label}): {status}, expected {want}; body {b[:200]!r}")
        if b"\"k\"" in b or any(DEMO_CENC[k].encode() in b for k in kids):
            errors.append(f"POST /clearkey ({label}): refusal body carries key material: {b[:200]!r}")
    r = fetch(f"{base}/clearkey", method="OPTIONS",
              headers={"Origin": "http://player.example", "Access-Control-Request-Method": "POST",
                       "Access-Control-Request-Headers": "authorization,content-type"})
    allow_m = (r.header("access-control-allow-methods") or "").upper()
    allow_h = (r.header("access-control-allow-headers") or "").lower()
    if r.status not in (200, 204) or "POST" not in allow_m or ("authorization" not in allow_h and allow_h != "*") \
            or "content-type" not in allow_h and allow_h != "*":
        errors.append(f"CORS preflight of POST /clearkey with Authorization: {r.describe()}")
    _fails(errors)


# =========================================================================== 5. TLS


@pytest.fixture(scope="module")
def tls_env(env, tmp_path_factory):
    if shutil.which("curl") is None:
        pytest.fail("curl not installed")
    d = tmp_path_factory.mktemp("tls")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
             "-subj", "/CN=sealcast e2e test CA", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
             "-subj", "/CN=localhost", cwd=d)
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
                               "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf", cwd=d)
    # a second CA the client may trust instead (it did not sign the server's certificate)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "other.key", "-out", "other-ca.pem",
             "-days", "2", "-subj", "/CN=some other CA", cwd=d)
    cfg = d / "sealcast.toml"
    cfg.write_text(f'listen = "127.0.0.1:0"\nroot = {json.dumps(str(FIXTURES.resolve()))}\n'
                   f'catalog = {json.dumps(str(env["dir"] / "catalog.toml"))}\nallow_clear_without_policy = true\n'
                   f'\n[tls]\ncert = {json.dumps(str(d / "server.pem"))}\nkey = {json.dumps(str(d / "server.key"))}\n')
    server = start_tls_server_config(cfg, d / "sealcast.stderr.log")
    try:
        yield {"dir": d, "server": server, "base": server.base_url}
    finally:
        stop_server(server)


def curl(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(["curl", "-sS", "--max-time", "15", *args], capture_output=True, timeout=timeout)


def test_tls_key_over_https_http2(tls_env):
    d, base, srv = tls_env["dir"], tls_env["base"], tls_env["server"]
    kid, key = K_VIEW
    out = d / "key.bin"
    errors = []
    for ver, flag in (("2", "--http2"), ("1.1", "--http1.1")):
        out.unlink(missing_ok=True)
        r = curl("--cacert", str(d / "ca.pem"), flag, "-H", f"Authorization: Bearer {good_token()}",
                 "-o", str(out), "-w", "%{http_code} %{http_version}", f"{base}/key/{kid}")
        got = r.stdout.decode().strip()
        if r.returncode != 0 or got != f"200 {ver}":
            errors.append(f"curl --cacert ca.pem {flag} {base}/key/{kid}: exit {r.returncode}, "
                          f"'%{{http_code}} %{{http_version}}' = {got!r}, expected '200 {ver}'; {r.stderr.decode()[-300:]}")
        elif out.read_bytes() != bytes.fromhex(key):
            errors.append(f"HTTPS {flag} /key/{kid}: body {out.read_bytes().hex()} is not the key")
    r = curl("--cacert", str(d / "ca.pem"), "--http2", "-o", "/dev/null", "-w", "%{http_code} %{http_version}",
             f"{base}/key/{kid}")
    if r.stdout.decode().strip() != "401 2":
        errors.append(f"HTTPS /key/{kid} without a token: {r.stdout.decode()!r}, expected '401 2'")
    r = curl("--cacert", str(d / "ca.pem"), "--http2", "-o", "/dev/null", "-w", "%{http_code}",
             f"{base}/demo/master-ts.m3u8")
    if r.stdout.decode().strip() != "200":
        errors.append(f"HTTPS /demo/master-ts.m3u8: {r.stdout.decode()!r}, expected 200")
    plain = base.replace("https://", "http://")
    r = curl("-o", "/dev/null", "-w", "%{http_code}", f"{plain}/key/{kid}", "-H", f"Authorization: Bearer {good_token()}")
    if r.returncode == 0 and r.stdout.decode().strip() == "200":
        errors.append(f"plain HTTP to the TLS port ({plain}/key/{kid}) got 200: keys must not travel in clear")
    r = curl("--cacert", str(d / "other-ca.pem"), "-o", "/dev/null", f"{base}/healthz")
    if r.returncode == 0:
        errors.append(f"curl trusting another CA reached {base}/healthz (exit 0): the certificate check must fail")
    elif r.returncode not in (35, 60):
        errors.append(f"curl trusting another CA: exit {r.returncode} ({r.stderr.decode()[-200:]}), expected 60 "
                      f"(certificate problem) or 35 (handshake)")
    if not srv.alive():
        errors.append(f"TLS server died; stderr tail:\n{srv.log_tail()}")
    r = curl("--cacert", str(d / "ca.pem"), "-o", "/dev/null", "-w", "%{http_code}", f"{base}/healthz")
    if r.stdout.decode().strip() != "200":
        errors.append(f"after the bad clients, {base}/healthz: {r.stdout.decode()!r} exit {r.returncode}, expected 200")
    _fails(errors)
