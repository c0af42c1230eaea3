"""DASH: the MPD is valid per MPEG's schema, describes the source tracks truthfully, and
its SegmentTemplate/SegmentTimeline expands to segments whose samples are byte-identical
to the source track's (judged by ffmpeg 8.1's framemd5, not by our code)."""

from __future__ import annotations

import functools
import re
import tempfile
from fractions import Fraction
from pathlib import Path

import pytest

from oracle import (ASSETS, NS, SCHEMAS, oracle_missing, compare_samples, compare_timestamps, concat_representation,
                    dash_representations, expand_mpd, fetch, fetch_mpd, fragment_sample_times, framemd5, get_bytes,
                    init_timescale_and_defaults, normalize_codecs,
                    normalize_lang, parse_duration, reference_codecs, source_hashes, source_track, source_tracks,
                    track_duration, track_name_from_url)

KNOWN_PROFILES = {
    "urn:mpeg:dash:profile:isoff-live:2011",
    "urn:mpeg:dash:profile:isoff-ext-live:2014",
    "urn:mpeg:dash:profile:full:2011",
    "urn:mpeg:dash:profile:cmaf:2019",
    "urn:dvb:dash:profile:dvb-dash:2014",
    "http://dashif.org/guidelines/dash-if-simple",
}
_WORK = Path(tempfile.mkdtemp(prefix="sealcast-e2e-dash-"))


def _reps(server, asset):
    return dash_representations(server.base_url, asset)


def _track(asset, rep):
    name = track_name_from_url(rep.init_url, asset)
    return name, source_track(asset, name)


@functools.lru_cache(maxsize=None)
def _served_hashes(base_url: str, asset: str, rep_id: str):
    rep = next(r for r in dash_representations(base_url, asset) if r.id == rep_id)
    f = concat_representation(rep, _WORK / _safe(f"{asset}-{rep_id}.mp4"))
    return framemd5(str(f), "0:0")


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


def _fails(errors: list[str]) -> None:
    assert not errors, "\n".join(errors)


# --------------------------------------------------------------------------- the document


@pytest.mark.parametrize("asset", ASSETS)
def test_mpd_is_served_as_dash(server, asset):
    r = fetch(server.url(f"/{asset}/manifest.mpd"))
    assert r.status == 200, r.describe()
    ctype = (r.header("content-type") or "").split(";")[0].strip().lower()
    assert ctype == "application/dash+xml", f"Content-Type {r.header('content-type')!r} for {r.url}"


@pytest.mark.parametrize("asset", ASSETS)
def test_mpd_validates_against_mpeg_schema(server, asset):
    xsd, xlink = SCHEMAS / "DASH-MPD.xsd", SCHEMAS / "xlink.xsd"
    if not xsd.exists() or not xlink.exists():
        oracle_missing(f"MPEG's DASH schema not found at {SCHEMAS} (it lives beside the repo in shared/schemas, "
                    f"it is not ours to commit): schema validation not run")
    schema = _schema(str(xsd), str(xlink))
    _, text = fetch_mpd(server.base_url, asset)
    errors = [f"{e.path}: {e.reason}" for e in schema.iter_errors(text)]
    assert not errors, f"/{asset}/manifest.mpd is not valid per DASH-MPD.xsd:\n" + "\n".join(errors[:10])


@functools.lru_cache(maxsize=None)
def _schema(xsd: str, xlink: str):
    import xmlschema
    return xmlschema.XMLSchema(xsd, locations=[("http://www.w3.org/1999/xlink", xlink)])


@pytest.mark.parametrize("asset", ASSETS)
def test_mpd_top_level(server, asset):
    url, text = fetch_mpd(server.base_url, asset)
    root, reps = expand_mpd(url, text)
    errors = []
    if root.get("type", "static") != "static":
        errors.append(f"MPD@type={root.get('type')!r}, expected static for VOD")
    profiles = {p.strip() for p in (root.get("profiles") or "").split(",") if p.strip()}
    if not profiles & KNOWN_PROFILES:
        errors.append(f"MPD@profiles={root.get('profiles')!r} names no profile that allows SegmentTemplate")
    if root.get("minBufferTime") is None:
        errors.append("MPD@minBufferTime missing")
    durations = [track_duration(source_hashes(asset, n)) for n in source_tracks(asset)]
    mpd_dur = root.get("mediaPresentationDuration")
    if mpd_dur is None:
        errors.append("MPD@mediaPresentationDuration missing on a static MPD")
    else:
        d = parse_duration(mpd_dur)
        lo, hi = min(durations) - Fraction(1, 10), max(durations) + Fraction(1, 10)
        if not lo <= d <= hi:
            errors.append(f"mediaPresentationDuration {mpd_dur} ({float(d):.3f}s) outside the source track "
                          f"durations {[round(float(x), 3) for x in durations]}")
    _fails(errors)


