"""A fleet: three sealcast processes on one storage root and one moto S3 bucket, behind a real
nginx configured as a caching reverse proxy (the stand-in CDN), scraped by a real Prometheus
(issue 16).

- Through nginx, every replica (forced in turn) answers byte-identical bodies with the same
  ETags; a cached answer revalidates with `If-None-Match` through the proxy (304 to the
  player, nginx revalidating with the origin when its copy is stale).
- Prometheus' `/api/v1/query` returns non-zero hit ratios, storage latency and request
  duration quantiles for every replica after a short load.
- `/readyz` over HTTP: 200 once listening; on SIGTERM 503 at once while segments are still
  served for `drain_delay_ms`; exit code 0. With the S3 store gone, 503 naming its breaker.
- One replica drained (SIGTERM) under load: zero errors. One replica killed (SIGKILL) under
  load: nginx fails over, and no request of a client that retries once fails.
- The access logs: one JSON line per request with every field, and no token anywhere.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from oracle import FIXTURES, REPO, oracle_missing, sealcast_bin, start_server_config, stop_server
from test_storage import _create_bucket, _start_on_port_zero, _wait_port, moto_store_toml

ASSET = "demo"
SECRET = "fleet-SECRET-token-0123456789"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, headers: dict | None = None, timeout: float = 10) -> tuple[int, dict, bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def _port_of(base: str) -> int:
    return int(base.rsplit(":", 1)[1])


NGINX_CONF = """
{user}
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log {tmp}/nginx-access.log;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy_temp;
    fastcgi_temp_path {tmp}/fastcgi_temp;
    uwsgi_temp_path {tmp}/uwsgi_temp;
    scgi_temp_path {tmp}/scgi_temp;
    proxy_cache_path {tmp}/cache levels=1:2 keys_zone=edge:10m max_size=512m inactive=10m use_temp_path=off;
    upstream origin {{
{servers}
        keepalive 16;
    }}
{replicas}
    server {{
        listen 127.0.0.1:{port};
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        # A failed replica is skipped (connection refused or reset, timeouts, 502-504).
        proxy_next_upstream error timeout http_502 http_503 http_504;
        proxy_next_upstream_tries 3;
        proxy_connect_timeout 2s;
        add_header X-Cache-Status $upstream_cache_status always;
        add_header X-Upstream $upstream_addr always;
        # What players get: cached by the origin's Cache-Control, revalidated when stale.
        location / {{
            proxy_pass http://origin;
            proxy_cache edge;
            proxy_cache_key $uri;
            proxy_cache_revalidate on;
            proxy_cache_lock on;
        }}
        # Load that must reach the replicas (not the edge cache).
        location /nocache/ {{
            proxy_pass http://origin/;
            proxy_cache off;
        }}
        # One replica, forced.
{forced}
    }}
}}
"""

PROM_CONF = """
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: sealcast
    static_configs:
      - targets: [{targets}]
"""


class Fleet:
    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.procs: list[subprocess.Popen] = []
        self.replicas = []
        self.configs: list[Path] = []

    def stop(self) -> None:
        for s in self.replicas:
            if s.alive():
                stop_server(s)
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    for tool in ("nginx", "prometheus", "moto_server"):
        if shutil.which(tool) is None:
            oracle_missing(f"{tool} not installed (scripts/setup.sh installs it)")
    tmp = tmp_path_factory.mktemp("fleet")
    os.chmod(tmp, 0o755)
    f = Fleet(tmp)
    try:
        proc, s3_port = _start_on_port_zero(["moto_server", "-H", "127.0.0.1", "-p", "0"], tmp / "moto.log", "moto_server", "Running on ")
        f.procs.append(proc)
        f.moto = proc
        _wait_port(s3_port, proc, "moto_server")
        _create_bucket(f"http://127.0.0.1:{s3_port}")
        data = tmp / "data"
        for i in range(3):
            cfg = tmp / f"replica{i + 1}.toml"
            cfg.write_text(f"""listen = "127.0.0.1:0"
root = "{FIXTURES}"
data_dir = "{data}"
allow_clear_without_policy = true

[limits]
drain_delay_ms = 1500
drain_timeout_ms = 5000

