"""deploy/ checked by the tools operators use (issue 16).

- The Containerfile passes hadolint.
- The Kubernetes base and the example overlay render with `kubectl kustomize` and pass
  `kubernetes-validate --strict`; a manifest with an unknown field does not (the check can fail).
- The Prometheus alert rules pass `promtool check rules`, and `promtool test rules` shows each
  alert firing on the series it is for and quiet on healthy ones; the scrape config passes
  `promtool check config`.
- The systemd unit passes `systemd-analyze verify`.
- The Grafana dashboard is well-formed, and every metric its queries and the alert rules name
  is one a running sealcast exports (read from a real scrape).
- The configurations under deploy/ are accepted by sealcast itself.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from oracle import REPO, fetch, get_ok, metrics_url, oracle_missing, sealcast_bin, start_server, stop_server

DEPLOY = REPO / "deploy"
K8S_VERSION = "1.32.0"


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        oracle_missing(f"{name} not installed (scripts/setup.sh installs it)")
    return path


def _run(*cmd: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(list(cmd), capture_output=True, text=True, timeout=120, cwd=cwd or REPO)


def test_containerfile_passes_hadolint():
    r = _run(_tool("hadolint"), str(DEPLOY / "Containerfile"))
    assert r.returncode == 0, f"hadolint:\n{r.stdout}{r.stderr}"
    text = (DEPLOY / "Containerfile").read_text()
    assert re.search(r"^USER 65532:65532$", text, re.M), "the runtime image must run as non-root"
    assert text.count("FROM ") == 2, "multi-stage: build, then runtime"


@pytest.mark.parametrize("tree", ["base", "overlays/example"])
def test_kubernetes_manifests_render_and_validate_strictly(tree, tmp_path):
    kubectl = _tool("kubectl")
    validate = _tool("kubernetes-validate")
    r = _run(kubectl, "kustomize", str(DEPLOY / "kubernetes" / tree))
    assert r.returncode == 0, f"kubectl kustomize {tree}:\n{r.stderr}"
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text(r.stdout)
    v = _run(validate, "--strict", "-k", K8S_VERSION, str(rendered))
    assert v.returncode == 0, f"kubernetes-validate {tree}:\n{v.stdout}{v.stderr}"
    import yaml
    docs = {d["kind"]: d for d in yaml.safe_load_all(r.stdout)}
    assert set(docs) == {"ConfigMap", "Service", "Deployment", "PodDisruptionBudget", "HorizontalPodAutoscaler"}, set(docs)
    dep = docs["Deployment"]["spec"]
    pod = dep["template"]["spec"]
    c = pod["containers"][0]
    assert dep["replicas"] == 3
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz" and c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["securityContext"]["readOnlyRootFilesystem"] is True and pod["securityContext"]["runAsNonRoot"] is True
    ann = dep["template"]["metadata"]["annotations"]
    assert ann["prometheus.io/scrape"] == "true" and ann["prometheus.io/port"] == "9464"
    # The grace period covers the preStop sleep, the drain delay and the drain timeout.
    import tomllib
    cfg = tomllib.loads(docs["ConfigMap"]["data"]["sealcast.toml"])
    need = c["lifecycle"]["preStop"]["sleep"]["seconds"] + (cfg["limits"]["drain_delay_ms"] + cfg["limits"]["drain_timeout_ms"]) / 1000
    assert pod["terminationGracePeriodSeconds"] > need, (pod["terminationGracePeriodSeconds"], need)
    # Memory requests cover the cache budgets.
    budgets = sum(cfg["cache"][k] for k in ("index_bytes", "asset_bytes", "fragment_bytes"))
    mem = c["resources"]["requests"]["memory"]
    assert mem.endswith("Mi") and int(mem[:-2]) << 20 > budgets, (mem, budgets)
    # The metrics port is not on the Service.
    assert [p["targetPort"] for p in docs["Service"]["spec"]["ports"]] == ["http"]
    if tree == "overlays/example":
        assert c["image"] == "registry.example.com/media/sealcast:0.1.0"
        assert all(d["metadata"].get("namespace") == "media" for d in docs.values())


def test_strict_validation_catches_an_unknown_field(tmp_path):
    validate = _tool("kubernetes-validate")
    r = _run(_tool("kubectl"), "kustomize", str(DEPLOY / "kubernetes" / "base"))
    broken = tmp_path / "broken.yaml"
    broken.write_text(r.stdout.replace("readOnlyRootFilesystem: true", "readOnlyRootFilesystem: true\n          readOnlyRootFileSystem: true", 1))
    v = _run(validate, "--strict", "-k", K8S_VERSION, str(broken))
    assert v.returncode != 0, "kubernetes-validate accepted a misspelt field: the check proves nothing"


def test_alert_rules_check_and_fire_as_meant():
    promtool = _tool("promtool")
    r = _run(promtool, "check", "rules", "alerts.yml", cwd=DEPLOY / "prometheus")
    assert r.returncode == 0, r.stdout + r.stderr
    r = _run(promtool, "test", "rules", "alerts.test.yml", cwd=DEPLOY / "prometheus")
    assert r.returncode == 0, r.stdout + r.stderr
    r = _run(promtool, "check", "config", "prometheus.yml", cwd=DEPLOY / "prometheus")
    assert r.returncode == 0, r.stdout + r.stderr


def test_systemd_unit_verifies(tmp_path):
    analyze = _tool("systemd-analyze")
    unit = tmp_path / "sealcast.service"
    # The unit names the installed path; verify it against the binary under test.
    unit.write_text((DEPLOY / "systemd" / "sealcast.service").read_text().replace("/usr/local/bin/sealcast", str(sealcast_bin())))
    r = _run(analyze, "verify", str(unit))
    assert r.returncode == 0 and not r.stderr.strip(), f"systemd-analyze verify:\n{r.stdout}{r.stderr}"


def _exported(text: str) -> set[str]:
    """Series names a scrape can hold, from its `# TYPE` lines."""
    names = set()
    for m in re.finditer(r"^# TYPE (\S+) (\w+)$", text, re.M):
        name, kind = m.groups()
        names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"} if kind == "histogram" else {name}
    return names


def _named_metrics(expr: str) -> set[str]:
    return set(re.findall(r"\b((?:sealcast|http_server|process)_[a-z0-9_]+)\b", expr))


def test_dashboard_and_alerts_name_exported_metrics(tmp_path):
    dash = json.loads((DEPLOY / "grafana" / "sealcast.json").read_text())
    assert dash["uid"] == "sealcast-origin" and dash["panels"]
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    exprs += [v["query"]["query"] for v in dash["templating"]["list"] if isinstance(v.get("query"), dict)]
    import yaml
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    exprs += [r["expr"] for g in rules["groups"] for r in g["rules"]]
    assert len(exprs) > 30
    server = start_server(tmp_path / "sealcast.log")
    try:
        get_ok(server.url("/demo/manifest.mpd"))
        fetch(server.url("/key/00000000000000000000000000000000"))
        exported = _exported(get_ok(metrics_url(server.base_url)).text())
    finally:
        stop_server(server)
    named = set().union(*map(_named_metrics, exprs))
    assert len(named) > 20, named
    missing = sorted(n for n in named if n not in exported)
    assert not missing, f"queries name metrics sealcast does not export: {missing}"


@pytest.mark.parametrize("config", ["kubernetes/base/sealcast.toml", "kubernetes/overlays/example/sealcast.toml", "sealcast.example.toml"])
def test_deploy_configs_are_accepted_by_sealcast(config, tmp_path):
    """`sealcast serve --config` gets as far as its own validation (the media root and
    the remote services of the example do not exist here, so it stops there or later, never
    at parsing)."""
    import tomllib
    doc = tomllib.loads((DEPLOY / config).read_text())
    assert isinstance(doc, dict)
    r = subprocess.run([str(sealcast_bin()), "serve", "--config", str(DEPLOY / config), "--listen", "127.0.0.1:0"],
                       capture_output=True, text=True, timeout=30, cwd=tmp_path)
    assert r.returncode != 0
    assert "storage root /srv/media is not a folder" in r.stderr, r.stderr[-2000:]
