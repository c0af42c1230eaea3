"""Golden files are checked by tools we did not write, so a golden can never freeze a bug
(one already did: a media segment without `styp`, accepted because the golden said so).

Every file under tests/golden/, recursively (protected goldens live in subfolders):

- `*.mpd`: valid per MPEG's DASH-MPD.xsd (+ xlink.xsd, + DASH-IF-CPS.xsd for `dashif:`
  elements), read in place from ../shared/schemas as test_dash.py does; missing schemas
  skip, and fail under `CI=true`.
- `*.m3u8`: parsed by the PyPI `m3u8` library (syntax), a media playlist with segments or
  a multivariant playlist with variants.
- `*.ismc`: well-formed XML whose root is a Smooth `SmoothStreamingMedia` version 2.
- media: each `NAME_init.mp4` with every `NAME_N.m4s` (init + segment concatenated, as a
  player reads them), each `*.ts` alone, must be read by ffprobe 8.1 (`-v error`: exit 0,
  nothing on stderr, at least one stream and one packet per stream). Encrypted segments are
  parsed, not decoded: containers must be whole even without a key. A segment without its
  init, or an init without segments, fails.
- `*.EXT.aes` (HLS AES-128 segments): decrypted by `openssl enc -d -aes-128-cbc` with the key
  the catalog beside them gives the KID of the playlist's key URI and the IV the playlist
  states for that segment, then read by ffprobe as above (an `.m4s` with its `_init.mp4`).
- `*.piff` (Smooth fragments, which have no init to read them with): parsed by mp4box.js,
  which must find `moof` (with `mfhd`, `traf`) then `mdat`, and the PIFF sample-encryption
  `uuid` box in the `traf`.
- The notes of a folder (`README.md`, the `catalog.toml` with the keys, the Rust test's
  `index.txt` of statuses and headers) are not outputs.
- Any other kind of file fails: a golden nobody checks is what this test exists to prevent.
"""

from __future__ import annotations

import functools
import shutil
import json
import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import m3u8
import pytest

from oracle import FFPROBE, REPO, SCHEMAS, oracle_missing, require_tool

GOLDEN = REPO / "tests" / "golden"
NOTES = {"README.md", "catalog.toml", "index.txt"}
_AES = re.compile(r"^(?P<stem>.+)_(?P<n>\d+)\.(?P<ext>m4s|ts)\.aes$")
_SEGMENT = re.compile(r"^(?P<stem>.+)_(?P<n>\d+)\.m4s$")
_INIT = re.compile(r"^(?P<stem>.+)_init\.mp4$")


def _goldens() -> list[Path]:
    return sorted(p for p in GOLDEN.rglob("*") if p.is_file() and not p.name.startswith(".") and p.name not in NOTES)


def _rel(p: Path) -> str:
    return str(p.relative_to(GOLDEN))


def _media_units() -> tuple[list[tuple[Path, Path | None]], list[str]]:
    """(init or None, segment) pairs to probe, and problems with the pairing."""
    units: list[tuple[Path, Path | None]] = []
    problems: list[str] = []
    files = _goldens()
    inits = {(p.parent, _INIT.match(p.name).group("stem")): p for p in files if _INIT.match(p.name)}
    used = set()
    for p in files:
        m = _SEGMENT.match(p.name)
        if m:
            init = inits.get((p.parent, m.group("stem")))
            if init is None:
                problems.append(f"{_rel(p)}: no {m.group('stem')}_init.mp4 beside it, so no tool can read it")
                continue
            used.add(init)
            units.append((init, p))
        elif p.suffix == ".ts":
            units.append((p, None))
        elif (a := _AES.match(p.name)) and a.group("ext") == "m4s" and (p.parent, a.group("stem")) in inits:
            used.add(inits[(p.parent, a.group("stem"))])
    for init in inits.values():
        if init not in used:
            problems.append(f"{_rel(init)}: an init segment with no NAME_N.m4s beside it")
    return units, problems