[access_log]
path = "{tmp / f'access{i + 1}.jsonl'}"
trusted_proxies = ["127.0.0.1"]

[storage]
connect_timeout_ms = 300
read_timeout_ms = 1000
max_retries = 0
breaker_failures = 2
breaker_cooldown_ms = 60000

{moto_store_toml(s3_port)}""")
            f.configs.append(cfg)
            if i == 0:
                # The asset in S3, once, through the first replica's config.
                files = sorted(str(p) for p in (FIXTURES / ASSET).iterdir() if p.is_file())
                out = subprocess.run([str(sealcast_bin()), "ingest", "--config", str(cfg), "--asset", f"s3/{ASSET}",
                                      "--catalog", str(tmp / "unused-catalog.toml"), *files],
                                     capture_output=True, text=True, timeout=120, cwd=REPO)
                assert out.returncode == 0, out.stderr[-2000:]
            # One after the other: the first creates the shared database and its KEK.
            f.replicas.append(start_server_config(cfg, tmp / f"replica{i + 1}.log"))
        ports = [_port_of(s.base_url) for s in f.replicas]
        f.edge_port = _free_port()
        servers = "\n".join(f"        server 127.0.0.1:{p} max_fails=1 fail_timeout=30s;" for p in ports)
        forced = "\n".join(f"        location /replica{i + 1}/ {{ proxy_pass http://127.0.0.1:{p}/; proxy_cache off; }}" for i, p in enumerate(ports))
        (tmp / "nginx.conf").write_text(NGINX_CONF.format(user="user root;" if os.geteuid() == 0 else "", tmp=tmp, servers=servers,
                                                          replicas="", port=f.edge_port, forced=forced))
        nginx = subprocess.Popen(["nginx", "-p", str(tmp), "-c", str(tmp / "nginx.conf")], stdout=subprocess.DEVNULL,
                                 stderr=open(tmp / "nginx.stderr", "wb"), stdin=subprocess.DEVNULL)
        f.procs.append(nginx)
        _wait_port(f.edge_port, nginx, "nginx")
        f.prom_port = _free_port()
        targets = ", ".join(f'"{s.metrics_base.removeprefix("http://")}"' for s in f.replicas)
        (tmp / "prometheus.yml").write_text(PROM_CONF.format(targets=targets))
        prom = subprocess.Popen(["prometheus", f"--config.file={tmp / 'prometheus.yml'}", f"--storage.tsdb.path={tmp / 'tsdb'}",
                                 f"--web.listen-address=127.0.0.1:{f.prom_port}"], stdout=subprocess.DEVNULL,
                                stderr=open(tmp / "prometheus.log", "wb"), stdin=subprocess.DEVNULL)
        f.procs.append(prom)
        _wait_port(f.prom_port, prom, "prometheus")
        f.edge = f"http://127.0.0.1:{f.edge_port}"
        yield f
    finally:
        f.stop()


def _urls(edge: str) -> list[str]:
    """Manifests, inits and segments of the demo asset, local and in S3."""
    _, _, mpd = _get(f"{edge}/{ASSET}/manifest.mpd")
    import re
    tracks = sorted(set(re.findall(r'<Representation id="([^"]+)"', mpd.decode())))
    assert tracks, mpd[:500]
    out = []
    for prefix in ("", "s3/"):
        out += [f"{prefix}{ASSET}/manifest.mpd", f"{prefix}{ASSET}/master.m3u8", f"{prefix}{ASSET}/Manifest"]
        for t in tracks:
            out += [f"{prefix}{ASSET}/{t}/init.mp4", f"{prefix}{ASSET}/{t}/1.m4s", f"{prefix}{ASSET}/{t}/2.m4s", f"{prefix}{ASSET}/{t}/1.ts"]
    return out


def _load(edge: str, urls: list[str], seconds: float, threads: int = 4, retry: bool = False) -> tuple[int, list[str]]:
    """GETs of `urls` through nginx's uncached path for `seconds`; returns (requests, errors).
    With `retry`, a failed request (error status, transport error, short body) is tried once
    more, as players do."""
    stop = time.monotonic() + seconds
    count = [0]
    errors: list[str] = []
    lock = threading.Lock()

    def one(u: str) -> str | None:
        try:
            s, h, b = _get(f"{edge}/nocache/{u}?token={SECRET}")
        except Exception as e:  # noqa: BLE001 - any transport failure counts
            return f"{u}: {e}"
        if s != 200:
            return f"{u}: {s}"
        if "content-length" in h and int(h["content-length"]) != len(b):
            return f"{u}: short body {len(b)}/{h['content-length']}"
        return None

    def worker(k: int) -> None:
        i = k
        while time.monotonic() < stop:
            u = urls[i % len(urls)]
            i += threads
            err = one(u)
            if err and retry:
                err = one(u)
            with lock:
                count[0] += 1
                if err:
                    errors.append(err)

    ts = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return count[0], errors


def _prom(f: Fleet, query: str) -> dict[str, float]:
    q = urllib.parse.urlencode({"query": query})
    s, _, b = _get(f"http://127.0.0.1:{f.prom_port}/api/v1/query?{q}")
    assert s == 200, b[:500]
    doc = json.loads(b)
    assert doc["status"] == "success", doc
    return {r["metric"].get("instance", ""): float(r["value"][1]) for r in doc["data"]["result"]}


def test_replicas_agree_through_the_proxy_and_revalidate(fleet):
    urls = _urls(fleet.edge)
    for u in urls:
        answers = []
        for i in range(3):
            s, h, b = _get(f"{fleet.edge}/replica{i + 1}/{u}")
            assert s == 200, f"replica {i + 1} {u}: {s} {b[:200]!r}"
            answers.append((h.get("etag"), b))
        assert answers[0][0], f"{u}: no ETag"
        assert all(a == answers[0] for a in answers), f"{u}: replicas differ ({[a[0] for a in answers]})"
        # Through the edge cache: the same bytes and ETag; then a conditional GET is a 304.
        s, h, b = _get(f"{fleet.edge}/{u}")
        assert (s, h.get("etag"), b) == (200, answers[0][0], answers[0][1]), u
        s, h, _ = _get(f"{fleet.edge}/{u}", {"If-None-Match": answers[0][0]})
        assert s == 304, f"{u}: If-None-Match through the proxy answered {s}"
    # A stale manifest (max-age=5) is revalidated by nginx with the origin: If-None-Match
    # upstream, 304 from a replica, served from the refreshed cache.
    u = f"{fleet.edge}/{ASSET}/manifest.mpd"
    _, first, body = _get(u)
    time.sleep(6)
    s, h, b = _get(u)
    assert (s, h.get("x-cache-status"), b, h.get("etag")) == (200, "REVALIDATED", body, first.get("etag")), h


def test_prometheus_sees_every_replica(fleet):
    n, errors = _load(fleet.edge, _urls(fleet.edge), seconds=4)
    assert not errors and n > 50, (n, errors[:5])
    instances = {s.metrics_base.removeprefix("http://") for s in fleet.replicas}
    queries = {
        "fragment cache hit ratio": 'sealcast_cache_hits_total{cache="fragment"} / (sealcast_cache_hits_total{cache="fragment"} + sealcast_cache_misses_total{cache="fragment"})',
        "storage read p90": 'histogram_quantile(0.9, sum by (instance, le) (sealcast_storage_operation_duration_seconds_bucket{operation="read"}))',
        "S3 read p90": 'histogram_quantile(0.9, sum by (instance, le) (sealcast_storage_operation_duration_seconds_bucket{store="s3",operation="read",outcome="ok"}))',
        "segment duration p50": 'histogram_quantile(0.5, sum by (instance, le) (http_server_request_duration_seconds_bucket{http_route="segment"}))',
        "request duration p99": 'histogram_quantile(0.99, sum by (instance, le) (http_server_request_duration_seconds_bucket))',
        "egress bytes": 'sum by (instance) (http_server_response_body_size_bytes_sum)',
    }
    deadline = time.monotonic() + 30
    while True:
        got = {name: _prom(fleet, q) for name, q in queries.items()}
        bad = {name: v for name, v in got.items() if set(v) != instances or not all(x > 0 for x in v.values())}
        if not bad:
            break
        assert time.monotonic() < deadline, f"Prometheus lacks non-zero values for every replica: {bad}"
        time.sleep(1)
    print({name: {k: round(x, 6) for k, x in v.items()} for name, v in got.items()})


def test_access_logs_have_every_field_and_no_token(fleet):
    _load(fleet.edge, _urls(fleet.edge)[:6], seconds=1, threads=1)
    time.sleep(0.5)
    lines = []
    for i in range(3):
        text = (fleet.tmp / f"access{i + 1}.jsonl").read_text()
        assert SECRET not in text, "a token reached the access log"
        lines += [json.loads(l) for l in text.splitlines()]
    assert len(lines) > 20
    fields = {"time", "request_id", "client", "peer", "method", "path", "route", "asset", "protocol", "protection", "status", "bytes",
              "duration_ms", "cache", "storage_reads"}
    for l in lines:
        assert fields <= set(l), f"missing {fields - set(l)} in {l}"
        assert "?" not in l["path"]
    seg = [l for l in lines if l["route"] == "segment"]
    assert seg and {l["cache"] for l in seg} == {"hit", "miss"}, {l["cache"] for l in seg}
    # nginx (a trusted proxy) set X-Forwarded-For: the client is the test's own address.
    assert all(l["client"] == "127.0.0.1" for l in seg)


def test_readiness_drain_and_failover_under_load(fleet):
    urls = [u for u in _urls(fleet.edge) if not u.startswith("s3/")]
    r1, r2, r3 = fleet.replicas
    for r in fleet.replicas:
        assert _get(r.url("/readyz"))[0] == 200
    # Drain replica 3 under load: readiness 503 at once, segments still served, exit 0, and
    # no request through the proxy fails, without retries.
    result: dict = {}
    loader = threading.Thread(target=lambda: result.update(zip(("n", "errors"), _load(fleet.edge, urls, seconds=6))))
    loader.start()
    time.sleep(1)
    r3.proc.send_signal(signal.SIGTERM)
    t = time.monotonic()
    # The signal is delivered asynchronously: a probe sent in the same instant can still see
    # 200. Readiness must turn within well under the drain delay (checked below).
    while True:
        s, _, body = _get(r3.url("/readyz"))
        if (s, body.strip()) == (503, b"draining") or time.monotonic() - t > 1.0:
            break
        time.sleep(0.02)
    assert (s, body.strip()) == (503, b"draining"), (s, body)
    assert _get(r3.url(f"/{urls[3]}"))[0] == 200, "not serving during the drain delay"
    assert time.monotonic() - t < 1.5, "the checks above ran after the drain delay"
    assert r3.proc.wait(20) == 0, "a drained replica must exit 0"
    loader.join()
    assert result["n"] > 50 and not result["errors"], f"{len(result['errors'])} errors while draining: {result['errors'][:5]}"
    # Kill replica 1 under load: nginx fails over; a client retrying once never fails.
    loader = threading.Thread(target=lambda: result.update(zip(("n", "errors"), _load(fleet.edge, urls, seconds=5, retry=True))))
    loader.start()
    time.sleep(1.5)
    r1.proc.send_signal(signal.SIGKILL)
    r1.proc.wait(10)
    loader.join()
    assert result["n"] > 50 and not result["errors"], f"{len(result['errors'])} errors after a replica died: {result['errors'][:5]}"
    print(f"drain and kill: {result['n']} requests in the kill phase, no error after a retry")


def test_storage_down_turns_readiness_503(fleet):
    live = [r for r in fleet.replicas if r.alive()]
    assert live
    r = live[0]
    fleet.moto.terminate()
    fleet.moto.wait(10)
    # Uncached S3 reads fail until the breaker opens (breaker_failures = 2).
    deadline = time.monotonic() + 30
    while True:
        for n in range(3, 9):
            _get(r.url(f"/s3/{ASSET}/video_360p/{n}.m4s"))
        s, _, body = _get(r.url("/readyz"))
        if s == 503:
            break
        assert time.monotonic() < deadline, f"readiness stayed {s} with storage down"
    assert body.strip() == b"degraded: storage circuit open: s3", body
    assert _get(r.url("/healthz"))[0] == 200, "liveness must not follow storage"
