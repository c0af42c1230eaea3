#!/usr/bin/env python3
"""Turns the raw outputs of benches/https.sh into a table and one JSON line (the last line).

Inputs, in the work folder https.sh made:
  speed_aes-128-gcm.txt, speed_chacha20-poly1305.txt  `openssl speed -evp ... -bytes 1048576`
  sizes.tsv   list name, URL count, mean body bytes
  runs.tsv    name, server, proto, cipher, list, h2load output, server utime and stime ticks,
              busy ticks of the server and client cores, wall nanoseconds
  ktls.txt    the kernel TLS probe

Exit status: 0 (a benchmark: the ≥ 0.8 share target is reported, not enforced), 2 unusable.
"""

import argparse
import datetime
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from report import aes_bytes_per_s, binary_info, cpu_model, fail, git_rev, parse_h2load, read_sizes  # noqa: E402

SHARE_TARGET = 0.8  # issue 18: clear segments over HTTPS >= 0.8 of the HTTPS floor
EXPECT = {  # cipher -> (TLS protocol, cipher name) h2load must report
    "tls13_aes128gcm": ("TLSv1.3", "TLS_AES_128_GCM_SHA256"),
    "tls13_chacha20": ("TLSv1.3", "TLS_CHACHA20_POLY1305_SHA256"),
    "tls12_aes128gcm": ("TLSv1.2", "ECDHE-ECDSA-AES128-GCM-SHA256"),
}
BOUND = {"tls13_aes128gcm": "aes", "tls13_chacha20": "chacha", "tls12_aes128gcm": "aes"}
LABEL = {"plain": "plain HTTP", "tls13_aes128gcm": "TLS 1.3 AES-128-GCM",
         "tls13_chacha20": "TLS 1.3 ChaCha20-Poly1305", "tls12_aes128gcm": "TLS 1.2 ECDHE-ECDSA-AES128-GCM"}


def check_tls(path, cipher, proto):
    text = open(path).read()
    alpn = re.search(r"Application protocol: (\S+)", text)
    want_alpn = "h2" if proto == "h2" else "http/1.1"
    if cipher == "plain":
        return
    p = re.search(r"TLS Protocol: (\S+)", text)
    c = re.search(r"Cipher: (\S+)", text)
    got = (p and p.group(1), c and c.group(1), alpn and alpn.group(1))
    if got != EXPECT[cipher] + (want_alpn,):
        fail(f"{path}: negotiated {got}, expected {EXPECT[cipher] + (want_alpn,)}")


