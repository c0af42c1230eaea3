"""HLS over MPEG-TS (`/{asset}/master-ts.m3u8`, `/{asset}/{track}/ts.m3u8`, `/{n}.ts`).

Judges: PyPI `m3u8` (playlist syntax), ffmpeg/ffprobe 8.1 (HLS demuxer over HTTP, MPEG-TS
demuxer on the concatenated segments, decoders), a small ISO/IEC 13818-1 packet reader
below (sync bytes, PAT/PMT with CRC, continuity counters, PCR), and hls.js in Chromium.

Expected values come from the source fixtures: decoded frames (TS carries Annex-B H.264 /
HEVC and ADTS AAC, so compressed packets legitimately differ from the MP4 samples, but the
decoded pictures and audio must not) and ISO BMFF sample times read from the moof boxes.
The only constants are the contract's: the 10 s timestamp offset, PIDs 0x1000 (PMT),
0x100 (video), 0x101 (audio), and the ISO 13818-1 / RFC 8216 stream types.
"""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import tempfile
import urllib.parse
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import m3u8
import pytest

from oracle import (PROGRESSIVE, require_browser, E2E_DIR, FFMPEG, FFPROBE, compare_samples, decoded_framemd5, fetch, get_bytes, get_ok, parse_framemd5,
                    normalize_codecs, normalize_lang, reference_codecs, require_tool, source_decoded_hashes,
                    source_hashes, source_sample_times, source_track, source_tracks, track_duration,
                    track_name_from_url)
from test_browser import TIMEOUT_S, _explain
from test_hls import HLS_TYPES, _audio_media, _average_segment_bitrate, _fails, _media, _peak_segment_bitrate

# The contract's constants.
TS_OFFSET = Fraction(10)           # every timestamp is the source's + 10 s (900000 at 90 kHz)
TICK = Fraction(1, 90000)          # one PES/PCR-base tick
PAT_PID, PMT_PID, VIDEO_PID, AUDIO_PID, NULL_PID = 0x0000, 0x1000, 0x100, 0x101, 0x1FFF
# ISO/IEC 13818-1 Table 2-34 (0x24: HEVC, H.222.0 Amd.3); AAC in ADTS is 0x0F.
STREAM_TYPES = {"h264": 0x1B, "hevc": 0x24, "aac": 0x0F}
# TS carries H.264 and AAC only (issue 12: Apple's authoring rules put HEVC in fMP4): `hevc`
# (HEVC video + AAC) is checked below for what its TS presentation is, the audio only; the HEVC
# muxer itself stays tested in Rust (crates/package/tests/ts.rs).
ASSETS = ["demo", "multi", "ams"] + PROGRESSIVE
_TMP = tempfile.TemporaryDirectory(prefix="sealcast-ts-")  # concatenated segments; removed at exit
CORRUPTION_RE = re.compile(r"Continuity check failed|Packet corrupt|corrupt (input )?packet", re.I)


# --------------------------------------------------------------------------- playlists


@functools.lru_cache(maxsize=None)
def _master_ts(base_url: str, asset: str) -> m3u8.M3U8:
    url = f"{base_url}/{asset}/master-ts.m3u8"
    return m3u8.loads(get_ok(url).text(), uri=url)


def _source_audio(asset: str) -> list[str]:
    return sorted(n for n, t in source_tracks(asset).items() if t.codec_type == "audio")


def _muxed_audio_track(asset: str, master: m3u8.M3U8) -> str | None:
    """The source audio track the variants carry muxed in: the one audio track no
    EXT-X-MEDIA URI names (contract: the default track's EXT-X-MEDIA has no URI). Which
    track it really is, is then proven by decoding (test_ts_ffmpeg_*)."""
    audio = _source_audio(asset)
    if not audio:
        return None
    with_uri = {track_name_from_url(m.absolute_uri, asset) for m in _audio_media(master) if m.uri}
    rest = [n for n in audio if n not in with_uri]
    assert len(rest) == 1, (f"/{asset}/master-ts.m3u8: source audio tracks {audio}, EXT-X-MEDIA URIs name "
                            f"{sorted(with_uri)}: expected exactly one audio track left for muxing, got {rest}")
    return rest[0]


@dataclass
class TsPlaylist:
    url: str
    video: str | None          # source track of the video elementary stream
    audio: str | None          # source track of the audio elementary stream
    role: str                  # "variant" | "rendition"

    @property
    def tracks(self) -> list[str]:
        return [t for t in (self.video, self.audio) if t]

    @property
    def duration_track(self) -> str:
        return self.video or self.audio  # EXTINF follow the video when there is one


@functools.lru_cache(maxsize=None)
def _ts_playlists(base_url: str, asset: str) -> tuple[TsPlaylist, ...]:
    """Every media playlist the TS multivariant playlist references, with the source
    tracks its segments must carry."""
    master = _master_ts(base_url, asset)
    muxed = _muxed_audio_track(asset, master)
    out = []
    for v in master.playlists:
        name = track_name_from_url(v.absolute_uri, asset)
        if source_track(asset, name).codec_type == "video":
            out.append(TsPlaylist(v.absolute_uri, name, muxed, "variant"))
        else:
            out.append(TsPlaylist(v.absolute_uri, None, name, "variant"))
    for m in _audio_media(master):
        if m.uri:
            out.append(TsPlaylist(m.absolute_uri, None, track_name_from_url(m.absolute_uri, asset), "rendition"))
    seen, uniq = set(), []
    for p in out:
        if p.url not in seen:
            seen.add(p.url)
            uniq.append(p)
    return tuple(uniq)


def _segment_urls(url: str) -> list[str]:
    return [s.absolute_uri for s in _media(url).segments]


def _half_up(x: Fraction) -> int:
    """RFC 8216 4.3.3.1 rounds EXTINF to the nearest integer (Python's round() is banker's)."""
    return int(x + Fraction(1, 2))


# --------------------------------------------------------------------------- ISO/IEC 13818-1 reader


@dataclass
class TsPacket:
    offset: int
    pid: int
    pusi: bool
    tei: bool
    afc: int
    cc: int
    discontinuity: bool
    random_access: bool
    pcr_base: int | None
    payload: bytes
    raw: bytes


