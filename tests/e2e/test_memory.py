"""Memory stays inside the configured cache budgets under load.

150 copies of `demo` (hard links, so 150 distinct assets with distinct file identities) are
served by the real binary with small cache budgets; 16 clients fetch every manifest, init
and segment (fMP4 and TS) of every copy twice, in shuffled order, while the server's resident
set (VmRSS from /proc/PID/status) is sampled. The source is ~32 MB, twice the fragment
budget, so the caches evict during the run. Two runs, the same load:

- without a fragment cache, then with a 16 MiB one, three times each, alternating: the cache
  costs at most its budget + 12 MiB, the cost being the lowest peak-over-idle of the runs
  with it minus the lowest of the runs without it. This file used to state "budget + 4 MiB"
  from one pair of runs without asserting it; measured, that does not hold. Four
  measurements on the 2-core machine (other builds running) gave 20.3, 21.9, 16.0 and
  18.5 MiB for the 16 MiB budget. The budget weighs cached payload bytes; what comes on top
  (per-entry bookkeeping, allocator fragmentation around long-lived buffers, presumably)
  was not broken down. One run against one run is too noisy for any such bound: peak-over-idle of identical runs without
  the cache ranged 33.5-68.0 MiB, with it 55.4-90.6 MiB (requests in flight and memory the
  allocator keeps differ run to run). The noise only ever adds memory, so the lowest of
  three runs is the steadiest figure of what a configuration needs. The bound still catches
  what matters: a cache ignoring its budget would hold the ~100 MB source (cost > 60 MiB),
  one keeping twice its budget would cost over 32 MiB;
- the peak stays below the idle RSS after start-up + the sum of the cache budgets + a stated
  overhead for what is not cached (response bodies in flight, 16 at a time; connection
  buffers; blocking-pool threads; memory the allocator keeps after free), checked on the
  lowest of the three runs of each configuration for the same reason (one run with the
  cache once peaked at 90.6 MiB over idle, above 24 + 64, while the machine was busy with
  other builds; the lowest of its three was 61.7).

The bound held only after segment read buffers were allocated on the runtime's worker
threads instead of in the blocking-pool threads that fill them (`crates/storage`,
`read_local`): the allocator keeps freed memory with the allocating thread, and blocking
threads that sit idle after a burst kept segment-sized buffers each; peak RSS then varied
86-193 MiB between identical runs, and 58-84 MiB after.
"""

from __future__ import annotations

import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


import pytest

from oracle import FIXTURES, fetch, oracle_missing, start_server_config, stop_server

COPIES = 150
CLIENTS = 16
# Runs per configuration (alternating), for the cache-cost bound: see the module docstring.
RUNS = 3
MIB = 1 << 20
BUDGETS = {"index_bytes": 4 * MIB, "asset_bytes": 4 * MIB, "fragment_bytes": 16 * MIB}
# Not cached, so not budgeted: response bodies in flight (a segment plus its TS copy, at most
# ~1 MB each here, 16 at a time), tokio/hyper connection buffers, blocking-pool threads, and
# what the allocator keeps after free. Measured 41-54 MiB over idle without a fragment cache.
OVERHEAD = 64 * MIB


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


