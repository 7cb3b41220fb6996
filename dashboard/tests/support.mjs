// Shared helpers of the browser tests: the environment, Chromium, screenshots, axe and mail.
import { mkdirSync, existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';
import { AxeBuilder } from '@axe-core/playwright';

const here = dirname(fileURLToPath(import.meta.url));

/**
 * The variables the Rust harness passes. A missing one fails the test with this message: the
 * tests never pass by skipping.
 */
export function requireEnv(...names) {
  const missing = names.filter((n) => !process.env[n]);
  assert.equal(
    missing.length,
    0,
    `missing environment: ${missing.join(', ')}. The browser tests run against the full stack; ` +
      'start them through the Rust harness (it sets SMO1_ORIGIN_URL, SMO1_EDGE_URL, SMO1_MAIL_URL, ' +
      'SMO1_TEST_EMAIL), or set them by hand.',
  );
  return Object.fromEntries(names.map((n) => [n, process.env[n].replace(/\/+$/, '')]));
}

export const ARTIFACTS = resolve(process.env.SMO1_ARTIFACTS || resolve(here, '../test-artifacts'));
mkdirSync(ARTIFACTS, { recursive: true });

export const CHROMIUM = process.env.SMO1_CHROMIUM || '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export async function launch() {
  assert.ok(existsSync(CHROMIUM), `no Chromium at ${CHROMIUM}: apt-get install -y chromium (never a downloaded browser)`);
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}

export const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 390, height: 844 };

/**
 * Screenshots of the page as it is, at desktop and phone width (and desktop in dark colours), and
 * an axe run at each: no serious or critical violation allowed. Also no sideways scroll at 375 px.
 */
export async function checkPage(page, name) {
  const before = page.viewportSize() ?? DESKTOP;
  for (const [label, size] of [['desktop', DESKTOP], ['phone', PHONE]]) {
    await page.setViewportSize(size);
    await page.waitForTimeout(150); // let the chart follow the width
    await page.screenshot({ path: resolve(ARTIFACTS, `${name}-${label}.png`), fullPage: true });
    const result = await new AxeBuilder({ page }).analyze();
    const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
    assert.deepEqual(
      bad.map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).join('; ')}`),
      [],
      `axe found serious or critical violations on ${name} at ${label} width`,
    );
  }
  // Dark colours (prefers-color-scheme) must pass too.
  await page.setViewportSize(DESKTOP);
  await page.emulateMedia({ colorScheme: 'dark' });
  try {
    await page.screenshot({ path: resolve(ARTIFACTS, `${name}-desktop-dark.png`), fullPage: true });
    const dark = await new AxeBuilder({ page }).analyze();
    const bad = dark.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
    assert.deepEqual(bad.map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).join('; ')}`), [],
      `axe found serious or critical violations on ${name} in dark colours`);
  } finally {
    await page.emulateMedia({ colorScheme: 'light' });
  }
  // Usable at 375 px: nothing makes the page scroll sideways (wide tables scroll inside their box).
  await page.setViewportSize({ width: 375, height: 812 });
  await page.waitForTimeout(150);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.ok(overflow <= 0, `${name} scrolls sideways by ${overflow}px at 375 px width`);
  await page.setViewportSize(before);
}

/** Polls `fn` until it returns a truthy value or `timeoutMs` passes (then fails with `what`). */
export async function poll(what, fn, { timeoutMs = 60_000, everyMs = 1000 } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    try {
      const value = await fn();
      if (value) return value;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${last.message}` : ''}`);
}

/** When maildev received `m`: maildev 3 names it `time`; `date` is the sender's Date header. */
const received = (m) => Date.parse(m.time ?? m.date ?? '');

/**
 * The sign-in link of the newest mail to `email` received after `since`, from maildev's REST API
 * (`GET /email` under `SMO1_MAIL_URL`, maildev 3's `/api`: messages with `to`, `time`, `text`,
 * `html`).
 */
export async function signInLinkFromMail(mailUrl, email, since) {
  return poll(`a sign-in mail to ${email} in ${mailUrl}/email`, async () => {
    const res = await fetch(`${mailUrl}/email`);
    assert.equal(res.status, 200, `maildev answered ${res.status} on GET /email`);
    const messages = await res.json();
    const mine = messages
      .filter((m) => (m.to ?? []).some((t) => (t.address ?? t).toLowerCase() === email.toLowerCase()))
      .filter((m) => !received(m) || received(m) >= since - 5_000)
      .sort((a, b) => (received(b) || 0) - (received(a) || 0));
    for (const m of mine) {
      const body = `${m.text ?? ''}\n${(m.html ?? '').replace(/&amp;/g, '&')}`;
      const found = body.match(/https?:\/\/[^\s"'<>]+\/dashboard\/sign-in\/confirm\?token=[^\s"'<>&]+/);
      if (found) return found[0].replace(/[.,;:!?)\]]+$/, ''); // not a sentence's full stop
    }
    return null;
  });
}

/** The number at the end of a tile's text ("Human clicks1,234" → 1234). */
export function trailingNumber(text) {
  const m = (text ?? '').replace(/[,\u202f\u00a0.]/g, '').match(/(\d+)\s*$/);
  return m ? Number(m[1]) : NaN;
}

/** Signs `page` in as `email` through the emailed link; returns the session cookie's value. */
export async function signIn(page, { origin, mailUrl, email }) {
  const since = Date.now();
  await page.goto(`${origin}/dashboard/sign-in`);
  await page.getByLabel('Email').fill(email);
  await page.getByRole('button', { name: 'Email me a sign-in link' }).click();
  await page.getByRole('status').getByText('Check your inbox').waitFor();
  const link = new URL(await signInLinkFromMail(mailUrl, email, since));
  await page.goto(`${origin}${link.pathname}${link.search}`);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { level: 1, name: 'Links' }).waitFor();
  const cookie = (await page.context().cookies(origin)).find((c) => c.name === 'smo1_session');
  assert.ok(cookie, 'the origin set the smo1_session cookie');
  return cookie.value;
}
