"""The management API's Azure Media Services v2 protection-key flow, replayed as raw HTTP with
the client side done by `cryptography` as the v2 SDK does it (issue 14):

GetProtectionKeyId → GetProtectionKey (the origin's X.509 certificate) → RSA-OAEP (SHA-1)
encryption of a new content key to it, the .NET-order checksum → POST /api/ContentKeys →
read back (never in clear but to the `keys` role: RebindContentKey, clear or re-encrypted to
a certificate the caller passes) → GetKeyDeliveryUrl → PUT AuthorizationPolicyId → DELETE.
Refusals name the field (400), roles are enforced (401/403), duplicates conflict (409), every
write is in the audit trail, and neither the database nor any answer holds a key in clear.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.parse
import uuid
from pathlib import Path

import pytest

from oracle import FIXTURES, REPO, fetch, sealcast_bin, start_server_config, stop_server

SECRET = b"sealcast-admin-test-secret-0123456789"
ISSUER, AUDIENCE = "https://sts.test", "urn:sealcast:admin"


def _jwt(roles: list[str], sub: str = "alice", exp: int | None = None) -> str:
    b = lambda x: base64.urlsafe_b64encode(x).rstrip(b"=").decode()
    h = b(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    p = b(json.dumps({"iss": ISSUER, "aud": AUDIENCE, "sub": sub, "role": roles,
                      "exp": exp if exp is not None else int(time.time()) + 600}).encode())
    sig = b(hmac.new(SECRET, f"{h}.{p}".encode(), hashlib.sha256).digest())
    return f"{h}.{p}.{sig}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


V2_HEADERS = {"x-ms-version": "2.19", "DataServiceVersion": "3.0", "MaxDataServiceVersion": "3.0",
              "Accept": "application/json", "Content-Type": "application/json"}


class Api:
    def __init__(self, base: str):
        self.base = base

    def call(self, method: str, path: str, token: str | None, body: dict | None = None, accept: str | None = None):
        import http.client
        u = urllib.parse.urlsplit(self.base)
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=20)
        h = dict(V2_HEADERS)
        if accept:
            h["Accept"] = accept
        if token:
            h["Authorization"] = f"Bearer {token}"
        data = json.dumps(body).encode() if body is not None else None
        c.request(method, "/api/" + path, body=data, headers=h)
        r = c.getresponse()
        raw = r.read()
        headers = {k.lower(): v for k, v in r.getheaders()}
        c.close()
        return r.status, headers, (json.loads(raw) if raw else None), raw


def _admin_config(tmp_path, admin_line: str) -> tuple[Path, int]:
    """A fresh KEK and a config with the embedded database and an `[admin]` listener on a
    free port (`admin_line`: one more `[admin]` key); returns the config file and the port."""
    kek = tmp_path / "kek"
    subprocess.run([str(sealcast_bin()), "keys", "init", "--kek", str(kek)], check=True, capture_output=True)
    port = _free_port()
    cfg = tmp_path / "sealcast.toml"
    cfg.write_text(f"""listen = "127.0.0.1:0"
root = "{FIXTURES}"
database = "sqlite://{tmp_path / 'db' / 'catalog.db'}"
kek = {{ local = "{kek}" }}