def test_rss_stays_within_cache_budgets_under_load(tmp_path, monkeypatch):
    if not Path("/proc/self/status").exists():
        oracle_missing("needs /proc (Linux) to read the server's VmRSS")
    root = tmp_path / "root"
    for i in range(COPIES):
        d = root / f"c{i:03d}"
        d.mkdir(parents=True)
        for f in (FIXTURES / "demo").iterdir():
            os.link(f, d / f.name)
    # The served source (~100 MB over all copies) is far above every budget: a cache that
    # ignored its budget would show here.
    no_frag = {**BUDGETS, "fragment_bytes": 0}
    runs: dict[str, list[tuple[int, int]]] = {"without": [], "with": []}
    for i in range(RUNS):
        runs["without"].append(_load(tmp_path / f"without{i}", root, no_frag))
        runs["with"].append(_load(tmp_path / f"with{i}", root, BUDGETS))
    over = {k: [(p - i) / MIB for i, p in v] for k, v in runs.items()}
    cost = min(over["with"]) - min(over["without"])
    print(f"memory: peak over idle without fragment cache {[round(x, 1) for x in over['without']]} MiB, with "
          f"{BUDGETS['fragment_bytes'] / MIB:.0f} MiB {[round(x, 1) for x in over['with']]} MiB; the cache costs "
          f"{cost:.1f} MiB (lowest with - lowest without); stated overhead {OVERHEAD / MIB:.0f} MiB")
    for b, key in ((no_frag, "without"), (BUDGETS, "with")):
        idle, peak = min(runs[key], key=lambda r: r[1] - r[0])
        limit = idle + sum(b.values()) + OVERHEAD
        assert peak <= limit, (f"lowest peak RSS of {RUNS} runs {peak / MIB:.1f} MiB over idle {idle / MIB:.1f} + "
                               f"budgets {sum(b.values()) / MIB:.0f} + overhead {OVERHEAD / MIB:.0f} MiB ({b}); "
                               f"runs {over[key]}")
    # The documented bound: the fragment cache costs at most its budget + 12 MiB.
    assert cost <= BUDGETS["fragment_bytes"] / MIB + 12, (
        f"the {BUDGETS['fragment_bytes'] / MIB:.0f} MiB fragment cache costs {cost:.1f} MiB of peak RSS (lowest "
        f"peak-over-idle with it {min(over['with']):.1f} MiB minus without it {min(over['without']):.1f} MiB), "
        f"more than its budget + 12 MiB; runs: {over}")


def _load(tmp: Path, root: Path, budgets: dict[str, int]) -> tuple[int, int]:
    """Serves `root` with `budgets`, runs the load, returns (idle RSS, peak RSS)."""
    tmp.mkdir()
    config = tmp / "sealcast.toml"
    lines = "\n".join(f"{k} = {v}" for k, v in budgets.items())
    config.write_text(f'listen = "127.0.0.1:0"\nroot = "{root}"\n\n[cache]\n{lines}\nasset_ttl_secs = 60\n')
    server = start_server_config(config, tmp / "sealcast.stderr.log")
    try:
        pid = server.proc.pid
        time.sleep(0.2)
        idle = _rss(pid)
        # The URL list: read from the server itself (playlists of the first copy, same for all).
        master = fetch(server.url("/c000/master.m3u8")).body.decode()
        tracks = sorted({line.split("/")[0] for line in master.splitlines() if line and not line.startswith("#")}
                        | {line.split('URI="')[1].split("/")[0] for line in master.splitlines() if 'URI="' in line})
        per_asset = ["manifest.mpd", "master.m3u8", "master-ts.m3u8"]
        for t in tracks:
            playlist = fetch(server.url(f"/c000/{t}/index.m3u8")).body.decode()
            segs = [line for line in playlist.splitlines() if line and not line.startswith("#")]
            per_asset += [f"{t}/index.m3u8", f"{t}/init.mp4", *(f"{t}/{s}" for s in segs),
                          *(f"{t}/{s.replace('.m4s', '.ts')}" for s in segs)]
        urls = [f"/c{i:03d}/{u}" for i in range(COPIES) for u in per_asset] * 2
        random.Random(6).shuffle(urls)

        peak = idle
        stop = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not stop.is_set():
                peak = max(peak, _rss(pid))
                time.sleep(0.01)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        failures: list[str] = []
        served = 0

        def one(u: str) -> None:
            nonlocal served
            r = fetch(server.url(u))
            if r.status != 200:
                failures.append(f"{u}: {r.status}")
            served += len(r.body)

        with ThreadPoolExecutor(CLIENTS) as pool:
            list(pool.map(one, urls))
        stop.set()
        sampler.join()
        peak = max(peak, _rss(pid))
        assert not failures, f"{len(failures)} requests failed, first: {failures[:5]}"
        print(f"\nmemory: {len(urls)} requests, {served / MIB:.0f} MiB served, budgets {budgets}: "
              f"idle {idle / MIB:.1f} MiB, peak {peak / MIB:.1f} MiB")
        return idle, peak
    finally:
        stop_server(server)