GOLDENS = _goldens()
MPDS = [p for p in GOLDENS if p.suffix == ".mpd"]
PLAYLISTS = [p for p in GOLDENS if p.suffix == ".m3u8"]
ISMCS = [p for p in GOLDENS if p.suffix == ".ismc"]
MEDIA_UNITS, PAIRING_PROBLEMS = _media_units()


def test_every_golden_has_an_oracle():
    assert GOLDENS, f"no goldens under {GOLDEN}"
    known = {".mpd", ".m3u8", ".ismc", ".ts", ".m4s", ".aes", ".piff"}
    unchecked = [_rel(p) for p in GOLDENS if p.suffix not in known and not _INIT.match(p.name)]
    assert not unchecked, (f"goldens no tool checks here: {unchecked}; teach test_golden.py an independent check "
                           f"for that kind of file")
    assert not PAIRING_PROBLEMS, "\n".join(PAIRING_PROBLEMS)


@functools.lru_cache(maxsize=None)
def _schema():
    import xmlschema
    xsd, xlink, cps = SCHEMAS / "DASH-MPD.xsd", SCHEMAS / "xlink.xsd", SCHEMAS / "DASH-IF-CPS.xsd"
    locations = [("http://www.w3.org/1999/xlink", str(xlink))]
    if cps.exists():
        locations.append(("https://dashif.org/CPS", str(cps)))
    return xmlschema.XMLSchema(str(xsd), locations=locations)


@pytest.mark.parametrize("path", MPDS, ids=[_rel(p) for p in MPDS])
def test_golden_mpd_validates_against_mpeg_schema(path):
    if not (SCHEMAS / "DASH-MPD.xsd").exists() or not (SCHEMAS / "xlink.xsd").exists():
        oracle_missing(f"MPEG's DASH schema not found at {SCHEMAS} (it lives beside the repo in shared/schemas)")
    text = path.read_text()
    if "dashif.org/CPS" in text and not (SCHEMAS / "DASH-IF-CPS.xsd").exists():
        oracle_missing(f"{_rel(path)} uses dashif:Laurl but DASH-IF-CPS.xsd is not at {SCHEMAS}")
    errors = [f"{e.path}: {e.reason}" for e in _schema().iter_errors(text)]
    assert not errors, f"golden {_rel(path)} is not valid per DASH-MPD.xsd:\n" + "\n".join(errors[:10])


@pytest.mark.parametrize("path", PLAYLISTS, ids=[_rel(p) for p in PLAYLISTS])
def test_golden_playlist_parses(path):
    text = path.read_text()
    assert text.startswith("#EXTM3U"), f"golden {_rel(path)} does not start with #EXTM3U"
    # strict=True: the parser raises on lines it does not understand instead of skipping them.
    pl = m3u8.M3U8(text, strict=True)
    if pl.is_variant:
        assert pl.playlists, f"golden {_rel(path)}: a multivariant playlist without variants"
        for v in pl.playlists:
            assert v.stream_info.bandwidth, f"golden {_rel(path)}: variant {v.uri} without BANDWIDTH"
    else:
        assert pl.segments, f"golden {_rel(path)}: a media playlist without segments"
        assert pl.target_duration, f"golden {_rel(path)}: no EXT-X-TARGETDURATION"
        assert pl.is_endlist, f"golden {_rel(path)}: a VOD media playlist without EXT-X-ENDLIST"


@pytest.mark.parametrize("path", ISMCS, ids=[_rel(p) for p in ISMCS])
def test_golden_smooth_manifest_is_well_formed(path):
    root = ET.fromstring(path.read_bytes())
    assert root.tag == "SmoothStreamingMedia" and root.get("MajorVersion") == "2", \
        f"golden {_rel(path)}: root {root.tag} MajorVersion {root.get('MajorVersion')}, expected SmoothStreamingMedia 2"
    assert root.findall("StreamIndex/QualityLevel"), f"golden {_rel(path)}: no QualityLevel"


