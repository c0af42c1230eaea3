// Subtitles in a real player: loads a manifest with shaka-player, dash.js or hls.js in Debian's
// Chromium, lists the text tracks the player found, selects the one with language LANG,
// seeks (paused) to AT seconds and waits until a cue is active there. Usage:
//   node subs_player.mjs --engine shaka|dashjs|hlsjs --lang fr --at 4.6 [--text-format stpp] [--timeout 40] URL
// `--text-format` (shaka only): its `preferredTextFormats`, keeping the text streams whose
// codecs or MIME type start with it (DASH text AdaptationSets carry WebVTT and stpp).
// `--drop-vtt`: the MPD reaches the player without its WebVTT text Representations
// (rewritten in the page's network layer), so a player that would take the WebVTT one of a
// text AdaptationSet (dash.js takes the first) reads the stpp one.
// Prints one JSON object: {url, engine, tracks: [{lang, label}], active: [{text, start, end}],
// bufferedStart, textFetched: [paths], error?}. The active cues are read from the <video>
// element's TextTracks (all three players show text through them: shaka's
// SimpleTextDisplayer, dash.js's and hls.js's native tracks).
import { launchChromium, openPlayerPage } from './chromium.mjs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

const opts = { engine: 'shaka', lang: null, at: 0, timeout: 40, url: null, textFormat: null };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === '--engine') opts.engine = argv[++i];
  else if (argv[i] === '--lang') opts.lang = argv[++i];
  else if (argv[i] === '--at') opts.at = Number(argv[++i]);
  else if (argv[i] === '--timeout') opts.timeout = Number(argv[++i]);
  else if (argv[i] === '--text-format') opts.textFormat = argv[++i];
  else if (argv[i] === '--drop-vtt') opts.dropVtt = true;
  else opts.url = argv[i];
}

