#!/usr/bin/env python3
"""Mints the independent token fixtures `independent.json` for `tests/tokens.rs`.

Independent of the verifier: HS256 and SWT MACs by Python's `hmac`/`hashlib`, RS256 and
ES256 signatures by the `openssl dgst -sign` command line with the throw-away keys in
`../keys/` (see its README); JSON and base64url by Python's standard library. Nothing here
uses `jsonwebtoken` or aws-lc, which the verifier is built on.

Run from anywhere: `python3 crates/drm/tests/tokens/mint.py` (rewrites independent.json;
ES256 signatures are randomised, so a rerun changes those tokens, not their verdicts).
"""

import base64
import hashlib
import hmac
import json
import subprocess
import urllib.parse
from pathlib import Path

HERE = Path(__file__).resolve().parent
KEYS = HERE.parent / "keys"

NOW = 1_900_000_000
ISS = "https://sts.sealcast.test"
AUD = "urn:sealcast:keys"
SECRET = b"independent-hs256-secret-32-byte"  # 32 bytes, not the one tokens.rs mints with
OTHER = b"some-other-hs256-secret-32-bytes"
KID = "abba271e-8bcf-552b-bd2e-86a434a9a5d9"
CONTENT_KEY_CLAIM = "urn:microsoft:azure:mediaservices:contentkeyidentifier"


def b64url(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def seg(obj) -> str:
    # Compact JSON, as most issuers write it (key order as given).
    return b64url(json.dumps(obj, separators=(",", ":")).encode())


def hs256(header: dict, claims: dict, secret: bytes = SECRET) -> str:
    signing_input = f"{seg(header)}.{seg(claims)}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(mac)}"


def openssl_sign(key: str, data: bytes) -> bytes:
    r = subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(KEYS / key)], input=data, capture_output=True, check=True)
    return r.stdout


def der_ecdsa_to_raw(der: bytes) -> bytes:
    """ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER } -> r || s, 32 bytes each (JWS)."""
    assert der[0] == 0x30
    p = 2 if der[1] < 0x80 else 2 + (der[1] & 0x7F)
    out = b""
    for _ in range(2):
        assert der[p] == 0x02
        n = der[p + 1]
        v = der[p + 2:p + 2 + n].lstrip(b"\0")
        assert len(v) <= 32
        out += v.rjust(32, b"\0")
        p += 2 + n
    return out


def rs256(header: dict, claims: dict, key: str) -> str:
    signing_input = f"{seg(header)}.{seg(claims)}"
    return f"{signing_input}.{b64url(openssl_sign(key, signing_input.encode()))}"


def es256(header: dict, claims: dict, key: str = "ec_private.pem") -> str:
    signing_input = f"{seg(header)}.{seg(claims)}"
    return f"{signing_input}.{b64url(der_ecdsa_to_raw(openssl_sign(key, signing_input.encode())))}"


def swt(pairs: list, secret: bytes = SECRET) -> str:
    body = "&".join(f"{urllib.parse.quote_plus(k)}={urllib.parse.quote_plus(v)}" for k, v in pairs)
    mac = hmac.new(secret, body.encode(), hashlib.sha256).digest()
    return f"{body}&HMACSHA256={urllib.parse.quote_plus(base64.b64encode(mac).decode())}"


def claims(**over) -> dict:
    c = {"iss": ISS, "aud": AUD, "exp": NOW + 600, "nbf": NOW - 10, "sub": "viewer-1"}
    for k, v in over.items():
        if v is None:
            c.pop(k, None)
        else:
            c[k] = v
    return c


HS = {"alg": "HS256", "typ": "JWT"}
swt_ok = [(CONTENT_KEY_CLAIM, KID), ("Audience", AUD), ("ExpiresOn", str(NOW + 600)), ("Issuer", ISS)]

