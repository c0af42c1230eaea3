"""The catalog database through the real binary (issue 13).

- AWS KMS as the key-encryption key, through moto's server: `catalog import` wraps the data
  key with `GenerateDataKey`, a restarted server unwraps it with `Decrypt` and hands out the
  same content keys, `keys rotate-kek` moves everything to a second KMS key (the first one
  then disabled), and neither the database file nor an export holds a key.
- Two server processes on one SQLite file: byte-identical answers and ETags, a policy change
  and a locator expiry made with the CLI visible on both within a second (p50/p99 printed),
  and a policy flipped back and forth while `wrk` drives segments: no error.
- Refusals: a KEK file group-readable, a wrong KEK file, both a TOML catalog and a database.
"""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from oracle import FIXTURES, REPO, fetch, get_ok, oracle_missing, sealcast_bin, start_server_config, stop_server

GOLDEN = REPO / "tests" / "golden" / "protected" / "catalog.toml"
# The golden catalog's demo keys (authorization "open": the key service hands them out).
DEMO_KEYS = ["10000000000040008000000000000001", "10000000000040008000000000000002"]


def _golden_keys() -> dict[str, str]:
    import tomllib
    doc = tomllib.loads(GOLDEN.read_text())
    out = {}
    for a in doc["asset"]:
        for k in a.get("keys", []):
            out[k["kid"].replace("-", "").lower()] = k["key"].lower()
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cli(*args: str, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    r = subprocess.run([str(sealcast_bin()), *args], capture_output=True, text=True, timeout=60, cwd=REPO,
                       env={**os.environ, **(env or {})})
    if check:
        assert r.returncode == 0, f"sealcast {' '.join(args)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
    return r


def _db_bytes(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file() and p.name.startswith("catalog.db"))


def _assert_no_keys(blob: bytes, keys: dict[str, str], what: str) -> None:
    import base64
    for kid, key in keys.items():
        raw = bytes.fromhex(key)
        for needle in (key.encode(), key.upper().encode(), raw, base64.b64encode(raw).rstrip(b"=")):
            assert needle not in blob, f"{what}: the key of {kid} shows"


@pytest.fixture(scope="module")
def kms(tmp_path_factory):
    if shutil.which("moto_server") is None:
        oracle_missing("moto_server not installed (pip install 'moto[server]', or scripts/setup.sh)")
    import boto3
    tmp = tmp_path_factory.mktemp("kms")
    port = _free_port()
    log = open(tmp / "moto.log", "wb")
    proc = subprocess.Popen(["moto_server", "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None and time.time() < deadline, "moto_server did not start"
                time.sleep(0.2)
        endpoint = f"http://127.0.0.1:{port}"
        client = boto3.client("kms", endpoint_url=endpoint, region_name="us-east-1",
                              aws_access_key_id="test", aws_secret_access_key="test")
        arns = [client.create_key(Description=f"sealcast test {i}")["KeyMetadata"]["Arn"] for i in range(2)]
        yield endpoint, client, arns
    finally:
        proc.terminate()
        proc.wait(10)


AWS_ENV = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1"}


def _kms_config(tmp: Path, endpoint: str, arn: str) -> Path:
    cfg = tmp / "sealcast.toml"
    cfg.write_text(f"""listen = "127.0.0.1:0"
root = "{FIXTURES}"
database = "sqlite://{tmp / 'db' / 'catalog.db'}"
kek = {{ aws_kms = "{arn}", endpoint = "{endpoint}" }}
""")
    return cfg


def _serve(cfg: Path, log: Path, monkeypatch) -> object:
    for k, v in AWS_ENV.items():
        monkeypatch.setenv(k, v)
    return start_server_config(cfg, log)


def test_kms_kek_wraps_unwraps_after_restart_and_rotates(kms, tmp_path, monkeypatch):
    endpoint, client, (arn1, arn2) = kms
    keys = _golden_keys()
    cfg = _kms_config(tmp_path, endpoint, arn1)
    out = _cli("catalog", "import", "--config", str(cfg), str(GOLDEN), env=AWS_ENV)
    assert "created asset demo" in out.stdout
    # The database holds the KMS-wrapped data key, and no content key in any spelling.
    row = sqlite3.connect(tmp_path / "db" / "catalog.db").execute("SELECT kind, reference FROM kek").fetchone()
    assert row == ("aws_kms", f"aws_kms:{arn1}"), row
    _assert_no_keys(_db_bytes(tmp_path / "db"), keys, "database after import")
    export = _cli("catalog", "export", "--with-keys", "--config", str(cfg), env=AWS_ENV).stdout
    _assert_no_keys(export.encode(), keys, "export --with-keys")
    assert "sealed_by" in export and "key_wrapped" in export

    def served_keys(tag: str) -> None:
        s = _serve(cfg, tmp_path / f"{tag}.log", monkeypatch)
        try:
            for kid in DEMO_KEYS:
                r = get_ok(s.url(f"/key/{kid}"))
                assert r.body.hex() == keys[kid], f"{tag}: key {kid} differs from the catalog's"
            get_ok(s.url("/demo/manifest.mpd"))
        finally:
            stop_server(s)

    served_keys("first")
    served_keys("restart")  # Decrypt at start, same keys
    out = _cli("keys", "rotate-kek", "--config", str(cfg), "--new-aws-kms", arn2, env=AWS_ENV)
    assert "re-sealed" in out.stdout
    cfg = _kms_config(tmp_path, endpoint, arn2)
    client.disable_key(KeyId=arn1.split("/")[-1])  # everything must now open with the second key alone
    served_keys("rotated")
    _assert_no_keys(_db_bytes(tmp_path / "db"), keys, "database after rotation")
    audit = _cli("catalog", "audit", "--config", str(cfg), env=AWS_ENV).stdout
    assert "rotated\tkek" in audit and "created\tasset" in audit
    _assert_no_keys(audit.encode(), keys, "audit trail")
    client.enable_key(KeyId=arn1.split("/")[-1])


def _local_config(tmp: Path, name: str, kek: Path, db: Path) -> Path:
    cfg = tmp / f"{name}.toml"
    cfg.write_text(f"""listen = "127.0.0.1:0"
root = "{FIXTURES}"
database = "sqlite://{db}"
kek = {{ local = "{kek}" }}
catalog_poll_ms = 100
""")
    return cfg


def test_two_replicas_on_one_sqlite_file(tmp_path):
    kek = tmp_path / "kek"
    _cli("keys", "init", "--kek", str(kek))
    assert (kek.stat().st_mode & 0o777) == 0o600
    db = tmp_path / "db" / "catalog.db"
    cfg = _local_config(tmp_path, "a", kek, db)
    _cli("catalog", "import", "--config", str(cfg), str(GOLDEN))
    a = start_server_config(cfg, tmp_path / "a.log")
    b = start_server_config(cfg, tmp_path / "b.log")
    try:
        # Byte-identical answers and ETags from both replicas.
        for path in ["/demo/manifest.mpd", "/demo/master.m3u8", "/demo/video_180p/cenc/1.m4s", "/demo/video_180p/cbcs/init.mp4",
                     "/hevc/video/cenc/2.m4s", "/demo/Manifest"]:
            ra, rb = get_ok(a.url(path)), get_ok(b.url(path))
            assert ra.body == rb.body and ra.header("etag") == rb.header("etag"), path
        assert fetch(a.url("/readyz")).status == 200

        # A change made with the CLI, visible on both replicas: measured from the CLI's exit.
        lat = []
        policy = tmp_path / "flip.toml"
        for i in range(20):
            policy.write_text(_flip_policy(i))
            want = "bbbbbbbb" if i % 2 else "cccccccc"
            _cli("catalog", "import", "--config", str(cfg), str(policy))
            t = time.monotonic()
            for s in (a, b):
                while want not in fetch(s.url("/demo/manifest.mpd")).text():
                    assert time.monotonic() - t < 10, f"change {i} not visible after 10 s"
                    time.sleep(0.005)
            lat.append(time.monotonic() - t)
        lat.sort()
        print(f"\npropagation to two server processes over {len(lat)} CLI changes: p50 {lat[len(lat) // 2] * 1000:.0f} ms, "
              f"p99 {lat[-1] * 1000:.0f} ms (poll 100 ms)")

        # A locator created, then expired: both replicas follow.
        _cli("catalog", "locator", "--config", str(cfg), "--id", "L1", "--asset", "demo")
        for s in (a, b):
            assert _wait_status(s.url("/L1/demo.ism/manifest(format=mpd-time-csf)"), 200), "new locator not served"
        _cli("catalog", "locator", "--config", str(cfg), "--id", "L1", "--asset", "demo", "--expiry", "2020-01-01T00:00:00Z")
        for s in (a, b):
            assert _wait_status(s.url("/L1/demo.ism/manifest(format=mpd-time-csf)"), 404), "expired locator still served"

        # A policy flipped while wrk drives segments: no error of any kind.
        wrk = shutil.which("wrk")
        if wrk is None:
            oracle_missing("wrk not installed (apt-get install wrk, or scripts/setup.sh)")
        p = subprocess.Popen([wrk, "-t1", "-c8", "-d4s", a.url("/demo/video_180p/cenc/2.m4s")], stdout=subprocess.PIPE, text=True)
        for i in range(8):
            policy.write_text(_flip_policy(i))
            _cli("catalog", "import", "--config", str(cfg), str(policy))
            time.sleep(0.3)
        out, _ = p.communicate(timeout=60)
        assert "requests in" in out, out
        assert "Non-2xx" not in out and "Socket errors" not in out, f"errors under a policy change:\n{out}"
        print(out.strip().splitlines()[-2])
    finally:
        stop_server(a)
        stop_server(b)


def _flip_policy(i: int) -> str:
    """The demo asset under cenc with one of two second keys (odd: bbbb…, even: cccc…)."""
    second = "bbbbbbbb-0000-4000-8000-00000000000b" if i % 2 else "cccccccc-0000-4000-8000-00000000000c"
    return f"""[[asset]]
path = "demo"
dash = "DynamicCommonEncryption"
clear_lead_secs = {i % 3}
keys = [{{ kid = "aaaaaaaa-0000-4000-8000-00000000000a", key = "000102030405060708090a0b0c0d0e0f" }},
        {{ kid = "{second}", key = "101112131415161718191a1b1c1d1e1f" }}]
"""


def _wait_status(url: str, status: int, timeout: float = 3.0) -> bool:
    t = time.monotonic()
    while time.monotonic() - t < timeout:
        if fetch(url).status == status:
            return True
        time.sleep(0.02)
    return False


def test_refusals(tmp_path):
    kek = tmp_path / "kek"
    _cli("keys", "init", "--kek", str(kek))
    r = _cli("keys", "init", "--kek", str(kek), check=False)
    assert r.returncode != 0 and "never overwritten" in r.stderr
    db = tmp_path / "db" / "catalog.db"
    cfg = _local_config(tmp_path, "c", kek, db)
    _cli("catalog", "import", "--config", str(cfg), str(GOLDEN))
    # A KEK file others may read.
    kek.chmod(0o640)
    r = _cli("serve", "--config", str(cfg), check=False)
    assert r.returncode != 0 and "chmod 600" in r.stderr, r.stderr
    kek.chmod(0o600)
    # Another KEK: a clear error, nothing served.
    other = tmp_path / "other-kek"
    _cli("keys", "init", "--kek", str(other))
    r = _cli("serve", "--config", str(_local_config(tmp_path, "d", other, db)), check=False)
    assert r.returncode != 0 and "does not open" in r.stderr and "listening" not in r.stdout, r.stderr
    # A TOML catalog and a database at once.
    bad = tmp_path / "e.toml"
    bad.write_text(cfg.read_text() + f'catalog = "{GOLDEN}"\n')
    r = _cli("serve", "--config", str(bad), check=False)
    assert r.returncode != 0 and "not both" in r.stderr
    # An unreachable PostgreSQL at first start names it.
    r = _cli("serve", "--config", str(_pg_config(tmp_path, kek)), check=False)
    assert r.returncode != 0 and "cannot reach the catalog database postgres://sealcast:***@127.0.0.1:1/x" in r.stderr, r.stderr
    assert "secret-password" not in r.stderr


def _pg_config(tmp: Path, kek: Path) -> Path:
    cfg = tmp / "pg.toml"
    cfg.write_text(f"""listen = "127.0.0.1:0"
root = "{FIXTURES}"
database = "postgres://sealcast:secret-password@127.0.0.1:1/x"
kek = {{ local = "{kek}" }}
""")
    return cfg
