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
import { chromium } from 'playwright-core';
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';

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
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--autoplay-policy=no-user-gesture-required',
];

// The page is served on the manifest's own origin (intercepted by Playwright, never
// reaching the server), so playback does not depend on CORS; CORS has its own test.
const PAGE_PATH = '/__sealcast_e2e__/smooth.html';
const PAGE_HTML = `<!doctype html><html><head><meta charset="utf-8"><title>sealcast e2e smooth</title></head>
<body><video id="v" muted autoplay playsinline width="640" height="360"></video></body></html>`;

async function playOne(browser, scripts, url, opts) {
  const page = await browser.newPage();
  const console_ = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') console_.push(`${m.type()}: ${m.text()}`.slice(0, 500));
  });
  page.on('pageerror', (e) => console_.push(`pageerror: ${e.message}`));
  const failedRequests = [];
  const requests = [];
  page.on('requestfailed', (r) => failedRequests.push(`${r.url()} ${r.failure()?.errorText}`));
  page.on('response', (r) => {
    if (r.status() >= 400) failedRequests.push(`${r.url()} -> ${r.status()}`);
    else if (!r.url().includes('__sealcast_e2e__')) requests.push(new URL(r.url()).pathname);
  });

  const origin = new URL(url).origin;
  await page.route(origin + PAGE_PATH, (route) =>
    route.fulfill({ status: 200, contentType: 'text/html', body: PAGE_HTML }));
  const result = { url, ok: false };
  try {
    await page.goto(origin + PAGE_PATH);
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
      try {
        await page.waitForFunction((t) => {
          const v = document.getElementById('v');
          // Fail fast on a media element error instead of waiting for the timeout.
          return v.error || v.currentTime > t;
        }, opts.threshold, { timeout: opts.timeout * 1000, polling: 250 });
        result.ok = true;
      } catch (e) {
        result.error = `currentTime did not pass ${opts.threshold}s within ${opts.timeout}s`;
      }
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
  const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
  if (!existsSync(executablePath)) {
    console.log(JSON.stringify({ fatal: `no browser at ${executablePath}` }));
    process.exit(3);
  }
  // dash.all does not contain the MSS parser; dash.mss registers dashjs.MssHandler,
  // which MediaPlayer picks up when a manifest is a SmoothStreamingMedia document.
  const scripts = [require.resolve('dashjs/dist/dash.all.min.js'), require.resolve('dashjs/dist/dash.mss.min.js')];
  const browser = await chromium.launch({ executablePath, args: CHROMIUM_ARGS, headless: true });
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
