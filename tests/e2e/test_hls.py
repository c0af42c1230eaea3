"""HLS: the multivariant and media playlists follow RFC 8216 where players care (parsed
by PyPI `m3u8`, checked here), describe the source truthfully, and ffmpeg 8.1's HLS
demuxer, reading them over HTTP, gets samples byte-identical to the source track's."""

from __future__ import annotations

import functools
from fractions import Fraction

import m3u8
import pytest

from oracle import (ASSETS, compare_samples, compare_timestamps, dash_representations, fetch, framemd5, get_bytes, get_ok,
                    normalize_codecs, normalize_lang, reference_codecs, source_hashes, source_track,
                    source_tracks, track_duration, track_name_from_url)

HLS_TYPES = {"application/vnd.apple.mpegurl", "application/x-mpegurl", "audio/mpegurl"}
TS_TOLERANCE = Fraction(1, 1000)


@functools.lru_cache(maxsize=None)
def _master(base_url: str, asset: str) -> m3u8.M3U8:
    url = f"{base_url}/{asset}/master.m3u8"
    return m3u8.loads(get_ok(url).text(), uri=url)


@functools.lru_cache(maxsize=None)
def _media(url: str) -> m3u8.M3U8:
    return m3u8.loads(get_ok(url).text(), uri=url)


def _audio_media(master: m3u8.M3U8) -> list:
    return [m for m in master.media if (m.type or "").upper() == "AUDIO"]


def _media_playlist_urls(master: m3u8.M3U8) -> list[str]:
    urls = [v.absolute_uri for v in master.playlists]
    urls += [m.absolute_uri for m in _audio_media(master) if m.uri]
    return list(dict.fromkeys(urls))


def _fails(errors: list[str]) -> None:
    assert not errors, "\n".join(errors)


def _peak_segment_bitrate(pl: m3u8.M3U8) -> Fraction:
    """RFC 8216 4.1: the largest bit rate of any contiguous set of segments whose total
    duration is between 0.5 and 1.5 times the target duration."""
    sizes = [len(get_bytes(s.absolute_uri)) * 8 for s in pl.segments]
    durs = [Fraction(str(s.duration)) for s in pl.segments]
    target = pl.target_duration
    best = Fraction(0)
    for i in range(len(sizes)):
        bits, dur = 0, Fraction(0)
        for j in range(i, len(sizes)):
            bits += sizes[j]
            dur += durs[j]
            if dur > Fraction(3, 2) * target:
                break
            if dur >= Fraction(1, 2) * target and dur > 0:
                best = max(best, bits / dur)
    if best == 0:  # no window qualifies (very short playlist): fall back to whole segments
        best = max(Fraction(b) / d for b, d in zip(sizes, durs) if d > 0)
    return best


def _average_segment_bitrate(pl: m3u8.M3U8) -> Fraction:
    bits = sum(len(get_bytes(s.absolute_uri)) * 8 for s in pl.segments)
    return Fraction(bits) / sum(Fraction(str(s.duration)) for s in pl.segments)


# --------------------------------------------------------------------------- multivariant playlist


@pytest.mark.parametrize("asset", ASSETS)
def test_master_is_served_as_hls(server, asset):
    r = fetch(server.url(f"/{asset}/master.m3u8"))
    assert r.status == 200, r.describe()
    ctype = (r.header("content-type") or "").split(";")[0].strip().lower()
    assert ctype in HLS_TYPES, f"Content-Type {r.header('content-type')!r} for {r.url}"
    assert r.body.startswith(b"#EXTM3U"), f"{r.url} does not start with #EXTM3U"


