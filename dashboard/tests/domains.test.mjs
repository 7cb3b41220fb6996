// Custom domains in the dashboard: add one (a bad hostname is explained at its field), read the
// TXT record to create, verify it (the harness's DNS server carries the records of hostnames
// starting with `live-`, as their owner would create them), see why an unpublished one fails,
// and remove one through a dialog.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DESKTOP, checkPage, launch, poll, requireEnv, signIn } from './support.mjs';

test('a link owner adds, verifies and removes custom domains', { timeout: 300_000 }, async (t) => {
  const env = requireEnv('SMO1_ORIGIN_URL', 'SMO1_MAIL_URL', 'SMO1_TEST_EMAIL');
  const origin = env.SMO1_ORIGIN_URL;
  const browser = await launch();
  t.after(() => browser.close());
  const context = await browser.newContext({ viewport: DESKTOP });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin });
  const page = await context.newPage();
  const stamp = Date.now().toString(36);
  const live = `live-${stamp}.brand.test`;
  const silent = `silent-${stamp}.brand.test`;
  const card = (hostname) => page.getByRole('article', { name: hostname });

  await t.test('sign in and open the domains page', async () => {
    await signIn(page, { origin, mailUrl: env.SMO1_MAIL_URL, email: process.env.SMO1_TEST_EMAIL.trim() });
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Domains' }).click();
    await page.getByRole('heading', { level: 1, name: 'Domains' }).waitFor();
  });

  await t.test('a bad hostname is refused at its field', async () => {
    const field = page.getByLabel('Hostname');
    await field.fill('localhost');
    await page.getByRole('button', { name: 'Add domain' }).click();
    await page.getByRole('alert').getByText('hostname must have at least two labels').waitFor();
    assert.equal(await field.getAttribute('aria-invalid'), 'true');
  });

  await t.test('an added domain shows the TXT record to create', async () => {
    for (const hostname of [live, silent]) {
      await page.getByLabel('Hostname').fill(hostname.toUpperCase());
      await page.getByRole('button', { name: 'Add domain' }).click();
      await card(hostname).waitFor();
    }
    const record = card(live).getByRole('definition');
    await record.getByText(`_smo1-challenge.${live}`).waitFor();
    assert.match(await record.nth(2).innerText(), /smo1-verify-[A-Za-z0-9]{32}/);
    await card(live).getByRole('button', { name: `Copy record name of ${live}` }).click();
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), `_smo1-challenge.${live}`);
    assert.equal(await card(live).getByText('pending', { exact: true }).count(), 1);
    await checkPage(page, 'domains-01-added');
  });

  await t.test('verify: the published one is verified, the other says why not', async () => {
    await card(silent).getByRole('button', { name: `Verify ${silent} now` }).click();
    await card(silent).getByRole('status').getByText(`_smo1-challenge.${silent} does not exist (NXDOMAIN)`).waitFor();
    await poll(`${live} verified`, async () => {
      await card(live).getByRole('button', { name: `Verify ${live} now` }).click();
      await card(live).getByRole('button', { name: `Verify ${live} now` }).isEnabled();
      return (await card(live).getByText('verified', { exact: true }).count()) === 1;
    }, { timeoutMs: 20_000, everyMs: 500 });
    await checkPage(page, 'domains-02-verified');
  });

  await t.test('remove a domain through the dialog', async () => {
    await card(silent).getByRole('button', { name: `Remove ${silent}` }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Remove domain' }).click();
    await poll(`${silent} gone`, async () => (await card(silent).count()) === 0, { timeoutMs: 10_000, everyMs: 200 });
    assert.equal(await card(live).count(), 1);
  });
});