const browser = await launchChromium();
const result = { url: opts.url, engine: opts.engine, lang: opts.lang, at: opts.at };
const { page, log } = await openPlayerPage(browser, opts.url, 'subs');
try {
  if (opts.dropVtt) {
    await page.route(opts.url, async (route) => {
      const resp = await route.fetch();
      const body = (await resp.text()).replace(/ *<Representation [^>]*mimeType="text\/vtt"[^>]*>[\s\S]*?<\/Representation>\n/g, '');
      await route.fulfill({ response: resp, body });
    });
  }
  const lib = { hlsjs: 'hls.js/dist/hls.min.js', dashjs: 'dashjs/dist/dash.all.min.js' }[opts.engine] || 'shaka-player/dist/shaka-player.compiled.js';
  await page.addScriptTag({ path: require.resolve(lib) });
  const loaded = await page.evaluate(async ({ url, engine, textFormat }) => {
    const video = document.getElementById('v');
    video.muted = true;
    if (engine === 'dashjs') {
      const player = dashjs.MediaPlayer().create();
      window.__player = player;
      player.updateSettings({ debug: { logLevel: dashjs.Debug.LOG_LEVEL_WARNING }, streaming: { text: { defaultEnabled: false } } });
      const E = dashjs.MediaPlayer.events;
      return await new Promise((resolve) => {
        player.on(E.STREAM_INITIALIZED, () => resolve({ ok: true }));
        player.on(E.ERROR, (ev) => resolve({ error: `dash.js error ${JSON.stringify(ev.error || ev).slice(0, 300)}` }));
        player.initialize(video, url, false);
        // dash.js renders TTML (imscJS) into a div of the page's own.
        const div = document.createElement('div');
        div.id = 'ttml';
        document.body.appendChild(div);
        player.attachTTMLRenderingDiv(div);
      });
    }
    if (engine === 'hlsjs') {
      const hls = new Hls({ enableWorker: true, subtitleDisplay: true });
      window.__player = hls;
      const r = await new Promise((resolve) => {
        hls.on(Hls.Events.MANIFEST_PARSED, () => resolve({ ok: true }));
        hls.on(Hls.Events.ERROR, (ev, d) => { if (d.fatal) resolve({ error: `fatal hls.js error ${d.type}/${d.details}` }); });
        hls.loadSource(url);
        hls.attachMedia(video);
      });
      return r;
    }
    shaka.polyfill.installAll();
    const player = new shaka.Player();
    window.__player = player;
    if (textFormat) player.configure({ preferredTextFormats: [textFormat] });
    await player.attach(video);
    try { await player.load(url); } catch (e) { return { error: `shaka load failed: code ${e.code} data ${JSON.stringify(e.data || []).slice(0, 300)}` }; }
    return { ok: true };
  }, { url: opts.url, engine: opts.engine, textFormat: opts.textFormat });
  if (loaded.error) throw new Error(loaded.error);
  result.tracks = await page.evaluate((engine) => {
    const p = window.__player;
    if (engine === 'hlsjs') return p.subtitleTracks.map((t) => ({ lang: t.lang, label: t.name }));
    if (engine === 'dashjs') return p.getTracksFor('text').map((t) => ({ lang: t.lang, label: (t.labels && t.labels[0] && t.labels[0].text) || null, mimeType: t.mimeType, codec: t.codec }));
    return p.getTextTracks().map((t) => ({ lang: t.language, label: t.label, mimeType: t.mimeType }));
  }, opts.engine);
  const picked = await page.evaluate(({ engine, lang }) => {
    const p = window.__player;
    if (engine === 'hlsjs') {
      const i = p.subtitleTracks.findIndex((t) => t.lang === lang);
      if (i < 0) return false;
      p.subtitleTrack = i;
      p.subtitleDisplay = true;
      return true;
    }
    if (engine === 'dashjs') {
      const i = p.getTracksFor('text').findIndex((t) => t.lang === lang);
      if (i < 0) return false;
      p.enableText(true);
      p.setTextTrack(i);
      return true;
    }
    const t = p.getTextTracks().find((x) => x.language === lang);
    if (!t) return false;
    p.selectTextTrack(t);
    p.setTextTrackVisibility(true);
    return true;
  }, { engine: opts.engine, lang: opts.lang });
  if (!picked) throw new Error(`no text track with language ${opts.lang}`);
  // Where the media's first presentation time landed on the player's timeline, read from
  // the first buffered range before seeking (hls.js over MPEG-TS starts the timeline at the
  // first decode time, so the source's presentation time 0 is a little after 0 there): cues
  // must move with it to stay in sync.
  // Read in the same poll that saw it: a player may drop what it buffered in between (shaka
  // does as the text track switch settles).
  const first = await page.waitForFunction(() => {
    const b = document.getElementById('v').buffered;
    return b.length > 0 ? { start: b.start(0) } : null;
  }, null, { timeout: opts.timeout * 1000, polling: 100 });
  result.bufferedStart = (await first.jsonValue()).start;
  // Players drop a text track they are still starting when the element seeks under them:
  // shaka-player 4.16 keeps a text stream it was just switched to from ever appending again
  // (init aborted, segments fetched, nothing buffered after the seek), dash.js 4 can keep a
  // WebVTT file it fetched from ever adding its cues. So the seek waits until the selected
  // text is held (each source has a cue in its first 2 s): shaka's buffered text, the other
  // players' cues on the element.
  try {
    await page.waitForFunction((engine) => {
      if (engine === 'shaka') return window.__player.getBufferedInfo().text.length > 0;
      for (const tt of document.getElementById('v').textTracks) if (tt.mode !== 'disabled' && tt.cues && tt.cues.length) return true;
      return false;
    }, opts.engine, { timeout: opts.timeout * 1000, polling: 100 });
  } catch (e) {
    throw new Error(`${opts.engine} held no text within ${opts.timeout}s of selecting it`);
  }
  await page.evaluate((at) => { const v = document.getElementById('v'); v.pause(); v.currentTime = at; }, opts.at);
  try {
    await page.waitForFunction(() => {
      const v = document.getElementById('v');
      for (const tt of v.textTracks) if (tt.mode !== 'disabled' && tt.activeCues && tt.activeCues.length) return true;
      return false;
    }, null, { timeout: opts.timeout * 1000, polling: 200 });
  } catch (e) {
    result.error = `no active cue at ${opts.at}s within ${opts.timeout}s`;
    // What the player holds, for the report: its buffered ranges (shaka) and every cue of
    // the enabled text tracks.
    result.held = await page.evaluate((engine) => {
      const v = document.getElementById('v');
      const cues = [];
      for (const tt of v.textTracks) {
        if (tt.mode === 'disabled' || !tt.cues) continue;
        for (const c of tt.cues) cues.push([tt.language, c.startTime, c.endTime]);
      }
      const p = window.__player;
      const buffered = engine === 'shaka' && p.getBufferedInfo ? p.getBufferedInfo() : null;
      return { cues: cues.slice(0, 20), buffered, seeking: v.seeking, readyState: v.readyState };
    }, opts.engine);
  }
  result.active = await page.evaluate(() => {
    const v = document.getElementById('v');
    const out = [];
    for (const tt of v.textTracks) {
      if (tt.mode === 'disabled' || !tt.activeCues) continue;
      for (const c of tt.activeCues) out.push({ text: c.text, start: c.startTime, end: c.endTime, track: tt.label, lang: tt.language });
    }
    return out;
  });
  // dash.js draws TTML cues into its rendering div (their VTTCue text stays empty).
  result.renderedText = await page.evaluate(() => { const d = document.getElementById('ttml'); return d ? d.textContent : null; });
  result.currentTime = await page.evaluate(() => document.getElementById('v').currentTime);
} catch (e) {
  result.error = `${e && e.message ? e.message : e}`;
}
result.textFetched = log.fetched.filter((x) => /\/(stpp\/|text\.vtt$|\d+\.vtt$)/.test(x));
result.console = log.console.slice(0, 10);
result.failed = log.failed.slice(0, 10);
console.log(JSON.stringify(result));
await page.close();
await browser.close();