@pytest.mark.parametrize("asset", ASSETS)
def test_master_variants(server, asset):
    """BANDWIDTH, AVERAGE-BANDWIDTH, CODECS (vs Shaka Packager's strings for the source
    tracks), RESOLUTION and FRAME-RATE (vs ffprobe) on every variant; every source video
    track is a variant."""
    master = _master(server.base_url, asset)
    assert master.is_variant, f"/{asset}/master.m3u8 has no EXT-X-STREAM-INF"
    audio = _audio_media(master)
    errors = []
    seen_video = []
    for v in master.playlists:
        si = v.stream_info
        name = track_name_from_url(v.absolute_uri, asset)
        t = source_track(asset, name)
        where = f"/{asset} variant {v.uri}"
        if t.codec_type != "video":
            continue  # an audio-only variant is allowed; its codecs are checked below
        seen_video.append(name)
        if not si.bandwidth or si.bandwidth <= 0:
            errors.append(f"{where}: BANDWIDTH {si.bandwidth!r}")
        if not si.average_bandwidth or si.average_bandwidth <= 0:
            errors.append(f"{where}: AVERAGE-BANDWIDTH {si.average_bandwidth!r}")
        if si.resolution != (t.width, t.height):
            errors.append(f"{where}: RESOLUTION {si.resolution}, source {t.width}x{t.height}")
        if si.frame_rate is None or abs(Fraction(str(si.frame_rate)) - t.frame_rate) > Fraction(1, 1000):
            errors.append(f"{where}: FRAME-RATE {si.frame_rate}, source {float(t.frame_rate):.3f}")
        want = {normalize_codecs(reference_codecs(asset, name))}
        group = [m for m in audio if m.group_id == si.audio] if si.audio else []
        if audio and not si.audio:
            errors.append(f"{where}: no AUDIO group although the master has audio renditions")
        for m in group:
            want.add(normalize_codecs(reference_codecs(asset, track_name_from_url(m.absolute_uri, asset))))
        got = {normalize_codecs(c) for c in (si.codecs or "").split(",") if c.strip()}
        if got != want:
            errors.append(f"{where}: CODECS {si.codecs!r}, Shaka Packager's strings for the tracks: {sorted(want)}")
    want_video = sorted(n for n, t in source_tracks(asset).items() if t.codec_type == "video")
    if sorted(seen_video) != want_video:
        errors.append(f"/{asset}: variants cover video tracks {sorted(seen_video)}, source has {want_video}")
    _fails(errors)


@pytest.mark.parametrize("asset", ASSETS)
def test_master_audio_group(server, asset):
    """Audio renditions: GROUP-ID, NAME (unique in group), LANGUAGE (= source), DEFAULT,
    AUTOSELECT; exactly one DEFAULT=YES per group; every source audio track present."""
    master = _master(server.base_url, asset)
    audio = _audio_media(master)
    want_audio = {n: t for n, t in source_tracks(asset).items() if t.codec_type == "audio"}
    errors = []
    if want_audio and not audio:
        pytest.fail(f"/{asset}/master.m3u8 has no EXT-X-MEDIA:TYPE=AUDIO although the source has audio "
                    f"tracks {sorted(want_audio)}")
    groups: dict[str, list] = {}
    for m in audio:
        groups.setdefault(m.group_id, []).append(m)
        where = f"/{asset} EXT-X-MEDIA NAME={m.name!r}"
        if not m.uri:
            errors.append(f"{where}: no URI")
            continue
        t = source_track(asset, track_name_from_url(m.absolute_uri, asset))
        if t.codec_type != "audio":
            errors.append(f"{where}: URI {m.uri} is a {t.codec_type} track")
        for attr in ("group_id", "name", "default", "autoselect"):
            if getattr(m, attr) in (None, ""):
                errors.append(f"{where}: {attr.upper().replace('_', '-')} missing")
        if m.default not in (None, "YES", "NO") or m.autoselect not in (None, "YES", "NO"):
            errors.append(f"{where}: DEFAULT={m.default} AUTOSELECT={m.autoselect} must be YES or NO")
        if m.default == "YES" and m.autoselect not in (None, "YES"):
            errors.append(f"{where}: DEFAULT=YES requires AUTOSELECT=YES (RFC 8216 4.3.4.1)")
        if t.language is not None:
            if m.language is None:
                errors.append(f"{where}: LANGUAGE missing, source language {t.language!r}")
            elif normalize_lang(m.language) != normalize_lang(t.language):
                errors.append(f"{where}: LANGUAGE {m.language!r}, source language {t.language!r}")
        elif m.language not in (None, "und"):
            errors.append(f"{where}: LANGUAGE {m.language!r}, source language is undetermined")
    for gid, ms in groups.items():
        defaults = [m.name for m in ms if m.default == "YES"]
        if len(defaults) != 1:
            errors.append(f"/{asset} audio group {gid!r}: {len(defaults)} renditions with DEFAULT=YES {defaults}, "
                          f"expected exactly one")
        names = [m.name for m in ms]
        if len(set(names)) != len(names):
            errors.append(f"/{asset} audio group {gid!r}: NAMEs not unique {names}")
        covered = sorted(track_name_from_url(m.absolute_uri, asset) for m in ms if m.uri)
        if covered != sorted(want_audio):
            errors.append(f"/{asset} audio group {gid!r} covers {covered}, source audio tracks {sorted(want_audio)}")
    langs = {normalize_lang(m.language) for m in audio}
    want_langs = {normalize_lang(t.language) for t in want_audio.values()}
    if langs != want_langs:
        errors.append(f"/{asset}: audio LANGUAGEs {sorted(map(str, langs))}, source {sorted(map(str, want_langs))}")
    _fails(errors)