[admin]
listen = "127.0.0.1:{port}"
{admin_line}
token = {{ token_type = "Jwt", issuer = "{ISSUER}", audience = "{AUDIENCE}", keys = [ {{ symmetric = "{base64.b64encode(SECRET).decode()}" }} ] }}
""")
    return cfg, port


@pytest.fixture
def admin(tmp_path):
    cfg, port = _admin_config(tmp_path, 'public_url = "https://origin.example"')
    s = start_server_config(cfg, tmp_path / "server.log")
    yield Api(f"http://127.0.0.1:{port}"), cfg, tmp_path, s
    stop_server(s)


def _checksum(kid: uuid.UUID, key: bytes) -> str:
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return base64.b64encode((enc.update(kid.bytes_le) + enc.finalize())[:8]).decode()


def _encrypt_to(cert_b64: str, key: bytes) -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    cert = x509.load_der_x509_certificate(base64.b64decode(cert_b64))
    ct = cert.public_key().encrypt(key, padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None))
    return base64.b64encode(ct).decode()


def _upload(api: Api, token: str, key_type: int, key: bytes, kid: uuid.UUID | None = None, **override):
    st, _, body, _ = api.call("GET", f"GetProtectionKeyId?contentKeyType={key_type}", token)
    assert st == 200, body
    thumb = body["value"]
    st, _, body, _ = api.call("GET", f"GetProtectionKey?ProtectionKeyId='{thumb}'", token)
    assert st == 200, body
    cert_b64 = body["value"]
    kid = kid or uuid.uuid4()
    doc = {"Id": f"nb:kid:UUID:{kid}", "Name": "test key", "ContentKeyType": key_type, "ProtectionKeyId": thumb,
           "ProtectionKeyType": 0, "EncryptedContentKey": _encrypt_to(cert_b64, key),
           # The v2 SDK sends no checksum for a FairPlay PFX password (any length).
           "Checksum": _checksum(kid, key) if len(key) in (16, 32) else None}
    doc.update(override)
    return kid, thumb, cert_b64, api.call("POST", "ContentKeys", token, doc)


def test_protection_key_flow_and_refusals(admin):
    api, cfg, tmp, server = admin
    rw = _jwt(["read", "write"])
    keys_role = _jwt(["read", "keys"], sub="key-officer")
    reader = _jwt(["read"])

    # Roles: no token 401, a reader cannot write, a writer cannot read keys, an expired token 401.
    assert api.call("GET", "ContentKeys", None)[0] == 401
    assert api.call("GET", "ContentKeys", _jwt(["read"], exp=int(time.time()) - 3600))[0] == 401
    assert api.call("GET", "ContentKeys", _jwt(["read"])[:-3] + "AAA")[0] == 401
    st, _, body, _ = api.call("POST", "ContentKeys", reader, {"Id": "x"})
    assert st == 403 and "write" in body["odata.error"]["message"]["value"], body

    # The certificate: its thumbprint is the SHA-1 of its DER.
    key = os.urandom(32)
    kid, thumb, cert_b64, (st, headers, body, raw) = _upload(api, rw, 1, key)
    assert hashlib.sha1(base64.b64decode(cert_b64)).hexdigest().upper() == thumb
    assert st == 201, body
    assert body["Id"] == f"nb:kid:UUID:{kid}" and body["ContentKeyType"] == 1 and body["ProtectionKeyId"] == thumb
    assert "odata.metadata" in body and "ContentKeys" in headers["location"]
    assert key.hex().encode() not in raw and base64.b64encode(key) not in raw

    # Refusals name the field.
    k16 = os.urandom(16)
    for override, field, status in [
        ({"Checksum": "AAAAAAAAAAA="}, "Checksum", 400),
        ({"ProtectionKeyId": "00" * 20}, "ProtectionKeyId", 400),
        ({"EncryptedContentKey": base64.b64encode(os.urandom(256)).decode()}, "EncryptedContentKey", 400),
        ({"ContentKeyType": 9}, "ContentKeyType", 400),
        ({"Id": "nb:kid:UUID:not-a-guid"}, "Id", 400),
    ]:
        _, _, _, (st, _, b, raw) = _upload(api, rw, 0, k16, **override)
        assert st == status and field in b["odata.error"]["message"]["value"], (override, st, b)
        assert k16.hex().encode() not in raw
    # A 16-byte key uploaded as a storage key (32 bytes) is refused.
    _, _, _, (st, _, b, _) = _upload(api, rw, 1, k16)
    assert st == 400 and "EncryptedContentKey" in b["odata.error"]["message"]["value"]
    # The same Id twice: 409.
    _, _, _, (st, _, b, _) = _upload(api, rw, 1, key, kid=kid)
    assert st == 409, b

    # An envelope key; without an authorization policy it configures no delivery (400); its
    # policy set by PUT, with a BaselineHttp option, gives the key delivery URL.
    env_key = os.urandom(16)
    env_kid, _, _, (st, _, _, _) = _upload(api, rw, 4, env_key)
    assert st == 201
    st, _, b, _ = api.call("POST", f"ContentKeys('nb%3Akid%3AUUID%3A{env_kid}')/GetKeyDeliveryUrl", reader, {"keyDeliveryType": 2})
    assert st == 400 and "keyDeliveryType" in b["odata.error"]["message"]["value"], b
    pol = api.call("POST", "ContentKeyAuthorizationPolicies", rw, {"Name": "open"})[2]
    opt = api.call("POST", "ContentKeyAuthorizationPolicyOptions", rw, {"Name": "open", "KeyDeliveryType": 2, "KeyDeliveryConfiguration": "",
                   "Restrictions": [{"Name": "Open", "KeyRestrictionType": 0, "Requirements": None}]})[2]
    assert api.call("POST", f"ContentKeyAuthorizationPolicies('{pol['Id']}')/$links/Options", rw,
                    {"uri": f"{api.base}/api/ContentKeyAuthorizationPolicyOptions('{opt['Id']}')"})[0] == 204
    pid = pol["Id"]
    assert api.call("PUT", f"ContentKeys('nb:kid:UUID:{env_kid}')", rw, {"AuthorizationPolicyId": pid})[0] == 204
    st, _, b, _ = api.call("GET", f"ContentKeys('nb:kid:UUID:{env_kid}')", reader)
    assert st == 200 and b["AuthorizationPolicyId"] == pid
    st, _, b, _ = api.call("POST", f"ContentKeys('nb%3Akid%3AUUID%3A{env_kid}')/GetKeyDeliveryUrl", reader, {"keyDeliveryType": 2})
    assert st == 200 and b["value"] == f"https://origin.example/key/{env_kid}", b
    for t in (1, 3, 4):  # the policy configures no PlayReady, Widevine or FairPlay option
        st, _, b, _ = api.call("POST", f"ContentKeys('nb:kid:UUID:{env_kid}')/GetKeyDeliveryUrl", reader, {"keyDeliveryType": t})
        assert st == 400 and "keyDeliveryType" in b["odata.error"]["message"]["value"] and "no option" in b["odata.error"]["message"]["value"], (t, b)
    st, _, b, _ = api.call("PUT", f"ContentKeys('nb:kid:UUID:{env_kid}')", rw, {"ContentKeyType": 0})
    assert st == 400 and "ContentKeyType" in b["odata.error"]["message"]["value"]

    # Listing, minimal and verbose metadata, paging.
    st, _, b, _ = api.call("GET", "ContentKeys", reader)
    assert st == 200 and {k["Id"] for k in b["value"]} == {f"nb:kid:UUID:{kid}", f"nb:kid:UUID:{env_kid}"}
    st, _, b, _ = api.call("GET", "ContentKeys?$top=1&$skip=1", reader, accept="application/json;odata=verbose")
    assert st == 200 and len(b["d"]["results"]) == 1 and "__metadata" in b["d"]["results"][0]

    # RebindContentKey: the keys role only; clear, or encrypted to the caller's certificate.
    q = f"RebindContentKey?id='nb%3Akid%3AUUID%3A{kid}'&x509Certificate=''"
    assert api.call("GET", q, rw)[0] == 403
    st, _, b, _ = api.call("GET", q, keys_role)
    assert st == 200 and base64.b64decode(b["value"]) == key
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa
    from cryptography.x509.oid import NameOID
    mine = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "migration target")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(mine.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1)).sign(mine, hashes.SHA256()))
    der_b64 = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
    st, _, b, _ = api.call("GET", f"RebindContentKey?id='nb:kid:UUID:{kid}'&x509Certificate='{urllib.parse.quote(der_b64, safe='')}'", keys_role)
    assert st == 200, b
    clear = mine.decrypt(base64.b64decode(b["value"]), padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None))
    assert clear == key

    # Delete, then 404.
    assert api.call("DELETE", f"ContentKeys('nb:kid:UUID:{env_kid}')", rw)[0] == 204
    assert api.call("GET", f"ContentKeys('nb:kid:UUID:{env_kid}')", reader)[0] == 404

    # The audit trail: every write and every key read, by the token's subject; no key.
    audit = subprocess.run([str(sealcast_bin()), "catalog", "audit", "--config", str(cfg)], capture_output=True, text=True, check=True, cwd=REPO).stdout
    for needle in ["token:alice\t127.0.0.1\tcreated\tcontent_key", "updated\tcontent_key", "deleted\tcontent_key", "token:key-officer\t127.0.0.1\tread\tcontent_key"]:
        assert needle in audit, audit
    for k in (key, env_key):
        assert k.hex() not in audit
    # The database holds no key, in any spelling.
    blob = b"".join(p.read_bytes() for p in (tmp / "db").iterdir() if p.name.startswith("catalog.db"))
    for k in (key, env_key):
        for needle in (k, k.hex().encode(), base64.b64encode(k).rstrip(b"=")):
            assert needle not in blob

    # A restart keeps the protection key and opens the stored keys.
    stop_server(server)
    s2 = start_server_config(cfg, tmp / "server2.log")
    try:
        st, _, b, _ = api.call("GET", "GetProtectionKeyId?contentKeyType=0", reader)
        assert st == 200 and b["value"] == thumb
        st, _, b, _ = api.call("GET", q, keys_role)
        assert st == 200 and base64.b64decode(b["value"]) == key
    finally:
        stop_server(s2)


# --------------------------------------------------------------------------- the documented call sequences


@pytest.fixture(scope="module")
def postgres(tmp_path_factory):
    from oracle import Postgres
    pg = Postgres()
    yield pg
    pg.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def origin(request, tmp_path):
    """A server over an empty storage root with the management API (SQLite or PostgreSQL,
    local KEK)."""
    if request.param == "sqlite":
        database = f"sqlite://{tmp_path / 'db' / 'catalog.db'}"
    else:
        database = request.getfixturevalue("postgres").createdb("c" + uuid.uuid4().hex[:12])
    kek = tmp_path / "kek"
    subprocess.run([str(sealcast_bin()), "keys", "init", "--kek", str(kek)], check=True, capture_output=True)
    port = _free_port()
    (tmp_path / "root").mkdir()
    cfg = tmp_path / "sealcast.toml"
    cfg.write_text(f"""listen = "127.0.0.1:0"
root = "{tmp_path / 'root'}"
database = "{database}"
kek = {{ local = "{kek}" }}
catalog_poll_ms = 100

[admin]
listen = "127.0.0.1:{port}"
token = {{ token_type = "Jwt", issuer = "{ISSUER}", audience = "{AUDIENCE}", keys = [ {{ symmetric = "{base64.b64encode(SECRET).decode()}" }} ] }}
""")
    s = start_server_config(cfg, tmp_path / "server.log")
    yield Api(f"http://127.0.0.1:{port}"), s, tmp_path
    stop_server(s)


def _ctr_encrypt(data: bytes, key: bytes, iv: int) -> bytes:
    """AMS storage encryption: AES-256-CTR, counter block = IV (8 bytes BE) || block number (8 bytes BE)."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    enc = Cipher(algorithms.AES(key), modes.CTR(iv.to_bytes(8, "big") + bytes(8))).encryptor()
    return enc.update(data) + enc.finalize()


def _created(r) -> dict:
    st, _, body, _ = r
    assert st == 201, body
    return body


def _link(api: Api, tok: str, source: str, nav: str, target_uri: str) -> None:
    st, _, body, _ = api.call("POST", f"{source}/$links/{nav}", tok, {"uri": f"{api.base}/api/{target_uri}"})
    assert st == 204, (source, nav, body)


