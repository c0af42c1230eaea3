// Plays Smooth Streaming manifests with dash.js + its MSS plugin in Debian's Chromium
// (driven by playwright-core, never a downloaded browser) and reports, per URL, whether
// playback got past a threshold. Usage:
//   node smooth_player.mjs [--timeout 40] [--threshold 4] URL [URL...]
// Prints one JSON object per URL on stdout; exit code 0 only if every URL played.
//
// dash.js turns the Smooth manifest into a DASH model (MssParser), builds each track's
// init segment itself from the manifest (StreamIndex@TimeScale, QualityLevel@FourCC and
// @CodecPrivateData) and rewrites every fragment's moof (MssFragmentMoofProcessor: keeps
// tfdt, adds one only if missing, drops tfxd/tfrf, forces default-base-is-moof), so this
// is a real client judging the manifest's codec data as well as the fragments.
import { launchChromium, openPlayerPage, waitPlayback } from './chromium.mjs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

function parseArgs(argv) {
  const opts = { timeout: 40, threshold: 4, urls: [] };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--timeout') opts.timeout = Number(argv[++i]);
    else if (argv[i] === '--threshold') opts.threshold = Number(argv[++i]);
    else opts.urls.push(argv[i]);
  }
  return opts;
}

// As in /work/shared/ORACLES.md ("Real browser").

// The page is served on the manifest's own origin (intercepted by Playwright, never
// reaching the server), so playback does not depend on CORS; CORS has its own test.

async function playOne(browser, scripts, url, opts) {
  const result = { url, ok: false };
  const { page, log } = await openPlayerPage(browser, url, 'smooth');
  const console_ = log.console;
  const failedRequests = log.failed;
  const requests = log.fetched;
  try {
    for (const s of scripts) await page.addScriptTag({ path: s });
    const loaded = await page.evaluate((manifestUrl) => {
      const errors = [];
      window.__errors = errors;
      if (typeof dashjs === 'undefined') return { error: 'dashjs global missing after loading dash.all.min.js' };
      if (typeof dashjs.MssHandler === 'undefined') return { error: 'dashjs.MssHandler missing: dash.mss.min.js not loaded' };
      const video = document.getElementById('v');
      const player = dashjs.MediaPlayer().create();
      window.__player = player;
      player.updateSettings({ debug: { logLevel: dashjs.Debug.LOG_LEVEL_WARNING } });
      const E = dashjs.MediaPlayer.events;
      player.on(E.ERROR, (ev) => {
        const err = ev.error || {};
        errors.push({ code: err.code, message: String(err.message || ev.event || '').slice(0, 400),
          data: JSON.stringify(err.data || {}).slice(0, 300) });
      });
      if (E.PLAYBACK_ERROR) player.on(E.PLAYBACK_ERROR, (ev) => errors.push({ playback: String(ev.error && ev.error.message || ev.error) }));
      video.muted = true;
      player.initialize(video, manifestUrl, true);
      return { ok: true };
    }, url);
    if (loaded.error) {
      result.error = loaded.error;
    } else {
      const waited = await waitPlayback(page, opts.threshold, opts.timeout);
      if (waited) result.error = waited;
      else result.ok = true;
    }
    const state = await page.evaluate(() => {
      const v = document.getElementById('v');
      const p = window.__player;
      const q = v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality() : {};
      const buffered = [];
      for (let i = 0; i < v.buffered.length; i++) buffered.push([v.buffered.start(i), v.buffered.end(i)]);
      let tracks = {};
      try {
        for (const type of ['video', 'audio']) {
          tracks[type] = (p.getTracksFor(type) || []).map((t) => ({
            lang: t.lang, codec: t.codec,
            bitrates: (t.bitrateList || []).map((b) => ({ bandwidth: b.bandwidth, width: b.width, height: b.height })),
          }));
        }
      } catch (e) { tracks = { error: String(e) }; }
      return {
        currentTime: v.currentTime, readyState: v.readyState, paused: v.paused,
        videoWidth: v.videoWidth, videoHeight: v.videoHeight, buffered,
        decodedFrames: q.totalVideoFrames, droppedFrames: q.droppedVideoFrames,
        mediaError: v.error ? `${v.error.code} ${v.error.message}` : null,
        playerErrors: window.__errors || [],
        tracks,
      };
    }).catch((e) => ({ stateError: String(e) }));
    Object.assign(result, state);
    // A media element error or a dash.js error is a failure even if time advanced.
    if (result.mediaError) { result.ok = false; result.error = `media element error ${result.mediaError}`; }
    if ((result.playerErrors || []).length) {
      result.ok = false;
      result.error = (result.error ? result.error + '; ' : '') + `dash.js error(s): ${JSON.stringify(result.playerErrors)}`;
    }
  } catch (e) {
    result.error = `harness: ${e && e.message ? e.message : e}`;
  }
  result.console = console_.slice(0, 30);
  result.failedRequests = failedRequests.slice(0, 20);
  result.requests = requests.slice(0, 40);
  await page.close();
  return result;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (!opts.urls.length) {
    console.error('usage: node smooth_player.mjs [--timeout S] [--threshold S] URL [URL...]');
    process.exit(2);
  }
  const scripts = [require.resolve('dashjs/dist/dash.all.min.js'), require.resolve('dashjs/dist/dash.mss.min.js')];
  const browser = await launchChromium();
  let allOk = true;
  try {
    const version = await (async () => {
      const page = await browser.newPage();
      try {
        await page.addScriptTag({ path: scripts[0] });
        return await page.evaluate(() => dashjs.Version || (dashjs.MediaPlayer().create().getVersion()));
      } catch (e) { return `unknown (${e})`; } finally { await page.close(); }
    })();
    console.log(JSON.stringify({ dashjs: version }));
    for (const url of opts.urls) {
      const r = await playOne(browser, scripts, url, opts);
      allOk = allOk && r.ok;
      console.log(JSON.stringify(r));
    }
  } finally {
    await browser.close();
  }
  process.exit(allOk ? 0 : 1);
}

main().catch((e) => {
  console.log(JSON.stringify({ fatal: String(e && e.stack ? e.stack : e) }));
  process.exit(4);
});