@pytest.mark.parametrize("asset", ASSETS)
def test_variant_bandwidth_matches_segments(server, asset):
    """RFC 8216 4.3.4.2: BANDWIDTH >= peak segment bit rate of the variant (video + the
    heaviest audio rendition of its group); AVERAGE-BANDWIDTH within 10% of the measured
    average (Apple's validator tolerance)."""
    master = _master(server.base_url, asset)
    audio = _audio_media(master)
    errors = []
    for v in master.playlists:
        si = v.stream_info
        pl = _media(v.absolute_uri)
        peak, avg = _peak_segment_bitrate(pl), _average_segment_bitrate(pl)
        group = [m for m in audio if si.audio and m.group_id == si.audio and m.uri]
        if group:
            peak += max(_peak_segment_bitrate(_media(m.absolute_uri)) for m in group)
            avg += max(_average_segment_bitrate(_media(m.absolute_uri)) for m in group)
        where = f"/{asset} variant {v.uri}"
        if si.bandwidth and si.bandwidth < peak * Fraction(99, 100):
            errors.append(f"{where}: BANDWIDTH={si.bandwidth} below the measured peak segment bit rate {int(peak)}")
        if si.average_bandwidth and abs(si.average_bandwidth - avg) > avg / 10:
            errors.append(f"{where}: AVERAGE-BANDWIDTH={si.average_bandwidth}, measured average {int(avg)}")
    _fails(errors)


# --------------------------------------------------------------------------- media playlists


@pytest.mark.parametrize("asset", ASSETS)
def test_media_playlists(server, asset):
    """VOD type, ENDLIST, EXT-X-MAP, INDEPENDENT-SEGMENTS (media or master), VERSION,
    TARGETDURATION >= every rounded EXTINF, EXTINF sum = track duration."""
    master = _master(server.base_url, asset)
    errors = []
    for url in _media_playlist_urls(master):
        r = fetch(url)
        if r.status != 200:
            errors.append(f"media playlist {url}: {r.status}")
            continue
        ctype = (r.header("content-type") or "").split(";")[0].strip().lower()
        if ctype not in HLS_TYPES:
            errors.append(f"{url}: Content-Type {r.header('content-type')!r}")
        pl = _media(url)
        name = track_name_from_url(url, asset)
        where = f"{url}"
        if pl.is_variant:
            errors.append(f"{where}: is a multivariant playlist, expected a media playlist")
            continue
        if (pl.playlist_type or "").upper() != "VOD":
            errors.append(f"{where}: EXT-X-PLAYLIST-TYPE {pl.playlist_type!r}, expected VOD")
        if not pl.is_endlist:
            errors.append(f"{where}: no EXT-X-ENDLIST")
        if not (pl.is_independent_segments or master.is_independent_segments):
            errors.append(f"{where}: EXT-X-INDEPENDENT-SEGMENTS in neither the media nor the multivariant playlist")
        if pl.version is None:
            errors.append(f"{where}: no EXT-X-VERSION")
        elif pl.version < 6:
            errors.append(f"{where}: EXT-X-VERSION {pl.version}; RFC 8216 section 7 asks for 6 when EXT-X-MAP "
                          f"is used outside an I-frame playlist")
        if not pl.segments:
            errors.append(f"{where}: no segments")
            continue
        inits = {s.init_section.absolute_uri for s in pl.segments if s.init_section is not None}
        if not inits or any(s.init_section is None for s in pl.segments):
            errors.append(f"{where}: EXT-X-MAP missing (fMP4 segments need it)")
        for u in inits:
            if fetch(u, method="HEAD").status != 200 and fetch(u).status != 200:
                errors.append(f"{where}: EXT-X-MAP {u} not fetchable")
        if pl.target_duration is None:
            errors.append(f"{where}: no EXT-X-TARGETDURATION")
        else:
            too_long = [(s.uri, s.duration) for s in pl.segments if round(s.duration) > pl.target_duration]
            if too_long:
                errors.append(f"{where}: EXT-X-TARGETDURATION {pl.target_duration} < rounded EXTINF of {too_long[:3]}")
        for s in pl.segments:
            if track_name_from_url(s.absolute_uri, asset) != name:
                errors.append(f"{where}: segment {s.uri} is not under track {name}")
                break
        total = sum(Fraction(str(s.duration)) for s in pl.segments)
        want = track_duration(source_hashes(asset, name))
        slack = Fraction(1, 1000) * len(pl.segments) + Fraction(10, 1000)
        if abs(total - want) > slack:
            errors.append(f"{where}: EXTINF sum {float(total):.4f}s, track duration {float(want):.4f}s")
    _fails(errors)