def _parse_packets(data: bytes) -> list[TsPacket]:
    out = []
    for off in range(0, len(data) - len(data) % 188, 188):
        p = data[off:off + 188]
        afc = (p[3] >> 4) & 3
        disc = ra = False
        pcr = None
        start = 4
        if afc & 2:
            alen = p[4]
            if alen > 0:
                disc, ra = bool(p[5] & 0x80), bool(p[5] & 0x40)
                if p[5] & 0x10 and alen >= 7:
                    pcr = int.from_bytes(p[6:12], "big") >> 15
            start = 5 + alen
        out.append(TsPacket(off, ((p[1] & 0x1F) << 8) | p[2], bool(p[1] & 0x40), bool(p[1] & 0x80), afc, p[3] & 0x0F,
                            disc, ra, pcr, p[start:188] if afc & 1 and start <= 188 else b"", p))
    return out


def _crc32_mpeg2(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) & 0xFFFFFFFF if crc & 0x80000000 else (crc << 1) & 0xFFFFFFFF
    return crc


def _section(pkt: TsPacket, table_id: int, what: str) -> bytes:
    """The PSI section starting in this packet, CRC-checked (PAT/PMT fit in one packet)."""
    assert pkt.pusi, f"{what}: first packet lacks payload_unit_start_indicator"
    assert pkt.payload, f"{what}: packet has no payload"
    ptr = pkt.payload[0]
    sec = pkt.payload[1 + ptr:]
    assert len(sec) >= 3, f"{what}: truncated section"
    assert sec[0] == table_id, f"{what}: table_id 0x{sec[0]:02x}, expected 0x{table_id:02x}"
    assert sec[1] & 0x80, f"{what}: section_syntax_indicator is 0"
    length = ((sec[1] & 0x0F) << 8) | sec[2]
    assert 3 + length <= len(sec), f"{what}: section_length {length} runs past the packet"
    sec = sec[:3 + length]
    assert _crc32_mpeg2(sec) == 0, f"{what}: CRC_32 mismatch (section {sec.hex()})"
    return sec


def _pat_programs(sec: bytes) -> dict[int, int]:
    body = sec[8:-4]
    return {int.from_bytes(body[i:i + 2], "big"): int.from_bytes(body[i + 2:i + 4], "big") & 0x1FFF
            for i in range(0, len(body) - 3, 4)}


def _pmt(sec: bytes) -> tuple[int, list[tuple[int, int]]]:
    """(PCR_PID, [(stream_type, elementary_PID)])"""
    pcr_pid = ((sec[8] & 0x1F) << 8) | sec[9]
    i = 12 + (((sec[10] & 0x0F) << 8) | sec[11])
    es = []
    while i + 5 <= len(sec) - 4:
        es.append((sec[i], ((sec[i + 1] & 0x1F) << 8) | sec[i + 2]))
        i += 5 + (((sec[i + 3] & 0x0F) << 8) | sec[i + 4])
    return pcr_pid, es


def _pes_dts(payload: bytes) -> int | None:
    """DTS (or PTS when there is no DTS) of a PES header, 90 kHz."""
    if len(payload) < 14 or payload[:3] != b"\x00\x00\x01" or not payload[7] & 0x80:
        return None

    def ts(x: bytes) -> int:
        return (((x[0] >> 1) & 7) << 30) | (x[1] << 22) | ((x[2] >> 1) << 15) | (x[3] << 7) | (x[4] >> 1)
    if payload[7] & 0xC0 == 0xC0 and len(payload) >= 19:
        return ts(payload[14:19])
    return ts(payload[9:14])


def _expected_es(asset: str, pl: TsPlaylist) -> set[tuple[int, int]]:
    es = set()
    if pl.video:
        es.add((STREAM_TYPES[source_track(asset, pl.video).codec_name], VIDEO_PID))
    if pl.audio:
        es.add((STREAM_TYPES[source_track(asset, pl.audio).codec_name], AUDIO_PID))
    return es


def _check_segment(url: str, data: bytes, want_es: set[tuple[int, int]]) -> list[str]:
    where = url
    errs: list[str] = []
    if not data or len(data) % 188:
        return [f"{where}: size {len(data)} is not a positive multiple of 188"]
    bad_sync = [o for o in range(0, len(data), 188) if data[o] != 0x47]
    if bad_sync:
        errs.append(f"{where}: {len(bad_sync)} packets without sync byte 0x47, first at byte {bad_sync[0]}")
        return errs
    pkts = _parse_packets(data)
    if any(p.tei for p in pkts):
        errs.append(f"{where}: transport_error_indicator set on {sum(p.tei for p in pkts)} packets")
    if any(p.afc == 0 for p in pkts):
        errs.append(f"{where}: adaptation_field_control 00 (reserved) on {sum(p.afc == 0 for p in pkts)} packets")
    if pkts[0].pid != PAT_PID:
        errs.append(f"{where}: first packet has PID 0x{pkts[0].pid:04x}, expected the PAT (PID 0)")
        return errs
    try:
        programs = {k: v for k, v in _pat_programs(_section(pkts[0], 0x00, f"{where} PAT")).items() if k != 0}
    except AssertionError as e:
        return errs + [str(e)]
    if list(programs.values()) != [PMT_PID]:
        errs.append(f"{where}: PAT programs {{number: PMT PID}} = "
                    f"{ {k: hex(v) for k, v in programs.items()} }, expected one program with PMT PID 0x{PMT_PID:04x}")
    es_pids = {pid for _, pid in want_es}
    pmt_at = next((i for i, p in enumerate(pkts) if p.pid == PMT_PID), None)
    first_es = next((i for i, p in enumerate(pkts) if p.pid in es_pids), None)
    if pmt_at is None:
        return errs + [f"{where}: no packet on PMT PID 0x{PMT_PID:04x}"]
    if first_es is not None and first_es < pmt_at:
        errs.append(f"{where}: elementary-stream packet {first_es} precedes the PMT (packet {pmt_at})")
    try:
        pcr_pid, es = _pmt(_section(pkts[pmt_at], 0x02, f"{where} PMT"))
    except AssertionError as e:
        return errs + [str(e)]
    if set(es) != want_es or len(es) != len(want_es):
        errs.append(f"{where}: PMT streams (stream_type, PID) {[(hex(t), hex(p)) for t, p in es]}, expected "
                    f"{sorted((hex(t), hex(p)) for t, p in want_es)}")
    if pcr_pid not in es_pids:
        errs.append(f"{where}: PCR_PID 0x{pcr_pid:04x} is not one of the elementary PIDs {sorted(map(hex, es_pids))}")
    stray = sorted({p.pid for p in pkts} - {PAT_PID, PMT_PID, NULL_PID} - es_pids)
    if stray:
        errs.append(f"{where}: packets on undeclared PIDs {[hex(x) for x in stray]}")
    dts = []
    for pid in sorted(es_pids):
        mine = [p for p in pkts if p.pid == pid and p.afc & 1]
        if not mine:
            errs.append(f"{where}: no payload on PID 0x{pid:04x} declared in the PMT")
            continue
        if not mine[0].pusi or mine[0].payload[:3] != b"\x00\x00\x01":
            errs.append(f"{where}: PID 0x{pid:04x} does not start with a PES header (segment not PES-aligned)")
        dts += [d for d in (_pes_dts(p.payload) for p in mine if p.pusi) if d is not None]
    pcrs = [p.pcr_base for p in pkts if p.pid == pcr_pid and p.pcr_base is not None]
    if not pcrs:
        errs.append(f"{where}: no PCR on PCR_PID 0x{pcr_pid:04x}")
    elif dts and pcrs[0] > min(dts):
        errs.append(f"{where}: first PCR {pcrs[0]} is later than the segment's first decode time {min(dts)} "
                    f"(90 kHz): data would arrive after it must be decoded")
    return errs