def _upload_storage_encrypted_asset(api: Api, tok: str, root: Path) -> tuple[str, str, bytes]:
    """Steps 2-11 of sequence (a): storage key, asset, link, files encrypted with per-file IVs."""
    skey = os.urandom(32)
    skid, _, _, r = _upload(api, tok, 1, skey)
    _created(r)
    asset = _created(api.call("POST", "Assets", tok, {"Name": "demo", "Options": 1}))
    aid, folder = asset["Id"], asset["Path"]
    assert folder.startswith("asset-")
    _link(api, tok, f"Assets('{urllib.parse.quote(aid)}')", "ContentKeys", f"ContentKeys('nb:kid:UUID:{skid}')")
    (root / folder).mkdir()
    used = set()
    for f in sorted((FIXTURES / "demo").iterdir()):
        if f.suffix == ".ism":
            (root / folder / f.name).write_bytes(f.read_bytes())  # the server manifest stays clear
            continue
        iv = int.from_bytes(os.urandom(8), "big")
        assert iv not in used
        used.add(iv)
        (root / folder / f.name).write_bytes(_ctr_encrypt(f.read_bytes(), skey, iv))
        _created(api.call("POST", "Files", tok, {
            "Name": f.name, "ParentAssetId": aid, "IsEncrypted": True, "EncryptionScheme": "StorageEncryption",
            "EncryptionVersion": "1.0", "EncryptionKeyId": f"nb:kid:UUID:{skid}", "InitializationVector": str(iv),
            "MimeType": "video/mp4", "IsPrimary": False, "ContentFileSize": str(f.stat().st_size), "Options": 0}))
    return aid, folder, skey


def _locator(api: Api, tok: str, aid: str) -> str:
    ap = _created(api.call("POST", "AccessPolicies", tok, {"Name": "stream", "DurationInMinutes": 43200, "Permissions": 1}))
    start = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    loc = _created(api.call("POST", "Locators", tok, {"AccessPolicyId": ap["Id"], "AssetId": aid, "StartTime": start, "Type": 2}))
    return loc["Path"]


def _wait_ok(url: str, timeout: float = 5.0):
    t = time.monotonic()
    while True:
        r = fetch(url)
        if r.status == 200 or time.monotonic() - t > timeout:
            return r
        time.sleep(0.05)


def test_sequence_a_storage_encrypted_asset_envelope_and_cenc(origin, tmp_path):
    """Upload a storage-encrypted asset, deliver HLS with envelope (AES-128) and DASH with
    common encryption through v2 entities; ffmpeg decodes the AES-128 HLS to the source's
    frames, and the cenc DASH decrypts (ffmpeg -decryption_key) to the source's samples."""
    from oracle import (compare_samples, concat_representation, decoded_framemd5, decrypted_framemd5,
                        expand_mpd, source_decoded_hashes, source_hashes)
    api, server, tmp = origin
    tok = _jwt(["read", "write"])
    aid, folder, _ = _upload_storage_encrypted_asset(api, tok, tmp / "root")
    # A storage-encrypted asset needs a delivery policy before a streaming locator.
    ap = _created(api.call("POST", "AccessPolicies", tok, {"Name": "early", "DurationInMinutes": 60, "Permissions": 1}))
    st, _, b, _ = api.call("POST", "Locators", tok, {"AccessPolicyId": ap["Id"], "AssetId": aid, "Type": 2})
    assert st == 409, b

    env_key, cenc_key = os.urandom(16), os.urandom(16)
    env_kid, _, _, r = _upload(api, tok, 4, env_key)
    _created(r)
    cenc_kid, _, _, r = _upload(api, tok, 0, cenc_key)
    _created(r)
    qa = urllib.parse.quote(aid)
    for kid in (env_kid, cenc_kid):
        _link(api, tok, f"Assets('{qa}')", "ContentKeys", f"ContentKeys('nb:kid:UUID:{kid}')")
    pol = _created(api.call("POST", "ContentKeyAuthorizationPolicies", tok, {"Name": "open"}))
    opt = _created(api.call("POST", "ContentKeyAuthorizationPolicyOptions", tok, {
        "Name": "open", "KeyDeliveryType": 2, "KeyDeliveryConfiguration": "",
        "Restrictions": [{"Name": "Open", "KeyRestrictionType": 0, "Requirements": None}]}))
    _link(api, tok, f"ContentKeyAuthorizationPolicies('{pol['Id']}')", "Options", f"ContentKeyAuthorizationPolicyOptions('{opt['Id']}')")
    for kid in (env_kid, cenc_kid):
        assert api.call("PUT", f"ContentKeys('nb:kid:UUID:{kid}')", tok, {"AuthorizationPolicyId": pol["Id"]})[0] == 204
    hls = _created(api.call("POST", "AssetDeliveryPolicies", tok, {"Name": "hls aes", "AssetDeliveryProtocol": 4, "AssetDeliveryPolicyType": 3, "AssetDeliveryConfiguration": None}))
    dash = _created(api.call("POST", "AssetDeliveryPolicies", tok, {"Name": "dash cenc", "AssetDeliveryProtocol": 2, "AssetDeliveryPolicyType": 4,
                                                                   "AssetDeliveryConfiguration": json.dumps([{"Key": 7, "Value": "https://wv.example/license"}])}))
    _link(api, tok, f"Assets('{qa}')", "DeliveryPolicies", f"AssetDeliveryPolicies('{hls['Id']}')")
    _link(api, tok, f"Assets('{qa}')", "DeliveryPolicies", f"AssetDeliveryPolicies('{dash['Id']}')")
    # A second policy for HLS is a conflict.
    again = _created(api.call("POST", "AssetDeliveryPolicies", tok, {"Name": "hls again", "AssetDeliveryProtocol": 5, "AssetDeliveryPolicyType": 2}))
    st, _, b, _ = api.call("POST", f"Assets('{qa}')/$links/DeliveryPolicies", tok, {"uri": f"{api.base}/api/AssetDeliveryPolicies('{again['Id']}')"})
    assert st == 409, b
    path = _locator(api, tok, aid)
    public = server.base_url
    base = public + urllib.parse.urlsplit(path).path  # Path names the public host of the config

    # HLS AES-128 (TS): ffmpeg fetches the key from the origin and decodes the source's frames.
    r = _wait_ok(base + "demo.ism/manifest(format=m3u8-aapl)")
    assert r.status == 200, r.describe()
    ts_playlist = base + "demo.ism/video_180p/aes/ts.m3u8"
    got = decoded_framemd5(ts_playlist, "0:v:0")
    compare_samples(got, source_decoded_hashes("demo", "video_180p"), "v2 asset, HLS AES-128 TS via ffmpeg")
    # DASH cenc: every sample decrypts to the source's with the uploaded key.
    mpd_url = base + "demo.ism/manifest(format=mpd-time-csf)"
    r = get_ok_(mpd_url)
    assert str(cenc_kid) in r.text().lower(), "the MPD does not name the uploaded cenc key"
    _, reps = expand_mpd(mpd_url, r.text())
    video = next(x for x in reps if x.content_type == "video" and "180" in x.init_url)
    f = concat_representation(video, tmp / "v180.mp4")
    compare_samples(decrypted_framemd5(f, cenc_key.hex()), source_hashes("demo", "video_180p"), "v2 asset, DASH cenc via ffmpeg")
    # Chromium plays both: shaka the cenc DASH through EME ClearKey with the uploaded key,
    # hls.js the AES-128 HLS fetching its key from the origin.
    from oracle import require_browser, run_cenc_player
    require_browser()
    results, stderr = run_cenc_player([
        {"id": "dash-cenc", "engine": "shaka", "url": mpd_url, "keys": {cenc_kid.hex: cenc_key.hex()}},
        {"id": "hls-aes", "engine": "hlsjs", "url": base + "demo.ism/manifest(format=m3u8-aapl)"},
    ], tmp / "jobs.json", timeout=40)
    for job in ("dash-cenc", "hls-aes"):
        assert results.get(job, {}).get("ok"), f"{job} did not play: {results.get(job)}\n{stderr[-1500:]}"
    # Smooth: no policy covers it, so it is blocked.
    assert fetch(base + "demo.ism/manifest").status == 403
    # The envelope key is what the key service hands out.
    assert fetch(f"{public}/key/{env_kid}").body == env_key


