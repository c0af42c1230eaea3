"""Serving from cloud storage, judged by ffmpeg 8.1.

moto_server (S3) and Azurite (Azure Blob) run on free 127.0.0.1 ports; `sealcast ingest
--config` uploads the `demo` and `hevc` fixtures to each, once clear and once storage-encrypted
at rest (`--encrypt`, keys recorded in a catalog); the real binary serves them through
`[[store]]` routes, and ffmpeg `-c copy -f framemd5` of every track, read through its HLS
media playlist over HTTP, equals the same hash of the source track (every packet's size and
md5, codec configuration, and timestamps to 1 ms).

Skips, saying why, when moto_server or azurite-blob is missing (`scripts/setup.sh` installs
both: PyPI `moto[server]`, npm `azurite` under tests/storage).
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import hmac
import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from fractions import Fraction
from pathlib import Path


import pytest

from oracle import (FIXTURES, REPO, oracle_missing, compare_samples, compare_timestamps, framemd5, get_ok, resolve,
                    sealcast_bin, source_hashes, source_tracks, start_server_config, stop_server)

# progressive/tail: a progressive MP4 with its moov at the end, indexed over ranged cloud reads.
ASSETS = ["demo", "hevc", "progressive/tail"]
STORES = ["s3", "az"]
MODES = ["clear", "enc"]
TS_TOLERANCE = Fraction(1, 1000)
AZURITE_ACCOUNT = "devstoreaccount1"
# Azurite's published development key (not a secret).
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


CLEAR = "NoDynamicEncryption"


def _start_on_port_zero(cmd: list[str], log: Path, what: str, marker: str, timeout: float = 60) -> tuple[subprocess.Popen, int]:
    """Starts an emulator told to listen on port 0 (the kernel picks a free port, so nothing can
    take it between choosing and binding, as happened with pick-close-pass) and returns it with
    the port it announces as `{marker}http://127.0.0.1:PORT` on stdout or stderr (both are
    copied to `log`, and drained for the process's lifetime)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    found: list[int] = []
    announced = threading.Event()
    pattern = re.compile(re.escape(marker) + r"http://127\.0\.0\.1:(\d+)")

    def drain() -> None:
        assert proc.stdout is not None
        with open(log, "wb") as out:
            for raw in proc.stdout:
                out.write(raw)
                out.flush()
                m = pattern.search(raw.decode("utf-8", "replace"))
                if m and not announced.is_set():
                    found.append(int(m.group(1)))
                    announced.set()
        announced.set()

    threading.Thread(target=drain, daemon=True).start()
    if not announced.wait(timeout) or not found:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        pytest.fail(f"{what} did not say which port it listens on ('{marker}http://127.0.0.1:PORT') within {timeout}s "
                    f"(exit {proc.returncode}); log:\n{log.read_text(errors='replace')[-1500:]}")
    return proc, found[0]


def _wait_port(port: int, proc: subprocess.Popen, what: str, timeout: float = 30) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            pytest.fail(f"{what} exited with {proc.returncode} before listening")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"{what} did not listen on 127.0.0.1:{port} within {timeout}s")


def _azurite_bin() -> str | None:
    local = REPO / "tests" / "storage" / "node_modules" / ".bin" / "azurite-blob"
    return str(local) if local.exists() else shutil.which("azurite-blob")


def moto_store_toml(s3_port: int, prefix: str = "s3") -> str:
    """A `[[store]]` serving `prefix` from moto's bucket `media` on `s3_port`."""
    return f"""[[store]]
prefix = "{prefix}"
kind = "s3"
bucket = "media"
region = "us-east-1"
endpoint = "http://127.0.0.1:{s3_port}"
allow_http = true
access_key_id = "test"
secret_access_key = "test"
"""


def _create_bucket(endpoint: str) -> None:
    import boto3  # installed with moto[server]
    boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="test", aws_secret_access_key="test",
                 region_name="us-east-1").create_bucket(Bucket="media")


