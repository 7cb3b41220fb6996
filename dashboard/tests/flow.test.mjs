// The dashboard end to end, in Debian's Chromium, against the full stack the Rust harness starts:
// sign in through the emailed link → create a link → follow it through the worker → the click
// shows in the totals and the recent clicks → download both QR codes → create and revoke an API
// key → a cross-site POST is refused → sign out → the old cookie is refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { resolve } from 'node:path';
import { statSync, writeFileSync } from 'node:fs';
import { ARTIFACTS, DESKTOP, checkPage, launch, poll, requireEnv, signInLinkFromMail, trailingNumber } from './support.mjs';

const BROWSER_UA =
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';

test('a link owner signs in, manages a link, reads its click, its QR codes and API keys, and signs out', { timeout: 300_000 }, async (t) => {
  const env = requireEnv('SMO1_ORIGIN_URL', 'SMO1_EDGE_URL', 'SMO1_MAIL_URL', 'SMO1_TEST_EMAIL');
  const origin = env.SMO1_ORIGIN_URL;
  const email = process.env.SMO1_TEST_EMAIL.trim();
  const browser = await launch();
  t.after(() => browser.close());
  const context = await browser.newContext({ viewport: DESKTOP, acceptDownloads: true });
  const page = await context.newPage();
  const heading = (name) => page.getByRole('heading', { level: 1, name });
  const state = {};

  await t.test('an anonymous visitor gets the sign-in page', async () => {
    await page.goto(`${origin}/dashboard/`);
    await heading('Sign in to SMO1').waitFor();
    assert.match(new URL(page.url()).pathname, /^\/dashboard\/sign-in$/);
    await checkPage(page, '01-sign-in');
  });

  await t.test('sign-in by the emailed link, confirmed with a button', async () => {
    const since = Date.now();
    await page.getByLabel('Email').fill(email);
    await page.getByRole('button', { name: 'Email me a sign-in link' }).click();
    await page.getByRole('status').getByText('Check your inbox').waitFor();
    await checkPage(page, '02-sign-in-sent');

    const link = new URL(await signInLinkFromMail(env.SMO1_MAIL_URL, email, since));
    assert.equal(link.pathname, '/dashboard/sign-in/confirm', `the mail links to ${link}`);
    assert.ok(link.searchParams.get('token'), 'the mailed link carries a token');
    // Opened on the origin under test (the mailed host may be the public name of the same origin).
    await page.goto(`${origin}${link.pathname}${link.search}`);
    await heading('Confirm sign-in').waitFor();
    await checkPage(page, '03-confirm');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await heading('Links').waitFor();
    const cookie = (await context.cookies(origin)).find((c) => c.name === 'smo1_session');
    assert.ok(cookie, 'the origin set the smo1_session cookie');
    assert.equal(cookie.httpOnly, true, 'smo1_session is HttpOnly');
    state.cookie = cookie.value;
    await checkPage(page, '04-links');
  });

  await t.test('create a link; the API error for a bad destination is shown at the field', async () => {
    await page.getByRole('link', { name: 'New link' }).click();
    await heading('New link').waitFor();
    const destination = page.getByLabel('Destination URL');
    await destination.fill('ftp://example.com/file');
    await page.getByRole('button', { name: 'Create link' }).click();
    await poll('the destination field marked invalid', async () => (await destination.getAttribute('aria-invalid')) === 'true', { timeoutMs: 10_000, everyMs: 200 });
    const errorId = await destination.getAttribute('aria-describedby');
    assert.ok(errorId, 'the destination input points at its error');
    assert.match(await page.locator(`[id="${errorId.split(' ')[0]}"]`).innerText(), /destination/i);
    await checkPage(page, '05-new-link-error');

    state.slug = `bt-${Date.now().toString(36)}`;
    await destination.fill('https://example.com/smo1-browser-test');
    await page.getByLabel('Custom slug').fill(state.slug);
    await page.getByLabel('Title').fill('Browser test link');
    await page.getByLabel('UTM source').fill('browser-test');
    await page.getByRole('button', { name: 'Create link' }).click();
    await heading('Browser test link').waitFor();
    state.linkId = new URL(page.url()).pathname.split('/').pop();
    assert.match(state.linkId, /^[0-9a-f-]{36}$/);
    await page.getByText(`/${state.slug}`, { exact: false }).first().waitFor();
    await checkPage(page, '06-link');
  });

  await t.test('the short link redirects through the worker', async () => {
    const res = await fetch(`${env.SMO1_EDGE_URL}/${state.slug}`, {
      redirect: 'manual',
      headers: { 'user-agent': BROWSER_UA, 'accept-language': 'en', accept: 'text/html' },
    });
    assert.ok([301, 302, 307, 308].includes(res.status), `the worker answered ${res.status}`);
    assert.equal(res.headers.get('location'), 'https://example.com/smo1-browser-test?utm_source=browser-test');
  });

  await t.test('the click shows in the totals and the recent clicks', async () => {
    await page.getByRole('link', { name: 'View analytics' }).click();
    await heading('Analytics: Browser test link').waitFor();
    await page.getByRole('radio', { name: '24 h' }).check();
    // Whatever the bot detection decides, the click counts here.
    await page.getByRole('checkbox', { name: 'Count bots in clicks and visitors' }).check();
    const totals = page.getByRole('group', { name: 'Totals' });
    const clicksTile = totals.getByRole('group', { name: 'Clicks (with bots)' });
    const recent = page.getByRole('table', { name: /Recent clicks/ });
    await poll('the click in the totals and in the recent clicks', async () => {
      await page.getByRole('button', { name: 'Refresh' }).click();
      await page.getByRole('status').getByText(/^Updated/).waitFor({ timeout: 15_000 });
      const total = trailingNumber(await clicksTile.innerText());
      const rows = await recent.getByRole('row').count(); // header + clicks
      const empty = await recent.getByText('No clicks in this range.').count();
      return total >= 1 && rows >= 2 && empty === 0;
    }, { timeoutMs: 120_000, everyMs: 2000 });
    // The worker was visited without `?qr=1`: the QR-vs-link card counts it as a link click.
    const qrCard = page.getByRole('table', { name: 'QR vs link by clicks' });
    assert.equal(await qrCard.getByRole('cell', { name: 'Link', exact: true }).count(), 1);
    assert.equal(await qrCard.getByRole('cell', { name: 'QR code', exact: true }).count(), 0);
    await checkPage(page, '07-link-analytics');

    await page.getByRole('link', { name: 'Analytics', exact: true }).click();
    await heading('Analytics: all links').waitFor();
    await page.getByRole('status').getByText(/^Updated/).waitFor({ timeout: 30_000 });
    await checkPage(page, '08-account-analytics');
  });

  await t.test('download the QR code as PNG and SVG', async () => {
    await page.goto(`${origin}/dashboard/links/${state.linkId}`);
    await heading('Browser test link').waitFor();
    const preview = page.getByRole('img', { name: /^QR code for / });
    await poll('the QR preview to load', () => preview.evaluate((img) => img.complete && img.naturalWidth > 0), { timeoutMs: 15_000, everyMs: 300 });
    await page.getByLabel('Size in pixels').fill('768');
    await page.getByLabel('Size in pixels').press('Tab'); // applied on change
    for (const format of ['png', 'svg']) {
      await page.getByLabel('Format').selectOption(format);
      const href = await page.getByRole('link', { name: `Download ${format.toUpperCase()}` }).getAttribute('href');
      assert.equal(href, `/v1/links/${state.linkId}/qr?format=${format}&size=768&fg=000000&bg=ffffff`);
      const [download] = await Promise.all([
        page.waitForEvent('download'),
        page.getByRole('link', { name: `Download ${format.toUpperCase()}` }).click(),
      ]);
      const path = resolve(ARTIFACTS, `qr.${format}`);
      await download.saveAs(path);
      assert.ok(statSync(path).size > 100, `the ${format} QR code has content`);
    }
    // For the Rust side, which decodes qr.png / qr.svg: the URL they must hold.
    const encodes = (await page.getByText(/^Encodes /).innerText()).match(/Encodes (\S+\?qr=1)/)?.[1];
    assert.ok(encodes?.endsWith(`/${state.slug}?qr=1`), `the QR panel says it encodes ${encodes}`);
    writeFileSync(resolve(ARTIFACTS, 'qr-expected-url.txt'), `${encodes}\n`);
    await checkPage(page, '09-link-qr');
  });

  await t.test('an API key is shown once, works, and is refused once revoked', async () => {
    await page.getByRole('link', { name: 'API keys' }).click();
    await heading('API keys').waitFor();
    const name = `browser test key ${state.slug}`;
    await page.getByLabel('Name').fill(name);
    await page.getByRole('checkbox', { name: /keys:read/ }).check();
    await page.getByRole('button', { name: 'Create API key' }).click();
    const secretBox = page.getByLabel('New API key secret');
    await secretBox.waitFor();
    const secret = await secretBox.inputValue();
    assert.match(secret, /^smo1_/);
    await checkPage(page, '10-api-key-created');
    const me = (key) => fetch(`${origin}/v1/me`, { headers: { authorization: `Bearer ${key}` } });
    assert.equal((await me(secret)).status, 200, 'the new key works');

    await page.getByRole('button', { name: 'I have saved it' }).click();
    await page.reload();
    await heading('API keys').waitFor();
    assert.equal(await page.getByLabel('New API key secret').count(), 0, 'the secret is not shown again');
    assert.equal(await page.getByText(secret).count(), 0, 'the secret is nowhere on the page');

    await page.getByRole('button', { name: `Revoke ${name}` }).click();
    const dialog = page.getByRole('dialog', { name: 'Revoke this API key?' });
    await dialog.waitFor();
    await checkPage(page, '11-api-key-revoke-dialog');
    await dialog.getByRole('button', { name: 'Revoke key' }).click();
    await dialog.waitFor({ state: 'hidden' });
    await page.getByRole('row', { name: new RegExp(name) }).getByText('revoked').waitFor();
    assert.equal((await me(secret)).status, 401, 'the revoked key is refused');
  });

  await t.test('a cross-site POST with the session is refused with 403', async () => {
    const attacker = createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(`<!doctype html><title>elsewhere</title><script>
        fetch(${JSON.stringify(`${origin}/v1/links`)}, { method: 'POST', mode: 'no-cors', credentials: 'include',
          headers: { 'content-type': 'text/plain' },
          body: JSON.stringify({ destination: 'https://example.com/csrf', title: 'csrf-probe' }) });
      </script>`);
    });
    await new Promise((r) => attacker.listen(0, '127.0.0.2', r));
    t.after(() => attacker.close());
    const { port } = attacker.address();
    const other = await context.newPage();
    try {
      const [response] = await Promise.all([
        other.waitForResponse((r) => r.url() === `${origin}/v1/links` && r.request().method() === 'POST'),
        other.goto(`http://127.0.0.2:${port}/`),
      ]);
      assert.equal(response.status(), 403, 'a POST from another origin is refused by the Origin check');
    } finally {
      await other.close();
    }
    const found = await page.evaluate(async () => (await (await fetch('/v1/links?q=csrf-probe', { credentials: 'same-origin' })).json()).data.length);
    assert.equal(found, 0, 'no link was created by the cross-site POST');
  });

  await t.test('account page, then sign out; the old cookie is refused', async () => {
    await page.getByRole('link', { name: 'Account' }).click();
    await heading('Account').waitFor();
    await page.getByRole('heading', { name: /Level and XP/ }).waitFor();
    await page.getByText(email).waitFor();
    await checkPage(page, '12-account');
    await page.getByRole('banner').getByRole('button', { name: 'Sign out' }).click();
    await heading('Sign in to SMO1').waitFor();

    const res = await fetch(`${origin}/v1/auth/session`, { headers: { cookie: `smo1_session=${state.cookie}` } });
    assert.equal(res.status, 401, 'a session cookie is worthless after sign-out');
    await page.goto(`${origin}/dashboard/links`);
    await heading('Sign in to SMO1').waitFor();
  });
});