def get_ok_(url: str):
    r = fetch(url)
    assert r.status == 200, r.describe()
    return r


TEMPLATE = """<TokenRestrictionTemplate xmlns:i="http://www.w3.org/2001/XMLSchema-instance" xmlns="http://schemas.microsoft.com/Azure/MediaServices/KeyDelivery/TokenRestrictionTemplate/v1"><AlternateVerificationKeys><TokenVerificationKey i:type="SymmetricVerificationKey"><KeyValue>{alt}</KeyValue></TokenVerificationKey></AlternateVerificationKeys><Audience>urn:test</Audience><Issuer>http://testissuer.com/</Issuer><PrimaryVerificationKey i:type="SymmetricVerificationKey"><KeyValue>{primary}</KeyValue></PrimaryVerificationKey><RequiredClaims><TokenClaim><ClaimType>urn:microsoft:azure:mediaservices:contentkeyidentifier</ClaimType><ClaimValue i:nil="true"/></TokenClaim></RequiredClaims><TokenType>{kind}</TokenType></TokenRestrictionTemplate>"""


def _swt(fields: list[tuple[str, str]], key: bytes) -> str:
    signed = "&".join(f"{urllib.parse.quote_plus(k)}={urllib.parse.quote_plus(v)}" for k, v in fields)
    sig = base64.b64encode(hmac.new(key, signed.encode(), hashlib.sha256).digest()).decode()
    return f"{signed}&HMACSHA256={urllib.parse.quote_plus(sig)}"


def _hs256(claims: dict, key: bytes) -> str:
    b = lambda x: base64.urlsafe_b64encode(x).rstrip(b"=").decode()
    h, p = b(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()), b(json.dumps(claims).encode())
    return f"{h}.{p}.{b(hmac.new(key, f'{h}.{p}'.encode(), hashlib.sha256).digest())}"


@pytest.mark.parametrize("kind", ["JWT", "SWT"])
def test_sequence_b_token_restricted_key_delivery(origin, kind):
    """Sequence (b): an envelope key behind a TokenRestrictionTemplate (primary and alternate
    symmetric keys, the content-key-identifier claim required): tokens signed by the STS with
    the primary or the alternate key get the key (JWTs without `kid`, as AMS's STSs sign
    them), bad ones are refused."""
    api, server, tmp = origin
    tok = _jwt(["read", "write"])
    primary, alt = os.urandom(32), os.urandom(32)
    asset = _created(api.call("POST", "Assets", tok, {"Name": "tokens", "AlternateId": "demo_tokens"}))
    key = os.urandom(16)
    kid, _, _, r = _upload(api, tok, 4, key)
    _created(r)
    _link(api, tok, f"Assets('{asset['Id']}')", "ContentKeys", f"ContentKeys('nb:kid:UUID:{kid}')")
    pol = _created(api.call("POST", "ContentKeyAuthorizationPolicies", tok, {"Name": "token"}))
    xml = TEMPLATE.format(alt=base64.b64encode(alt).decode(), primary=base64.b64encode(primary).decode(), kind=kind)
    opt_body = {"Name": "token", "KeyDeliveryType": 2, "KeyDeliveryConfiguration": "",
                "Restrictions": [{"Name": "Token Authorization Policy", "KeyRestrictionType": 1, "Requirements": xml}]}
    opt = _created(api.call("POST", "ContentKeyAuthorizationPolicyOptions", tok, opt_body))
    assert base64.b64encode(primary).decode() not in json.dumps(opt), "a verification key read back"
    # A broken template is refused naming the field.
    st, _, b, _ = api.call("POST", "ContentKeyAuthorizationPolicyOptions", tok, {**opt_body, "Restrictions": [{"Name": "x", "KeyRestrictionType": 1, "Requirements": "<nope"}]})
    assert st == 400 and "Restrictions" in b["odata.error"]["message"]["value"]
    _link(api, tok, f"ContentKeyAuthorizationPolicies('{pol['Id']}')", "Options", f"ContentKeyAuthorizationPolicyOptions('{opt['Id']}')")
    assert api.call("PUT", f"ContentKeys('nb:kid:UUID:{kid}')", tok, {"AuthorizationPolicyId": pol["Id"]})[0] == 204
    hls = _created(api.call("POST", "AssetDeliveryPolicies", tok, {"Name": "aes", "AssetDeliveryProtocol": 4, "AssetDeliveryPolicyType": 3}))
    _link(api, tok, f"Assets('{asset['Id']}')", "DeliveryPolicies", f"AssetDeliveryPolicies('{hls['Id']}')")
    url = f"{server.base_url}/key/{kid}"
    exp = int(time.time()) + 600
    ck = "urn:microsoft:azure:mediaservices:contentkeyidentifier"

    def token(signing: bytes, **over) -> str:
        if kind == "JWT":
            c = {"iss": "http://testissuer.com/", "aud": "urn:test", "exp": exp, ck: str(kid)}
            c.update(over)
            return _hs256({k: v for k, v in c.items() if v is not None}, signing)
        f = {"Issuer": "http://testissuer.com/", "Audience": "urn:test", "ExpiresOn": str(exp), ck: str(kid)}
        f.update({("ExpiresOn" if k == "exp" else k): (str(v) if v is not None else None) for k, v in over.items()})
        return _swt([(k, v) for k, v in f.items() if v is not None and k != "iss"], signing)

    t0 = time.monotonic()
    while fetch(url, headers={"Authorization": f"Bearer {token(primary)}"}).status != 200:
        assert time.monotonic() - t0 < 5, "the key never became deliverable"
        time.sleep(0.05)
    for t, want in [
        (token(primary), 200),
        (token(alt), 200),                               # the alternate key
        (token(os.urandom(32)), 401),                    # signed by someone else
        (token(primary, exp=int(time.time()) - 3600), 401),  # expired
        (token(primary, **{ck: str(uuid.uuid4())}), 403),   # for another key
        (token(primary, **{ck: None}), 403),             # without the content key claim
    ]:
        r = fetch(url, headers={"Authorization": f"Bearer {t}"})
        assert r.status == want, (kind, want, r.status, r.body[:200])
        if want == 200:
            assert r.body == key
    assert fetch(url).status == 401


