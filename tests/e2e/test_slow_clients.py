"""Slow and hostile clients against the real binary (issue 11, connection limits).

A server with short limits (`[limits]` in its config) is held by:
- 500 sockets that sent half a request head (`GET /healthz HTTP/1.1\\r\\nHost: x\\r\\n`),
- 500 keep-alive sockets idle after one request,
- HTTP/2 connections that advertise a zero receive window (SETTINGS_INITIAL_WINDOW_SIZE = 0)
  and ask for the largest segment on every stream they may open, so every response is built
  and then held by flow control;
while /healthz and a normal segment are fetched on fresh connections: they must answer (their
p50/p99 latency is printed, not asserted), the server's peak RSS (VmHWM) must stay under the
bound the limits imply (below), and every hostile socket must be closed by the server after
its limit. The HTTP/2 client is written with raw frames (no `h2` package is installed here and
nothing more is needed: a preface, one SETTINGS frame and HEADERS frames).

Also: half-header sockets over TLS are closed after the header timeout, and SIGTERM with
never-reading clients connected exits 0 once the drain limit has passed.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import socket
import ssl
import subprocess
import shutil
import time
from pathlib import Path

import pytest

from oracle import metrics_url, FIXTURES, dash_representations, fetch, fill_template, prometheus_samples, \
    start_server_config, start_tls_server_config, stop_server

MIB = 1 << 20
HALF = 500
IDLE = 500
H2_CONNS = 10
H2_STREAMS = 100  # = limits.h2_max_concurrent_streams below
LIMITS = {
    "header_read_timeout_ms": 2000,
    "idle_timeout_ms": 3000,
    "write_timeout_ms": 3000,
    "request_timeout_ms": 2000,
    "drain_timeout_ms": 2000,
    "max_connections": 4000,
    "h2_max_concurrent_streams": H2_STREAMS,
}
# How long after its limit a socket may take to be seen closed (a busy 2-core machine).
GRACE = 30.0
# Not response bodies: connection buffers (1000+ sockets), runtime and blocking threads, what
# the allocator keeps. Measured in this test: see the printed figures.
OVERHEAD = 64 * MIB


def _status(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {key} for pid {pid}")


def _config(d: Path, limits: dict, tls: tuple[Path, Path] | None = None) -> Path:
    cfg = d / "sealcast.toml"
    text = f'listen = "127.0.0.1:0"\nroot = {json.dumps(str(FIXTURES.resolve()))}\n'
    if tls:
        text += f'[tls]\ncert = {json.dumps(str(tls[0]))}\nkey = {json.dumps(str(tls[1]))}\n'
    text += "[limits]\n" + "".join(f"{k} = {v}\n" for k, v in limits.items())
    cfg.write_text(text)
    return cfg


def _addr(base: str) -> tuple[str, int]:
    host, port = base.split("://", 1)[1].rsplit(":", 1)
    return host, int(port)


def _percentile(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def _segment_urls(base: str) -> list[tuple[str, int]]:
    """Every media segment of `demo` with its size."""
    out = []
    for rep in dash_representations(base, "demo"):
        for seg in rep.segments:
            url = seg.url
            r = fetch(url)
            assert r.status == 200, f"{url}: {r.status}"
            out.append((url, len(r.body)))
    return out


def _half_header(addr, wrap=None) -> socket.socket:
    s = socket.create_connection(addr, timeout=30)
    if wrap:
        s = wrap(s)
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    return s


def _idle(addr) -> socket.socket:
    s = socket.create_connection(addr, timeout=30)
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    got = b""
    while not got.endswith(b"\r\n\r\nok\n"):
        chunk = s.recv(4096)
        assert chunk, "server closed a fresh keep-alive connection"
        got += chunk
    return s


def _h2_zero_window(addr, path: str, streams: int) -> socket.socket:
    """Preface, SETTINGS_INITIAL_WINDOW_SIZE = 0, then `streams` GETs of `path` (HPACK:
    `:method GET` and `:scheme http` from the static table, `:path` and `:authority` as
    literals without indexing)."""
    s = socket.create_connection(addr, timeout=30)
    out = bytearray(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
    out += bytes([0, 0, 6, 0x4, 0, 0, 0, 0, 0]) + bytes([0, 0x4, 0, 0, 0, 0])
    p = path.encode()
    assert len(p) < 127
    block = bytes([0x82, 0x86, 0x04, len(p)]) + p + bytes([0x01, 1]) + b"x"
    for i in range(streams):
        sid = 1 + 2 * i
        out += len(block).to_bytes(3, "big") + bytes([0x1, 0x5]) + sid.to_bytes(4, "big") + block
    s.sendall(out)
    return s


def _closed_all(socks: list[socket.socket], timeout: float) -> tuple[int, list[float]]:
    """Reads every socket until the server closes it; returns how many are still open after
    `timeout` and when (seconds from now) each closed one was seen closed."""
    sel = selectors.DefaultSelector()
    for s in socks:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
    t0 = time.monotonic()
    seen: list[float] = []
    left = len(socks)
    while left and time.monotonic() - t0 < timeout:
        for key, _ in sel.select(timeout=0.5):
            s = key.fileobj
            try:
                data = s.recv(65536)
            except ssl.SSLWantReadError:
                continue
            except (ConnectionError, OSError, ssl.SSLError):
                data = b""
            if not data:
                sel.unregister(s)
                seen.append(time.monotonic() - t0)
                left -= 1
    sel.close()
    return left, seen


def _timed_get(url: str) -> tuple[int, float]:
    t = time.monotonic()
    r = fetch(url)
    return r.status, (time.monotonic() - t) * 1000


def _metrics(base: str) -> dict[str, float]:
    return prometheus_samples(fetch(metrics_url(base)).body.decode())


@pytest.fixture()
def no_fd_limit():
    if not Path("/proc/self/status").exists():
        pytest.skip("needs /proc (Linux) to read the server's VmHWM")
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = HALF + IDLE + H2_CONNS + 200
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, need * 2), hard))
    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < need:
        pytest.skip(f"needs {need} file descriptors")


def test_slow_clients_do_not_take_the_server_down(tmp_path, no_fd_limit, capsys):
    srv = start_server_config(_config(tmp_path, LIMITS), tmp_path / "sealcast.stderr.log")
    socks: dict[str, list[socket.socket]] = {}
    try:
        addr = _addr(srv.base_url)
        segs = _segment_urls(srv.base_url)
        big_url, big = max(segs, key=lambda x: x[1])
        normal_url = segs[len(segs) // 2][0]
        idle_rss = _status(srv.proc.pid, "VmRSS")

        t_open = time.monotonic()
        socks["half-header"] = [_half_header(addr) for _ in range(HALF)]
        socks["idle keep-alive"] = [_idle(addr) for _ in range(IDLE)]
        path = big_url.split(srv.base_url, 1)[1]
        socks["HTTP/2 zero window"] = [_h2_zero_window(addr, path, H2_STREAMS) for _ in range(H2_CONNS)]
        opened = time.monotonic() - t_open

        # Well-behaved clients while all of that is connected.
        health, seg = [], []
        for i in range(200):
            st, ms = _timed_get(srv.base_url + "/healthz")
            assert st == 200, f"/healthz answered {st} under slow clients"
            health.append(ms)
            if i % 4 == 0:
                st, ms = _timed_get(normal_url)
                assert st == 200, f"{normal_url} answered {st} under slow clients"
                seg.append(ms)

        closed = {}
        for name, ss in socks.items():
            left, seen = _closed_all(ss, GRACE + 5)
            closed[name] = (left, seen)
        hwm = _status(srv.proc.pid, "VmHWM")
        m = _metrics(srv.base_url)
        # Every HTTP/2 response body is at most the largest segment; the connections are cut
        # after write_timeout, so at most H2_CONNS x H2_STREAMS of them are held at once.
        bound = idle_rss + H2_CONNS * H2_STREAMS * big + OVERHEAD
        with capsys.disabled():
            print(f"\n[slow clients] opened {HALF} half-header + {IDLE} idle + {H2_CONNS}x{H2_STREAMS} "
                  f"zero-window HTTP/2 streams (largest segment {big} B) in {opened:.1f} s")
            print(f"[slow clients] /healthz p50 {_percentile(health, 50):.1f} ms p99 {_percentile(health, 99):.1f} ms "
                  f"(n={len(health)}); segment p50 {_percentile(seg, 50):.1f} ms p99 {_percentile(seg, 99):.1f} ms (n={len(seg)})")
            for name, (left, seen) in closed.items():
                if seen:
                    print(f"[slow clients] {name}: {len(seen)} closed by the server, seen closed "
                          f"{min(seen):.1f}-{max(seen):.1f} s after the load phase, {left} still open")
            print(f"[slow clients] RSS idle {idle_rss / MIB:.1f} MiB, peak (VmHWM) {hwm / MIB:.1f} MiB, "
                  f"bound {bound / MIB:.1f} MiB")
            print("[slow clients] " + ", ".join(f"{k}={v:g}" for k, v in m.items() if k.startswith("sealcast_limits_total")))
        for name, (left, _) in closed.items():
            assert left == 0, f"{left} {name} sockets still open {GRACE:.0f} s after their limit"
        assert hwm <= bound, f"peak RSS {hwm / MIB:.1f} MiB over the bound {bound / MIB:.1f} MiB"
        assert m.get('sealcast_limits_total{limit="response_stalled"}', 0) >= H2_CONNS
        # HTTP/1 idle sockets may be closed by either limit: hyper runs its header-read timer
        # while it waits for the next request head too. Which one acted is printed above.
        assert srv.alive()
    finally:
        for ss in socks.values():
            for s in ss:
                s.close()
        code = stop_server(srv)
    assert code == 0, f"exit code {code} after SIGTERM"


def test_sigterm_exits_zero_after_the_drain_limit_with_stalled_clients(tmp_path, no_fd_limit, capsys):
    # Limits that never end the stalled clients by themselves: only the drain can.
    limits = {**LIMITS, "write_timeout_ms": 600000, "idle_timeout_ms": 600000, "header_read_timeout_ms": 600000}
    srv = start_server_config(_config(tmp_path, limits), tmp_path / "sealcast.stderr.log")
    socks = []
    try:
        addr = _addr(srv.base_url)
        big_url, _ = max(_segment_urls(srv.base_url), key=lambda x: x[1])
        path = big_url.split(srv.base_url, 1)[1]
        never_reads = socket.create_connection(addr)
        never_reads.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        never_reads.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode() * 400)
        socks = [never_reads, _half_header(addr), _h2_zero_window(addr, path, H2_STREAMS)]
        # Let the server take them in and start answering (the three sockets; metrics are read
        # on the metrics listener, whose connections are not counted).
        assert _wait(lambda: _metrics(srv.base_url).get("sealcast_connections_open", 0) >= 3, 30)
        t = time.monotonic()
        srv.proc.send_signal(signal.SIGTERM)
        try:
            code = srv.proc.wait(LIMITS["drain_timeout_ms"] / 1000 + GRACE)
        except subprocess.TimeoutExpired:
            code = None
        took = time.monotonic() - t
        with capsys.disabled():
            print(f"\n[drain] SIGTERM to exit: {took:.2f} s (drain limit {LIMITS['drain_timeout_ms'] / 1000:.1f} s), code {code}")
        assert code == 0, f"after SIGTERM: exit code {code} (None: still running after the drain limit + {GRACE:.0f} s)"
    finally:
        for s in socks:
            s.close()
        stop_server(srv)


def _wait(pred, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if pred():
                return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


def test_half_header_sockets_over_tls_are_closed(tmp_path, no_fd_limit, capsys):
    if shutil.which("openssl") is None:
        pytest.fail("openssl not installed (needed for a test certificate)")
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key",
                        "-out", "server.pem", "-days", "2", "-subj", "/CN=localhost",
                        "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr[-500:]
    cfg = _config(tmp_path, LIMITS, (tmp_path / "server.pem", tmp_path / "server.key"))
    srv = start_tls_server_config(cfg, tmp_path / "sealcast.stderr.log")
    ctx = ssl.create_default_context(cafile=str(tmp_path / "server.pem"))
    ctx.set_alpn_protocols(["http/1.1"])
    socks = []
    try:
        addr = _addr(srv.base_url)
        wrap = lambda s: ctx.wrap_socket(s, server_hostname="127.0.0.1")
        socks = [_half_header(addr, wrap) for _ in range(100)]
        # A well-behaved HTTPS client still gets through.
        ok = wrap(socket.create_connection(addr, timeout=30))
        ok.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        got = b""
        while chunk := ok.recv(4096):
            got += chunk
        ok.close()
        assert got.startswith(b"HTTP/1.1 200"), got[:100]
        left, seen = _closed_all(socks, LIMITS["header_read_timeout_ms"] / 1000 + GRACE)
        with capsys.disabled():
            print(f"\n[tls] {len(seen)} half-header TLS sockets closed by the server "
                  f"({min(seen, default=0):.1f}-{max(seen, default=0):.1f} s), {left} still open")
        assert left == 0, f"{left} half-header TLS sockets still open"
        assert srv.alive()
    finally:
        for s in socks:
            s.close()
        code = stop_server(srv)
    assert code == 0
