#!/usr/bin/env python3
"""Soak benchmark: well-behaved load at twice the measured capacity, mixed with hostile clients.

    python3 benches/soak.py                       # 10 minutes (the issue's soak)
    SEALCAST_SOAK_SECS=180 python3 benches/soak.py  # shorter

Not run in CI. Loopback only; every client is bounded in count and time. See benches/README.md.

1. Starts `target/release/sealcast` (or SEALCAST_BIN) on 127.0.0.1:0 over `fixtures/` with the
   default `[limits]` except the ones listed in LIMITS below (shorter, so hostile sockets cycle
   many times within the run).
2. Capacity: h2load (HTTP/1.1, 16 connections, no rate limit) for CAPACITY_SECS over a mix of
   URLs (segments, init segments, manifests, playlists, /healthz): requests per second.
3. Soak: two h2load runs for the whole duration, each offering the measured capacity (so twice
   it in all) through `--rps` per client: one over HTTP/1.1, one over HTTP/2 (h2c, 4 streams).
   Meanwhile hostile clients, each kind kept at a fixed count and reopened when the server
   closes them: half-header sockets, silent sockets, idle keep-alive sockets, HTTP/2
   connections with a zero receive window asking for the largest segment on 100 streams, HTTP/1
   clients that pipeline segment requests and never read, and trickle readers (16 bytes a
   second).
4. Every SAMPLE_SECS: the server's VmRSS, open connections and limit counters (/metrics).
5. Report: well-behaved requests, failures and non-2xx statuses per run; RSS over time (first
   and last minute, peak VmHWM); hostile sockets opened and closed by the server. Exit 0 when
   the well-behaved clients saw no error and the server stayed up, 1 otherwise.
"""

from __future__ import annotations

import json
import os
import random
import re
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(os.environ.get("SEALCAST_BIN", REPO / "target/release/sealcast"))
SECS = int(os.environ.get("SEALCAST_SOAK_SECS", "600"))
CAPACITY_SECS = int(os.environ.get("SEALCAST_SOAK_CAPACITY_SECS", "15"))
SAMPLE_SECS = 10
CONNS = 16
LIMITS = {
    "header_read_timeout_ms": 5000,
    "idle_timeout_ms": 10000,
    "write_timeout_ms": 5000,
    "max_connections": 4096,
}
HOSTILE = {"half_header": 300, "silent": 100, "idle": 200, "h2_zero_window": 8, "never_reads": 20, "trickle": 10}
MIB = 1 << 20

stop = threading.Event()
counts_lock = threading.Lock()
opened = {k: 0 for k in HOSTILE}
closed_by_server = {k: 0 for k in HOSTILE}


def log(msg: str) -> None:
    print(f"[soak {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def status(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    return 0


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=20) as r:
        return r.read()


# The server's metrics listener (set at start-up): metrics are never on the public port.
METRICS_BASE = ""


def metrics(base: str) -> dict[str, float]:
    out = {}
    for line in get(METRICS_BASE + "/metrics").decode().splitlines():
        m = re.match(r"^([a-zA-Z_:][^\s]*)\s+(\S+)$", line)
        if m and not line.startswith("#"):
            out[m.group(1)] = float(m.group(2))
    return out


def urls(base: str) -> list[str]:
    """Manifests, playlists, inits and media segments of every fixture asset the server lists."""
    out = [base + "/healthz"]
    for asset in ("demo", "multi"):
        for name in ("manifest.mpd", "master.m3u8"):
            out.append(f"{base}/{asset}/{name}")
        try:
            master = get(f"{base}/{asset}/master.m3u8").decode()
        except OSError:
            continue
        for line in master.splitlines():
            m = re.search(r'URI="([^"]+)"', line)
            ref = m.group(1) if m else (line if line and not line.startswith("#") else None)
            if not ref:
                continue
            pl_url = f"{base}/{asset}/{ref}"
            out.append(pl_url)
            pl = get(pl_url).decode()
            dirname = pl_url.rsplit("/", 1)[0]
            for l in pl.splitlines():
                m = re.search(r'#EXT-X-MAP:URI="([^"]+)"', l)
                if m:
                    out.append(f"{dirname}/{m.group(1)}")
                elif l and not l.startswith("#"):
                    out.append(f"{dirname}/{l}")
    return sorted(set(out))