def _rs256(claims: dict, private_key, kid: str | None = None) -> str:
    """An RS256 JWT signed by `cryptography` (RSASSA-PKCS1-v1_5, SHA-256), no `kid` unless given."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    b = lambda x: base64.urlsafe_b64encode(x).rstrip(b"=").decode()
    header = {"alg": "RS256", "typ": "JWT", **({"kid": kid} if kid else {})}
    h, p = b(json.dumps(header).encode()), b(json.dumps(claims).encode())
    return f"{h}.{p}.{b(private_key.sign(f'{h}.{p}'.encode(), padding.PKCS1v15(), hashes.SHA256()))}"


def _rsa_raw_body(public_key) -> str:
    """An RsaTokenVerificationKey's RawBody as the v2 SDK's InitFromRSAParameters writes it:
    base64 of the UTF-8 of an indented JSON object {"e", "n"} (standard base64 of the
    big-endian exponent and modulus)."""
    nums = public_key.public_numbers()
    n = nums.n.to_bytes((nums.n.bit_length() + 7) // 8, "big")
    e = nums.e.to_bytes((nums.e.bit_length() + 7) // 8, "big")
    body = "{\r\n  \"e\": \"%s\",\r\n  \"n\": \"%s\"\r\n}" % (base64.b64encode(e).decode(), base64.b64encode(n).decode())
    return base64.b64encode(body.encode()).decode()


def _self_signed_der(private_key, cn: str) -> bytes:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(private_key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1)).sign(private_key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.DER)


def _token_protected_envelope_key(api: Api, tok: str, folder: str, restriction: dict) -> tuple[uuid.UUID, bytes, str]:
    """An asset (folder `folder`) whose HLS is envelope-encrypted with a new key behind an
    authorization policy with one BaselineHttp option carrying `restriction`."""
    asset = _created(api.call("POST", "Assets", tok, {"Name": folder, "AlternateId": folder}))
    key = os.urandom(16)
    kid, _, _, r = _upload(api, tok, 4, key)
    _created(r)
    _link(api, tok, f"Assets('{asset['Id']}')", "ContentKeys", f"ContentKeys('nb:kid:UUID:{kid}')")
    pol = _created(api.call("POST", "ContentKeyAuthorizationPolicies", tok, {"Name": folder}))
    opt = _created(api.call("POST", "ContentKeyAuthorizationPolicyOptions", tok, {
        "Name": folder, "KeyDeliveryType": 2, "KeyDeliveryConfiguration": "", "Restrictions": [restriction]}))
    _link(api, tok, f"ContentKeyAuthorizationPolicies('{pol['Id']}')", "Options", f"ContentKeyAuthorizationPolicyOptions('{opt['Id']}')")
    assert api.call("PUT", f"ContentKeys('nb:kid:UUID:{kid}')", tok, {"AuthorizationPolicyId": pol["Id"]})[0] == 204
    hls = _created(api.call("POST", "AssetDeliveryPolicies", tok, {"Name": "aes", "AssetDeliveryProtocol": 4, "AssetDeliveryPolicyType": 3}))
    _link(api, tok, f"Assets('{asset['Id']}')", "DeliveryPolicies", f"AssetDeliveryPolicies('{hls['Id']}')")
    return kid, key, asset["Id"]


def test_rsa_and_x509_template_keys_with_alternates(origin):
    """A JWT TokenRestrictionTemplate whose primary key is an RsaTokenVerificationKey (RawBody
    as the v2 SDK serializes it) with an X509CertTokenVerificationKey and a second
    RsaTokenVerificationKey as alternates: an RS256 JWT signed by any of the three gets the key
    at the URL GetKeyDeliveryUrl answers; one signed by an unlisted RSA key, or HS256-signed
    with the public key's bytes, is refused (401); one for another key 403."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    api, server, tmp = origin
    tok = _jwt(["read", "write"])
    primary, cert_key, alternate, stranger = (rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(4))
    ns = 'xmlns:i="http://www.w3.org/2001/XMLSchema-instance" xmlns="http://schemas.microsoft.com/Azure/MediaServices/KeyDelivery/TokenRestrictionTemplate/v1"'
    xml = (f'<TokenRestrictionTemplate {ns}><AlternateVerificationKeys>'
           f'<TokenVerificationKey i:type="X509CertTokenVerificationKey"><RawBody>{base64.b64encode(_self_signed_der(cert_key, "sts signing")).decode()}</RawBody></TokenVerificationKey>'
           f'<TokenVerificationKey i:type="RsaTokenVerificationKey"><RawBody>{_rsa_raw_body(alternate.public_key())}</RawBody></TokenVerificationKey>'
           f'</AlternateVerificationKeys><Audience>urn:test</Audience><Issuer>http://testissuer.com/</Issuer>'
           f'<PrimaryVerificationKey i:type="RsaTokenVerificationKey"><RawBody>{_rsa_raw_body(primary.public_key())}</RawBody></PrimaryVerificationKey>'
           f'<RequiredClaims><TokenClaim><ClaimType>urn:microsoft:azure:mediaservices:contentkeyidentifier</ClaimType><ClaimValue i:nil="true"/></TokenClaim></RequiredClaims>'
           f'<TokenType>JWT</TokenType></TokenRestrictionTemplate>')
    # A broken RSA key is a 400 naming the field (and the element), never echoing the key.
    bad_xml = xml.replace(_rsa_raw_body(primary.public_key()), base64.b64encode(b'{"e": "AQAB"}').decode())
    st, _, b, raw = api.call("POST", "ContentKeyAuthorizationPolicyOptions", tok, {"Name": "bad", "KeyDeliveryType": 2,
                             "Restrictions": [{"Name": "t", "KeyRestrictionType": 1, "Requirements": bad_xml}]})
    msg = b["odata.error"]["message"]["value"]
    assert st == 400 and "Restrictions" in msg and "PrimaryVerificationKey" in msg, b
    assert _rsa_raw_body(alternate.public_key()).encode() not in raw

    kid, key, _ = _token_protected_envelope_key(api, tok, "demo_rsa_tokens", {"Name": "Token Authorization Policy", "KeyRestrictionType": 1, "Requirements": xml})
    st, _, b, _ = api.call("POST", f"ContentKeys('nb:kid:UUID:{kid}')/GetKeyDeliveryUrl", _jwt(["read"]), {"keyDeliveryType": 2})
    assert st == 200, b
    path = urllib.parse.urlsplit(b["value"]).path
    assert path == f"/key/{kid}", b
    url = server.base_url + path  # the fixture's public_url is its own listener; take the path
    ck = "urn:microsoft:azure:mediaservices:contentkeyidentifier"
    claims = {"iss": "http://testissuer.com/", "aud": "urn:test", "exp": int(time.time()) + 600, ck: str(kid)}
    t0 = time.monotonic()
    while fetch(url, headers={"Authorization": f"Bearer {_rs256(claims, primary)}"}).status != 200:
        assert time.monotonic() - t0 < 5, "the key never became deliverable"
        time.sleep(0.05)
    pem = primary.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    for t, want in [
        (_rs256(claims, primary), 200),                  # primary RsaTokenVerificationKey
        (_rs256(claims, cert_key), 200),                 # alternate X509CertTokenVerificationKey
        (_rs256(claims, alternate), 200),                # alternate RsaTokenVerificationKey
        (_rs256(claims, alternate, kid="whatever"), 200),  # a kid naming no key: the unnamed keys
        (_rs256(claims, stranger), 401),                 # an unlisted key
        (_hs256(claims, pem), 401),                      # algorithm confusion
        (_rs256({**claims, ck: str(uuid.uuid4())}, alternate), 403),  # for another key
        (_rs256({**claims, "exp": int(time.time()) - 3600}, cert_key), 401),
    ]:
        r = fetch(url, headers={"Authorization": f"Bearer {t}"})
        assert r.status == want, (want, r.status, r.body[:200])
        if want == 200:
            assert r.body == key
    # The key's policy has a BaselineHttp option only: no PlayReady, Widevine or FairPlay URL.
    for t in (1, 3, 4):
        st, _, b, _ = api.call("POST", f"ContentKeys('nb:kid:UUID:{kid}')/GetKeyDeliveryUrl", tok, {"keyDeliveryType": t})
        assert st == 400 and "keyDeliveryType" in b["odata.error"]["message"]["value"], (t, b)
    st, _, b, _ = api.call("POST", f"ContentKeys('nb:kid:UUID:{kid}')/GetKeyDeliveryUrl", tok, {"keyDeliveryType": 9})
    assert st == 400 and "keyDeliveryType" in b["odata.error"]["message"]["value"], b