@pytest.mark.parametrize("asset", ASSETS)
def test_every_source_track_is_one_representation(server, asset):
    reps = _reps(server, asset)
    errors = []
    names = [track_name_from_url(r.init_url, asset) for r in reps]
    ids = [r.id for r in reps]
    if len(set(ids)) != len(ids):
        errors.append(f"Representation ids are not unique: {ids}")
    if sorted(names) != sorted(source_tracks(asset)):
        errors.append(f"Representations cover tracks {sorted(names)}, source has {sorted(source_tracks(asset))}")
    for r in reps:
        name = track_name_from_url(r.init_url, asset)
        for s in r.segments:
            if track_name_from_url(s.url, asset) != name:
                errors.append(f"Representation {r.id}: segment {s.url} is not under the init's track {name}")
                break
    _fails(errors)


@pytest.mark.parametrize("asset", ASSETS)
def test_one_adaptation_set_per_type_and_language(server, asset):
    reps = _reps(server, asset)
    by_set: dict[int, set] = {}
    for r in reps:
        by_set.setdefault(r.adaptation_index, set()).add((r.content_type, normalize_lang(r.lang)))
    errors = []
    for idx, keys in by_set.items():
        if len(keys) != 1:
            errors.append(f"AdaptationSet #{idx} mixes content types/languages {keys}")
    seen: dict = {}
    for idx, keys in by_set.items():
        for k in keys:
            if k in seen:
                errors.append(f"AdaptationSets #{seen[k]} and #{idx} both hold {k}: expected one per type+language")
            seen[k] = idx
    expected = {(t.codec_type, t.language) for t in source_tracks(asset).values()}
    got = {(r.content_type, normalize_lang(r.lang)) for r in reps}
    if got != expected:
        errors.append(f"(contentType, lang) pairs {sorted(got, key=str)} != source {sorted(expected, key=str)}")
    _fails(errors)


def _frame_rate(s: str) -> Fraction:
    return Fraction(s) if "/" not in s else Fraction(*map(int, s.split("/")))


@pytest.mark.parametrize("asset", ASSETS)
def test_representation_attributes(server, asset):
    """codecs (vs Shaka Packager's string for the same source), mimeType, size, frameRate,
    audioSamplingRate, lang, from the source as ffprobe reads it."""
    errors = []
    for r in _reps(server, asset):
        name, t = _track(asset, r)
        where = f"/{asset} Representation {r.id} ({name})"
        if r.content_type != t.codec_type:
            errors.append(f"{where}: contentType {r.content_type!r}, source track is {t.codec_type}")
            continue
        if r.mime_type != f"{t.codec_type}/mp4":
            errors.append(f"{where}: mimeType {r.mime_type!r}, expected {t.codec_type}/mp4")
        want_codecs = reference_codecs(asset, name)
        if r.codecs is None or normalize_codecs(r.codecs) != normalize_codecs(want_codecs):
            errors.append(f"{where}: codecs {r.codecs!r}, Shaka Packager says {want_codecs!r}")
        if r.bandwidth is None or r.bandwidth <= 0:
            errors.append(f"{where}: bandwidth {r.element.get('bandwidth')!r} is not a positive integer")
        if t.codec_type == "video":
            if (r.width, r.height) != (str(t.width), str(t.height)):
                errors.append(f"{where}: width x height {r.width}x{r.height}, source {t.width}x{t.height}")
            if r.frame_rate is None:
                errors.append(f"{where}: no frameRate")
            elif _frame_rate(r.frame_rate) != t.frame_rate:
                errors.append(f"{where}: frameRate {r.frame_rate}, source {t.frame_rate}")
        else:
            if r.audio_sampling_rate != str(t.sample_rate):
                errors.append(f"{where}: audioSamplingRate {r.audio_sampling_rate!r}, source {t.sample_rate}")
            acc = r.element.find("d:AudioChannelConfiguration", NS)
            if acc is not None and acc.get("schemeIdUri", "").endswith("23003:3:audio_channel_configuration:2011") \
                    and acc.get("value") != str(t.channels):
                errors.append(f"{where}: AudioChannelConfiguration {acc.get('value')}, source has {t.channels} channels")
        if t.language is not None and normalize_lang(r.lang) != normalize_lang(t.language):
            errors.append(f"{where}: lang {r.lang!r}, source language {t.language!r}")
        if t.language is None and r.lang not in (None, "und"):
            errors.append(f"{where}: lang {r.lang!r}, source language is undetermined")
    _fails(errors)