def _key_for(init: Path) -> list[str]:
    """`-decryption_key KEY` for a protected init (one whose bytes hold a KID of the folder's
    catalog.toml after `tenc`), else nothing."""
    data = init.read_bytes()
    at = data.find(b"tenc")
    catalog = init.parent / "catalog.toml"
    if at < 0 or not catalog.is_file():
        return []
    import tomllib
    for a in tomllib.loads(catalog.read_text()).get("asset", []):
        for k in a.get("keys", []):
            if bytes.fromhex(k["kid"].replace("-", "")) in data[at:at + 64]:
                return ["-decryption_key", k["key"]]
    pytest.fail(f"{_rel(init)}: protected, but no key of {_rel(catalog)} matches its tenc KID")


def _unit_id(u: tuple[Path, Path | None]) -> str:
    return _rel(u[0]) if u[1] is None else f"{_rel(u[0])}+{u[1].name}"


@pytest.mark.parametrize("unit", MEDIA_UNITS, ids=[_unit_id(u) for u in MEDIA_UNITS])
def test_golden_media_reads_in_ffprobe(unit, tmp_path):
    first, segment = unit
    src = first
    if segment is not None:
        src = tmp_path / f"{first.stem}+{segment.name}.mp4"
        src.write_bytes(first.read_bytes() + segment.read_bytes())
    tool = require_tool(FFPROBE, "ffprobe")
    # A Common Encryption init names its KID (`tenc`): ffprobe probes by decoding a frame, so it
    # gets the key the catalog beside the golden gives that KID, and decrypts as it reads.
    key = _key_for(first) if segment is not None else []
    r = subprocess.run([tool, "-v", "error", *key, "-show_streams", "-show_packets", "-of", "json", str(src)],
                       capture_output=True, text=True, timeout=120)
    what = f"golden {_unit_id(unit)}"
    errors = r.stderr.strip().splitlines()
    if "sample-aes" in first.name:
        # SAMPLE-AES encrypts the payloads inside whole PES packets and ffprobe has no key for
        # TS: its decoders may complain while probing; the demuxer (mpegts) must not.
        # (decoder messages can span lines, so what is kept is what names the demuxer or the input).
        errors = [e for e in errors if "mpegts" in e or "Invalid data" in e or "Error" in e]
    assert r.returncode == 0 and not errors, f"{what}: ffprobe exit {r.returncode}: {r.stderr[-1500:]}"
    out = json.loads(r.stdout)
    streams = out.get("streams") or []
    assert streams, f"{what}: ffprobe finds no stream"
    per_stream = {s["index"]: 0 for s in streams}
    for p in out.get("packets") or []:
        per_stream[p["stream_index"]] = per_stream.get(p["stream_index"], 0) + 1
    empty = [i for i, n in per_stream.items() if n == 0]
    assert not empty, f"{what}: ffprobe reads no packet of stream(s) {empty} ({per_stream})"


