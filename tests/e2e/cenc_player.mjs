// Plays encrypted DASH in Debian's Chromium (playwright-core, never a downloaded browser)
// through EME `org.w3.clearkey`, with shaka-player (`drm.clearKeys`) or dash.js (ClearKey
// `protData`), and reports per job whether playback got past a threshold. Usage:
//   node cenc_player.mjs JOBS.json        (or `-` to read the JSON from stdin)
// JOBS.json: {"timeout": 30, "threshold": 4, "jobs": [
//   {"id": "…", "engine": "shaka"|"dashjs", "url": "http://…/manifest.mpd",
//    "keys": {"<kid hex>": "<key hex>", …}}, …]}
// Also (test_keys.py): shaka with a ClearKey licence SERVER instead of inline keys,
//   {"engine": "shaka", "url": …, "license": "http://…/clearkey", "token": "<bearer, optional>"}
//   (the token goes into an `Authorization: Bearer` header of licence requests only), and
//   hls.js for HLS (AES-128 / SAMPLE-AES TS; the player fetches keys itself, no EME):
//   {"engine": "hlsjs", "url": "http://…/master-ts.m3u8"}. Such jobs report licenseRequests
//   / keyRequests (status of every /clearkey or /key/ response).
// Signed access (test_signed_urls.py): `"cookies": [{"name", "value"}, …]` are set on the
//   manifest's origin before the player starts (signed cookies), and `"clear": true` lets a
//   job over clear content pass without MediaKeys.
// Prints one JSON object per job on stdout ({id, ok, error, currentTime, decodedFrames,
// mediaError, playerErrors, keySystem, licenseRequests, …}); the caller judges (a job with
// wrong keys is expected to fail). Exit code 0 unless the harness itself broke.
import { launchChromium, openPlayerPage, waitPlayback } from './chromium.mjs';
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';

const require = createRequire(import.meta.url);



const hexToB64url = (hex) => Buffer.from(hex.replace(/-/g, ''), 'hex').toString('base64')
  .replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');

async function startShaka(page, url, keys, license, token) {
  return page.evaluate(async ({ manifestUrl, clearKeys, license, token }) => {
    const errors = [];
    window.__errors = errors;
    shaka.polyfill.installAll();
    if (!shaka.Player.isBrowserSupported()) return { error: 'shaka says this browser is not supported' };
    const video = document.getElementById('v');
    const player = new shaka.Player();
    window.__player = player;
    await player.attach(video);
    // A licence server from the job, else the manifest's (dashif:Laurl), else inline keys.
    if (license) player.configure({ drm: { servers: { 'org.w3.clearkey': license } } });
    else if (Object.keys(clearKeys).length) player.configure({ drm: { clearKeys } });
    if (token) {
      player.getNetworkingEngine().registerRequestFilter((type, request) => {
        if (type === shaka.net.NetworkingEngine.RequestType.LICENSE) request.headers['Authorization'] = `Bearer ${token}`;
      });
    }
    player.addEventListener('error', (ev) => {
      const d = ev.detail || {};
      errors.push({ severity: d.severity, category: d.category, code: d.code, data: JSON.stringify(d.data || []).slice(0, 300) });
    });
    try {
      await player.load(manifestUrl);
    } catch (e) {
      return { error: `load failed: code ${e.code} category ${e.category} data ${JSON.stringify(e.data || []).slice(0, 300)}` };
    }
    video.muted = true;
    // play() stays pending while no key arrives (licence refused): do not wait for it forever.
    try {
      await Promise.race([video.play(), new Promise((resolve) => setTimeout(resolve, 5000))]);
    } catch (e) { errors.push({ play: String(e) }); }
    return { ok: true };
  }, { manifestUrl: url, clearKeys: keys || {}, license: license || null, token: token || null });
}

// hls.js: AES-128 and SAMPLE-AES (TS) are decrypted by hls.js itself with WebCrypto from the
// key it fetches at the playlist's key URI; no EME is involved.
async function startHlsjs(page, url) {
  return page.evaluate(async (manifestUrl) => {
    const errors = [];
    window.__errors = errors;
    if (typeof Hls === 'undefined') return { error: 'Hls global missing' };
    if (!Hls.isSupported()) return { error: 'hls.js says this browser is not supported' };
    const video = document.getElementById('v');
    const hls = new Hls({ enableWorker: true });
    window.__player = hls;
    hls.on(Hls.Events.ERROR, (ev, d) => errors.push({ fatal: !!d.fatal, type: d.type, details: d.details,
      response: d.response ? d.response.code : undefined }));
    const parsed = new Promise((resolve) => {
      hls.on(Hls.Events.MANIFEST_PARSED, () => resolve({ ok: true }));
      hls.on(Hls.Events.ERROR, (ev, d) => { if (d.fatal) resolve({ error: `fatal hls.js error ${d.type}/${d.details}` }); });
    });
    hls.loadSource(manifestUrl);
    hls.attachMedia(video);
    const r = await parsed;
    video.muted = true;
    try {
      await Promise.race([video.play(), new Promise((resolve) => setTimeout(resolve, 5000))]);
    } catch (e) { errors.push({ play: String(e) }); }
    return r;
  }, url);
}