# (name, policy, token, expected verdict: "ok" or the refusal reason). Policies (built by
# tokens.rs): hs = HS256 with `secret_b64`; hs_kid = the same with content_key_claim; rsa /
# ec = rsa_public.pem / ec_public.pem; jwks = jwks.json; swt = SWT with `secret_b64`.
CASES = [
    ("HS256 valid", "hs", hs256(HS, claims()), "ok"),
    ("HS256 valid, no typ, header keys reordered", "hs", hs256({"typ": "JWT", "alg": "HS256"}, claims()), "ok"),
    ("HS256 valid, audience array", "hs", hs256(HS, claims(aud=["x", AUD])), "ok"),
    ("HS256 expired", "hs", hs256(HS, claims(exp=NOW - 120)), "token_expired"),
    ("HS256 not yet valid", "hs", hs256(HS, claims(nbf=NOW + 120)), "token_not_yet_valid"),
    ("HS256 wrong issuer", "hs", hs256(HS, claims(iss="https://evil.test")), "token_issuer"),
    ("HS256 wrong audience", "hs", hs256(HS, claims(aud="urn:other")), "token_audience"),
    ("HS256 other secret", "hs", hs256(HS, claims(), OTHER), "token_signature"),
    ("HS256 alg none, empty signature", "hs", f"{seg({'alg': 'none', 'typ': 'JWT'})}.{seg(claims())}.", "token_algorithm"),
    ("HS256 payload swapped after signing", "hs",
     hs256(HS, claims()).split(".")[0] + "." + seg(claims(sub="someone-else")) + "." + hs256(HS, claims()).split(".")[2],
     "token_signature"),
    ("HS256 content key claim for the key", "hs_kid", hs256(HS, claims(**{CONTENT_KEY_CLAIM: KID})), "ok"),
    ("HS256 content key claim for another key", "hs_kid",
     hs256(HS, claims(**{CONTENT_KEY_CLAIM: "00112233-4455-6677-8899-aabbccddeeff"})), "content_key_mismatch"),
    ("RS256 valid (openssl)", "rsa", rs256({"alg": "RS256", "typ": "JWT"}, claims(), "rsa_private.pem"), "ok"),
    ("RS256 signed by another key", "rsa", rs256({"alg": "RS256", "typ": "JWT"}, claims(), "rsa2_private.pem"), "token_signature"),
    ("RS256 via JWKS kid (openssl)", "jwks", rs256({"alg": "RS256", "kid": "rsa-2"}, claims(), "rsa2_private.pem"), "ok"),
    ("ES256 valid (openssl, raw r||s)", "ec", es256({"alg": "ES256", "typ": "JWT"}, claims()), "ok"),
    ("ES256 via JWKS kid (openssl)", "jwks", es256({"alg": "ES256", "kid": "ec-1"}, claims()), "ok"),
    ("ES256 DER signature instead of r||s", "ec",
     (lambda si: f"{si}.{b64url(openssl_sign('ec_private.pem', si.encode()))}")(f"{seg({'alg': 'ES256'})}.{seg(claims())}"),
     "token_signature"),
    ("SWT valid", "swt", swt(swt_ok), "ok"),
    # The SWT policy has no skew_secs: the default 300 s applies.
    ("SWT expired", "swt", swt([(k, str(NOW - 400) if k == "ExpiresOn" else v) for k, v in swt_ok]), "token_expired"),
    ("SWT other secret", "swt", swt(swt_ok, OTHER), "token_signature"),
    ("SWT wrong audience", "swt", swt([(k, "urn:other" if k == "Audience" else v) for k, v in swt_ok]), "token_audience"),
]


def main() -> None:
    out = {
        "comment": "Minted by mint.py (Python hmac + openssl dgst), replayed by tokens.rs; do not edit by hand.",
        "now": NOW, "issuer": ISS, "audience": AUD, "kid": KID,
        "secret_b64": base64.b64encode(SECRET).decode(),
        "cases": [{"name": n, "policy": p, "token": t, "expect": e} for n, p, t, e in CASES],
    }
    (HERE / "independent.json").write_text(json.dumps(out, indent=1) + "\n")
    print(f"{len(CASES)} tokens written to {HERE / 'independent.json'}")


if __name__ == "__main__":
    main()
