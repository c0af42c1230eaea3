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


@pytest.fixture
def admin(tmp_path):
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
public_url = "https://origin.example"
token = {{ token_type = "Jwt", issuer = "{ISSUER}", audience = "{AUDIENCE}", keys = [ {{ symmetric = "{base64.b64encode(SECRET).decode()}" }} ] }}
""")
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
           "ProtectionKeyType": 0, "EncryptedContentKey": _encrypt_to(cert_b64, key), "Checksum": _checksum(kid, key)}
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

    # An envelope key; its key delivery URL; its authorization policy set by PUT.
    env_key = os.urandom(16)
    env_kid, _, _, (st, _, _, _) = _upload(api, rw, 4, env_key)
    assert st == 201
    st, _, b, _ = api.call("POST", f"ContentKeys('nb%3Akid%3AUUID%3A{env_kid}')/GetKeyDeliveryUrl", reader, {"keyDeliveryType": 2})
    assert st == 200 and b["value"] == f"https://origin.example/key/{env_kid}", b
    st, _, b, _ = api.call("POST", f"ContentKeys('nb:kid:UUID:{env_kid}')/GetKeyDeliveryUrl", reader, {"keyDeliveryType": 1})
    assert st == 400 and "keyDeliveryType" in b["odata.error"]["message"]["value"]
    pid = f"nb:ckpid:UUID:{uuid.uuid4()}"
    assert api.call("PUT", f"ContentKeys('nb:kid:UUID:{env_kid}')", rw, {"AuthorizationPolicyId": pid})[0] == 204
    st, _, b, _ = api.call("GET", f"ContentKeys('nb:kid:UUID:{env_kid}')", reader)
    assert st == 200 and b["AuthorizationPolicyId"] == pid
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
