#!/usr/bin/env bash
# Catalog database figures (issue 13): import throughput (assets per second) of
# `sealcast catalog import` into SQLite and into PostgreSQL (a throwaway cluster started here
# with Debian's initdb/pg_ctl, when installed), a no-op re-import, and an export.
#
#   bash benches/catalog_import.sh [ASSETS]      (default 2000; release binary, or SEALCAST_BIN)
#
# Each asset has a cenc/cbcs delivery policy, two content keys and a licence URL; every key is
# sealed on import (AES-256-GCM under the data key), so this is the cost an operator moving a
# TOML catalog into the database pays.
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-2000}"
BIN="${SEALCAST_BIN:-$PWD/target/release/sealcast}"
[ -x "$BIN" ] || { echo "build first: cargo build --release -p sealcast-origin" >&2; exit 1; }
work="$(mktemp -d)"
chmod 755 "$work"
trap 'if [ -n "${pgbin:-}" ]; then runas "$pgbin/pg_ctl" -D "$work/pg" -m immediate stop >/dev/null 2>&1 || true; fi; rm -rf "$work"' EXIT
python3 - "$n" >"$work/catalog.toml" <<'PY'
import sys
n = int(sys.argv[1])
for i in range(n):
    print(f'[[asset]]\npath = "vod/title{i}"\ndash = "DynamicCommonEncryption"\nhls = "DynamicCommonEncryptionCbcs"')
    print('license = { widevine = "https://wv.example/license" }')
    print(f'keys = [ {{ kid = "{i:08x}-0000-4000-8000-000000000001", key = "{i:08x}112233445566778899aabbcc" }},')
    print(f'  {{ kid = "{i:08x}-0000-4000-8000-000000000002", key = "{i:08x}2233445566778899aabbccdd", kind = "CommonEncryptionCbcs" }} ]\n')
PY
"$BIN" keys init --kek "$work/kek" >/dev/null
measure() { # label config
  local t0 t1 t2 t3
  t0=$(date +%s.%N); "$BIN" catalog import --config "$2" "$work/catalog.toml" >/dev/null 2>&1
  t1=$(date +%s.%N); "$BIN" catalog import --config "$2" "$work/catalog.toml" >/dev/null 2>&1
  t2=$(date +%s.%N); "$BIN" catalog export --config "$2" >/dev/null
  t3=$(date +%s.%N)
  python3 - "$1" "$n" "$t0" "$t1" "$t2" "$t3" <<'PY'
import sys
label, n, t0, t1, t2, t3 = sys.argv[1], int(sys.argv[2]), *map(float, sys.argv[3:])
print(f"| {label} | {n} | {t1 - t0:.2f} s | {n / (t1 - t0):.0f} | {t2 - t1:.2f} s | {t3 - t2:.2f} s |")
PY
}
echo "| database | assets | import (process start to commit) | assets/s | re-import (no-op) | export |"
echo "|---|---|---|---|---|---|"
printf 'database = "sqlite://%s"\nkek = { local = "%s" }\n' "$work/sqlite/catalog.db" "$work/kek" >"$work/sqlite.toml"
measure SQLite "$work/sqlite.toml"
pgbin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)"
if [ -n "$pgbin" ] && [ -x "$pgbin/pg_ctl" ]; then
  runas() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
  [ "$(id -u)" = 0 ] && chown postgres "$work"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  runas "$pgbin/initdb" -D "$work/pg" -U sealcast --auth=trust -E UTF8 --no-sync >/dev/null
  runas "$pgbin/pg_ctl" -D "$work/pg" -o "-p $port -h 127.0.0.1 -k $work" -l "$work/pg.log" -w start >/dev/null
  printf 'database = "postgres://sealcast@127.0.0.1:%s/postgres"\nkek = { local = "%s" }\n' "$port" "$work/kek" >"$work/pg.toml"
  measure PostgreSQL "$work/pg.toml"
else
  echo "(PostgreSQL server binaries not installed: apt-get install postgresql)"
fi
