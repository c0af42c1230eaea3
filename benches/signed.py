#!/usr/bin/env python3
"""Cost of signed-URL checks (issue 17): the same requests against two servers side by side,
one whose assets are open and one whose assets need a CloudFront signed URL (custom policy,
RSA-2048, `Resource: *`), every request carrying the same signed query string.

    python3 benches/signed.py [ROUNDS]        (default 6 rounds)

Needs the bench content of `benches/content.sh` (`${TMPDIR:-/tmp}/sealcast-bench-content`,
made by `bash benches/load.sh` once), `wrk`, `taskset`, botocore + cryptography
(tests/e2e/requirements.txt) and `target/release/sealcast` (or SEALCAST_BIN).

Both servers run on core 0, wrk on core 1, and short runs alternate between them
(`benches/cycle.lua`, 8 connections, 1 s warm-up + 3 s measured). The figure is the server's
CPU (utime + stime of all threads, /proc/PID/stat) per request; per round the signed/open
ratio is taken, and the medians are reported. One signature on every request is the common
case (a viewer's session): the first request verifies it with RSA, the rest find it in the
cache, then parse the policy and check time and resource. `carry` is off so manifests are
the same bytes on both servers.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from botocore.signers import CloudFrontSigner
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
BIN = Path(os.environ.get("SEALCAST_BIN") or REPO / "target" / "release" / "sealcast")
CONTENT = Path(os.environ.get("TMPDIR", "/tmp")) / "sealcast-bench-content"
TICK = os.sysconf("SC_CLK_TCK")


def start(cfg: Path, log: Path) -> tuple[subprocess.Popen, str]:
    p = subprocess.Popen(["taskset", "-c", "0", str(BIN), "serve", "--config", str(cfg)], stdout=subprocess.PIPE,
                         stderr=open(log, "wb"), stdin=subprocess.DEVNULL)
    line = p.stdout.readline().decode()
    m = re.match(r"sealcast listening on (http://\S+)", line)
    if not m:
        p.kill()
        sys.exit(f"server did not start: {line!r}")
    return p, m.group(1)


def cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def wrk(base: str, lst: Path, secs: int) -> int:
    out = subprocess.run(["taskset", "-c", "1", "wrk", "-t1", "-c8", f"-d{secs}s", "-s", str(HERE / "cycle.lua"), base, "--", str(lst)],
                         capture_output=True, text=True, timeout=secs + 30)
    m = re.search(r"WRK_RESULT (\{.*\})", out.stdout)
    if not m:
        sys.exit(f"wrk: {out.stdout[-500:]} {out.stderr[-500:]}")
    r = json.loads(m.group(1))
    if any(r.get("errors", {}).values()):
        sys.exit(f"wrk errors: {r['errors']}")
    return r["requests"]


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 6
    if not (CONTENT / "a1").is_dir():
        sys.exit(f"no bench content at {CONTENT}: run `bash benches/load.sh` once")
    work = Path(tempfile.mkdtemp(prefix="sealcast-signed-bench-"))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (work / "k.pem").write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    base_cfg = f'listen = "127.0.0.1:0"\nroot = {json.dumps(str(CONTENT))}\n'
    (work / "open.toml").write_text(base_cfg)
    (work / "signed.toml").write_text(base_cfg + f'[access.default]\nmode = "signed"\n'
                                      f'cloudfront = {{ keys = [ {{ id = "KBENCH", pem_file = {json.dumps(str(work / "k.pem"))} }} ] }}\n')
    signer = CloudFrontSigner("KBENCH", lambda m: key.sign(m, padding.PKCS1v15(), hashes.SHA1()))
    until = dt.datetime.now(tz=dt.timezone.utc) + dt.timedelta(hours=2)
    query = signer.generate_presigned_url("http://x/", policy=signer.build_policy("*", until)).split("?", 1)[1]
    servers = {name: start(work / f"{name}.toml", work / f"{name}.log") for name in ("open", "signed")}
    try:
        base = servers["open"][1]
        manifests, segments = [], []
        for a in sorted(p.name for p in CONTENT.iterdir() if p.is_dir()):
            master = urllib.request.urlopen(f"{base}/{a}/master.m3u8").read().decode()
            media = [x for x in master.splitlines() if x and not x.startswith("#")]
            manifests += [f"/{a}/manifest.mpd", f"/{a}/master.m3u8"] + [f"/{a}/{m}" for m in media]
            for m in media:
                pl = urllib.request.urlopen(f"{base}/{a}/{m}").read().decode()
                segs = [x for x in pl.splitlines() if x and not x.startswith("#")][:30]
                segments += [f"/{a}/{m.rsplit('/', 1)[0]}/{s}" for s in segs]
        lists = {}
        for kind, paths in (("manifests", manifests), ("segments", segments)):
            lists[kind] = work / f"{kind}.txt"
            lists[kind].write_text("".join(f"{p}?{query}\n" for p in paths))
            for name, (_, b) in servers.items():
                for p in paths[:3]:
                    with urllib.request.urlopen(f"{b}{p}?{query}") as r:
                        assert r.status == 200, (name, p)
            # The signed server must refuse without the signature (the check is really on).
            try:
                urllib.request.urlopen(f"{servers['signed'][1]}{paths[0]}")
                sys.exit("the signed server answered an unsigned request")
            except urllib.error.HTTPError as e:
                assert e.code == 403
        results: dict[str, dict[str, list[float]]] = {k: {"open": [], "signed": []} for k in lists}
        for r in range(rounds):
            for kind, lst in lists.items():
                order = ("open", "signed") if r % 2 == 0 else ("signed", "open")
                for name in order:
                    proc, b = servers[name]
                    wrk(b, lst, 1)
                    c0 = cpu(proc.pid)
                    n = wrk(b, lst, 3)
                    results[kind][name].append((cpu(proc.pid) - c0) / n * 1e6)
        print(f"# {rounds} rounds, {len(manifests)} manifest and {len(segments)} segment URLs, binary built "
              f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime(BIN.stat().st_mtime))} UTC")
        out = {}
        for kind, by in results.items():
            ratios = [s / o for o, s in zip(by["open"], by["signed"])]
            o, s = statistics.median(by["open"]), statistics.median(by["signed"])
            out[kind] = {"open_us": round(o, 2), "signed_us": round(s, 2), "open_per_core_s": round(1e6 / o), "signed_per_core_s": round(1e6 / s),
                         "ratios": [round(x, 2) for x in ratios], "median_ratio": round(statistics.median(ratios), 3)}
            print(f"{kind:10} open {o:7.2f} µs/req ({1e6 / o:8.0f}/core-s)  signed {s:7.2f} µs/req ({1e6 / s:8.0f}/core-s)  "
                  f"signed/open per round {', '.join(f'{x:.2f}' for x in ratios)}  median {statistics.median(ratios):.3f}")
        print(json.dumps(out))
    finally:
        for proc, _ in servers.values():
            proc.terminate()
            proc.wait(10)


if __name__ == "__main__":
    main()