def main():
    ap = argparse.ArgumentParser()
    for a in ("--work", "--bin", "--json-out"):
        ap.add_argument(a, default="")
    for a in ("--clk-tck", "--conns", "--secs", "--server-core", "--client-core"):
        ap.add_argument(a, type=int, required=True)
    a = ap.parse_args()
    w, tck = a.work, a.clk_tck
    bound = {"aes": aes_bytes_per_s(os.path.join(w, "speed_aes-128-gcm.txt"), "AES-128-GCM"),
             "chacha": aes_bytes_per_s(os.path.join(w, "speed_chacha20-poly1305.txt"), "ChaCha20-Poly1305")}
    sizes = read_sizes(w)
    runs = {}
    for line in open(os.path.join(w, "runs.tsv")):
        name, server, proto, cipher, lst, out, ut, st, sbusy, cbusy, wall_ns = line.rstrip("\n").split("\t")
        r = parse_h2load(out)
        if r["errors"]:
            fail(f"run {name}: errors {r['errors']}")
        if r["requests"] == 0:
            fail(f"run {name}: no request succeeded")
        check_tls(out, cipher, proto)
        cpu = (int(ut) + int(st)) / tck
        wall = int(wall_ns) / 1e9
        if cpu <= 0:
            fail(f"run {name}: no server CPU time measured")
        runs[(server, lst, proto, cipher)] = {
            "name": name, "requests": r["requests"], "body_bytes": r["body_bytes"], "server_cpu_s": round(cpu, 3),
            "wall_s": round(wall, 3),
            "body_gb_per_core_s": r["body_bytes"] / cpu / 1e9,
            "req_per_core_s": r["requests"] / cpu,
            "server_core_util": round(cpu / wall, 3),
            # busy time of the server core not spent in the measured server: other processes
            "foreign_on_server_core": round(max(0.0, int(sbusy) / tck - cpu) / wall, 3),
            "client_core_util": round(int(cbusy) / tck / wall, 3),
        }

    ktls = open(os.path.join(w, "ktls.txt")).read().strip()
    print(f"--- HTTPS (issue 18): {a.conns} connections, {a.secs} s per run, h2load (HTTP/1.1: --h1 -m1; "
          f"HTTP/2: -m4), servers on core {a.server_core}, client on core {a.client_core} ---")
    print(f"openssl speed, 1 MiB blocks, core {a.server_core}: AES-128-GCM {bound['aes'] / 1e9:.2f} GB/s, "
          f"ChaCha20-Poly1305 {bound['chacha'] / 1e9:.2f} GB/s")
    print(f"kernel TLS: {ktls}")
    print(f"segments: {sizes['segments']['urls']} URLs, mean {sizes['segments']['mean_body_bytes'] / 1e6:.3f} MB; "
          f"manifests: {sizes['manifests']['urls']} URLs, mean {sizes['manifests']['mean_body_bytes']:.0f} B")
    hdr = (f"{'scenario':<44} {'sealcast':>9} {'nginx':>9} {'share':>6} {'bound':>6} {'sc/bnd':>6} "
           f"{'vs plain':>8}  util sc/ng, foreign sc/ng, client sc/ng")
    print(hdr)
    rows = []
    for lst in ("segments", "manifests"):
        for cipher in ("plain", "tls13_aes128gcm", "tls13_chacha20", "tls12_aes128gcm"):
            for proto in ("h1", "h2"):
                s = runs.get(("sealcast", lst, proto, cipher))
                n = runs.get(("nginx", lst, proto, cipher))
                if not s or not n:
                    continue
                unit, key, scale = ("GB/core-s", "body_gb_per_core_s", 1.0) if lst == "segments" else ("k req/core-s", "req_per_core_s", 1e-3)
                share = s[key] / n[key]
                b = bound[BOUND[cipher]] / 1e9 if cipher in BOUND and lst == "segments" else None
                plain = runs.get(("sealcast", lst, proto, "plain"))
                vs_plain = s[key] / plain[key] if plain and cipher != "plain" else None
                row = {"list": lst, "proto": proto, "cipher": cipher, "unit": unit,
                       "sealcast": round(s[key] * scale, 4), "nginx": round(n[key] * scale, 4), "share": round(share, 3),
                       "cipher_bound_gb_per_s": round(b, 3) if b else None,
                       "sealcast_of_bound": round(s["body_gb_per_core_s"] / b, 3) if b else None,
                       "sealcast_vs_plain": round(vs_plain, 3) if vs_plain else None,
                       "runs": {"sealcast": s, "nginx": n}}
                k = runs.get(("nginx_ktls", lst, proto, cipher))
                if k:
                    row["nginx_ktls"] = round(k[key] * scale, 4)
                    row["runs"]["nginx_ktls"] = k
                rows.append(row)
                label = f"{lst} {'HTTP/1.1' if proto == 'h1' else 'HTTP/2'} {LABEL[cipher]}"
                fmt = "{:9.3f}" if lst == "segments" else "{:9.1f}"
                bound_s = f"{b:6.2f} {row['sealcast_of_bound']:6.2f}" if b else "     -      -"
                plain_s = f"{vs_plain:8.2f}" if vs_plain else "       -"
                ktls_s = f"  nginx kTLS {row['nginx_ktls']:.3f}" if k else ""
                print(f"{label:<44} {fmt.format(s[key] * scale)} {fmt.format(n[key] * scale)} {share:6.2f} "
                      f"{bound_s} {plain_s}  "
                      f"{s['server_core_util']:.2f}/{n['server_core_util']:.2f}, "
                      f"{s['foreign_on_server_core']:.2f}/{n['foreign_on_server_core']:.2f}, "
                      f"{s['client_core_util']:.2f}/{n['client_core_util']:.2f}{ktls_s}")
    print("(segments in GB of body per server core-second, manifests in thousands of requests per server "
          "core-second; share = sealcast / nginx, same cipher and protocol; bound = openssl speed of the cipher, "
          "GB/s on one core; vs plain = sealcast over TLS / sealcast over plain HTTP)")
    starved = sorted(v["name"] for v in runs.values() if v["server_core_util"] < 0.3)
    if starved:
        print(f"warning: other processes held the server core: in {len(starved)} of {len(runs)} runs the measured "
              f"server got under 30% of it (per-core-second figures from little CPU time are noisy): "
              + ", ".join(starved))
    tls_seg = [r for r in rows if r["list"] == "segments" and r["cipher"] != "plain"]
    worst = min(r["share"] for r in tls_seg) if tls_seg else None
    if worst is not None:
        print(f"target: clear segments over HTTPS >= {SHARE_TARGET} of the HTTPS floor: lowest share {worst:.2f} "
              f"-> {'met' if worst >= SHARE_TARGET else 'MISSED'} "
              f"({sum(r['share'] >= SHARE_TARGET for r in tls_seg)} of {len(tls_seg)} scenarios at or above)")
    result = {
        "bench": "https", "time": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "git": git_rev(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "binary": binary_info(a.bin),
        "cpu": cpu_model(), "conns": a.conns, "secs": a.secs, "ktls": ktls,
        "openssl_speed_1mib_gb_per_s": {k: round(v / 1e9, 3) for k, v in bound.items()},
        "sizes": sizes, "rows": rows, "starved_runs": starved, "lowest_share": worst, "share_target": SHARE_TARGET,
    }
    line = json.dumps(result, separators=(",", ":"))
    print(line)
    if a.json_out:
        with open(a.json_out, "w") as f:
            f.write(line + "\n")


if __name__ == "__main__":
    main()
