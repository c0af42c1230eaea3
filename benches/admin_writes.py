#!/usr/bin/env python3
"""Management API figures (issue 14): v2 writes per second (POST /api/Assets: validate, one
transaction with the version bump and the audit row) on SQLite and on PostgreSQL (a throwaway
cluster, when Debian's server binaries are installed), one client and eight, and the time from
POST /api/Locators to the first 200 on the streaming URL (the server's catalog poll is the
PostgreSQL NOTIFY or, on SQLite, `catalog_poll_ms`).

    python3 benches/admin_writes.py [N]        (release binary, or SEALCAST_BIN)
"""

from __future__ import annotations

import base64
import concurrent.futures
import hashlib
import hmac
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "e2e"))
from oracle import FIXTURES, Postgres, fetch, start_server_config, stop_server  # noqa: E402

SECRET = b"sealcast-bench-admin-secret-0123456789"


def jwt() -> str:
    b = lambda x: base64.urlsafe_b64encode(x).rstrip(b"=").decode()
    h = b(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    p = b(json.dumps({"iss": "bench", "aud": "admin", "sub": "bench", "role": ["read", "write"], "exp": int(time.time()) + 3600}).encode())
    return f"{h}.{p}.{b(hmac.new(SECRET, f'{h}.{p}'.encode(), hashlib.sha256).digest())}"


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(label: str, database: str, work: Path, n: int) -> None:
    kek = work / "kek"
    subprocess.run([os.environ["SEALCAST_BIN"], "keys", "init", "--kek", str(kek)], check=True, capture_output=True)
    port = free_port()
    (work / "root").mkdir()
    cfg = work / "sealcast.toml"
    cfg.write_text(f"""listen = "127.0.0.1:0"
root = "{work / 'root'}"
database = "{database}"
kek = {{ local = "{kek}" }}
[admin]
listen = "127.0.0.1:{port}"
token = {{ token_type = "Jwt", issuer = "bench", audience = "admin", keys = [ {{ symmetric = "{base64.b64encode(SECRET).decode()}" }} ] }}
""")
    server = start_server_config(cfg, work / "server.log")
    tok = jwt()
    headers = {"Authorization": f"Bearer {tok}", "Content-Type": "application/json"}
    try:
        def post(conn: http.client.HTTPConnection, path: str, body: dict) -> dict:
            conn.request("POST", "/api/" + path, body=json.dumps(body), headers=headers)
            r = conn.getresponse()
            out = r.read()
            assert r.status == 201, out
            return json.loads(out)

        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        t = time.perf_counter()
        for i in range(n):
            post(conn, "Assets", {"Name": f"s{i}", "AlternateId": f"bench/s{i}"})
        one = n / (time.perf_counter() - t)

        def worker(w: int) -> None:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            for i in range(n // 8):
                post(c, "Assets", {"Name": f"c{w}-{i}", "AlternateId": f"bench/c{w}-{i}"})

        t = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            list(ex.map(worker, range(8)))
        eight = (n // 8 * 8) / (time.perf_counter() - t)

        # POST Locators → first 200 on the streaming URL.
        lat = []
        for i in range(20):
            shutil.copytree(FIXTURES / "demo", work / "root" / "bench" / f"s{i}")
            aid = None
            conn.request("GET", f"/api/Assets?$filter=Name%20eq%20's{i}'", headers=headers)
            aid = json.loads(conn.getresponse().read())["value"][0]["Id"]
            ap = post(conn, "AccessPolicies", {"Name": "p", "DurationInMinutes": 60, "Permissions": 1})
            t = time.perf_counter()
            loc = post(conn, "Locators", {"AccessPolicyId": ap["Id"], "AssetId": aid, "Type": 2})
            url = f"{server.base_url}/{loc['ContentAccessComponent']}/demo.ism/manifest(format=mpd-time-csf)"
            while fetch(url).status != 200:
                time.sleep(0.002)
            lat.append(time.perf_counter() - t)
        lat.sort()
        print(f"| {label} | {one:.0f} | {eight:.0f} | {lat[len(lat) // 2] * 1000:.0f} ms | {lat[-1] * 1000:.0f} ms |")
    finally:
        stop_server(server)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 400
    os.environ.setdefault("SEALCAST_BIN", str(REPO / "target" / "release" / "sealcast"))
    print(f"| database | v2 writes/s, 1 client | 8 clients | POST Locators → first 200, p50 | max (of 20) |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as d:
        run("SQLite (poll 250 ms)", f"sqlite://{d}/db/catalog.db", Path(d), n)
    pg = None
    try:
        pg = Postgres()
    except BaseException as e:  # oracle_missing raises a pytest skip outside pytest
        print(f"(PostgreSQL not measured: {e})")
    if pg:
        try:
            with tempfile.TemporaryDirectory() as d:
                run("PostgreSQL (NOTIFY)", pg.createdb("bench"), Path(d), n)
        finally:
            pg.stop()


if __name__ == "__main__":
    main()