def test_fairplay_keys_and_options_are_stored_and_never_delivered(origin):
    """FairPlay as AMS configured it: the ASk (ContentKeyType 7, 16 bytes with its checksum)
    and the PFX password (8, any length, no checksum) upload like other keys; a FairPlay (4)
    authorization option names them with the PKCS#12 application certificate and the IV. The
    option is stored sealed and its PFX never read back; HLS playlists of a cbcs asset carry
    the delivery policy's FairPlay URL as skd://. This origin issues no CKCs, so the cbcs key
    under a FairPlay-only policy is never handed out in clear (fail closed), and
    GetKeyDeliveryUrl says so. SAS upload locators are refused naming the field."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import pkcs12
    from cryptography import x509
    api, server, tmp = origin
    tok, keys_role = _jwt(["read", "write"]), _jwt(["read", "keys"])
    ask, password = os.urandom(16), b"pfx password \xe2\x9c\x93 long enough"
    ask_kid, _, _, r = _upload(api, tok, 7, ask)
    assert _created(r)["ContentKeyType"] == 7
    pw_kid, _, _, r = _upload(api, tok, 8, password)
    assert r[0] == 201, r[2]
    # An ASk is 16 bytes; a password's wrong checksum (when sent) is refused.
    _, _, _, (st, _, b, _) = _upload(api, tok, 7, os.urandom(32))
    assert st == 400 and "EncryptedContentKey" in b["odata.error"]["message"]["value"], b
    _, _, _, (st, _, b, _) = _upload(api, tok, 8, os.urandom(16), Checksum="AAAAAAAAAAA=")
    assert st == 400 and "Checksum" in b["odata.error"]["message"]["value"], b
    # The keys role can move them out (RebindContentKey), as any key.
    st, _, b, _ = api.call("GET", f"RebindContentKey?id='nb:kid:UUID:{pw_kid}'&x509Certificate=''", keys_role)
    assert st == 200 and base64.b64decode(b["value"]) == password

    app_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    app_cert = x509.load_der_x509_certificate(_self_signed_der(app_key, "fairplay app cert"))
    pfx = base64.b64encode(pkcs12.serialize_key_and_certificates(b"app", app_key, app_cert, None,
                           serialization.BestAvailableEncryption(password))).decode()
    iv = os.urandom(16).hex().upper()
    config = {"ASkId": str(ask_kid), "FairPlayPfxPasswordId": str(pw_kid), "FairPlayPfx": pfx, "ContentEncryptionIV": iv}
    open_restriction = [{"Name": "Open", "KeyRestrictionType": 0, "Requirements": None}]
    cbcs_key = os.urandom(16)
    cbcs_kid, _, _, r = _upload(api, tok, 6, cbcs_key)
    _created(r)
    for over, field in [({"ASkId": str(cbcs_kid)}, "ASkId"), ({"FairPlayPfxPasswordId": str(ask_kid)}, "FairPlayPfxPasswordId"),
                        ({"ContentEncryptionIV": "00"}, "ContentEncryptionIV"), ({"FairPlayPfx": "***"}, "FairPlayPfx")]:
        st, _, b, raw = api.call("POST", "ContentKeyAuthorizationPolicyOptions", tok, {"Name": "fp", "KeyDeliveryType": 4,
                                 "KeyDeliveryConfiguration": json.dumps({**config, **over}), "Restrictions": open_restriction})
        assert st == 400 and f"KeyDeliveryConfiguration.{field}" in b["odata.error"]["message"]["value"], (field, b)
        assert pfx.encode()[:64] not in raw
    opt = _created(api.call("POST", "ContentKeyAuthorizationPolicyOptions", tok, {"Name": "fp", "KeyDeliveryType": 4,
                            "KeyDeliveryConfiguration": json.dumps(config), "Restrictions": open_restriction}))
    # The ASk and the password stay while the option names them.
    for k in (ask_kid, pw_kid):
        st, _, b, _ = api.call("DELETE", f"ContentKeys('nb:kid:UUID:{k}')", tok)
        assert st == 409 and b["odata.error"]["message"]["value"].startswith("Id:"), b
    st, _, b, raw = api.call("GET", f"ContentKeyAuthorizationPolicyOptions('{opt['Id']}')", tok)
    assert st == 200 and json.loads(b["KeyDeliveryConfiguration"])["ASkId"] == str(ask_kid), b
    assert pfx.encode()[:64] not in raw and json.loads(b["KeyDeliveryConfiguration"])["FairPlayPfx"] == "(write-only)"

    # A cbcs asset (the demo fixture, clear at rest) with a FairPlay-only key policy.
    folder = "demo_fairplay"
    shutil.copytree(FIXTURES / "demo", tmp / "root" / folder)
    asset = _created(api.call("POST", "Assets", tok, {"Name": "fp", "AlternateId": folder}))
    _link(api, tok, f"Assets('{asset['Id']}')", "ContentKeys", f"ContentKeys('nb:kid:UUID:{cbcs_kid}')")
    pol = _created(api.call("POST", "ContentKeyAuthorizationPolicies", tok, {"Name": "fp"}))
    _link(api, tok, f"ContentKeyAuthorizationPolicies('{pol['Id']}')", "Options", f"ContentKeyAuthorizationPolicyOptions('{opt['Id']}')")
    assert api.call("PUT", f"ContentKeys('nb:kid:UUID:{cbcs_kid}')", tok, {"AuthorizationPolicyId": pol["Id"]})[0] == 204
    st, _, b, _ = api.call("POST", "AssetDeliveryPolicies", tok, {"Name": "bad fp", "AssetDeliveryProtocol": 4, "AssetDeliveryPolicyType": 5,
                           "AssetDeliveryConfiguration": json.dumps([{"Key": 10, "Value": "ftp://fps.example/"}])})
    assert st == 400 and "AssetDeliveryConfiguration" in b["odata.error"]["message"]["value"], b
    hls = _created(api.call("POST", "AssetDeliveryPolicies", tok, {"Name": "fp", "AssetDeliveryProtocol": 4, "AssetDeliveryPolicyType": 5,
                            "AssetDeliveryConfiguration": json.dumps([{"Key": 10, "Value": "https://fps.example/FairPlay/"}, {"Key": 11, "Value": iv}])}))
    _link(api, tok, f"Assets('{asset['Id']}')", "DeliveryPolicies", f"AssetDeliveryPolicies('{hls['Id']}')")
    # SAS upload locators are refused, naming the field.
    ap = _created(api.call("POST", "AccessPolicies", tok, {"Name": "upload", "DurationInMinutes": 60, "Permissions": 2}))
    st, _, b, _ = api.call("POST", "Locators", tok, {"AccessPolicyId": ap["Id"], "AssetId": asset["Id"], "Type": 1})
    assert st == 400 and b["odata.error"]["message"]["value"].startswith("Type:"), b
    base = server.base_url + urllib.parse.urlsplit(_locator(api, tok, asset["Id"])).path
    master = _wait_ok(base + "demo.ism/manifest(format=m3u8-aapl)")
    assert master.status == 200, master.describe()
    texts = [master.text()]
    for line in master.text().splitlines():
        if line and not line.startswith("#"):
            texts.append(get_ok_(urllib.parse.urljoin(master.url, line)).text())
    skd = f'URI="skd://fps.example/FairPlay/?KID={cbcs_kid.hex}",KEYFORMAT="com.apple.streamingkeydelivery"'
    assert any(skd in t for t in texts), "no FairPlay key line in the playlists:\n" + "\n".join(texts)[:3000]
    # No CKC service here: the cbcs key is not handed out in clear, to anyone.
    r = fetch(f"{server.base_url}/key/{cbcs_kid}")
    assert r.status == 403 and cbcs_key not in r.body, r.describe()
    import http.client
    u = urllib.parse.urlsplit(server.base_url)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=20)
    kid_b64 = base64.urlsafe_b64encode(cbcs_kid.bytes).rstrip(b"=").decode()
    c.request("POST", "/clearkey", body=json.dumps({"kids": [kid_b64], "type": "temporary"}), headers={"Content-Type": "application/json"})
    resp = c.getresponse()
    body = resp.read()
    c.close()
    assert resp.status == 403 and cbcs_key not in body and base64.urlsafe_b64encode(cbcs_key).rstrip(b"=") not in body, (resp.status, body)
    st, _, b, _ = api.call("POST", f"ContentKeys('nb:kid:UUID:{cbcs_kid}')/GetKeyDeliveryUrl", tok, {"keyDeliveryType": 4})
    assert st == 400 and "FairPlay" in b["odata.error"]["message"]["value"], b
    st, _, b, _ = api.call("POST", f"ContentKeys('nb:kid:UUID:{cbcs_kid}')/GetKeyDeliveryUrl", tok, {"keyDeliveryType": 2})
    assert st == 400 and "no option" in b["odata.error"]["message"]["value"], b
    st, _, b, _ = api.call("POST", f"ContentKeys('nb:kid:UUID:{ask_kid}')/GetKeyDeliveryUrl", tok, {"keyDeliveryType": 4})
    assert st == 400 and "ContentKeyType" in b["odata.error"]["message"]["value"], b
    # Nothing secret in the database (SQLite: its files; PostgreSQL is covered by the KEK
    # sealing the option bodies and keys the same way).
    db = tmp / "db"
    if db.exists():
        blob = b"".join(p.read_bytes() for p in db.iterdir() if p.name.startswith("catalog.db"))
        for secret in (ask, password, cbcs_key, pfx.encode()[:40], ask.hex().encode(), base64.b64encode(password)):
            assert secret not in blob


# --------------------------------------------------------------------------- the native API


def _native(api: Api, method: str, path: str, token: str | None, body=None, raw: bytes | None = None, ctype="application/json"):
    import http.client
    u = urllib.parse.urlsplit(api.base)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=20)
    h = {"Content-Type": ctype}
    if token:
        h["Authorization"] = f"Bearer {token}"
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    c.request(method, "/v1/" + path, body=data, headers=h)
    r = c.getresponse()
    out = r.read()
    c.close()
    return r.status, (json.loads(out) if out else None)


CPIX = """<?xml version="1.0" encoding="UTF-8"?>
<CPIX xmlns="urn:dashif:org:cpix" xmlns:p="urn:ietf:params:xml:ns:keyprov:pskc" version="2.3">
  <ContentKeyList>
    <ContentKey kid="{kid}" commonEncryptionScheme="cenc"><Data><p:Secret><p:PlainValue>{key}</p:PlainValue></p:Secret></Data></ContentKey>
  </ContentKeyList>