def _ffprobe_reads(src: Path, what: str) -> None:
    tool = require_tool(FFPROBE, "ffprobe")
    r = subprocess.run([tool, "-v", "error", "-show_streams", "-show_packets", "-of", "json", str(src)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and not r.stderr.strip(), f"{what}: ffprobe exit {r.returncode}: {r.stderr[-1500:]}"
    out = json.loads(r.stdout)
    assert out.get("streams") and out.get("packets"), f"{what}: ffprobe reads no stream or packet"


AES = [p for p in GOLDENS if p.suffix == ".aes"]
PIFFS = [p for p in GOLDENS if p.suffix == ".piff"]


@pytest.mark.parametrize("path", AES, ids=[_rel(p) for p in AES])
def test_golden_aes128_segment_decrypts_with_openssl(path, tmp_path):
    import tomllib
    m = _AES.match(path.name)
    assert m, f"{_rel(path)}: name is not NAME_N.(m4s|ts).aes"
    stem, n, ext = m.group("stem"), int(m.group("n")), m.group("ext")
    playlist = path.parent / (f"{stem}.m3u8" if ext == "m4s" else f"{stem}-ts.m3u8")
    assert playlist.is_file(), f"{_rel(path)}: no {playlist.name} beside it to take the IV from"
    keys = [l for l in playlist.read_text().splitlines() if l.startswith("#EXT-X-KEY:METHOD=AES-128")]
    assert len(keys) >= n, f"{playlist.name}: {len(keys)} key tags, segment {n} needs its own"
    tag = keys[n - 1]
    kid = re.search(r'URI="[^"]*?([0-9a-f]{32})[^"]*"', tag).group(1)
    iv = re.search(r"IV=0x([0-9a-fA-F]{32})", tag).group(1)
    catalog = tomllib.loads((path.parent / "catalog.toml").read_text())
    key = next(k["key"] for a in catalog["asset"] for k in a.get("keys", []) if k["kid"].replace("-", "") == kid)
    if not shutil.which("openssl"):
        oracle_missing("openssl not installed")
    r = subprocess.run(["openssl", "enc", "-d", "-aes-128-cbc", "-K", key, "-iv", iv, "-in", str(path)], capture_output=True, timeout=60)
    assert r.returncode == 0, f"{_rel(path)}: openssl could not decrypt it (bad padding = wrong key, IV or bytes): {r.stderr[-500:]!r}"
    clear = r.stdout
    if ext == "m4s":
        init = path.parent / f"{stem}_init.mp4"
        assert init.is_file(), f"{_rel(path)}: no {init.name}"
        clear = init.read_bytes() + clear
    src = tmp_path / f"clear.{'mp4' if ext == 'm4s' else 'ts'}"
    src.write_bytes(clear)
    _ffprobe_reads(src, f"golden {_rel(path)} decrypted")


_PIFF_JS = r"""
const MP4Box = require('mp4box');
const fs = require('fs');
const data = fs.readFileSync(process.argv[1]);
const buf = data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength);
buf.fileStart = 0;
const f = MP4Box.createFile();
f.appendBuffer(buf);
f.flush();
const kids = (b) => (b.boxes || []).map((c) => ({ type: c.type, start: c.start, hdr_size: c.hdr_size, boxes: kids(c) }));
console.log(JSON.stringify(f.boxes.map((b) => ({ type: b.type, boxes: kids(b) }))));
"""

PIFF_SAMPLE_ENCRYPTION = "a2394f525a9b4f14a2446c427c648df4"


@pytest.mark.parametrize("path", PIFFS, ids=[_rel(p) for p in PIFFS])
def test_golden_piff_fragment_parses_in_mp4box(path):
    if not shutil.which("node") or not (REPO / "tests" / "e2e" / "node_modules" / "mp4box").exists():
        oracle_missing("node or tests/e2e/node_modules/mp4box missing: run scripts/setup.sh")
    r = subprocess.run(["node", "-e", _PIFF_JS, str(path)], capture_output=True, text=True, timeout=60, cwd=REPO / "tests" / "e2e")
    assert r.returncode == 0, f"{_rel(path)}: mp4box.js failed: {r.stderr[-1500:]}"
    top = json.loads(r.stdout.strip().splitlines()[-1])
    assert [b["type"] for b in top] == ["moof", "mdat"], f"{_rel(path)}: top-level boxes {[b['type'] for b in top]}"
    moof = [c["type"] for c in top[0]["boxes"]]
    assert moof[:2] == ["mfhd", "traf"], f"{_rel(path)}: moof holds {moof}"
    traf = top[0]["boxes"][1]["boxes"]
    # mp4box.js gives where each box starts; its 16-byte user type follows the size and type.
    data = path.read_bytes()
    uuids = [data[c["start"] + 8:c["start"] + 24].hex() for c in traf if c["type"] == "uuid"]
    assert PIFF_SAMPLE_ENCRYPTION in uuids, f"{_rel(path)}: no PIFF sample-encryption uuid in traf ({traf})"
