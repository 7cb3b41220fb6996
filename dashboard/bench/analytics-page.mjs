// Times the analytics pages in Debian's Chromium (the browser tests' launcher and flags): from
// navigation start to the first frame in which every card shows its data. Run by the Rust
// analytics benchmark (backend/benches/analytics.rs), which serves the origin over the generated
// clicks and creates the session; by hand:
//
//   SMO1_ORIGIN_URL=http://127.0.0.1:8080 SMO1_SESSION=<smo1_session cookie value> \
//   node bench/analytics-page.mjs out.json '[{"name":"link","path":"/dashboard/links/<id>/analytics"}]'
//
// SMO1_BENCH_RUNS (default 7) timed loads per page, after one warm-up load that is not counted.
// Writes {"chromium": version, "runs": n, "pages": [{"name", "path", "ms": [...]}]} to out.json.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { launch } from '../tests/support.mjs';

const [out, pagesJson] = process.argv.slice(2);
assert.ok(out && pagesJson, 'usage: node bench/analytics-page.mjs OUT.json PAGES_JSON');
const pages = JSON.parse(pagesJson);
const origin = process.env.SMO1_ORIGIN_URL?.replace(/\/+$/, '');
const session = process.env.SMO1_SESSION;
assert.ok(origin && session, 'SMO1_ORIGIN_URL and SMO1_SESSION are required');
const runs = Math.max(1, Number(process.env.SMO1_BENCH_RUNS ?? 7));

// "Every card visible with its data", checked once per animation frame from the first script:
// nothing on the page is `aria-busy` (the chart card, the nine breakdown cards, recent clicks);
// the heading names the link (its record loaded); the status line says "Updated" (every API call
// of the page answered); the chart's canvas is drawn; every total tile shows a number; every
// breakdown card shows rows or "No clicks in this range."; the recent-clicks table shows clicks
// or that message. The time is `performance.now()` at that frame: milliseconds since navigation
// start. An error shown anywhere fails the run.
function watchReady() {
  const fail = () => {
    if (location.pathname.endsWith('/sign-in')) return 'sent to sign-in: the session cookie was refused';
    const shown = document.querySelector('[role="alert"], .field-error');
    return shown ? shown.textContent.trim() || 'an error is shown' : null;
  };
  const cardDone = (card) =>
    card.querySelector('tbody tr') !== null ||
    [...card.querySelectorAll('p')].some((p) => p.textContent.trim() === 'No clicks in this range.');
  const ready = () => {
    if (document.querySelector('[aria-busy="true"]')) return false;
    const h1 = document.querySelector('h1');
    if (!h1 || !h1.textContent.startsWith('Analytics:') || h1.textContent.includes('…')) return false;
    if (!document.querySelector('[role="status"]')?.textContent.startsWith('Updated')) return false;
    const canvas = document.querySelector('[role="img"][aria-label^="Chart of"] canvas');
    if (!canvas || canvas.width === 0) return false;
    const tiles = [...document.querySelectorAll('[role="group"][aria-label="Totals"] [role="group"]')];
    if (tiles.length === 0 || tiles.some((t) => t.textContent.includes('…'))) return false;
    const breakdowns = [...document.querySelectorAll('section[aria-labelledby="breakdowns-title"] section')];
    if (breakdowns.length !== 9 || !breakdowns.every(cardDone)) return false;
    const recent = document.querySelector('section[aria-labelledby="recent-title"] tbody');
    const first = recent?.querySelector('tr');
    return !!first && first.textContent.trim() !== 'Loading…';
  };
  const frame = () => {
    const error = fail();
    if (error) window.__smo1Bench = { error };
    else if (ready()) window.__smo1Bench = { ms: performance.now() };
    else requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
}

const browser = await launch();
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, timezoneId: 'UTC' });
  const { hostname } = new URL(origin);
  await context.addCookies([{ name: 'smo1_session', value: session, domain: hostname, path: '/', httpOnly: true, sameSite: 'Lax' }]);
  await context.addInitScript(watchReady);
  const page = await context.newPage();
  const results = [];
  for (const { name, path } of pages) {
    const ms = [];
    for (let run = 0; run <= runs; run++) {
      await page.goto(origin + path, { waitUntil: 'commit' });
      await page.waitForFunction(() => window.__smo1Bench, null, { timeout: 120_000, polling: 50 });
      const result = await page.evaluate(() => window.__smo1Bench);
      assert.ok(!result.error, `${name} (${path}) showed an error: ${result.error}`);
      if (run > 0) ms.push(result.ms);
      process.stderr.write(`${name}: ${run === 0 ? 'warm-up' : `run ${run}`} ${result.ms.toFixed(0)} ms\n`);
    }
    results.push({ name, path, ms });
  }
  writeFileSync(out, JSON.stringify({ chromium: browser.version(), runs, pages: results }, null, 2));
} finally {
  await browser.close();
}