</CPIX>"""


def test_native_api_openapi_cli_and_publish(origin, tmp_path):
    from openapi_spec_validator import validate
    api, server, tmp = origin
    rw, reader = _jwt(["read", "write"]), _jwt(["read"])
    # The OpenAPI document is valid 3.1 and names every native route.
    st, spec = _native(api, "GET", "openapi.json", reader)
    assert st == 200 and spec["openapi"].startswith("3.1"), spec.get("openapi")
    validate(spec)
    routes = {(m, p) for p, ops in spec["paths"].items() for m in ops}
    for want in [("get", "/v1/assets"), ("get", "/v1/assets/{path}"), ("put", "/v1/assets/{path}"), ("delete", "/v1/assets/{path}"),
                 ("put", "/v1/assets/{path}/cpix"), ("get", "/v1/policies"), ("put", "/v1/policies/{name}"),
                 ("get", "/v1/locators"), ("put", "/v1/locators/{id}"), ("delete", "/v1/locators/{id}")]:
        assert want in routes, want
    assert _native(api, "GET", "openapi.json", None)[0] == 401

    (tmp / "root" / "vod").mkdir()
    shutil.copytree(FIXTURES / "demo", tmp / "root" / "vod" / "native")  # symlinks out of the root are not served
    key = os.urandom(16)
    kid = str(uuid.uuid4())
    # Writes need the write role; refusals name the field.
    assert _native(api, "PUT", "assets/vod%2Fnative", reader, {"dash": "NoDynamicEncryption"})[0] == 403
    st, b = _native(api, "PUT", "assets/vod%2Fnative", rw, {"dash": "Rot13"})
    assert st == 400 and "dash" in b["error"], b
    st, b = _native(api, "PUT", "assets/vod%2Fnative", rw, {"dash": "DynamicCommonEncryption"})
    assert st == 400 and "dash uses" in b["error"], b
    st, b = _native(api, "PUT", "assets/vod%2Fnative", rw, {"dash": "DynamicCommonEncryption", "hls": "DynamicCommonEncryptionCbcs",
                                                          "keys": [{"kid": kid, "key": key.hex()}]})
    assert st == 400 and "hls" in b["error"], b  # no cbcs key
    st, b = _native(api, "PUT", "assets/vod%2Fnative", rw, {"dash": "DynamicCommonEncryption", "keys": [{"kid": kid, "key": key.hex()}]})
    assert st == 200 and b["created"] == ["asset vod/native"], b
    st, b = _native(api, "GET", "assets/vod%2Fnative", reader)
    assert st == 200 and b["dash"] == "DynamicCommonEncryption" and b["keys"][0]["kid"] == kid and "key" not in b["keys"][0]
    assert key.hex() not in json.dumps(_native(api, "GET", "assets", reader)[1])

    # The CLI: a policy attached, keys from a CPIX file, publish and unpublish.
    env = {**os.environ, "SEALCAST_ADMIN_TOKEN": rw}
    cli = lambda *a: subprocess.run([str(sealcast_bin()), "admin", "--url", api.base, *a], capture_output=True, text=True, env=env, timeout=30)
    st, b = _native(api, "PUT", "policies/open", rw, {"type": "Open"})
    assert st == 200, b
    r = cli("asset-policy", "vod/native", "--authorization", "open")
    assert r.returncode == 0, r.stderr
    assert _native(api, "GET", "assets/vod%2Fnative", reader)[1]["authorization"] == "open"
    # Open policy: the key service hands the key out (once the catalog version reached the server).
    t0 = time.monotonic()
    while (r := fetch(f"{server.base_url}/key/{kid}")).status != 200:
        assert time.monotonic() - t0 < 5, r.describe()
        time.sleep(0.02)
    assert r.body == key
    cpix_key, cpix_kid = os.urandom(16), str(uuid.uuid4())
    (tmp / "keys.cpix.xml").write_text(CPIX.format(kid=cpix_kid, key=base64.b64encode(cpix_key).decode()))
    r = cli("asset-keys", "vod/native", "--cpix", str(tmp / "keys.cpix.xml"))
    assert r.returncode == 0, r.stderr
    b = _native(api, "GET", "assets/vod%2Fnative", reader)[1]
    assert b["cpix"] and [k["kid"] for k in b["keys"]] == [], b
    t0 = time.monotonic()
    r = cli("publish", "vod/native", "--locator", "native-1")
    assert r.returncode == 0, r.stderr
    url = f"{server.base_url}/native-1/demo.ism/manifest(format=mpd-time-csf)"
    while (st := fetch(url).status) != 200:
        assert time.monotonic() - t0 < 5, f"the published locator answered {st}"
        time.sleep(0.01)
    print(f"\nPUT locator (CLI process) to first 200 on the streaming URL: {(time.monotonic() - t0) * 1000:.0f} ms")
    assert cpix_kid in fetch(url).text().lower()
    assert _native(api, "GET", "locators", reader)[1] == [{"id": "native-1", "asset": "vod/native", "start": None, "expiry": None}]
    r = cli("unpublish", "--locator", "native-1")
    assert r.returncode == 0, r.stderr
    t0 = time.monotonic()
    while fetch(url).status == 200:
        assert time.monotonic() - t0 < 5
        time.sleep(0.01)
    assert _native(api, "DELETE", "assets/vod%2Fnative", rw)[0] == 204
    assert _native(api, "GET", "assets/vod%2Fnative", reader)[0] == 404


def test_concurrent_writers_and_a_second_replica(origin, tmp_path):
    """Eight clients create assets at once: every write lands once, audited. A policy change
    through the API shows on a second server process over the same database within a second."""
    import concurrent.futures
    api, server, tmp = origin
    tok = _jwt(["read", "write"])
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        results = list(ex.map(lambda i: api.call("POST", "Assets", tok, {"Name": f"a{i}", "AlternateId": f"many/a{i}"})[0], range(40)))
    assert results == [201] * 40, results
    st, _, b, _ = api.call("GET", "Assets?$filter=Name%20eq%20'a7'", tok)
    assert st == 200 and len(b["value"]) == 1 and b["value"][0]["Path"] == "many/a7"
    assert len(api.call("GET", "Assets", tok)[2]["value"]) == 40
    audit = subprocess.run([str(sealcast_bin()), "catalog", "audit", "--limit", "1000", "--config", str(tmp / "sealcast.toml")],
                           capture_output=True, text=True, check=True, cwd=REPO).stdout
    assert audit.count("created\tAssets") == 40, audit[-2000:]

    # A second replica: same configuration without the admin listener.
    cfg_text = (tmp / "sealcast.toml").read_text()
    second = tmp / "replica.toml"
    second.write_text(cfg_text[:cfg_text.index("[admin]")])
    replica = start_server_config(second, tmp / "replica.log")
    try:
        shutil.copytree(FIXTURES / "demo", tmp / "root" / "many" / "a7")
        aid = b["value"][0]["Id"]
        ap = _created(api.call("POST", "AccessPolicies", tok, {"Name": "s", "DurationInMinutes": 60, "Permissions": 1}))
        loc = _created(api.call("POST", "Locators", tok, {"AccessPolicyId": ap["Id"], "AssetId": aid, "Type": 2}))
        guid = loc["ContentAccessComponent"]
        urls = [f"{s.base_url}/{guid}/demo.ism/manifest(format=mpd-time-csf)" for s in (server, replica)]
        for u in urls:
            assert _wait_ok(u).status == 200  # no delivery policy: clear
        # Link a policy that blocks DASH: both replicas refuse it within a second.
        blocked = _created(api.call("POST", "AssetDeliveryPolicies", tok, {"Name": "block dash", "AssetDeliveryProtocol": 2, "AssetDeliveryPolicyType": 1}))
        _link(api, tok, f"Assets('{aid}')", "DeliveryPolicies", f"AssetDeliveryPolicies('{blocked['Id']}')")
        t0 = time.monotonic()
        for u in urls:
            while fetch(u).status != 403:
                assert time.monotonic() - t0 < 5, "the policy change never reached a replica"
                time.sleep(0.01)
        print(f"\npolicy change through the API in force on both replicas after {(time.monotonic() - t0) * 1000:.0f} ms")
        bodies = [fetch(f"{s.base_url}/{guid}/demo.ism/manifest(format=m3u8-aapl)") for s in (server, replica)]
        assert bodies[0].status == bodies[1].status == 403  # HLS: covered by no policy once one exists
    finally:
        stop_server(replica)


def test_protection_key_rotation_keeps_old_keys_usable(admin):
    api, cfg, tmp, server = admin
    rw, keys_role = _jwt(["read", "write"]), _jwt(["read", "keys"])
    key = os.urandom(16)
    kid, old_thumb, old_cert, r = _upload(api, rw, 0, key)
    assert r[0] == 201
    out = subprocess.run([str(sealcast_bin()), "keys", "rotate-protection-key", "--config", str(cfg)], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    st, _, b, _ = api.call("GET", "GetProtectionKeyId?contentKeyType=0", rw)
    assert st == 200 and b["value"] != old_thumb
    # A key encrypted to the old certificate still uploads (old keys kept for unwrapping)...
    key2 = os.urandom(16)
    kid2 = uuid.uuid4()
    doc = {"Id": f"nb:kid:UUID:{kid2}", "ContentKeyType": 0, "ProtectionKeyId": old_thumb, "ProtectionKeyType": 0,
           "EncryptedContentKey": _encrypt_to(old_cert, key2), "Checksum": _checksum(kid2, key2)}
    assert api.call("POST", "ContentKeys", rw, doc)[0] == 201
    # ...and both read back.
    for k, v in ((kid, key), (kid2, key2)):
        st, _, b, _ = api.call("GET", f"RebindContentKey?id='nb:kid:UUID:{k}'&x509Certificate=''", keys_role)
        assert st == 200 and base64.b64decode(b["value"]) == v


def test_kek_rotation_reseals_the_management_api_secrets(origin, tmp_path):
    """`keys rotate-kek` re-seals everything the management API stored too: uploaded keys,
    protection keys, token templates. After a restart on the new KEK alone, all of it opens."""
    api, server, tmp = origin
    rw, keys_role = _jwt(["read", "write"]), _jwt(["read", "keys"])
    key = os.urandom(16)
    kid, _, _, r = _upload(api, rw, 4, key)
    assert r[0] == 201
    xml = TEMPLATE.format(alt=base64.b64encode(os.urandom(32)).decode(), primary=base64.b64encode(os.urandom(32)).decode(), kind="SWT")
    opt = _created(api.call("POST", "ContentKeyAuthorizationPolicyOptions", rw, {
        "Name": "t", "KeyDeliveryType": 2, "Restrictions": [{"Name": "t", "KeyRestrictionType": 1, "Requirements": xml}]}))
    cfg = tmp / "sealcast.toml"
    new_kek = tmp / "kek2"
    subprocess.run([str(sealcast_bin()), "keys", "init", "--kek", str(new_kek)], check=True, capture_output=True)
    out = subprocess.run([str(sealcast_bin()), "keys", "rotate-kek", "--config", str(cfg), "--new-local", str(new_kek)], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    stop_server(server)
    cfg.write_text(cfg.read_text().replace(f'local = "{tmp / "kek"}"', f'local = "{new_kek}"'))
    (tmp / "kek").unlink()  # the old KEK is gone for good
    s2 = start_server_config(cfg, tmp / "server2.log")
    try:
        st, _, b, _ = api.call("GET", f"RebindContentKey?id='nb:kid:UUID:{kid}'&x509Certificate=''", keys_role)
        assert st == 200 and base64.b64decode(b["value"]) == key
        st, _, b, _ = api.call("GET", f"ContentKeyAuthorizationPolicyOptions('{opt['Id']}')", rw)
        assert st == 200 and b["Name"] == "t", b
        assert fetch(s2.url("/readyz")).status == 200
        key2 = os.urandom(16)
        assert _upload(api, rw, 0, key2)[3][0] == 201  # the protection key opens too
    finally:
        stop_server(s2)


def test_admin_listener_over_tls(tmp_path):
    """`[admin] tls`: the management API answers over HTTPS with
    the configured certificate, and refuses plain HTTP on that port."""
    import ssl
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    import ipaddress
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key()).serial_number(7)
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(key, hashes.SHA256()))
    (tmp_path / "admin.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "admin.key").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    crt, pem = tmp_path / "admin.crt", tmp_path / "admin.key"
    cfg, port = _admin_config(tmp_path, f'tls = {{ cert = "{crt}", key = "{pem}" }}')
    s = start_server_config(cfg, tmp_path / "server.log")
    try:
        import http.client
        ctx = ssl.create_default_context(cafile=str(tmp_path / "admin.crt"))
        c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=20)
        c.request("GET", "/api/GetProtectionKeyId?contentKeyType=0", headers={"Authorization": f"Bearer {_jwt(['read'])}"})
        r = c.getresponse()
        body = json.loads(r.read())
        assert r.status == 200 and len(body["value"]) == 40, body
        assert c.sock.version() in ("TLSv1.3", "TLSv1.2")
        c.close()
        # Plain HTTP on the TLS port gets no answer.
        plain = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            plain.request("GET", "/api/GetProtectionKeyId?contentKeyType=0")
            got = plain.getresponse().status
        except (OSError, http.client.HTTPException):
            got = None
        assert got is None, f"plain HTTP answered {got} on the TLS port"
    finally:
        stop_server(s)
