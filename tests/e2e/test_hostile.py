"""The hostile corpus against the real binary (issue 11: memory proportional to input).

Each file of `fixtures/hostile/` (written by its `generate.py`: boxes that declare far more
than their bytes hold, e.g. the 16 KB `trun` bomb that used to make the first manifest
request allocate tens of GB and abort the process) is served as an asset by
`sealcast serve` at its default limits. For each: the DASH, HLS and Smooth manifests and
segment 1 answer the status `expected.json` gives (`at_default_limits`), errors are JSON,
the process stays up and `/healthz` answers after each; at the end, the server's peak
resident set (VmHWM from /proc/PID/status) is at most its idle resident set plus
RSS_BOUND.

Run against a binary without the bounds (before issue 11's fix), the first `trun` bomb
kills the server (run that under `ulimit -v`: it tries to allocate tens of GB).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from oracle import FIXTURES, fetch, start_server, stop_server

MIB = 1 << 20
# The corpus is about 500 KB in all; what the server may hold on top of its idle resident set
# for it: index and asset caches, in-flight responses, and what the allocator keeps after free.
RSS_BOUND = 64 * MIB
URLS = ["manifest.mpd", "master.m3u8", "Manifest", "video/1.m4s"]


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} for pid {pid}")


@pytest.fixture(scope="module")
def hostile_server(tmp_path_factory):
    if not Path("/proc/self/status").exists():
        pytest.skip("needs /proc (Linux) to read the server's VmHWM")
    s = start_server(tmp_path_factory.mktemp("hostile") / "sealcast.stderr.log")
    yield s
    stop_server(s)


def _alive_and_healthy(s, after: str) -> None:
    assert s.alive(), f"sealcast died after {after} (exit {s.proc.returncode}); stderr tail:\n{s.log_tail()}"
    r = fetch(s.url("/healthz"))
    assert r.status == 200, f"/healthz after {after}: {r.describe()}"


def test_hostile_files_answer_clear_errors_in_bounded_memory(hostile_server):
    s = hostile_server
    expected = json.loads((FIXTURES / "hostile" / "expected.json").read_text())
    assert len(expected) >= 10, "hostile corpus missing: run fixtures/hostile/generate.py"
    pid = s.proc.pid
    idle = _status_kb(pid, "VmRSS")
    failures = []
    for name, e in sorted(expected.items()):
        want = e["at_default_limits"]
        for u in URLS:
            path = f"/hostile/{name}/{u}"
            try:
                r = fetch(s.url(path))
            except OSError as err:
                pytest.fail(f"{path}: no answer ({err}); server alive: {s.alive()}; stderr tail:\n{s.log_tail()}")
            if r.status != want:
                failures.append(f"{path}: {r.status}, expected {want}: {r.body[:200]!r}")
            elif want >= 400:
                # A clear error: JSON naming the asset and, in the fault, the file.
                body = json.loads(r.body)
                if r.header("content-type") != "application/json" or body.get("asset") != f"hostile/{name}" \
                        or "video.cmfv" not in body.get("fault", ""):
                    failures.append(f"{path}: unclear error {r.headers.get('content-type')} {body}")
            _alive_and_healthy(s, path)
    # The bomb behind a valid sidx is met at segment 2.
    r = fetch(s.url("/hostile/sidx_then_bomb/video/2.m4s"))
    if r.status != 500 or json.loads(r.body).get("error") != "bad_content":
        failures.append(f"sidx_then_bomb segment 2: {r.describe()}")
    _alive_and_healthy(s, "sidx_then_bomb segment 2")
    # A normal asset is still served.
    assert fetch(s.url("/demo/manifest.mpd")).status == 200
    peak = _status_kb(pid, "VmHWM")
    print(f"\nhostile corpus: idle RSS {idle / MIB:.1f} MiB, peak (VmHWM) {peak / MIB:.1f} MiB, "
          f"bound idle + {RSS_BOUND / MIB:.0f} MiB")
    assert not failures, "\n".join(failures)
    assert peak <= idle + RSS_BOUND, f"peak RSS {peak / MIB:.1f} MiB over idle {idle / MIB:.1f} + {RSS_BOUND / MIB:.0f} MiB"