def h2load(args: list[str], url_file: Path, secs: int) -> dict:
    cmd = ["h2load", "-i", str(url_file), "-D", str(secs), *args]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=secs + 120)
    text = r.stdout
    out = {"cmd": " ".join(cmd), "exit": r.returncode}
    m = re.search(r"finished in ([\d.]+)(m?s), ([\d.]+) req/s", text)
    if m:
        out["req_per_s"] = float(m.group(3))
    m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout", text)
    if m:
        for k, v in zip(("total", "started", "done", "succeeded", "failed", "errored", "timeout"), m.groups()):
            out[k] = int(v)
    m = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", text)
    if m:
        for k, v in zip(("2xx", "3xx", "4xx", "5xx"), m.groups()):
            out[k] = int(v)
    m = re.search(r"time for request:\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)", text)
    if m:
        out["latency_min_max_mean_sd"] = list(m.groups())
    if "succeeded" not in out:
        out["raw"] = text[-2000:] + r.stderr[-1000:]
    return out


# --------------------------------------------------------------------------- hostile clients


def half_header(addr):
    s = socket.create_connection(addr, timeout=10)
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    return s


def silent(addr):
    return socket.create_connection(addr, timeout=10)


def idle(addr):
    s = socket.create_connection(addr, timeout=10)
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    got = b""
    while not got.endswith(b"ok\n"):
        c = s.recv(4096)
        if not c:
            break
        got += c
    return s


def h2_zero_window(addr, path: str):
    s = socket.create_connection(addr, timeout=10)
    out = bytearray(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
    out += bytes([0, 0, 6, 0x4, 0, 0, 0, 0, 0]) + bytes([0, 0x4, 0, 0, 0, 0])
    p = path.encode()
    block = bytes([0x82, 0x86, 0x04, len(p)]) + p + bytes([0x01, 1]) + b"x"
    for i in range(100):
        out += len(block).to_bytes(3, "big") + bytes([0x1, 0x5]) + (1 + 2 * i).to_bytes(4, "big") + block
    s.sendall(out)
    return s


def never_reads(addr, path: str):
    s = socket.create_connection(addr, timeout=10)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode() * 200)
    return s


def keep(kind: str, n: int, make, addr, hold: float) -> None:
    """Holds `n` sockets of one kind open, reopening them as they go.

    Kinds that read (half-header, silent, idle) watch their sockets and reopen each one the
    server closes. Kinds that must not read (never_reads, h2_zero_window, trickle: 16 bytes a
    second) cannot see the close while the server's data sits unread, so each is held for
    `hold` seconds (longer than the write timeout), then drained for up to 2 s: EOF or a reset
    counts as closed by the server; either way it is replaced."""
    reads = kind in ("half_header", "silent", "idle")
    sel = selectors.DefaultSelector()
    held: list[tuple[float, socket.socket]] = []
    live = 0
    while not stop.is_set():
        while live + len(held) < n and not stop.is_set():
            try:
                s = make(addr)
            except OSError:
                time.sleep(0.2)
                break
            s.setblocking(False)
            if reads:
                sel.register(s, selectors.EVENT_READ)
                live += 1
            else:
                held.append((time.monotonic(), s))
            with counts_lock:
                opened[kind] += 1
        if reads:
            for key, _ in sel.select(timeout=0.5):
                s = key.fileobj
                try:
                    data = s.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:
                    sel.unregister(s)
                    s.close()
                    live -= 1
                    with counts_lock:
                        closed_by_server[kind] += 1
            continue
        time.sleep(1)
        now = time.monotonic()
        keep_: list[tuple[float, socket.socket]] = []
        for t, s in held:
            if kind == "trickle":
                try:
                    s.recv(16)
                except OSError:
                    pass
            if now - t < hold:
                keep_.append((t, s))
                continue
            eof = False
            if kind != "h2_zero_window":
                # The server's FIN waits behind the data it had sent, which a reader that
                # hardly reads does not get through: a request sent to a socket the server
                # closed gets a reset at once instead.
                try:
                    s.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                except BlockingIOError:
                    pass
                except OSError:
                    eof = True
            end = time.monotonic() + 2
            while not eof and time.monotonic() < end and not stop.is_set():
                try:
                    if not s.recv(1 << 20):
                        eof = True
                        break
                except BlockingIOError:
                    time.sleep(0.01)
                except OSError:
                    eof = True
                    break
            s.close()
            if eof:
                with counts_lock:
                    closed_by_server[kind] += 1
        held = keep_
    for key in list(sel.get_map().values()):
        key.fileobj.close()
    for _, s in held:
        s.close()
    sel.close()


