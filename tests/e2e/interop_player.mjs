// The browser matrix of issue 12 (test_interop.py): many player jobs in ONE Chromium launch
// (Debian's, through playwright-core), one page per job, one job at a time. Usage:
//   node interop_player.mjs JOBS.json        (or `-` for stdin)
// JOBS.json: {"timeout": 25, "threshold": 3, "jobs": [
//   {"id": "…", "engine": "shaka"|"dashjs"|"dashjs5"|"hlsjs"|"mss", "url": "http://…",
//    "keys": {"<kid hex>": "<key hex>"},   EME ClearKey keys handed to the player (DASH)
//    "wrongKeyDelivery": true,              every /key/ answer has its bytes flipped on the way
//                                           to the player (AES-128 / SAMPLE-AES: the player
//                                           fetches keys itself)
//    "mpdFilter": "strip-switching"|"strip-clearkey",   control runs: the MPD as served minus
//                                           its adaptation-set-switching SupplementalProperty,
//                                           or minus its ClearKey ContentProtection
//    "switchUp": true,                      start on the lowest video height, and once playback
//                                           passes `switchAt` s, force the player's ABR up (only
//                                           higher renditions allowed); report heights seen
//    "threshold": 3}, …]}
// Engines: shaka-player (DASH, HLS fMP4 and TS), dash.js 4.7 (`dashjs`, the version the rest of
// the suite uses) and dash.js 5 (`dashjs5`, which implements adaptation-set switching), hls.js,
// and dash.js 4.7 + dash.mss for Smooth Streaming (`mss`).
// Prints one JSON object per job: {id, ok, error, currentTime, decodedFrames, mediaKeys,
// heights (video heights over time), videoRequests (video track names requested in order),
// switch: {at, heightBefore, heightAfter, playedAfter}, playerErrors, failedRequests, …}.
// The caller judges. Exit code 0 unless the harness itself broke.
import { launchChromium, openPlayerPage } from './chromium.mjs';
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
// dash.js 5's package `exports` hide its dist files from require.resolve: resolve by path.
const nodeModules = fileURLToPath(new URL('./node_modules/', import.meta.url));
const resolveScript = (s) => (s.startsWith('dashjs5/') ? nodeModules + s : require.resolve(s));

const SCRIPTS = {
  shaka: ['shaka-player/dist/shaka-player.compiled.js'],
  dashjs: ['dashjs/dist/dash.all.min.js'],
  dashjs5: ['dashjs5/dist/modern/umd/dash.all.min.js'],
  hlsjs: ['hls.js/dist/hls.min.js'],
  mss: ['dashjs/dist/dash.all.min.js', 'dashjs/dist/dash.mss.min.js'],
};

const hexToB64url = (hex) => Buffer.from(hex.replace(/-/g, ''), 'hex').toString('base64')
  .replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');

