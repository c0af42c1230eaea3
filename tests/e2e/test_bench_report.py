"""benches/report.py's arithmetic, on made-up runs (the benchmark itself is not part of the suite)."""

import importlib.util
from pathlib import Path

import pytest

REPORT = Path(__file__).resolve().parents[2] / "benches" / "report.py"


@pytest.fixture(scope="module")
def report():
    spec = importlib.util.spec_from_file_location("bench_report", REPORT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def run(requests, user_s, sys_s):
    cpu = user_s + sys_s
    return {"requests": requests, "server_user_s": user_s, "server_sys_s": sys_s,
            "server_cpu_us_per_request": cpu * 1e6 / requests, "requests_per_core_s": requests / cpu}


def test_the_kernel_ceiling_is_the_yardstick_slowed_by_the_kernel_extra_alone(report):
    # /healthz: 2 us user + 4 us kernel; manifests: 2.5 us user + 5 us kernel.
    healthz, manifests = run(1000, 0.002, 0.004), run(1000, 0.0025, 0.005)
    k = report.kernel_ceiling(manifests, healthz)
    assert k["extra_kernel_us"] == pytest.approx(1.0)
    assert k["extra_user_us"] == pytest.approx(0.5)
    assert k["ceiling"] == pytest.approx(6 / 7, abs=1e-3)
    # A run that costs the kernel less than its yardstick is not capped by it.
    assert report.kernel_ceiling(run(1000, 0.003, 0.003), healthz)["ceiling"] == 1.0


def test_the_manifest_bound_carries_its_kernel_ceiling(report):
    runs = {"manifests": run(1000, 0.0025, 0.005), "healthz": run(1000, 0.002, 0.004)}
    bounds = report.same_run_bounds(runs, {}, 10.0, 2.0)
    m = bounds["manifests"]
    assert m["share"] == pytest.approx(6 / 7.5, abs=1e-3)
    assert m["kernel"]["ceiling"] == pytest.approx(6 / 7, abs=1e-3)
    assert m["share"] < m["kernel"]["ceiling"]