# --------------------------------------------------------------------------- main


def main() -> int:
    if not BIN.exists():
        sys.exit(f"{BIN} not found: cargo build --release -p sealcast-origin, or set SEALCAST_BIN")
    for tool in ("h2load",):
        if subprocess.run(["which", tool], capture_output=True).returncode != 0:
            sys.exit(f"{tool} missing (Debian nghttp2-client; scripts/setup.sh installs it)")
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 16384), hard))
    work = Path(tempfile.mkdtemp(prefix="sealcast-soak."))
    cfg = work / "sealcast.toml"
    cfg.write_text(f'listen = "127.0.0.1:0"\nroot = {json.dumps(str(REPO / "fixtures"))}\n[limits]\n'
                   + "".join(f"{k} = {v}\n" for k, v in LIMITS.items()))
    err = open(work / "server.log", "wb")
    global METRICS_BASE
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        metrics_port = s.getsockname()[1]
    METRICS_BASE = f"http://127.0.0.1:{metrics_port}"
    proc = subprocess.Popen([str(BIN), "serve", "--config", str(cfg), "--metrics", f"127.0.0.1:{metrics_port}"],
                            stdout=subprocess.PIPE, stderr=err)
    line = proc.stdout.readline().decode()
    m = re.match(r"sealcast listening on (http://127\.0\.0\.1:(\d+))", line)
    if not m:
        proc.kill()
        sys.exit(f"server did not start: {line!r}")
    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
    base, addr = m.group(1), ("127.0.0.1", int(m.group(2)))
    pid = proc.pid
    code = 1
    threads = []
    try:
        all_urls = urls(base)
        sizes = {u: len(get(u)) for u in all_urls}
        url_file = work / "urls.txt"
        url_file.write_text("\n".join(all_urls) + "\n")
        big = max((u for u in all_urls if u.endswith(".m4s")), key=lambda u: sizes[u])
        big_path = big.split(base, 1)[1]
        log(f"{len(all_urls)} URLs, mean body {sum(sizes.values()) / len(sizes) / 1024:.1f} KiB, "
            f"largest segment {sizes[big] / 1024:.1f} KiB; idle RSS {status(pid, 'VmRSS') / MIB:.1f} MiB")

        cap = h2load(["--h1", "-c", str(CONNS), "-t", "1"], url_file, CAPACITY_SECS)
        capacity = cap.get("req_per_s", 0.0)
        log(f"capacity (h2load --h1 -c {CONNS}, {CAPACITY_SECS} s, no rate limit): {capacity:.0f} req/s, "
            f"{cap.get('failed', '?')} failed")
        if capacity <= 0:
            log(f"capacity run failed: {cap}")
            return 1
        # Each run offers the capacity: CONNS clients x rps.
        rps = max(1, int(round(capacity / CONNS)))

        for kind, n in HOSTILE.items():
            make = {"half_header": half_header, "silent": silent, "idle": idle,
                    "h2_zero_window": lambda a: h2_zero_window(a, big_path),
                    "never_reads": lambda a: never_reads(a, big_path),
                    "trickle": lambda a: never_reads(a, big_path)}[kind]
            hold = 2 * LIMITS["write_timeout_ms"] / 1000
            t = threading.Thread(target=keep, args=(kind, n, make, addr, hold), daemon=True)
            t.start()
            threads.append(t)
        time.sleep(2)

        results = {}

        def run(name, args):
            results[name] = h2load(args, url_file, SECS)

        loads = [threading.Thread(target=run, args=("h1", ["--h1", "-c", str(CONNS), "-t", "1", f"--rps={rps}"])),
                 threading.Thread(target=run, args=("h2", ["-c", str(CONNS), "-m", "4", "-t", "1", f"--rps={rps}"]))]
        log(f"soak: {SECS} s, 2 x {CONNS} clients x {rps} req/s = {2 * CONNS * rps} req/s offered "
            f"({2 * CONNS * rps / capacity:.1f}x capacity), hostile: {HOSTILE}")
        for t in loads:
            t.start()
        samples = []
        t0 = time.monotonic()
        while any(t.is_alive() for t in loads):
            time.sleep(SAMPLE_SECS)
            if proc.poll() is not None:
                log(f"server exited with {proc.returncode}")
                break
            try:
                mm = metrics(base)
            except OSError as e:
                mm = {"error": str(e)}
            rss = status(pid, "VmRSS")
            samples.append((time.monotonic() - t0, rss, mm))
            lim = {k.split('"')[1]: int(v) for k, v in mm.items() if isinstance(k, str) and k.startswith("sealcast_limits_total")}
            log(f"t={samples[-1][0]:5.0f}s RSS {rss / MIB:6.1f} MiB, open {mm.get('sealcast_connections_open', '?')}, limits {lim}")
        for t in loads:
            t.join()
        stop.set()
        hwm = status(pid, "VmHWM")
        alive = proc.poll() is None

        print()
        print("=" * 78)
        print(f"soak {SECS} s against {BIN} (built {time.ctime(BIN.stat().st_mtime)})")
        print(f"capacity {capacity:.0f} req/s; offered {2 * CONNS * rps} req/s ({2 * CONNS * rps / capacity:.1f}x)")
        bad = 0
        for name, r in results.items():
            errs = r.get("failed", 0) + r.get("errored", 0) + r.get("timeout", 0)
            non2xx = r.get("3xx", 0) + r.get("4xx", 0) + r.get("5xx", 0)
            incomplete = r.get("started", 0) - r.get("done", 0)
            bad += errs + non2xx + (0 if "succeeded" in r else 1)
            print(f"well-behaved {name}: {r.get('done', '?')} done, {r.get('succeeded', '?')} succeeded, "
                  f"{errs} failed/errored/timeout, {non2xx} non-2xx, {incomplete} in flight at the end, "
                  f"{r.get('req_per_s', 0):.0f} req/s served, latency min/max/mean/sd {r.get('latency_min_max_mean_sd')}")
            if "raw" in r:
                print(r["raw"])
        with counts_lock:
            for k in HOSTILE:
                print(f"hostile {k}: {HOSTILE[k]} held at a time, {opened[k]} opened, {closed_by_server[k]} closed by the server")
        rss = [(t, r) for t, r, _ in samples]
        if rss:
            first = [r for t, r in rss if t <= 60] or [rss[0][1]]
            last = [r for t, r in rss if t >= rss[-1][0] - 60] or [rss[-1][1]]
            print(f"RSS first minute {min(first) / MIB:.1f}-{max(first) / MIB:.1f} MiB, last minute "
                  f"{min(last) / MIB:.1f}-{max(last) / MIB:.1f} MiB, peak VmHWM {hwm / MIB:.1f} MiB")
            print("RSS over time (MiB): " + " ".join(f"{t:.0f}s:{r / MIB:.0f}" for t, r in rss))
        if samples:
            lim = {k.split('"')[1]: int(v) for k, v in samples[-1][2].items() if isinstance(k, str) and k.startswith("sealcast_limits_total")}
            print(f"limits enforced: {lim}")
        print(f"server alive at the end: {alive}")
        print("=" * 78)
        code = 0 if bad == 0 and alive else 1
    finally:
        stop.set()
        if proc.poll() is None:
            t = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            try:
                rc = proc.wait(60)
                log(f"SIGTERM: exit {rc} after {time.monotonic() - t:.1f} s")
            except subprocess.TimeoutExpired:
                proc.kill()
                log("SIGTERM: still running after 60 s, killed")
                code = 1
        for t in threads:
            t.join(5)
        err.close()
        log(f"server log: {work / 'server.log'}")
    return code


if __name__ == "__main__":
    sys.exit(main())
