// Shared console actions for the step files: sign in, create a token through the form, open
// a token's page, read the table, take screenshots. Every locator uses the accessible names
// SPEC §13 gives, so a renamed control fails here.

import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';

export function assert(cond, message) {
  if (!cond) throw new Error(message);
}

/** Polls `fn` until it returns a truthy value, or fails with `what` after `ms`. */
export async function eventually(fn, what, ms = 30_000, every = 250) {
  const deadline = Date.now() + ms;
  let last;
  while (Date.now() < deadline) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, every));
  }
  throw new Error(`${what}: not seen within ${ms} ms (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
}

export async function signIn({ page, console: url, admin_key: key }) {
  await page.goto(`${url}/`);
  await page.getByLabel('Admin key').fill(key);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('table[aria-label="Tokens"][aria-busy="false"]').waitFor();
}

/** Opens the token table (fresh, even when already shown) and waits for its first load. */
export async function goTokens(page) {
  await page.getByRole('navigation').getByRole('link', { name: 'Tokens' }).click();
  await page.locator('table[aria-label="Tokens"][aria-busy="false"]').waitFor();
}

/** Fills the create form (already open) for a web client token. */
export async function fillClientForm(page, { name, origins, environment }) {
  await page.getByRole('radio', { name: 'Client', exact: true }).check();
  await page.getByRole('radio', { name: 'Web Browser' }).check();
  await page.getByLabel('Allowed origins').fill(origins.join('\n'));
  await page.getByLabel('Name', { exact: true }).fill(name);
  await page.getByLabel('Environment').fill(environment);
}

/** Creates a web client token through the form; returns {id, secret}. */
export async function createClientToken(env, fields) {
  const { page } = env;
  await goTokens(page);
  await page.getByRole('button', { name: 'New token' }).click();
  await fillClientForm(page, fields);
  await page.getByRole('button', { name: 'Create token' }).click();
  const secret = (await page.getByTestId('new-secret').textContent()).trim();
  const href = await page.getByRole('link', { name: 'Open the token' }).getAttribute('href');
  return { id: decodeURIComponent(href.replace('#/token/', '')), secret };
}

/** The table row of token `id`, as {cell label: text}. */
export async function tableRow(page, id) {
  const row = page.getByRole('table', { name: 'Tokens' }).locator(`tr[data-token-id="${id}"]`);
  await row.waitFor();
  return row.evaluate((tr) => Object.fromEntries([...tr.children].map((c) => [c.dataset.label, c.textContent.trim()])));
}

export async function openToken(page, id) {
  await goTokens(page);
  const row = page.getByRole('table', { name: 'Tokens' }).locator(`tr[data-token-id="${id}"]`);
  await row.getByRole('link').click();
  await page.getByTestId('token-status').waitFor();
  await page.getByRole('table', { name: 'Audit trail of this token' }).waitFor();
}

/** The token page's own audit trail, as action words, oldest first. */
export async function tokenAuditActions(page) {
  const table = page.getByRole('table', { name: 'Audit trail of this token' });
  await table.waitFor();
  const actions = await table.locator('tbody tr td:nth-child(2)').allTextContents();
  return actions.map((a) => a.trim()).reverse();
}

/** The whole trail screen's actions for token `id`, oldest first. */
export async function trailActions(page, id) {
  await page.getByRole('navigation').getByRole('link', { name: 'Audit trail' }).click();
  const table = page.getByRole('table', { name: 'Audit trail' });
  await table.waitFor();
  const rows = await table.locator('tbody tr').evaluateAll((trs, tid) => trs
    .filter((tr) => tr.children[2].textContent.trim() === tid)
    .map((tr) => tr.children[1].textContent.trim()), id);
  return rows.reverse();
}

/** Screenshot `name` at both sizes; fails when the narrow one scrolls sideways. */
export async function screenshots(env, name, prepare) {
  const { page, screenshots: dir } = env;
  await mkdir(dir, { recursive: true });
  const files = [];
  for (const [w, h] of [[1280, 800], [390, 844]]) {
    await page.setViewportSize({ width: w, height: h });
    if (prepare) await prepare();
    await page.waitForTimeout(150);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert(overflow <= 0, `${name} at ${w}x${h} scrolls sideways by ${overflow} px`);
    const file = join(dir, `${name}-${w}x${h}.png`);
    await page.screenshot({ path: file, fullPage: true });
    files.push(file);
  }
  await page.setViewportSize({ width: 1280, height: 800 });
  return files;
}