@pytest.mark.parametrize("asset", ASSETS)
def test_hls_and_dash_share_segments(server, asset):
    """One segment URL space (`/{asset}/{track}/init.mp4`, `/{n}.m4s`): the HLS playlist of a
    track lists exactly the init and segment URLs the MPD expands to for that track, so a
    CDN caches one copy for both protocols."""
    dash = {track_name_from_url(r.init_url, asset): r for r in dash_representations(server.base_url, asset)}
    errors = []
    for url in _media_playlist_urls(_master(server.base_url, asset)):
        name = track_name_from_url(url, asset)
        pl = _media(url)
        rep = dash.get(name)
        if rep is None:
            errors.append(f"{url}: track {name} has no DASH Representation")
            continue
        hls_segs = [s.absolute_uri for s in pl.segments]
        dash_segs = [s.url for s in rep.segments]
        if hls_segs != dash_segs:
            errors.append(f"{url}: segment URLs differ from the MPD's for {name}: HLS {hls_segs[:3]}..., "
                          f"DASH {dash_segs[:3]}...")
        inits = {s.init_section.absolute_uri for s in pl.segments if s.init_section is not None}
        if inits != {rep.init_url}:
            errors.append(f"{url}: EXT-X-MAP {sorted(inits)} != MPD initialization {rep.init_url}")
        extinf = [Fraction(str(s.duration)) for s in pl.segments]
        timeline = [Fraction(s.d, rep.timescale) for s in rep.segments]
        if len(extinf) == len(timeline) and any(abs(a - b) > Fraction(1, 1000) for a, b in zip(extinf, timeline)):
            errors.append(f"{url}: EXTINF {[float(x) for x in extinf]} != SegmentTimeline durations "
                          f"{[round(float(x), 3) for x in timeline]}")
    _fails(errors)


# --------------------------------------------------------------------------- playback by ffmpeg


@functools.lru_cache(maxsize=None)
def _ffmpeg_hashes(url: str, map_spec: str):
    return framemd5(url, map_spec)


@pytest.mark.parametrize("asset", ASSETS)
def test_ffmpeg_plays_master(server, asset):
    """ffmpeg follows the multivariant playlist; its first video stream (the first
    variant) carries the source samples with the source timestamps."""
    master = _master(server.base_url, asset)
    first = master.playlists[0]
    name = track_name_from_url(first.absolute_uri, asset)
    # What the SOURCE has decides, never what the server answered: an asset with video must
    # list a video variant first (players start there), so audio first is a failure.
    assert any(t.codec_type == "video" for t in source_tracks(asset).values()), f"{asset} has no video track"
    assert source_track(asset, name).codec_type == "video", \
        f"/{asset}/master.m3u8: the first variant {first.uri} is {name}, not video, although the source has video"
    got = _ffmpeg_hashes(f"{server.base_url}/{asset}/master.m3u8", "0:v:0")
    want = source_hashes(asset, name)
    what = f"ffmpeg -i /{asset}/master.m3u8 -map 0:v:0 ({name})"
    compare_samples(got, want, what)
    compare_timestamps(got, want, what, TS_TOLERANCE)


@pytest.mark.parametrize("asset", ASSETS)
def test_ffmpeg_plays_every_rendition_samples(server, asset):
    """Each media playlist, read by ffmpeg over HTTP: per-packet (size, md5) as in the source."""
    errors = []
    for url in _media_playlist_urls(_master(server.base_url, asset)):
        name = track_name_from_url(url, asset)
        try:
            compare_samples(_ffmpeg_hashes(url, "0:0"), source_hashes(asset, name), f"ffmpeg -i {url}")
        except AssertionError as e:
            errors.append(str(e))
    _fails(errors)


@pytest.mark.parametrize("asset", ASSETS)
def test_ffmpeg_plays_every_rendition_timestamps(server, asset):
    """Each media playlist, read by ffmpeg over HTTP: dts/pts/duration within 1 ms of the source."""
    errors = []
    for url in _media_playlist_urls(_master(server.base_url, asset)):
        name = track_name_from_url(url, asset)
        try:
            compare_timestamps(_ffmpeg_hashes(url, "0:0"), source_hashes(asset, name), f"ffmpeg -i {url}",
                               TS_TOLERANCE)
        except AssertionError as e:
            errors.append(str(e))
    _fails(errors)