def _continuity_errors(segments: list[tuple[str, bytes]]) -> list[str]:
    """ISO/IEC 13818-1 2.4.3.3: per PID, continuity_counter +1 (mod 16) on every packet with
    payload, unchanged on packets without payload; a single duplicate packet is allowed.
    Checked over the segments in playlist order, so every join between consecutive
    segments is checked too. discontinuity_indicator excuses nothing: a VOD playlist
    played straight through has no discontinuity."""
    errs: list[str] = []
    last: dict[int, tuple[int, bytes, str]] = {}  # pid -> (cc, raw packet, where)
    for url, data in segments:
        name = urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1]
        for i, p in enumerate(_parse_packets(data)):
            if p.pid == NULL_PID:
                continue
            where = f"{name} packet {i}"
            if p.pid in last:
                cc, raw, prev_where = last[p.pid]
                if p.afc & 1:
                    want = (cc + 1) % 16
                    if p.cc != want and not (p.cc == cc and p.raw == raw):
                        join = "" if prev_where.split(" ")[0] == name else f" (join after {prev_where})"
                        errs.append(f"PID 0x{p.pid:04x} at {where}{join}: continuity_counter {p.cc}, expected {want}")
                elif p.cc != cc:
                    errs.append(f"PID 0x{p.pid:04x} at {where}: continuity_counter {p.cc} on a packet without "
                                f"payload, expected the previous value {cc}")
            last[p.pid] = (p.cc, p.raw, where)
    return errs


# --------------------------------------------------------------------------- ffprobe / ffmpeg helpers


@functools.lru_cache(maxsize=None)
def _concatenated(url: str) -> tuple[str, tuple[int, ...]]:
    """All segments of a media playlist, downloaded and concatenated into a temp file;
    returns (path, byte offset where each segment starts)."""
    segs = _segment_urls(url)
    assert segs, f"{url}: no segments"
    fd, path = tempfile.mkstemp(suffix=".ts", dir=_TMP.name)
    starts = []
    with os.fdopen(fd, "wb") as f:
        pos = 0
        for s in segs:
            body = get_bytes(s)
            starts.append(pos)
            f.write(body)
            pos += len(body)
    return path, tuple(starts)


@functools.lru_cache(maxsize=None)
def _probe(path: str) -> dict:
    cmd = [require_tool(FFPROBE, "ffprobe"), "-v", "error", "-show_streams", "-show_packets", "-show_programs",
           "-show_entries", "packet=stream_index,pts,dts,duration,pos,flags:stream=index,codec_type,codec_name,id,time_base"
           ":stream_tags:program=program_id:program_tags", "-of", "json", path]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, f"ffprobe failed on {path}: {out.stderr[-1500:]}"
    return json.loads(out.stdout)


@functools.lru_cache(maxsize=None)
def _probe_streams(src: str) -> dict:
    cmd = [require_tool(FFPROBE, "ffprobe"), "-v", "error", "-show_streams", "-show_programs",
           "-show_entries", "stream=index,codec_type,codec_name:stream_tags:program=program_id:program_tags",
           "-of", "json", src]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, f"ffprobe failed on {src}: {out.stderr[-1500:]}"
    return json.loads(out.stdout)


@functools.lru_cache(maxsize=None)
def _decoded(src: str, map_spec: str):
    return decoded_framemd5(src, map_spec)


