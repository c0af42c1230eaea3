// Plays manifests with shaka-player in Debian's Chromium (driven by playwright-core,
// never a downloaded browser) and reports, per URL, whether playback got past a
// threshold. Usage:
//   node player.mjs [--timeout 40] [--threshold 4] [--probe 'video/mp4; codecs="..."'] URL [URL...]
// Prints one JSON object per probe ({probe, supported}: MediaSource.isTypeSupported) and
// per URL on stdout; exit code 0 only if every URL played.
import { chromium } from 'playwright-core';
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';

const require = createRequire(import.meta.url);

function parseArgs(argv) {
  const opts = { timeout: 40, threshold: 4, urls: [], probes: [] };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--timeout') opts.timeout = Number(argv[++i]);
    else if (argv[i] === '--probe') opts.probes.push(argv[++i]);
    else if (argv[i] === '--threshold') opts.threshold = Number(argv[++i]);
    else opts.urls.push(argv[i]);
  }
  return opts;
}

const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--autoplay-policy=no-user-gesture-required',
];

// The page is served on the manifest's own origin (intercepted by Playwright, never
// reaching the server), so playback does not depend on CORS; CORS has its own test.
const PAGE_PATH = '/__sealcast_e2e__/player.html';
const PAGE_HTML = `<!doctype html><html><head><meta charset="utf-8"><title>sealcast e2e</title></head>
<body><video id="v" muted autoplay playsinline width="640" height="360"></video></body></html>`;

async function playOne(browser, shakaPath, url, opts) {
  const page = await browser.newPage();
  const console_ = [];
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') console_.push(`${m.type()}: ${m.text()}`); });
  page.on('pageerror', (e) => console_.push(`pageerror: ${e.message}`));
  const failedRequests = [];
  page.on('requestfailed', (r) => failedRequests.push(`${r.url()} ${r.failure()?.errorText}`));
  page.on('response', (r) => { if (r.status() >= 400) failedRequests.push(`${r.url()} -> ${r.status()}`); });

  const origin = new URL(url).origin;
  await page.route(origin + PAGE_PATH, (route) =>
    route.fulfill({ status: 200, contentType: 'text/html', body: PAGE_HTML }));
  const result = { url, ok: false };
  try {
    await page.goto(origin + PAGE_PATH);
    await page.addScriptTag({ path: shakaPath });
    const loaded = await page.evaluate(async (manifestUrl) => {
      const errors = [];
      window.__errors = errors;
      shaka.polyfill.installAll();
      if (!shaka.Player.isBrowserSupported()) return { error: 'shaka says this browser is not supported' };
      const video = document.getElementById('v');
      const player = new shaka.Player();
      window.__player = player;
      await player.attach(video);
      player.addEventListener('error', (ev) => {
        const d = ev.detail || {};
        errors.push({ severity: d.severity, category: d.category, code: d.code, data: JSON.stringify(d.data || []).slice(0, 400) });
      });
      try {
        await player.load(manifestUrl);
      } catch (e) {
        return { error: `load failed: code ${e.code} category ${e.category} data ${JSON.stringify(e.data || []).slice(0, 400)}` };
      }
      video.muted = true;
      try { await video.play(); } catch (e) { errors.push({ play: String(e) }); }
      return { ok: true };
    }, url);
    if (loaded.error) {
      result.error = loaded.error;
    } else {
      try {
        await page.waitForFunction((t) => document.getElementById('v').currentTime > t,
          opts.threshold, { timeout: opts.timeout * 1000, polling: 250 });
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
      return {
        currentTime: v.currentTime, readyState: v.readyState, paused: v.paused,
        videoWidth: v.videoWidth, videoHeight: v.videoHeight, buffered,
        decodedFrames: q.totalVideoFrames, droppedFrames: q.droppedVideoFrames,
        mediaError: v.error ? `${v.error.code} ${v.error.message}` : null,
        playerErrors: window.__errors || [],
        variants: p ? p.getVariantTracks().map((t) => ({ height: t.height, width: t.width, language: t.language,
          videoCodec: t.videoCodec, audioCodec: t.audioCodec, bandwidth: t.bandwidth })) : [],
        audioLanguages: p ? p.getAudioLanguages() : [],
      };
    }).catch((e) => ({ stateError: String(e) }));
    Object.assign(result, state);
    // A critical player error or a media element error is a failure even if time advanced.
    if (result.mediaError) { result.ok = false; result.error = `media element error ${result.mediaError}`; }
    const critical = (result.playerErrors || []).filter((e) => e.severity === 2);
    if (critical.length) { result.ok = false; result.error = `critical shaka error(s): ${JSON.stringify(critical)}`; }
  } catch (e) {
    result.error = `harness: ${e && e.message ? e.message : e}`;
  }
  result.console = console_.slice(0, 20);
  result.failedRequests = failedRequests.slice(0, 20);
  await page.close();
  return result;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (!opts.urls.length) {
    console.error('usage: node player.mjs [--timeout S] [--threshold S] URL [URL...]');
    process.exit(2);
  }
  const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
  if (!existsSync(executablePath)) {
    console.log(JSON.stringify({ fatal: `no browser at ${executablePath}` }));
    process.exit(3);
  }
  const shakaPath = require.resolve('shaka-player/dist/shaka-player.compiled.js');
  const browser = await chromium.launch({ executablePath, args: CHROMIUM_ARGS, headless: true });
  let allOk = true;
  try {
    if (opts.probes.length) {
      const page = await browser.newPage();
      for (const type of opts.probes) {
        const supported = await page.evaluate((t) => !!(window.MediaSource && MediaSource.isTypeSupported(t)), type);
        console.log(JSON.stringify({ probe: type, supported }));
      }
      await page.close();
    }
    for (const url of opts.urls) {
      const r = await playOne(browser, shakaPath, url, opts);
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
