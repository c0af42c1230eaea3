"""A real player: shaka-player in Debian's Chromium (playwright-core, never a downloaded
browser) plays the DASH and HLS presentations past 4 s, sees every rendition and every
audio language of the source. HEVC is played only where this Chromium's MSE says it
can decode it (Debian's build normally cannot)."""

from __future__ import annotations

import json
import subprocess

import pytest

from oracle import require_browser, E2E_DIR, normalize_lang, reference_codecs, source_tracks

CASES = [("demo", "manifest.mpd"), ("demo", "master.m3u8"), ("multi", "manifest.mpd"), ("multi", "master.m3u8"),
         ("hevc", "manifest.mpd")]
TIMEOUT_S = 40


def _hevc_type() -> str:
    video = next(n for n, t in source_tracks("hevc").items() if t.codec_type == "video")
    return f'video/mp4; codecs="{reference_codecs("hevc", video)}"'


@pytest.fixture(scope="module")
def played(server):
    """One browser launch for all cases; results keyed by manifest URL."""
    require_browser()
    probe = _hevc_type()
    urls = [server.url(f"/{a}/{m}") for a, m in CASES]
    out = subprocess.run(["node", str(E2E_DIR / "player.mjs"), "--timeout", str(TIMEOUT_S), "--probe", probe, *urls],
                         capture_output=True, text=True, cwd=E2E_DIR, timeout=TIMEOUT_S * len(urls) + 60)
    results, probes = {}, {}
    for line in out.stdout.splitlines():
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if "fatal" in obj:
            pytest.fail(f"player.mjs could not run: {obj['fatal']}\nstderr: {out.stderr[-2000:]}")
        if "probe" in obj:
            probes[obj["probe"]] = obj["supported"]
        elif "url" in obj:
            results[obj["url"]] = obj
    return {"results": results, "hevc_supported": probes.get(probe), "stderr": out.stderr}


def _explain(r: dict) -> str:
    keep = {k: r.get(k) for k in ("error", "currentTime", "readyState", "paused", "buffered", "mediaError",
                                  "playerErrors", "failedRequests", "console", "videoWidth", "decodedFrames")}
    return json.dumps(keep, indent=1)[:4000]


@pytest.mark.parametrize("asset,manifest", CASES, ids=[f"{a}-{m}" for a, m in CASES])
def test_shaka_plays(server, played, asset, manifest):
    if asset == "hevc" and not played["hevc_supported"]:
        pytest.skip("this Chromium's MediaSource does not support HEVC; HEVC is checked by ffmpeg only")
    url = server.url(f"/{asset}/{manifest}")
    r = played["results"].get(url)
    assert r is not None, f"no result for {url}; player.mjs stderr:\n{played['stderr'][-2000:]}"
    assert r["ok"], f"shaka-player did not play {url} past 4 s:\n{_explain(r)}"
    assert r.get("videoWidth", 0) > 0 and (r.get("decodedFrames") or 0) > 0, f"no video frames decoded:\n{_explain(r)}"
    tracks = source_tracks(asset).values()
    want_heights = sorted({t.height for t in tracks if t.codec_type == "video"})
    got_heights = sorted({v["height"] for v in r["variants"] if v.get("height")})
    assert got_heights == want_heights, f"{url}: shaka sees video heights {got_heights}, source has {want_heights}"
    want_langs = {normalize_lang(t.language) for t in tracks if t.codec_type == "audio" and t.language}
    got_langs = {normalize_lang(x) for x in r["audioLanguages"] if x and x != "und"}
    assert got_langs == want_langs, f"{url}: shaka sees audio languages {r['audioLanguages']}, source {want_langs}"