// In-page starters. Each sets window.__player, window.__errors and window.__forceUp (called
// by the harness to force the ABR upwards for switchUp jobs).
function startInPage({ engine, url, keys, clearkeysB64, switchUp }) {
  const errors = [];
  window.__errors = errors;
  const video = document.getElementById('v');
  video.muted = true;
  const playSoon = () => Promise.race([video.play().catch((e) => errors.push({ play: String(e) })),
    new Promise((r) => setTimeout(r, 5000))]);
  if (engine === 'shaka') {
    shaka.polyfill.installAll();
    const player = new shaka.Player();
    window.__player = player;
    player.addEventListener('error', (ev) => {
      const d = ev.detail || {};
      errors.push({ severity: d.severity, category: d.category, code: d.code, data: JSON.stringify(d.data || []).slice(0, 300) });
    });
    const cfg = { streaming: { bufferingGoal: 4, rebufferingGoal: 1 } };
    if (Object.keys(keys).length) cfg.drm = { clearKeys: keys };
    // ABR restrictions steer what the ABR manager picks (app `restrictions` would also drop
    // variants from the presentation).
    // A short buffer and clearBufferSwitch, so the switch shows within the 10 s ladder.
    if (switchUp) {
      cfg.abr = { restrictions: { maxHeight: 400 }, clearBufferSwitch: true, safeMarginSwitch: 1 };
      cfg.streaming.bufferingGoal = 2;
    }
    player.configure(cfg);
    window.__forceUp = () => player.configure({ abr: { restrictions: { minHeight: 401, maxHeight: Infinity } } });
    return player.attach(video).then(() => player.load(url)).then(playSoon).then(() => ({ ok: true }),
      (e) => ({ error: `load failed: code ${e.code} category ${e.category} data ${JSON.stringify(e.data || []).slice(0, 300)}` }));
  }
  if (engine === 'hlsjs') {
    if (!Hls.isSupported()) return { error: 'hls.js says this browser is not supported' };
    const hls = new Hls({ enableWorker: true });
    window.__player = hls;
    hls.on(Hls.Events.ERROR, (ev, d) => errors.push({ fatal: !!d.fatal, type: d.type, details: d.details,
      reason: String(d.reason || (d.error && d.error.message) || '').slice(0, 200) }));
    const parsed = new Promise((resolve) => {
      hls.on(Hls.Events.MANIFEST_PARSED, () => resolve({ ok: true }));
      hls.on(Hls.Events.ERROR, (ev, d) => { if (d.fatal) resolve({ error: `fatal hls.js error ${d.type}/${d.details}` }); });
    });
    hls.loadSource(url);
    hls.attachMedia(video);
    return parsed.then(async (r) => { await playSoon(); return r; });
  }
  // dash.js (4.7 or 5; `mss` is 4.7 with the Smooth Streaming module loaded).
  const player = dashjs.MediaPlayer().create();
  window.__player = player;
  const E = dashjs.MediaPlayer.events;
  player.on(E.ERROR, (ev) => {
    const err = ev.error || {};
    errors.push({ code: err.code, message: String(err.message || ev.event || '').slice(0, 300) });
  });
  if (E.PLAYBACK_ERROR) player.on(E.PLAYBACK_ERROR, (ev) => errors.push({ playback: String(ev.error && ev.error.message || ev.error) }));
  const settings = { debug: { logLevel: dashjs.Debug.LOG_LEVEL_WARNING },
    streaming: { buffer: { stableBufferTime: 3, bufferTimeAtTopQuality: 3, bufferTimeAtTopQualityLongForm: 3 } } };
  if (switchUp) {
    // Start below every HD rendition; then only HD is allowed (see __forceUp). The bandwidths
    // are in kbit/s, between the ladder's SD and HD `@bandwidth`s.
    settings.streaming.abr = { initialBitrate: { video: 100 }, maxBitrate: { video: 450 } };
  }
  player.updateSettings(settings);
  window.__forceUp = () => player.updateSettings({ streaming: { abr: { minBitrate: { video: 450 }, maxBitrate: { video: -1 } } } });
  if (Object.keys(clearkeysB64).length) player.setProtectionData({ 'org.w3.clearkey': { clearkeys: clearkeysB64 } });
  player.initialize(video, url, true);
  return { ok: true };
}

// Strips, from an MPD's text, the adaptation-set-switching properties or the ClearKey
// ContentProtection elements (control runs).
function filterMpd(text, how) {
  if (how === 'strip-switching') return text.replace(/<SupplementalProperty [^>]*adaptation-set-switching[^>]*\/>\s*/g, '');
  if (how === 'strip-clearkey') {
    // Self-closing first; an element with children ends at its own closing tag.
    return text.replace(/<ContentProtection\b[^>]*e2719d58-a985-b3c9-781a-b030af78d30e[^>]*\/>\s*|<ContentProtection\b[^>]*e2719d58-a985-b3c9-781a-b030af78d30e[^>]*>[\s\S]*?<\/ContentProtection>\s*/g, '');
  }
  return text;
}