async function startDashjs(page, url, keys) {
  const clearkeys = {};
  for (const [kid, key] of Object.entries(keys)) clearkeys[hexToB64url(kid)] = hexToB64url(key);
  return page.evaluate(({ manifestUrl, clearkeys }) => {
    const errors = [];
    window.__errors = errors;
    if (typeof dashjs === 'undefined') return { error: 'dashjs global missing' };
    const video = document.getElementById('v');
    const player = dashjs.MediaPlayer().create();
    window.__player = player;
    player.updateSettings({ debug: { logLevel: dashjs.Debug.LOG_LEVEL_WARNING } });
    const E = dashjs.MediaPlayer.events;
    player.on(E.ERROR, (ev) => {
      const err = ev.error || {};
      errors.push({ code: err.code, message: String(err.message || ev.event || '').slice(0, 300) });
    });
    if (E.PLAYBACK_ERROR) player.on(E.PLAYBACK_ERROR, (ev) => errors.push({ playback: String(ev.error && ev.error.message || ev.error) }));
    window.__keySystem = null;
    const P = dashjs.Protection && dashjs.Protection.events;
    if (P && P.KEY_SYSTEM_SELECTED) player.on(P.KEY_SYSTEM_SELECTED, (ev) => {
      try { window.__keySystem = ev.data.keySystem.systemString; } catch (e) { window.__keySystem = String(e); }
    });
    player.setProtectionData({ 'org.w3.clearkey': { clearkeys } });
    video.muted = true;
    player.initialize(video, manifestUrl, true);
    return { ok: true };
  }, { manifestUrl: url, clearkeys });
}

async function playOne(browser, job, opts) {
  const result = { id: job.id, engine: job.engine, url: job.url, ok: false };
  const { page, log } = await openPlayerPage(browser, job.url, 'cenc');
  const console_ = log.console;
  const failedRequests = log.failed;
  const requests = log.fetched;
  const keyResponses = log.keys;
  try {
    if (job.cookies) {
      const url = new URL(job.url).origin;
      await page.context().addCookies(job.cookies.map((c) => ({ name: c.name, value: c.value, url })));
    }
    if (job.engine === 'shaka') {
      await page.addScriptTag({ path: require.resolve('shaka-player/dist/shaka-player.compiled.js') });
    } else if (job.engine === 'hlsjs') {
      await page.addScriptTag({ path: require.resolve('hls.js/dist/hls.min.js') });
    } else {
      await page.addScriptTag({ path: require.resolve('dashjs/dist/dash.all.min.js') });
    }
    const loaded = job.engine === 'shaka' ? await startShaka(page, job.url, job.keys, job.license, job.token)
      : job.engine === 'hlsjs' ? await startHlsjs(page, job.url) : await startDashjs(page, job.url, job.keys);
    if (loaded.error) {
      result.error = loaded.error;
    } else {
      const waited = await waitPlayback(page, opts.threshold, opts.timeout);
      if (waited) result.error = waited;
      else result.ok = true;
    }
    const state = await page.evaluate(async () => {
      const v = document.getElementById('v');
      const q = v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality() : {};
      const buffered = [];
      for (let i = 0; i < v.buffered.length; i++) buffered.push([v.buffered.start(i), v.buffered.end(i)]);
      let keySystem = window.__keySystem || null;
      try {
        if (!keySystem && window.__player && window.__player.keySystem) keySystem = window.__player.keySystem();
      } catch (e) { /* dash.js has no keySystem() */ }
      return {
        currentTime: v.currentTime, readyState: v.readyState, paused: v.paused,
        videoWidth: v.videoWidth, videoHeight: v.videoHeight, buffered,
        decodedFrames: q.totalVideoFrames, droppedFrames: q.droppedVideoFrames, corruptedFrames: q.corruptedVideoFrames,
        mediaError: v.error ? `${v.error.code} ${v.error.message}` : null,
        mediaKeys: !!v.mediaKeys,
        keySystem,
        playerErrors: window.__errors || [],
      };
    }).catch((e) => ({ stateError: String(e) }));
    Object.assign(result, state);
    if (result.mediaError) { result.ok = false; result.error = `media element error ${result.mediaError}`; }
    const critical = (result.playerErrors || []).filter((e) => job.engine === 'dashjs' || e.severity === 2 || e.fatal);
    if (critical.length) {
      result.ok = false;
      result.error = (result.error ? result.error + '; ' : '') + `player error(s): ${JSON.stringify(critical).slice(0, 800)}`;
    }
    if (result.ok && !(result.decodedFrames > 0)) { result.ok = false; result.error = 'no video frames decoded'; }
    if (result.ok && !result.mediaKeys && job.engine !== 'hlsjs' && !job.clear) { result.ok = false; result.error = 'played without MediaKeys attached (clear content?)'; }
  } catch (e) {
    result.error = `harness: ${e && e.message ? e.message : e}`;
  }
  result.console = console_.slice(0, 20);
  result.failedRequests = failedRequests.slice(0, 20);
  result.requests = requests.slice(0, 30);
  result.keyRequests = keyResponses.slice(0, 30);
  await page.close();
  return result;
}

async function main() {
  const arg = process.argv[2];
  if (!arg) {
    console.error('usage: node cenc_player.mjs JOBS.json | -');
    process.exit(2);
  }
  const spec = JSON.parse(readFileSync(arg === '-' ? 0 : arg, 'utf8'));
  const opts = { timeout: spec.timeout || 30, threshold: spec.threshold || 4 };
  const browser = await launchChromium();
  try {
    for (const job of spec.jobs) console.log(JSON.stringify(await playOne(browser, job, opts)));
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  console.log(JSON.stringify({ fatal: String(e && e.stack ? e.stack : e) }));
  process.exit(4);
});