@functools.lru_cache(maxsize=None)
def _source_decoded_every_frame(asset: str, track: str):
    """The source track decoded frame by frame with its edit list ignored: MPEG-TS has no edit
    lists, so a TS segment carries every coded frame, the AAC priming frame an edit list
    hides included (its timestamps carry the edit, see test_ts_timestamps). Without an edit
    list this is the plain decode."""
    t = source_track(asset, track)
    cmd = [require_tool(FFMPEG, "ffmpeg"), "-hide_banner", "-nostdin", "-v", "error", "-ignore_editlist", "1",
           "-i", str(t.path), "-map", f"0:{t.index}", "-fps_mode", "passthrough", "-f", "framemd5", "-"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, f"{' '.join(cmd)}: {out.stderr[-1500:]}"
    return parse_framemd5(out.stdout)


def _compare_decoded(src: str, map_spec: str, asset: str, track: str, errors: list[str]) -> None:
    try:
        compare_samples(_decoded(src, map_spec), _source_decoded_every_frame(asset, track),
                        f"decoded frames of ffmpeg -i {src} -map {map_spec} vs source track {track}")
    except AssertionError as e:
        errors.append(str(e))


def _ffmpeg_corruption_lines(src: str) -> list[str]:
    cmd = [require_tool(FFMPEG, "ffmpeg"), "-hide_banner", "-nostdin", "-loglevel", "debug", "-i", src,
           "-map", "0", "-c", "copy", "-f", "null", "-"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, f"ffmpeg failed on {src}: {out.stderr[-1500:]}"
    return [ln.strip() for ln in out.stderr.splitlines() if CORRUPTION_RE.search(ln)]


# --------------------------------------------------------------------------- multivariant playlist


@pytest.mark.parametrize("asset", ASSETS)
def test_ts_master_served(server, asset):
    r = fetch(server.url(f"/{asset}/master-ts.m3u8"))
    assert r.status == 200, r.describe()
    ctype = (r.header("content-type") or "").split(";")[0].strip().lower()
    assert ctype in HLS_TYPES, f"Content-Type {r.header('content-type')!r} for {r.url}"
    assert r.body.startswith(b"#EXTM3U"), f"{r.url} does not start with #EXTM3U"


@pytest.mark.parametrize("asset", ASSETS)
def test_ts_master_playlist(server, asset):
    """EXT-X-VERSION 3; one variant per source video track with BANDWIDTH, RESOLUTION
    (= source), CODECS = Shaka Packager's strings for the video and the muxed audio track;
    audio group: the muxed track's EXT-X-MEDIA has no URI and is the one DEFAULT=YES, every
    other source audio track is a rendition `URI="{track}/ts.m3u8"`, LANGUAGE = source."""
    master = _master_ts(server.base_url, asset)
    url = f"/{asset}/master-ts.m3u8"
    errors = []
    if master.version != 3:
        errors.append(f"{url}: EXT-X-VERSION {master.version}, expected 3")
    assert master.is_variant, f"{url} has no EXT-X-STREAM-INF"
    audio = _audio_media(master)
    source_audio = _source_audio(asset)
    muxed = _muxed_audio_track(asset, master)
    seen_video = []
    for v in master.playlists:
        si = v.stream_info
        name = track_name_from_url(v.absolute_uri, asset)
        t = source_track(asset, name)
        where = f"{url} variant {v.uri}"
        if urllib.parse.urlsplit(v.absolute_uri).path != f"/{asset}/{name}/ts.m3u8":
            errors.append(f"{where}: URI resolves to {v.absolute_uri}, contract says /{asset}/{name}/ts.m3u8")
        if t.codec_type != "video":
            continue
        seen_video.append(name)
        if not si.bandwidth or si.bandwidth <= 0:
            errors.append(f"{where}: BANDWIDTH {si.bandwidth!r}")
        if si.resolution != (t.width, t.height):
            errors.append(f"{where}: RESOLUTION {si.resolution}, source {t.width}x{t.height}")
        if si.frame_rate is not None and abs(Fraction(str(si.frame_rate)) - t.frame_rate) > Fraction(1, 1000):
            errors.append(f"{where}: FRAME-RATE {si.frame_rate}, source {float(t.frame_rate):.3f}")
        want = {normalize_codecs(reference_codecs(asset, name))}
        if muxed:
            want.add(normalize_codecs(reference_codecs(asset, muxed)))
        got = {normalize_codecs(c) for c in (si.codecs or "").split(",") if c.strip()}
        if not si.codecs:
            errors.append(f"{where}: no CODECS")
        elif got != want:
            errors.append(f"{where}: CODECS {si.codecs!r}, Shaka Packager's strings for video {name} + muxed audio "
                          f"{muxed}: {sorted(want)}")
        if source_audio and not si.audio:
            errors.append(f"{where}: no AUDIO group although the source has audio {source_audio}")
        if not source_audio and si.audio:
            errors.append(f"{where}: AUDIO={si.audio!r} but the source has no audio")
        if si.audio and not [m for m in audio if m.group_id == si.audio]:
            errors.append(f"{where}: AUDIO={si.audio!r} names no EXT-X-MEDIA group")
    want_video = sorted(n for n, t in source_tracks(asset).items() if t.codec_type == "video")
    if sorted(seen_video) != want_video:
        errors.append(f"{url}: variants cover video tracks {sorted(seen_video)}, source has {want_video}")

    if not source_audio:
        if audio:
            errors.append(f"{url}: EXT-X-MEDIA TYPE=AUDIO {[m.name for m in audio]} but the source has no audio")
        _fails(errors)
        return
    groups: dict[str, list] = {}
    for m in audio:
        groups.setdefault(m.group_id, []).append(m)
        where = f"{url} EXT-X-MEDIA NAME={m.name!r}"
        if m.uri:
            name = track_name_from_url(m.absolute_uri, asset)
            if m.uri != f"{name}/ts.m3u8":
                errors.append(f"{where}: URI={m.uri!r}, contract says \"{name}/ts.m3u8\"")
            if source_track(asset, name).codec_type != "audio":
                errors.append(f"{where}: URI {m.uri} is not an audio track")
            if m.default == "YES":
                errors.append(f"{where}: DEFAULT=YES on a rendition with URI; the default is the muxed track "
                              f"{muxed} (no URI)")
        else:
            name = muxed
            if m.default != "YES":
                errors.append(f"{where}: the EXT-X-MEDIA without URI (audio muxed in the variants) has "
                              f"DEFAULT={m.default}, expected YES")
        if m.name in (None, ""):
            errors.append(f"{where}: NAME missing")
        if m.autoselect not in (None, "YES", "NO") or (m.default == "YES" and m.autoselect not in (None, "YES")):
            errors.append(f"{where}: DEFAULT={m.default} AUTOSELECT={m.autoselect} (RFC 8216 4.3.4.1)")
        lang = source_track(asset, name).language
        if lang is not None and normalize_lang(m.language) != normalize_lang(lang):
            errors.append(f"{where}: LANGUAGE {m.language!r}, source track {name} language {lang!r}")
        if lang is None and m.language not in (None, "und"):
            errors.append(f"{where}: LANGUAGE {m.language!r}, source track {name} language is undetermined")
    for gid, ms in groups.items():
        no_uri = [m.name for m in ms if not m.uri]
        if len(no_uri) != 1:
            errors.append(f"{url} group {gid!r}: {len(no_uri)} EXT-X-MEDIA without URI {no_uri}, expected exactly "
                          f"one (the audio muxed into the variants)")
        defaults = [m.name for m in ms if m.default == "YES"]
        if len(defaults) != 1:
            errors.append(f"{url} group {gid!r}: DEFAULT=YES on {defaults}, expected exactly one")
        names = [m.name for m in ms]
        if len(set(names)) != len(names):
            errors.append(f"{url} group {gid!r}: NAMEs not unique {names}")
        covered = sorted([track_name_from_url(m.absolute_uri, asset) for m in ms if m.uri] + [muxed] * len(no_uri))
        if covered != source_audio:
            errors.append(f"{url} group {gid!r} covers {covered} (muxed: {muxed}), source audio tracks {source_audio}")
    _fails(errors)


@pytest.mark.parametrize("asset", ASSETS + ["hevc"])
def test_ts_variant_bandwidth(server, asset):
    """RFC 8216 4.3.4.2: BANDWIDTH >= the largest sum of peak segment bit rates of any playable
    combination: the variant's TS segments (video + muxed audio) plus, when the client picks
    another language, that rendition's TS segments; and, as Apple's HLS authoring
    specification asks, not more than 10 % above it. AVERAGE-BANDWIDTH (optional) within 10 %
    of the same sum of average bit rates. `hevc` is here for its audio-only TS variant."""
    master = _master_ts(server.base_url, asset)
    audio = _audio_media(master)
    errors = []
    for v in master.playlists:
        si = v.stream_info
        pl = _media(v.absolute_uri)
        own_peak, own_avg = _peak_segment_bitrate(pl), _average_segment_bitrate(pl)
        alts = [m for m in audio if si.audio and m.group_id == si.audio and m.uri]
        alt_peak = max((_peak_segment_bitrate(_media(m.absolute_uri)) for m in alts), default=Fraction(0))
        alt_avg = max((_average_segment_bitrate(_media(m.absolute_uri)) for m in alts), default=Fraction(0))
        peak, avg = own_peak + alt_peak, own_avg + alt_avg
        where = f"/{asset}/master-ts.m3u8 variant {v.uri}"
        if not si.bandwidth or si.bandwidth < peak:
            errors.append(f"{where}: BANDWIDTH={si.bandwidth} below the measured peak segment bit rate {int(peak)} "
                          f"(variant TS {int(own_peak)} + heaviest other-language rendition {int(alt_peak)})")
        elif si.bandwidth > peak * Fraction(11, 10):
            errors.append(f"{where}: BANDWIDTH={si.bandwidth} more than 10 % above the measured peak segment bit rate {int(peak)}")
        if si.average_bandwidth and abs(si.average_bandwidth - avg) > avg / 10:
            errors.append(f"{where}: AVERAGE-BANDWIDTH={si.average_bandwidth}, measured average {int(avg)} "
                          f"(variant TS {int(own_avg)} + other-language rendition {int(alt_avg)}), more than 10 % off")
    _fails(errors)


# --------------------------------------------------------------------------- media playlists


@pytest.mark.parametrize("asset", ASSETS)
def test_ts_media_playlists(server, asset):
    """Each ts.m3u8: EXT-X-VERSION 3, VOD, ENDLIST, no EXT-X-MAP, TARGETDURATION >= every
    EXTINF rounded to the nearest integer, segments `/{asset}/{track}/{n}.ts`, EXTINF sum =
    track duration."""
    errors = []
    for p in _ts_playlists(server.base_url, asset):
        url = p.url
        r = fetch(url)
        if r.status != 200:
            errors.append(f"{url}: {r.status}")
            continue
        ctype = (r.header("content-type") or "").split(";")[0].strip().lower()
        if ctype not in HLS_TYPES:
            errors.append(f"{url}: Content-Type {r.header('content-type')!r}")
        pl = _media(url)
        name = track_name_from_url(url, asset)
        if urllib.parse.urlsplit(url).path != f"/{asset}/{name}/ts.m3u8":
            errors.append(f"{url}: not /{{asset}}/{{track}}/ts.m3u8")
        if pl.is_variant:
            errors.append(f"{url}: is a multivariant playlist, expected a media playlist")
            continue
        if pl.version != 3:
            errors.append(f"{url}: EXT-X-VERSION {pl.version}, expected 3")
        if (pl.playlist_type or "").upper() != "VOD":
            errors.append(f"{url}: EXT-X-PLAYLIST-TYPE {pl.playlist_type!r}, expected VOD")
        if not pl.is_endlist:
            errors.append(f"{url}: no EXT-X-ENDLIST")
        if not pl.segments:
            errors.append(f"{url}: no segments")
            continue
        maps = [s.uri for s in pl.segments if s.init_section is not None]
        if maps or "#EXT-X-MAP" in r.text():
            errors.append(f"{url}: EXT-X-MAP present (TS segments are self-initialising)")
        if pl.target_duration is None:
            errors.append(f"{url}: no EXT-X-TARGETDURATION")
        else:
            too_long = [(s.uri, s.duration) for s in pl.segments
                        if _half_up(Fraction(str(s.duration))) > pl.target_duration]
            if too_long:
                errors.append(f"{url}: EXT-X-TARGETDURATION {pl.target_duration} < rounded EXTINF of {too_long[:3]}")
        bad = [s.uri for s in pl.segments
               if not re.fullmatch(rf"/{re.escape(asset)}/{re.escape(name)}/\d+\.ts",
                                   urllib.parse.urlsplit(s.absolute_uri).path)]
        if bad:
            errors.append(f"{url}: segment URIs not /{asset}/{name}/{{n}}.ts: {bad[:3]}")
        total = sum(Fraction(str(s.duration)) for s in pl.segments)
        want = track_duration(source_hashes(asset, p.duration_track))
        slack = Fraction(1, 1000) * len(pl.segments) + Fraction(10, 1000)
        if abs(total - want) > slack:
            errors.append(f"{url}: EXTINF sum {float(total):.4f}s, track {p.duration_track} lasts {float(want):.4f}s")
    _fails(errors)


# --------------------------------------------------------------------------- segments


@pytest.mark.parametrize("asset", ASSETS)
def test_ts_segment_structure(server, asset):
    """Every segment: size a multiple of 188, sync byte 0x47 on every packet, first packet
    the PAT (PID 0, CRC ok) pointing at PMT PID 0x1000, PMT before any media with exactly the
    expected (stream_type, PID) pairs (0x1B H.264 / 0x24 HEVC on 0x100, 0x0F AAC on 0x101),
    no undeclared PIDs, each elementary PID starting on a PES header, a PCR no later than
    the first decode time."""
    errors = []
    for p in _ts_playlists(server.base_url, asset):
        want = _expected_es(asset, p)
        for s in _segment_urls(p.url):
            errors += _check_segment(s, get_bytes(s), want)
    _fails(errors)


@pytest.mark.parametrize("asset", ASSETS)
def test_ts_continuity_counters(server, asset):
    """Per PID, the continuity_counter runs on across every join of consecutive segments
    (ISO/IEC 13818-1 2.4.3.3), so a player reading segment n then n+1 sees no loss."""
    errors = []
    for p in _ts_playlists(server.base_url, asset):
        segs = [(s, get_bytes(s)) for s in _segment_urls(p.url)]
        errs = _continuity_errors(segs)
        if errs:
            errors.append(f"{p.url}: {len(errs)} continuity_counter errors; first: " + "; ".join(errs[:6]))
    _fails(errors)


@pytest.mark.parametrize("asset", ASSETS)
def test_ts_ffmpeg_sees_no_corruption(server, asset):
    """ffmpeg -loglevel debug, reading each media playlist over HTTP and the concatenation
    of its segments, logs no "Continuity check failed" / "Packet corrupt"."""
    errors = []
    for p in _ts_playlists(server.base_url, asset):
        path, _ = _concatenated(p.url)
        for src, what in ((p.url, p.url), (path, f"concatenated segments of {p.url}")):
            lines = _ffmpeg_corruption_lines(src)
            if lines:
                errors.append(f"{what}: ffmpeg logged {len(lines)} corruption lines; first: {lines[:4]}")
    _fails(errors)


@pytest.mark.parametrize("asset", ASSETS)
def test_ts_timestamps(server, asset):
    """ffprobe -show_packets on the concatenation of all segments, per elementary stream:
    same sample count as the source; DTS strictly increasing across joins; PTS >= DTS;
    PTS = source presentation time + 10 s (1 tick where the PES carries it, 1 ms where
    ffmpeg interpolates inside a multi-frame audio PES); DTS = source decode time + 10 s -
    c with c constant per track, and c = 0 for tracks without negative composition offsets."""
    errors = []
    for p in _ts_playlists(server.base_url, asset):
        path, starts = _concatenated(p.url)
        info = _probe(path)
        streams = {s["index"]: s for s in info["streams"]}
        by_type: dict[str, list[int]] = {}
        for s in info["streams"]:
            by_type.setdefault(s["codec_type"], []).append(s["index"])
        want_types = {"video": p.video, "audio": p.audio}
        got_types = {k: len(v) for k, v in by_type.items()}
        exp_types = {k: 1 for k, v in want_types.items() if v}
        if got_types != exp_types:
            errors.append(f"{p.url}: ffprobe finds streams {got_types}, expected {exp_types}")
            continue
        for ctype, track in want_types.items():
            if not track:
                continue
            idx = by_type[ctype][0]
            where = f"{p.url} {ctype} (source {track})"
            pk = [x for x in info["packets"] if x["stream_index"] == idx]
            timescale, src = source_sample_times(asset, track)
            if len(pk) != len(src):
                errors.append(f"{where}: {len(pk)} packets, source has {len(src)} samples")
                continue
            missing = [i for i, x in enumerate(pk) if "pts" not in x or "dts" not in x]
            if missing:
                errors.append(f"{where}: packets without pts/dts at {missing[:5]}")
                continue
            tb = Fraction(streams[idx]["time_base"])
            pts = [int(x["pts"]) * tb for x in pk]
            dts = [int(x["dts"]) * tb for x in pk]

            def seg_of(i: int) -> str:
                pos = pk[i].get("pos")
                if pos in (None, "N/A"):
                    return "?"
                return f"{sum(1 for s in starts if s <= int(pos))}.ts"
            nonmono = [(i, seg_of(i), float(dts[i - 1]), float(dts[i])) for i in range(1, len(dts))
                       if dts[i] <= dts[i - 1]]
            if nonmono:
                errors.append(f"{where}: DTS not strictly increasing at {len(nonmono)} packets, first "
                              f"(index, segment, previous DTS s, DTS s): {nonmono[:4]}")
            neg = [(i, float(pts[i]), float(dts[i])) for i in range(len(pk)) if pts[i] < dts[i]]
            if neg:
                errors.append(f"{where}: PTS < DTS on {len(neg)} packets, first (index, PTS, DTS): {neg[:4]}")
            first_want = TS_OFFSET + Fraction(min(s.ct for s in src), timescale)
            if abs(min(pts) - first_want) > TICK:
                errors.append(f"{where}: first PTS {float(min(pts)):.6f}s, expected 10 s + source first presentation "
                              f"time = {float(first_want):.6f}s")
            bad_pts = []
            for i, (x, s) in enumerate(zip(pk, src)):
                want = TS_OFFSET + Fraction(s.ct, timescale)
                tol = TICK if x.get("pos") not in (None, "N/A") else Fraction(1, 1000)
                if abs(pts[i] - want) > tol:
                    bad_pts.append(f"packet {i} ({seg_of(i)}): PTS {float(pts[i]):.6f}s, source CT + 10 s = "
                                   f"{float(want):.6f}s")
            if bad_pts:
                errors.append(f"{where}: {len(bad_pts)} PTS mismatches; first: {'; '.join(bad_pts[:4])}")
            shifts = [TS_OFFSET + Fraction(s.dts, timescale) - dts[i] for i, s in enumerate(src)
                      if pk[i].get("pos") not in (None, "N/A")]
            if shifts:
                lo, hi = min(shifts), max(shifts)
                if hi - lo > 2 * TICK:
                    errors.append(f"{where}: DTS - (source DTS + 10 s) is not constant: ranges over "
                                  f"[{float(-hi):.6f}, {float(-lo):.6f}] s")
                if lo < -TICK:
                    errors.append(f"{where}: DTS is {float(-lo):.6f}s later than source DTS + 10 s")
                has_negative = any(s.ct < s.dts for s in src)
                if not has_negative and hi > TICK:
                    errors.append(f"{where}: DTS moved back by {float(hi):.6f}s although the source has no negative "
                                  f"composition offsets")
    _fails(errors)


@pytest.mark.parametrize("asset", ASSETS)
def test_ts_segments_start_with_keyframe(server, asset):
    """EXT-X-INDEPENDENT-SEGMENTS / seamless switching: the first video access unit of each
    segment is a key frame (ffmpeg's parser flag K), so every segment decodes on its own."""
    errors = []
    for p in _ts_playlists(server.base_url, asset):
        if not p.video:
            continue
        path, starts = _concatenated(p.url)
        info = _probe(path)
        vid = [s["index"] for s in info["streams"] if s["codec_type"] == "video"]
        if len(vid) != 1:
            errors.append(f"{p.url}: {len(vid)} video streams")
            continue
        pk = [x for x in info["packets"] if x["stream_index"] == vid[0] and x.get("pos") not in (None, "N/A")]
        bounds = list(starts) + [os.path.getsize(path)]
        for n in range(len(starts)):
            first = next((x for x in pk if bounds[n] <= int(x["pos"]) < bounds[n + 1]), None)
            if first is None:
                errors.append(f"{p.url} segment {n + 1}: no video access unit")
            elif "K" not in first.get("flags", ""):
                errors.append(f"{p.url} segment {n + 1}: first video access unit (pts {first.get('pts')}) is not a "
                              f"key frame (flags {first.get('flags')})")
    _fails(errors)


# --------------------------------------------------------------------------- playback by ffmpeg (decoded frames)


@pytest.mark.parametrize("asset", ASSETS)
def test_ts_ffmpeg_plays_media_playlists(server, asset):
    """ffmpeg reading each ts.m3u8 over HTTP decodes, frame for frame, the same pictures and
    audio as the source tracks (md5 of every decoded frame; same frame count)."""
    errors = []
    for p in _ts_playlists(server.base_url, asset):
        for ctype, track in (("v", p.video), ("a", p.audio)):
            if track:
                _compare_decoded(p.url, f"0:{ctype}:0", asset, track, errors)
    _fails(errors)


@pytest.mark.parametrize("asset", ASSETS)
def test_ts_ffmpeg_plays_master(server, asset):
    """ffmpeg reading master-ts.m3u8 over HTTP: each program (variant) has one video stream
    that decodes to its source video track and one muxed audio stream that decodes to the
    track the URI-less EXT-X-MEDIA stands for; each other-language rendition stream decodes
    to its source track."""
    master = _master_ts(server.base_url, asset)
    src = f"{server.base_url}/{asset}/master-ts.m3u8"
    info = _probe_streams(src)
    streams = {s["index"]: s for s in info["streams"]}
    muxed = _muxed_audio_track(asset, master)
    renditions = {m.name: track_name_from_url(m.absolute_uri, asset) for m in _audio_media(master) if m.uri}
    errors = []
    programs = info.get("programs", [])
    if len(programs) != len(master.playlists):
        errors.append(f"{src}: ffmpeg sees {len(programs)} programs, the playlist has {len(master.playlists)} variants")
    for v, prog in zip(master.playlists, programs):
        name = track_name_from_url(v.absolute_uri, asset)
        where = f"{src} program {prog.get('program_id')} ({v.uri})"
        bw = (prog.get("tags") or {}).get("variant_bitrate")
        if str(v.stream_info.bandwidth) != str(bw):
            errors.append(f"{where}: program variant_bitrate {bw} != BANDWIDTH {v.stream_info.bandwidth}")
            continue
        own = [s["index"] for s in prog["streams"] if (s.get("tags") or {}).get("variant_bitrate") == bw]
        own_v = [i for i in own if streams[i]["codec_type"] == "video"]
        own_a = [i for i in own if streams[i]["codec_type"] == "audio"]
        want_v = [name] if source_track(asset, name).codec_type == "video" else []
        want_a = [muxed] if muxed and want_v else ([name] if not want_v else [])
        if len(own_v) != len(want_v) or len(own_a) != len(want_a):
            errors.append(f"{where}: variant streams video {own_v} audio {own_a}, expected video {want_v} audio {want_a}")
            continue
        for i, t in zip(own_v + own_a, want_v + want_a):
            _compare_decoded(src, f"0:{i}", asset, t, errors)
    seen = set()
    for s in info["streams"]:
        tags = s.get("tags") or {}
        if s["codec_type"] != "audio" or "variant_bitrate" in tags or s["index"] in seen:
            continue
        seen.add(s["index"])
        track = renditions.get(tags.get("comment"))
        if track is None:
            errors.append(f"{src}: audio stream {s['index']} (tags {tags}) matches no EXT-X-MEDIA NAME "
                          f"{sorted(renditions)}")
            continue
        _compare_decoded(src, f"0:{s['index']}", asset, track, errors)
    missing = set(renditions) - {(streams[i].get("tags") or {}).get("comment") for i in seen}
    if missing:
        errors.append(f"{src}: ffmpeg exposes no stream for renditions {sorted(missing)}")
    _fails(errors)


# --------------------------------------------------------------------------- hls.js in Chromium

HLSJS_CASES = ["demo", "multi"]


@pytest.fixture(scope="module")
def hlsjs_played(server):
    require_browser("hls.js")
    results = {}
    stderr = ""
    for asset in HLSJS_CASES:
        master = _master_ts(server.base_url, asset)
        # Switch to the first other-language rendition when there is one (read from the playlist).
        alt = next((m for m in _audio_media(master) if m.uri), None)
        args = ["node", str(E2E_DIR / "player.mjs"), "--engine", "hlsjs", "--timeout", str(TIMEOUT_S)]
        if alt is not None:
            args += ["--switch-audio", alt.name]
        url = server.url(f"/{asset}/master-ts.m3u8")
        out = subprocess.run([*args, url], capture_output=True, text=True, cwd=E2E_DIR, timeout=TIMEOUT_S * 2 + 60)
        stderr += out.stderr
        for line in out.stdout.splitlines():
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if "fatal" in obj:
                pytest.fail(f"player.mjs could not run: {obj['fatal']}\nstderr: {out.stderr[-2000:]}")
            if "url" in obj:
                obj["alt"] = None if alt is None else {"name": alt.name, "uri": alt.absolute_uri}
                results[obj["url"]] = obj
    return {"results": results, "stderr": stderr}


def _explain_hlsjs(r: dict) -> str:
    keep = {k: r.get(k) for k in ("audioSwitch", "levels", "audioTracks", "hlsErrors")}
    return _explain(r) + "\n" + json.dumps(keep, indent=1)[:3000]


@pytest.mark.parametrize("asset", HLSJS_CASES)
def test_hlsjs_plays_ts(server, hlsjs_played, asset):
    """hls.js (the TS player most sites use) plays master-ts.m3u8 past 4 s with decoded video,
    no fatal error, and sees every source video height and audio language."""
    url = server.url(f"/{asset}/master-ts.m3u8")
    r = hlsjs_played["results"].get(url)
    assert r is not None, f"no result for {url}; player.mjs stderr:\n{hlsjs_played['stderr'][-2000:]}"
    assert r["ok"], f"hls.js did not play {url} past 4 s:\n{_explain_hlsjs(r)}"
    assert r.get("videoWidth", 0) > 0 and (r.get("decodedFrames") or 0) > 0, f"no video frames:\n{_explain_hlsjs(r)}"
    tracks = source_tracks(asset).values()
    want_heights = sorted({t.height for t in tracks if t.codec_type == "video"})
    got_heights = sorted({lv["height"] for lv in r["levels"] if lv.get("height")})
    assert got_heights == want_heights, f"{url}: hls.js levels have heights {got_heights}, source {want_heights}"
    want_langs = {normalize_lang(t.language) for t in tracks if t.codec_type == "audio" and t.language}
    got_langs = {normalize_lang(a["lang"]) for a in r["audioTracks"] if a.get("lang") and a["lang"] != "und"}
    assert got_langs == want_langs, f"{url}: hls.js audio track languages {got_langs}, source {want_langs}"


@pytest.mark.parametrize("asset", HLSJS_CASES)
def test_hlsjs_switches_audio_language(server, hlsjs_played, asset):
    """Selecting the other-language rendition (hls.js `audioTrack`) loads its ts.m3u8 and
    segments, hls.js confirms the switch, and playback keeps going (2 s more) without error."""
    url = server.url(f"/{asset}/master-ts.m3u8")
    r = hlsjs_played["results"].get(url)
    assert r is not None, f"no result for {url}; player.mjs stderr:\n{hlsjs_played['stderr'][-2000:]}"
    # The source decides whether there is another language to switch to, never the server's answer.
    langs = sorted({normalize_lang(t.language) for t in source_tracks(asset).values()
                    if t.codec_type == "audio" and t.language})
    if len(langs) < 2:
        pytest.skip(f"{asset}'s source has audio in {langs or 'no tagged language'}: no other language to switch to")
    assert r.get("alt") is not None, (f"/{asset}/master-ts.m3u8 offers hls.js no other-language rendition although the "
                                      f"source has audio in {langs}:\n{_explain_hlsjs(r)}")
    sw = r.get("audioSwitch") or {}
    assert r["ok"], f"hls.js did not play {url}:\n{_explain_hlsjs(r)}"
    assert sw.get("switched"), f"{url}: hls.js did not switch to {r['alt']['name']!r}:\n{_explain_hlsjs(r)}"
    alt_dir = r["alt"]["uri"].rsplit("/", 1)[0] + "/"
    fetched = [u for u in sw.get("requests", []) if u.startswith(alt_dir) and u.endswith(".ts")]
    assert fetched, f"{url}: after the switch hls.js fetched no segment under {alt_dir}:\n{_explain_hlsjs(r)}"
    assert sw.get("continued"), (f"{url}: playback did not continue 2 s after switching to {r['alt']['name']!r}:"
                                 f"\n{_explain_hlsjs(r)}")


def test_hevc_left_out_of_ts(server):
    """`hevc` over TS: the multivariant playlist holds the AAC audio alone (an audio-only
    variant, CODECS = Shaka Packager's string for it); the HEVC video's TS playlist and segments
    are 404 while its fMP4 ones are served."""
    errors = []
    master = _master_ts(server.base_url, "hevc")
    audio = _source_audio("hevc")
    video = sorted(n for n, t in source_tracks("hevc").items() if t.codec_type == "video")
    got = sorted(track_name_from_url(v.absolute_uri, "hevc") for v in master.playlists)
    if got != audio:
        errors.append(f"/hevc/master-ts.m3u8 variants {got}, expected the audio alone {audio}")
    for v in master.playlists:
        want = normalize_codecs(reference_codecs("hevc", audio[0]))
        if normalize_codecs(v.stream_info.codecs or "") != want:
            errors.append(f"variant {v.uri}: CODECS {v.stream_info.codecs}, want {want}")
    for name in video:
        for leaf, status in (("ts.m3u8", 404), ("1.ts", 404), ("index.m3u8", 200), ("1.m4s", 200)):
            r = fetch(server.url(f"/hevc/{name}/{leaf}"))
            if r.status != status:
                errors.append(f"/hevc/{name}/{leaf}: {r.status}, expected {status}")
    _fails(errors)