def _create_container(port: int) -> None:
    """`PUT ?restype=container`, signed with Shared Key (the Blob service's canonical string:
    verb, eleven standard header slots with a zero length left empty, x-ms-* headers, then the
    canonical resource)."""
    date, version = email.utils.formatdate(usegmt=True), "2021-08-06"
    headers = ["PUT", "", "", "", "", "application/octet-stream", "", "", "", "", "", ""]
    canonical = "\n".join(headers) + f"\nx-ms-date:{date}\nx-ms-version:{version}\n" \
        + f"/{AZURITE_ACCOUNT}/{AZURITE_ACCOUNT}/media\nrestype:container"
    sig = base64.b64encode(hmac.new(base64.b64decode(AZURITE_KEY), canonical.encode(), hashlib.sha256).digest()).decode()
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/{AZURITE_ACCOUNT}/media?restype=container", data=b"", method="PUT",
        headers={"Content-Type": "application/octet-stream", "Content-Length": "0", "x-ms-date": date,
                 "x-ms-version": version, "Authorization": f"SharedKey {AZURITE_ACCOUNT}:{sig}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 201, f"creating the Azurite container answered {r.status}"


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    """moto + Azurite with every (store, asset, mode) ingested, and a server over them."""
    if shutil.which("moto_server") is None:
        oracle_missing("moto_server not installed (pip install 'moto[server]', or scripts/setup.sh)")
    azurite = _azurite_bin()
    if azurite is None:
        oracle_missing("azurite-blob not installed (cd tests/storage && npm ci, or scripts/setup.sh)")
    if not sealcast_bin().exists():
        pytest.fail(f"server binary {sealcast_bin()} not found: cargo build --release, or set SEALCAST_BIN")
    tmp = tmp_path_factory.mktemp("storage")
    procs: list[subprocess.Popen] = []
    server = None
    try:
        # Werkzeug's banner: " * Running on http://127.0.0.1:PORT".
        proc, s3_port = _start_on_port_zero(["moto_server", "-H", "127.0.0.1", "-p", "0"], tmp / "moto.log",
                                            "moto_server", "Running on ")
        procs.append(proc)
        _wait_port(s3_port, proc, "moto_server")
        # Not --silent: "Azurite Blob service successfully listens on http://127.0.0.1:PORT" names the port.
        proc, az_port = _start_on_port_zero([azurite, "--blobHost", "127.0.0.1", "--blobPort", "0",
                                             "--location", str(tmp / "azurite"), "--skipApiVersionCheck", "--loose",
                                             "--disableTelemetry"], tmp / "azurite.log", "azurite-blob", "listens on ")
        procs.append(proc)
        _wait_port(az_port, proc, "azurite-blob")
        _create_bucket(f"http://127.0.0.1:{s3_port}")
        _create_container(az_port)

        (tmp / "local").mkdir()
        catalog = tmp / "catalog.toml"
        config = tmp / "sealcast.toml"
        config.write_text(f"""listen = "127.0.0.1:0"
root = "{tmp / 'local'}"
catalog = "{catalog}"
allow_clear_without_policy = true

{moto_store_toml(s3_port)}
[[store]]
prefix = "az"
kind = "azure"
account = "{AZURITE_ACCOUNT}"
container = "media"
use_emulator = true
endpoint = "http://127.0.0.1:{az_port}/{AZURITE_ACCOUNT}"
""")
        for store in STORES:
            for asset in ASSETS:
                files = sorted(str(p) for p in (FIXTURES / asset).iterdir() if p.is_file())
                for mode in MODES:
                    cmd = [str(sealcast_bin()), "ingest", "--config", str(config), "--asset", f"{store}/{asset}-{mode}",
                           "--catalog", str(catalog), *files,
                           # Encrypted at rest and published clear: a catalog entry serves only
                           # the protocols it names.
                           *(["--encrypt", "--dash", CLEAR, "--hls", CLEAR, "--smooth", CLEAR] if mode == "enc" else [])]
                    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=REPO)
                    assert out.returncode == 0, f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stderr[-2000:]}"
        server = start_server_config(config, tmp / "sealcast.stderr.log")
        yield server
    finally:
        if server is not None:
            stop_server(server)
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def _media_playlists(base: str, path: str) -> dict[str, str]:
    """Track name -> media playlist URL, as the multivariant playlist references them."""
    master_url = f"{base}/{path}/master.m3u8"
    text = get_ok(master_url).body.decode()
    refs = []
    for line in text.splitlines():
        if line.startswith("#EXT-X-MEDIA") and 'URI="' in line:
            refs.append(line.split('URI="', 1)[1].split('"', 1)[0])
        elif line and not line.startswith("#"):
            refs.append(line)
    out = {}
    for r in refs:
        url = resolve(master_url, r)
        out[url.split(f"/{path}/", 1)[1].split("/", 1)[0]] = url
    return out


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("asset", ASSETS)
@pytest.mark.parametrize("store", STORES)
def test_every_track_from_cloud_storage_equals_the_source(cloud, store, asset, mode):
    path = f"{store}/{asset}-{mode}"
    playlists = _media_playlists(cloud.base_url, path)
    want = sorted(source_tracks(asset))
    assert sorted(playlists) == want, f"/{path}/master.m3u8 references tracks {sorted(playlists)}, source has {want}"
    errors = []
    for name, url in sorted(playlists.items()):
        try:
            got = framemd5(url, "0:0")
            src = source_hashes(asset, name)
            compare_samples(got, src, f"ffmpeg -i {url}")
            compare_timestamps(got, src, f"ffmpeg -i {url}", TS_TOLERANCE)
        except AssertionError as e:
            errors.append(str(e))
    assert not errors, "\n".join(errors)
