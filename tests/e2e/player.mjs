// Plays manifests with shaka-player (default) or hls.js (`--engine hlsjs`) in Debian's
// Chromium (driven by playwright-core, never a downloaded browser) and reports, per URL,
// whether playback got past a threshold. Usage:
//   node player.mjs [--engine shaka|hlsjs] [--timeout 40] [--threshold 4]
//                   [--probe 'video/mp4; codecs="..."'] [--switch-audio NAME] URL [URL...]
// --switch-audio (hls.js only): once past the threshold, select the audio track whose
// NAME (or LANGUAGE) matches, wait for AUDIO_TRACK_SWITCHED and for 2 s more playback;
// reported as `audioSwitch` {switched, continued, requests (URLs fetched after the switch)}.
// Prints one JSON object per probe ({probe, supported}: MediaSource.isTypeSupported) and
// per URL on stdout; exit code 0 only if every URL played.
import { launchChromium, openPlayerPage, waitPlayback } from './chromium.mjs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

function parseArgs(argv) {
  const opts = { timeout: 40, threshold: 4, urls: [], probes: [], engine: 'shaka', switchAudio: null };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--timeout') opts.timeout = Number(argv[++i]);
    else if (argv[i] === '--engine') opts.engine = argv[++i];
    else if (argv[i] === '--switch-audio') opts.switchAudio = argv[++i];
    else if (argv[i] === '--probe') opts.probes.push(argv[++i]);
    else if (argv[i] === '--threshold') opts.threshold = Number(argv[++i]);
    else opts.urls.push(argv[i]);
  }
  return opts;
}


// The page is served on the manifest's own origin (intercepted by Playwright, never
// reaching the server), so playback does not depend on CORS; CORS has its own test.

// hls.js: load, attach, play. Errors land in window.__errors as {fatal, type, details}.
async function loadHlsjs(page, manifestUrl) {
  return page.evaluate(async (u) => {
    const errors = [];
    window.__errors = errors;
    if (!Hls.isSupported()) return { error: 'hls.js says this browser is not supported' };
    const video = document.getElementById('v');
    const hls = new Hls({ enableWorker: true });
    window.__player = hls;
    window.__audioSwitched = [];
    hls.on(Hls.Events.ERROR, (ev, d) => errors.push({ fatal: !!d.fatal, type: d.type, details: d.details,
      url: d.frag ? d.frag.url : (d.url || null), reason: d.reason || (d.error ? String(d.error) : null) }));
    hls.on(Hls.Events.AUDIO_TRACK_SWITCHED, (ev, d) => window.__audioSwitched.push(d.id));
    const parsed = new Promise((resolve) => {
      hls.on(Hls.Events.MANIFEST_PARSED, () => resolve({ ok: true }));
      hls.on(Hls.Events.ERROR, (ev, d) => { if (d.fatal) resolve({ error: `fatal hls.js error ${d.type}/${d.details}` }); });
    });
    hls.loadSource(u);
    hls.attachMedia(video);
    const r = await parsed;
    if (r.error) return r;
    video.muted = true;
    try { await video.play(); } catch (e) { errors.push({ play: String(e) }); }
    return { ok: true };
  }, manifestUrl);
}

async function switchAudioHlsjs(page, name, opts, requests) {
  const idx = await page.evaluate((n) => window.__player.audioTracks.findIndex((t) => t.name === n || t.lang === n), name);
  const sw = { requested: name, index: idx, switched: false, continued: false, requests: [] };
  if (idx < 0) { sw.error = `no hls.js audio track named ${name}`; return sw; }
  const t0 = await page.evaluate(() => document.getElementById('v').currentTime);
  const mark = requests.length;
  await page.evaluate((i) => { window.__player.audioTrack = i; }, idx);
  try {
    await page.waitForFunction((i) => window.__audioSwitched.includes(i), idx, { timeout: opts.timeout * 1000, polling: 250 });
    sw.switched = true;
    await page.waitForFunction((t) => document.getElementById('v').currentTime > t, t0 + 2,
      { timeout: opts.timeout * 1000, polling: 250 });
    sw.continued = true;
  } catch (e) {
    sw.error = `after selecting audio track ${idx}: switched=${sw.switched}, playback past ${t0 + 2}s=${sw.continued}`;
  }
  sw.timeBefore = t0;
  sw.timeAfter = await page.evaluate(() => document.getElementById('v').currentTime);
  sw.requests = requests.slice(mark);
  return sw;
}

async function playOne(browser, shakaPath, url, opts) {
  const result = { url, ok: false };
  const { page, log } = await openPlayerPage(browser, url, 'player');
  const console_ = log.console;
  const failedRequests = log.failed;
  const requests = log.requested;
  try {
    await page.addScriptTag({ path: shakaPath });
    const loaded = opts.engine === 'hlsjs' ? await loadHlsjs(page, url) : await page.evaluate(async (manifestUrl) => {
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
      const waited = await waitPlayback(page, opts.threshold, opts.timeout);
      if (waited) result.error = waited;
      else result.ok = true;
      if (result.ok && opts.engine === 'hlsjs' && opts.switchAudio) {
        result.audioSwitch = await switchAudioHlsjs(page, opts.switchAudio, opts, requests);
      }
    }
    const state = opts.engine === 'hlsjs' ? await page.evaluate(() => {
      const v = document.getElementById('v');
      const h = window.__player;
      const q = v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality() : {};
      const buffered = [];
      for (let i = 0; i < v.buffered.length; i++) buffered.push([v.buffered.start(i), v.buffered.end(i)]);
      return {
        currentTime: v.currentTime, readyState: v.readyState, paused: v.paused,
        videoWidth: v.videoWidth, videoHeight: v.videoHeight, buffered,
        decodedFrames: q.totalVideoFrames, droppedFrames: q.droppedVideoFrames,
        mediaError: v.error ? `${v.error.code} ${v.error.message}` : null,
        hlsErrors: window.__errors || [],
        levels: h ? h.levels.map((l) => ({ height: l.height, width: l.width, bitrate: l.bitrate,
          videoCodec: l.videoCodec, audioCodec: l.audioCodec, url: l.url && l.url[0] })) : [],
        audioTracks: h ? h.audioTracks.map((t) => ({ id: t.id, name: t.name, lang: t.lang, default: t.default,
          url: t.url })) : [],
        audioTrack: h ? h.audioTrack : null,
      };
    }).catch((e) => ({ stateError: String(e) })) : await page.evaluate(() => {
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
    const fatal = (result.hlsErrors || []).filter((e) => e.fatal);
    if (fatal.length) { result.ok = false; result.error = `fatal hls.js error(s): ${JSON.stringify(fatal)}`; }
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
  if (!['shaka', 'hlsjs'].includes(opts.engine)) {
    console.error(`unknown --engine ${opts.engine} (shaka | hlsjs)`);
    process.exit(2);
  }
  const shakaPath = opts.engine === 'hlsjs' ? require.resolve('hls.js/dist/hls.min.js')
    : require.resolve('shaka-player/dist/shaka-player.compiled.js');
  const browser = await launchChromium();
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