@pytest.mark.parametrize("asset", ASSETS)
def test_bandwidth_covers_the_segments(server, asset):
    """DASH @bandwidth semantics (ISO 23009-1 5.3.5.2): delivered at @bandwidth, after
    @minBufferTime of buffering, every segment is in before it has to be played. Checked
    at segment granularity (lenient: a segment may arrive by the end of its own period)."""
    url, text = fetch_mpd(server.base_url, asset)
    root, reps = expand_mpd(url, text)
    mbt = parse_duration(root.get("minBufferTime") or "PT0S")
    errors = []
    for r in reps:
        if not r.bandwidth:
            continue  # reported by test_representation_attributes
        sizes = [len(get_bytes(s.url)) * 8 for s in r.segments]
        starts = [Fraction(s.t, r.timescale) for s in r.segments]
        ends = [Fraction(s.t + s.d, r.timescale) for s in r.segments]
        worst = None
        for i in range(len(sizes)):
            bits = 0
            for j in range(i, len(sizes)):
                bits += sizes[j]
                need = Fraction(bits) / (ends[j] - starts[i] + mbt)
                if worst is None or need > worst[0]:
                    worst = (need, i, j)
        if worst and worst[0] > r.bandwidth * Fraction(101, 100):
            errors.append(f"/{asset} Representation {r.id}: @bandwidth={r.bandwidth} but segments "
                          f"{r.segments[worst[1]].number}..{r.segments[worst[2]].number} need "
                          f"{int(worst[0])} bit/s with minBufferTime {float(mbt)}s")
    _fails(errors)


# --------------------------------------------------------------------------- the media


@pytest.mark.parametrize("asset", ASSETS)
def test_segments_carry_the_source_samples(server, asset):
    """init + all segments of each Representation, concatenated, hash to the same
    per-packet (size, md5) list as the source track, and the codec config is the same."""
    errors = []
    for r in _reps(server, asset):
        name, _ = _track(asset, r)
        try:
            compare_samples(_served_hashes(server.base_url, asset, r.id), source_hashes(asset, name),
                            f"/{asset} Representation {r.id} ({name})")
        except AssertionError as e:
            errors.append(str(e))
    _fails(errors)


@pytest.mark.parametrize("asset", ASSETS)
def test_segments_keep_the_source_timestamps(server, asset):
    """dts/pts/duration of every packet equal the source's (in seconds; exact up to one
    tick of the coarser timebase)."""
    errors = []
    for r in _reps(server, asset):
        name, _ = _track(asset, r)
        got, want = _served_hashes(server.base_url, asset, r.id), source_hashes(asset, name)
        tol = max(got.tb, want.tb) + Fraction(1, 1_000_000)
        try:
            compare_timestamps(got, want, f"/{asset} Representation {r.id} ({name})", tol)
        except AssertionError as e:
            errors.append(str(e))
    _fails(errors)


@pytest.mark.parametrize("asset", ASSETS)
def test_timeline_matches_the_media(server, asset):
    """Sum of S@d equals the track duration; the timeline has no gaps or overlaps; each
    S@t equals its segment's earliest presentation time (ISO composition time, read from
    the segment's tfdt/trun) and the last segment ends where its samples end."""
    errors = []
    for r in _reps(server, asset):
        name, _ = _track(asset, r)
        where = f"/{asset} Representation {r.id} ({name})"
        want = track_duration(source_hashes(asset, name))
        if abs(r.track_duration - want) > Fraction(10, 1000):
            errors.append(f"{where}: sum of SegmentTimeline durations {float(r.track_duration):.4f}s, "
                          f"track duration {float(want):.4f}s")
        for a, b in zip(r.segments, r.segments[1:]):
            if a.t + a.d != b.t:
                errors.append(f"{where}: segment {a.number} ends at {a.t + a.d}, next starts at {b.t} (gap/overlap)")
                break
        init = get_bytes(r.init_url)
        media_ts, _ = init_timescale_and_defaults(init)
        tick = max(Fraction(1, media_ts), Fraction(1, r.timescale))
        for s in r.segments:
            try:
                samples = fragment_sample_times(init, get_bytes(s.url))
            except AssertionError as e:
                errors.append(f"{where}: segment {s.number} ({s.url}): {e}")
                continue
            if not samples:
                errors.append(f"{where}: segment {s.number} ({s.url}) has no samples")
                continue
            ept = Fraction(min(x.ct for x in samples), media_ts)
            # Times in the period: S@t minus presentationTimeOffset (ISO/IEC 23009-1 5.3.9.6),
            # as `ct` has the init's edit list applied (the offset is the edit's media time).
            t = Fraction(s.t - r.presentation_time_offset, r.timescale)
            if abs(t - ept) > tick:
                first_dts = Fraction(samples[0].dts, media_ts)
                hint = (" (S@t is the segment's first decode time; ISO/IEC 23009-1 wants its earliest "
                        "presentation time)") if abs(t - first_dts) <= tick else ""
                errors.append(f"{where}: segment {s.number} ({s.url}) S@t={s.t} ({float(t):.4f}s) but its "
                              f"earliest presentation time is {float(ept):.4f}s{hint}")
            if s is r.segments[-1]:
                end = ept + Fraction(sum(x.duration for x in samples), media_ts)
                t_end = Fraction(s.t + s.d - r.presentation_time_offset, r.timescale)
                if abs(t_end - end) > tick:
                    errors.append(f"{where}: last segment ends at {float(t_end):.4f}s per the timeline, "
                                  f"its samples end at {float(end):.4f}s")
    _fails(errors)
