// Managing a link in the dashboard: edit with API errors at their fields, a targeting rule (seen
// by the worker), protection, disable and
// enable (seen by the worker), search and filters, copy, CSV, delete through a dialog, and
// "sign out everywhere".
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ARTIFACTS, DESKTOP, checkPage, launch, poll, requireEnv, signIn } from './support.mjs';

const BROWSER_UA =
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';
const IPHONE_UA =
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1';

test('a link owner edits, protects, disables, finds, exports and deletes a link', { timeout: 300_000 }, async (t) => {
  const env = requireEnv('SMO1_ORIGIN_URL', 'SMO1_EDGE_URL', 'SMO1_MAIL_URL', 'SMO1_TEST_EMAIL');
  const origin = env.SMO1_ORIGIN_URL;
  const browser = await launch();
  t.after(() => browser.close());
  const context = await browser.newContext({ viewport: DESKTOP, acceptDownloads: true });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin });
  const page = await context.newPage();
  const heading = (name) => page.getByRole('heading', { level: 1, name });
  const visit = (slug) =>
    fetch(`${env.SMO1_EDGE_URL}/${slug}`, { redirect: 'manual', headers: { 'user-agent': BROWSER_UA, accept: 'text/html' } });
  const slug = `mt-${Date.now().toString(36)}`;
  const title = `Managed ${slug}`;
  let cookie;

  await t.test('sign in and create a link with an expiry', async () => {
    cookie = await signIn(page, { origin, mailUrl: env.SMO1_MAIL_URL, email: process.env.SMO1_TEST_EMAIL.trim() });
    await page.getByRole('link', { name: 'New link' }).click();
    await page.getByLabel('Destination URL').fill('https://example.com/managed');
    await page.getByLabel('Custom slug').fill(slug);
    await page.getByLabel('Title').fill(title);
    await page.getByLabel('Redirect type').selectOption('301');
    await page.getByLabel('Expires').fill(`${new Date().getFullYear() + 2}-01-01T12:00`);
    await page.getByRole('button', { name: 'Create link' }).click();
    await heading(title).waitFor();
    const res = await visit(slug);
    assert.equal(res.status, 301);
  });

  await t.test('a reserved slug is refused at the slug field; a title change is saved', async () => {
    const slugInput = page.getByLabel('Custom slug');
    await slugInput.fill('admin');
    await page.getByRole('button', { name: 'Save changes' }).click();
    await poll('the slug field marked invalid', async () => (await slugInput.getAttribute('aria-invalid')) === 'true', { timeoutMs: 10_000, everyMs: 200 });
    await checkPage(page, 'links-01-slug-error');
    await slugInput.fill(slug);
    await page.getByLabel('Title').fill(`${title} edited`);
    await page.getByRole('button', { name: 'Save changes' }).click();
    await heading(`${title} edited`).waitFor();
  });

  await t.test('a targeting rule sends iPhones elsewhere; a bad country is explained', async () => {
    await page.getByRole('button', { name: 'Add rule' }).click();
    await page.getByLabel('Rule 1 destination').fill('https://apps.apple.com/app/id1');
    await page.getByRole('group', { name: 'Rule 1 operating systems' }).getByLabel('iOS').check();
    await page.getByLabel('Rule 1 countries').fill('XY');
    await page.getByRole('button', { name: 'Save changes' }).click();
    await page.getByRole('alert').getByText('rules[0].countries: "XY" is not an ISO 3166-1 alpha-2 country code').waitFor();
    await checkPage(page, 'links-01b-rule-error');
    await page.getByLabel('Rule 1 countries').fill('');
    await page.getByRole('button', { name: 'Save changes' }).click();
    await page.getByRole('status').getByText('Saved.').waitFor();
    // The worker's isolate may hold the link's record for EDGE_LINK_CACHE_MS.
    const iphone = () =>
      fetch(`${env.SMO1_EDGE_URL}/${slug}`, { redirect: 'manual', headers: { 'user-agent': IPHONE_UA, accept: 'text/html' } });
    await poll('the rule at the edge', async () => (await iphone()).headers.get('location') === 'https://apps.apple.com/app/id1', {
      timeoutMs: 10_000,
      everyMs: 200,
    });
    const desktop = await visit(slug);
    assert.equal(desktop.headers.get('location'), 'https://example.com/managed');
  });

  await t.test('copy the short URL', async () => {
    await page.getByRole('button', { name: 'Copy short URL' }).click();
    const copied = await page.evaluate(() => navigator.clipboard.readText());
    assert.match(copied, new RegExp(`^https?://[^/]+/${slug}$`));
  });

  await t.test('protect with a PIN (a bad PIN is explained), then remove it', async () => {
    await page.getByRole('radio', { name: /PIN/ }).check();
    const secret = page.getByLabel('New PIN');
    await secret.fill('12');
    await page.getByRole('button', { name: 'Protect link' }).click();
    await poll('the PIN field marked invalid', async () => (await secret.getAttribute('aria-invalid')) === 'true', { timeoutMs: 10_000, everyMs: 200 });
    await secret.fill('4821');
    await page.getByRole('button', { name: 'Protect link' }).click();
    await page.getByRole('status').getByText('PIN set').waitFor();
    assert.equal((await visit(slug)).status, 403, 'the worker asks for the PIN');
    await checkPage(page, 'links-02-protected');

    await page.goto(`${origin}/dashboard/links?filter=protected&q=${encodeURIComponent(slug)}`);
    await page.getByRole('link', { name: `${title} edited` }).click();
    await page.getByRole('button', { name: 'Remove protection' }).click();
    await page.getByRole('status').getByText('Protection removed').waitFor();
  });

  await t.test('disable and enable, as the worker sees it', async () => {
    await page.getByRole('button', { name: 'Disable link' }).click();
    await page.getByRole('button', { name: 'Enable link' }).waitFor();
    assert.equal((await visit(slug)).status, 410);
    await page.goto(`${origin}/dashboard/links?filter=disabled`);
    await page.getByLabel('Search').fill(slug);
    await page.getByRole('link', { name: `${title} edited` }).waitFor();
    await checkPage(page, 'links-03-filtered');
    await page.getByRole('link', { name: `${title} edited` }).click();
    await page.getByRole('button', { name: 'Enable link' }).click();
    await page.getByRole('button', { name: 'Disable link' }).waitFor();
    assert.equal((await visit(slug)).status, 301);
  });

  await t.test('the chart downloads as CSV', async () => {
    await page.getByRole('link', { name: 'View analytics' }).click();
    await page.getByRole('status').getByText(/^Updated/).waitFor({ timeout: 30_000 });
    await page.getByRole('radio', { name: '30 d' }).check();
    await page.getByRole('status').getByText(/^Updated/).waitFor({ timeout: 30_000 });
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', { name: 'Download clicks over time as CSV' }).click(),
    ]);
    const path = resolve(ARTIFACTS, `timeseries-${slug}.csv`);
    await download.saveAs(path);
    const lines = readFileSync(path, 'utf8').trim().split(/\r\n/);
    assert.equal(lines[0], 'start,human_clicks,bot_clicks,clicks,unique_visitors');
    assert.ok(lines.length >= 30, `a row per day of the 30-day range (${lines.length - 1})`);
    await page.getByRole('radio', { name: 'Custom' }).check();
    await page.getByLabel('From', { exact: true }).waitFor();
    await checkPage(page, 'links-04-custom-range');
  });

  await t.test('delete through a dialog that can be cancelled', async () => {
    await page.goto(`${origin}/dashboard/links?q=${encodeURIComponent(slug)}`);
    await page.getByRole('link', { name: `${title} edited` }).click();
    const open = page.getByRole('button', { name: 'Delete link' });
    await open.click();
    const dialog = page.getByRole('dialog', { name: 'Delete this link?' });
    await dialog.waitFor();
    assert.equal(await page.evaluate(() => document.activeElement?.textContent?.trim()), 'Cancel', 'focus starts on Cancel');
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden' });
    assert.equal(await page.evaluate(() => document.activeElement?.textContent?.trim()), 'Delete link', 'focus returns to the opener');
    await open.click();
    await dialog.getByRole('button', { name: 'Delete link' }).click();
    await heading('Links').waitFor();
    assert.equal((await visit(slug)).status, 404);
  });

  await t.test('sign out everywhere', async () => {
    await page.getByRole('link', { name: 'Account' }).click();
    await page.getByRole('button', { name: 'Sign out everywhere' }).click();
    const dialog = page.getByRole('dialog', { name: 'Sign out everywhere?' });
    await dialog.getByRole('button', { name: 'Sign out everywhere' }).click();
    await heading('Sign in to SMO1').waitFor();
    const res = await fetch(`${origin}/v1/auth/session`, { headers: { cookie: `smo1_session=${cookie}` } });
    assert.equal(res.status, 401);
  });
});
