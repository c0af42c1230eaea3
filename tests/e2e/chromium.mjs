// Shared by the players (player.mjs, smooth_player.mjs, cenc_player.mjs): Debian's Chromium
// launched through playwright-core (never a downloaded browser) with the flags of
// /work/shared/ORACLES.md, and a player page served on the manifest's own origin (intercepted,
// never reaching the server: http on 127.0.0.1 is a secure context, which EME requires), with
// the page's console errors and HTTP failures collected for the report.
import { chromium } from 'playwright-core';
import { existsSync } from 'node:fs';

export const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--autoplay-policy=no-user-gesture-required',
];

// `CHROMIUM` or /usr/bin/chromium; prints {fatal} and exits 3 when there is none.
export async function launchChromium() {
  const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
  if (!existsSync(executablePath)) {
    console.log(JSON.stringify({ fatal: `no browser at ${executablePath}` }));
    process.exit(3);
  }
  return chromium.launch({ executablePath, args: CHROMIUM_ARGS, headless: true });
}

const pageHtml = (title) => `<!doctype html><html><head><meta charset="utf-8"><title>${title}</title></head>
<body><video id="v" muted autoplay playsinline width="640" height="360"></video></body></html>`;

// Opens a page at `${origin of url}/__sealcast_e2e__/${name}.html` holding one <video id="v">.
// Returns {page, log}: log.console (errors and warnings), log.failed (HTTP >= 400 and network
// failures), log.fetched (paths of successful responses, the page itself excluded),
// log.requested (every URL requested, in order), log.keys (method, URL and status of each
// /key/ and /clearkey response).
export async function openPlayerPage(browser, url, name) {
  const page = await browser.newPage();
  const log = { console: [], failed: [], fetched: [], requested: [], keys: [] };
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') log.console.push(`${m.type()}: ${m.text()}`.slice(0, 500));
  });
  page.on('pageerror', (e) => log.console.push(`pageerror: ${e.message}`));
  page.on('request', (r) => log.requested.push(r.url()));
  page.on('requestfailed', (r) => log.failed.push(`${r.url()} ${r.failure()?.errorText}`));
  page.on('response', (r) => {
    const path = new URL(r.url()).pathname;
    if (path === '/clearkey' || path.startsWith('/key/')) log.keys.push(`${r.request().method()} ${r.url().split('?')[0]} ${r.status()}`);
    if (r.status() >= 400) log.failed.push(`${r.url()} -> ${r.status()}`);
    else if (!path.startsWith('/__sealcast_e2e__/')) log.fetched.push(path);
  });
  const origin = new URL(url).origin;
  const pagePath = `/__sealcast_e2e__/${name}.html`;
  await page.route(origin + pagePath, (route) =>
    route.fulfill({ status: 200, contentType: 'text/html', body: pageHtml(`sealcast e2e ${name}`) }));
  await page.goto(origin + pagePath);
  return { page, log };
}

// Waits until the page's video plays past `threshold` seconds, or a media element error ends
// the wait early (callers report `mediaError` from the element afterwards). Returns null, or
// why playback did not get there within `timeoutSecs`.
export async function waitPlayback(page, threshold, timeoutSecs) {
  try {
    await page.waitForFunction((t) => {
      const v = document.getElementById('v');
      return v.error || v.currentTime > t;
    }, threshold, { timeout: timeoutSecs * 1000, polling: 250 });
    return null;
  } catch (e) {
    return `currentTime did not pass ${threshold}s within ${timeoutSecs}s`;
  }
}
