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
- Any other kind of file fails: a golden nobody checks is what this test exists to prevent.
"""

from __future__ import annotations

import functools
import json
import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import m3u8
import pytest

from oracle import FFPROBE, REPO, SCHEMAS, oracle_missing, require_tool

GOLDEN = REPO / "tests" / "golden"
_SEGMENT = re.compile(r"^(?P<stem>.+)_(?P<n>\d+)\.m4s$")
_INIT = re.compile(r"^(?P<stem>.+)_init\.mp4$")


def _goldens() -> list[Path]:
    return sorted(p for p in GOLDEN.rglob("*") if p.is_file() and not p.name.startswith("."))


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
    known = {".mpd", ".m3u8", ".ismc", ".ts", ".m4s"}
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
    r = subprocess.run([tool, "-v", "error", "-show_streams", "-show_packets", "-of", "json", str(src)],
                       capture_output=True, text=True, timeout=120)
    what = f"golden {_unit_id(unit)}"
    assert r.returncode == 0 and not r.stderr.strip(), f"{what}: ffprobe exit {r.returncode}: {r.stderr[-1500:]}"
    out = json.loads(r.stdout)
    streams = out.get("streams") or []
    assert streams, f"{what}: ffprobe finds no stream"
    per_stream = {s["index"]: 0 for s in streams}
    for p in out.get("packets") or []:
        per_stream[p["stream_index"]] = per_stream.get(p["stream_index"], 0) + 1
    empty = [i for i, n in per_stream.items() if n == 0]
    assert not empty, f"{what}: ffprobe reads no packet of stream(s) {empty} ({per_stream})"