async function playOne(browser, job, opts) {
  const threshold = job.threshold || opts.threshold;
  const result = { id: job.id, engine: job.engine, url: job.url, ok: false };
  const { page, log } = await openPlayerPage(browser, job.url, `interop-${job.engine}`);
  const heights = [];
  try {
    if (job.mpdFilter) {
      await page.route(job.url, async (route) => {
        const resp = await route.fetch();
        const text = await resp.text();
        const body = filterMpd(text, job.mpdFilter);
        result.mpdFiltered = body.length !== text.length;
        await route.fulfill({ response: resp, body });
      });
    }
    if (job.wrongKeyDelivery) {
      await page.route((u) => new URL(u).pathname.startsWith('/key/'), async (route) => {
        const resp = await route.fetch();
        const body = Buffer.from(await resp.body());
        for (let i = 0; i < body.length; i++) body[i] ^= 0x5a;
        await route.fulfill({ response: resp, body });
      });
    }
    for (const s of SCRIPTS[job.engine]) await page.addScriptTag({ path: resolveScript(s) });
    const clearkeysB64 = {};
    for (const [kid, key] of Object.entries(job.keys || {})) clearkeysB64[hexToB64url(kid)] = hexToB64url(key);
    const loaded = await page.evaluate(startInPage, { engine: job.engine, url: job.url, keys: job.keys || {}, clearkeysB64,
      switchUp: !!job.switchUp });
    if (loaded && loaded.error) throw new Error(loaded.error);
    // Poll: record (time, height); force the switch once; stop at the threshold (plain jobs)
    // or when the switch has been followed by `playAfter` s of playback (switch jobs).
    const deadline = Date.now() + (job.timeout || opts.timeout) * 1000;
    const switchAt = job.switchAt || 2;
    const playAfter = job.playAfter || 2;
    let sw = null;
    for (;;) {
      const st = await page.evaluate((dash) => {
        const v = document.getElementById('v');
        // An error the player gives up on ends the wait early (wrong-key jobs).
        const fatal = (window.__errors || []).some((e) => e.severity === 2 || e.fatal || (dash && e.playback));
        return { t: v.currentTime, h: v.videoHeight, err: v.error ? `${v.error.code} ${v.error.message}` : null, ended: v.ended, fatal };
      }, job.engine.startsWith('dashjs'));
      if (st.h && (!heights.length || heights[heights.length - 1][1] !== st.h)) heights.push([Math.round(st.t * 100) / 100, st.h]);
      if (st.err || (st.fatal && st.t <= threshold && !job.switchUp)) break;
      if (job.switchUp) {
        if (!sw && st.t > switchAt) {
          sw = { at: st.t, heightBefore: st.h };
          await page.evaluate(() => window.__forceUp());
        }
        if (sw && st.h !== sw.heightBefore && !sw.heightAfter) { sw.heightAfter = st.h; sw.switchedAt = st.t; }
        if (sw && sw.heightAfter && st.t >= sw.switchedAt + playAfter) { sw.playedAfter = st.t - sw.switchedAt; result.ok = true; break; }
        if (st.ended) break;
      } else if (st.t > threshold) {
        result.ok = true;
        break;
      }
      if (Date.now() > deadline) {
        result.error = job.switchUp ? `no switch followed by ${playAfter}s of playback within the timeout`
          : `currentTime did not pass ${threshold}s within ${job.timeout || opts.timeout}s`;
        break;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    if (sw) {
      const playedAfter = sw.switchedAt !== undefined ? (await page.evaluate(() => document.getElementById('v').currentTime)) - sw.switchedAt : 0;
      sw.playedAfter = Math.round(playedAfter * 100) / 100;
      result.switch = sw;
    }
    const state = await page.evaluate(() => {
      const v = document.getElementById('v');
      const q = v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality() : {};
      return {
        currentTime: v.currentTime, readyState: v.readyState, videoHeight: v.videoHeight,
        decodedFrames: q.totalVideoFrames, mediaError: v.error ? `${v.error.code} ${v.error.message}` : null,
        mediaKeys: !!v.mediaKeys, playerErrors: window.__errors || [],
      };
    });
    Object.assign(result, state);
    if (result.mediaError) { result.ok = false; result.error = `media element error ${result.mediaError}`; }
    const critical = (result.playerErrors || []).filter((e) => e.severity === 2 || e.fatal
      || ((job.engine === 'dashjs' || job.engine === 'dashjs5' || job.engine === 'mss') && (e.code !== undefined || e.playback)));
    if (critical.length) {
      result.ok = false;
      result.error = (result.error ? result.error + '; ' : '') + `player error(s): ${JSON.stringify(critical).slice(0, 800)}`;
    }
    if (result.ok && !(result.decodedFrames > 0)) { result.ok = false; result.error = 'no video frames decoded'; }
  } catch (e) {
    result.error = `${e && e.message ? e.message : e}`.slice(0, 800);
  }
  result.heights = heights;
  // Video track folders requested, in order of first request (renditions the player used).
  const seen = [];
  for (const p of log.fetched) {
    const m = p.match(/\/(video[^/]*)\/(?:(?:cenc|cbcs|aes)\/)?[^/]*\.(m4s|ts)$/) || p.match(/QualityLevels\((\d+)\)\/Fragments\(video/);
    if (m && !seen.includes(m[1])) seen.push(m[1]);
  }
  result.videoRequests = seen;
  result.failedRequests = log.failed.slice(0, 20);
  result.keyRequests = log.keys.slice(0, 20);
  result.console = log.console.slice(0, 10);
  await page.close();
  return result;
}

async function main() {
  const arg = process.argv[2];
  if (!arg) {
    console.error('usage: node interop_player.mjs JOBS.json | -');
    process.exit(2);
  }
  const spec = JSON.parse(readFileSync(arg === '-' ? 0 : arg, 'utf8'));
  const opts = { timeout: spec.timeout || 25, threshold: spec.threshold || 3 };
  const browser = await launchChromium();
  try {
    for (const job of spec.jobs) {
      const t0 = Date.now();
      const r = await playOne(browser, job, opts);
      r.wallSeconds = Math.round((Date.now() - t0) / 100) / 10;
      console.log(JSON.stringify(r));
    }
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  console.log(JSON.stringify({ fatal: String(e && e.stack ? e.stack : e) }));
  process.exit(4);
});
