// The console steps that need only this branch's admin API: sign-in, create with the one-time
// secret, origin validation as you type, rotate, revoke with its dialog, the audit trail,
// CSRF from a real browser, sign-out, and the screenshots.

import {
  assert, eventually, signIn, goTokens, fillClientForm, tableRow, openToken,
  tokenAuditActions, trailActions, screenshots,
} from './ui.mjs';
import { routeSamples, expectedTotals } from './sample.mjs';

const SECRET = /^iec_[0-9A-Za-z]{33}$/;

async function tokenCount(page) {
  return page.evaluate(async () => {
    const r = await fetch('/api/v1/tokens');
    return (await r.json()).tokens.length;
  });
}

export const coreSteps = [
  ['sign_in', async (env) => {
    const { page } = env;
    await page.goto(`${env.console}/`);
    await page.getByLabel('Admin key').fill('not-the-key-0123456789');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('Wrong admin key.').waitFor();
    const files = await screenshots(env, 'sign-in');
    await signIn(env);
    const cookies = await env.context.cookies();
    const c = cookies.find((x) => x.name === 'ingest_edge_session');
    assert(c && c.httpOnly && c.sameSite === 'Strict', `session cookie: ${JSON.stringify(cookies)}`);
    const visible = await page.evaluate(() => document.cookie);
    assert(!visible.includes('ingest_edge_session'), 'the page can read the session cookie');
    return { expires_in: Math.round(c.expires - Date.now() / 1000), files };
  }],

  ['create', async (env) => {
    const { page, pagePort } = env;
    await goTokens(page);
    await page.getByRole('button', { name: 'New token' }).click();
    const origins = [`http://localhost:${pagePort}`, `http://*.localtest:${pagePort}`];
    await fillClientForm(page, { name: 'Checkout RUM', origins, environment: 'production' });
    const envs = await page.getByLabel('Environment').evaluate((i) => {
      const list = document.getElementById(i.getAttribute('list'));
      return list ? [...list.options].map((o) => o.value) : [];
    });
    assert(envs.join() === 'production,staging,development', `datalist: ${envs}`);
    // Valid origins: no message appears while typing.
    await page.waitForTimeout(600);
    const msgs = await page.locator('.field-errors li').count();
    assert(msgs === 0, `valid origins show ${msgs} messages`);
    const shots = await screenshots(env, 'create-form');
    await page.getByRole('button', { name: 'Create token' }).click();
    const box = page.getByTestId('new-secret');
    const secret = (await box.textContent()).trim();
    assert(SECRET.test(secret), `secret ${secret}`);
    assert(await page.getByTestId('new-secret').count() === 1, 'one secret box');
    await env.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: env.console });
    await page.getByRole('button', { name: 'Copy' }).click();
    await page.getByText('Copied to the clipboard.').waitFor();
    const copied = await page.evaluate(() => navigator.clipboard.readText());
    assert(copied === secret, `clipboard: ${copied}`);
    await page.getByText('Allow-list the iec_ prefix in your secret scanner', { exact: false }).waitFor();
    shots.push(...await screenshots(env, 'new-secret'));
    const href = await page.getByRole('link', { name: 'Open the token' }).getAttribute('href');
    const id = decodeURIComponent(href.replace('#/token/', ''));
    env.state.a = { id, secret, origins };
    // Shown once: after leaving, neither the page nor the API has it.
    await goTokens(page);
    await openToken(page, id);
    await page.getByText(/by key:[0-9a-f]{8}/).waitFor();
    const text = await page.evaluate(() => document.body.innerText);
    assert(!text.includes(secret), 'the secret is shown again on the token page');
    assert(await page.getByTestId('new-secret').count() === 0, 'a secret box on the token page');
    return { id, secret, origins, screenshots: shots };
  }],

  ['bad_origin', async (env) => {
    const { page, pagePort } = env;
    const before = await tokenCount(page);
    await goTokens(page);
    await page.getByRole('button', { name: 'New token' }).click();
    const bad = 'localhost:3000';
    await fillClientForm(page, { name: 'Refused', origins: [`http://localhost:${pagePort}`, bad], environment: 'staging' });
    const field = page.getByLabel('Allowed origins');
    // The reason, before any submit, in the element the field names in aria-describedby.
    const shown = await eventually(() => field.evaluate((t) => {
      const ids = (t.getAttribute('aria-describedby') || '').split(/\s+/);
      return ids.map((i) => document.getElementById(i)).filter(Boolean)
        .flatMap((el) => [...el.querySelectorAll('li')].map((li) => li.textContent.trim()))
        .filter((x) => x.length > 0);
    }).then((l) => (l.length ? l : null)), 'the origin message under the field', 10_000);
    assert(shown.length === 1 && shown[0].includes(bad), `messages: ${JSON.stringify(shown)}`);
    assert(await field.getAttribute('aria-invalid') === 'true', 'field not marked invalid');
    await page.getByRole('button', { name: 'Create token' }).click();
    const alert = page.getByRole('alert').filter({ hasText: 'The edge refused the token' });
    await alert.waitFor();
    const refusal = (await alert.textContent()).trim();
    assert(refusal.includes(shown[0]), `the API's refusal ${refusal} lacks ${shown[0]}`);
    assert(await tokenCount(page) === before, 'a refused token was created');
    return { shown, refusal };
  }],

  ['screenshots', async (env) => {
    const { page } = env;
    const { id } = env.state.a;
    await goTokens(page);
    // The filters: by text, by type, by environment (the cargo test made two more tokens).
    const rows = () => page.getByRole('table', { name: 'Tokens' }).locator('tbody tr');
    const names = async () => (await rows().locator('th').allTextContents()).map((n) => n.trim()).sort();
    const all = await names();
    assert(all.length === 3, `rows: ${all}`);
    const rw = await rows().filter({ hasText: 'test rw' }).locator('td[data-label="Age"]').textContent();
    assert(rw.includes('Rotation due'), `age of an old token: ${rw}`);
    await page.getByRole('searchbox', { name: 'Filter tokens' }).fill('checkout');
    assert((await names()).join() === 'Checkout RUM', `text filter: ${await names()}`);
    await page.getByRole('searchbox', { name: 'Filter tokens' }).fill('');
    await page.getByRole('combobox', { name: 'Type' }).selectOption('remote_write');
    assert((await names()).join() === 'test rw', `type filter: ${await names()}`);
    await page.getByRole('combobox', { name: 'Type' }).selectOption('');
    await page.getByRole('combobox', { name: 'Environment' }).selectOption('staging');
    assert((await names()).join() === 'Marketing site', `environment filter: ${await names()}`);
    await page.getByRole('combobox', { name: 'Environment' }).selectOption('');
    await page.getByRole('combobox', { name: 'Status' }).selectOption('revoked');
    assert((await names()).length === 0, `status filter: ${await names()}`);
    await page.getByRole('combobox', { name: 'Status' }).selectOption('');
    const list = await screenshots(env, 'token-list', () => page.getByRole('table', { name: 'Tokens' }).waitFor());
    await openToken(page, id);
    const token = await screenshots(env, 'token-page');
    return { files: [...list, ...token] };
  }],

  ['edit', async (env) => {
    const { page, pagePort } = env;
    const { id } = env.state.a;
    await openToken(page, id);
    const form = page.getByRole('form', { name: 'Edit' });
    // The edit form checks origins with the same endpoint and messages as the create form.
    const origins = form.getByLabel('Allowed origins');
    await origins.fill(`http://localhost:${pagePort}\nhttps://*`);
    await eventually(async () => (await origins.getAttribute('aria-invalid')) === 'true', 'edit origins flagged', 10_000);
    await origins.fill(`http://localhost:${pagePort}\nhttp://*.localtest:${pagePort}`);
    await form.getByLabel('Name').fill('Checkout RUM (web)');
    await form.getByLabel('Requests per second', { exact: true }).fill('250');
    await form.getByRole('button', { name: 'Save changes' }).click();
    await page.getByRole('status').filter({ hasText: 'Saved.' }).waitFor();
    await page.getByRole('heading', { name: 'Checkout RUM (web)', level: 1 }).waitFor();
    const actions = await eventually(async () => {
      const a = await tokenAuditActions(page);
      return a.includes('update') ? a : null;
    }, 'update in the token audit trail');
    // Back to the old name, so the later steps and the screenshots read as before.
    await form.getByLabel('Name').fill('Checkout RUM');
    await form.getByRole('button', { name: 'Save changes' }).click();
    await page.getByRole('heading', { name: 'Checkout RUM', exact: true, level: 1 }).waitFor();
    return { actions };
  }],

  ['sample_shapes', async (env) => {
    const { page, pagePort } = env;
    const { id } = env.state.a;
    const now = Math.floor(Date.now() / 1000);
    const t = { id, name: 'Checkout RUM', environment: 'production' };
    const asked = await routeSamples(page, t, pagePort, now);
    try {
      await goTokens(page);
      const row = await eventually(async () => {
        const r = await tableRow(page, id);
        return r.Anomalies.includes('origin storm') && r['Usage (24 h)'].startsWith('Requests over 24 h') ? r : null;
      }, 'badge and sparkline in the table', 10_000);
      assert(row['Last used'] === '2 min ago', `last used ${row['Last used']}`);
      assert(await page.locator(`tr[data-token-id="${id}"] svg.spark polyline`).count() === 1, 'sparkline');
      const list = await screenshots(env, 'token-list-sample-data');
      await openToken(page, id);
      const shown = async () => page.evaluate(() => Object.fromEntries([...document.querySelectorAll('dd[data-total]')]
        .map((dd) => [dd.dataset.total, Number(dd.textContent.replaceAll(',', ''))])));
      const want = expectedTotals('24h', now);
      await eventually(async () => JSON.stringify(await shown()) === JSON.stringify(want), `24 h totals ${JSON.stringify(want)}`, 10_000);
      for (const [term] of [['Requests'], ['Items'], ['Rejected']]) {
        await page.locator('dt', { hasText: term }).first().waitFor();
      }
      const chart = page.getByRole('img', { name: /over 24 h/ });
      const bars = await chart.locator('rect.bar-items').count();
      assert(bars === 144, `bars ${bars}`);
      assert(await chart.locator('rect.band').count() === 1, 'no baseline band');
      assert(await chart.locator('rect.bar-rejected').count() > 0, 'no rejected bars');
      const reasons = await page.getByRole('table', { name: 'Rejections by reason' }).locator('tbody td:first-child').allTextContents();
      assert(reasons.sort().join() === 'origin_not_allowed,rate_limited', `reasons ${reasons}`);
      const origins = await page.getByRole('list', { name: 'Top rejected origins' }).textContent();
      assert(origins.includes('http://forged-shop.test:8000'), `top rejected origins ${origins}`);
      assert((await page.getByRole('list', { name: 'New origins' }).textContent()).includes(`app.localtest:${pagePort}`), 'new origins');
      assert((await page.getByRole('table', { name: 'Abuse events' }).textContent()).includes('abuse.flagged'), 'events');
      assert((await page.getByTestId('last-used').textContent()) === '2 min ago', 'last used on the page');
      const token = await screenshots(env, 'token-page-sample-data');
      await page.getByRole('button', { name: '1 h' }).click();
      const hour = expectedTotals('1h', now);
      await eventually(async () => JSON.stringify(await shown()) === JSON.stringify(hour), `1 h totals ${JSON.stringify(hour)}`, 10_000);
      await page.getByRole('navigation').getByRole('link', { name: 'Abuse' }).click();
      await page.getByRole('heading', { name: 'Tokens with an active signal' }).waitFor();
      const flagged = await page.locator('ul.flagged').textContent();
      assert(flagged.includes('Checkout RUM') && flagged.includes('origin storm'), `overview ${flagged}`);
      const overview = await screenshots(env, 'abuse-sample-data');
      return { asked: [...new Set(asked)], row, files: [...list, ...token, ...overview] };
    } finally {
      await page.unrouteAll({ behavior: 'ignoreErrors' });
    }
  }],

  ['rotate', async (env) => {
    const { page } = env;
    const { id, secret } = env.state.a;
    await openToken(page, id);
    await page.getByLabel('Grace period').selectOption({ label: '1 hour' });
    const graces = await page.getByLabel('Grace period').locator('option').allTextContents();
    assert(graces.join() === 'Now,1 hour,24 hours,7 days', `grace choices ${graces}`);
    await page.getByRole('button', { name: 'Rotate' }).click();
    const rotated = (await page.getByTestId('new-secret').textContent()).trim();
    assert(SECRET.test(rotated) && rotated !== secret, `rotated secret ${rotated}`);
    await page.getByText('Previous secret valid until').waitFor();
    const actions = await eventually(async () => {
      const a = await tokenAuditActions(page);
      return a.includes('rotate') ? a : null;
    }, 'rotate in the token audit trail');
    await goTokens(page);
    const row = await tableRow(page, id);
    assert(/^\d+ s/.test(row.Age), `age after rotation: ${row.Age}`);
    env.state.a.rotated = rotated;
    return { rotated, actions, row };
  }],

  ['revoke', async (env) => {
    const { page } = env;
    const { id } = env.state.a;
    await openToken(page, id);
    await page.getByRole('button', { name: 'Revoke' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.waitFor();
    const focused = await page.evaluate(() => document.activeElement && document.activeElement.textContent);
    assert(focused === 'Cancel', `focus in the dialog: ${focused}`);
    await dialog.getByRole('button', { name: 'Revoke' }).click();
    await eventually(async () => (await page.getByTestId('token-status').textContent()) === 'revoked', 'status revoked');
    await page.getByText('This token is revoked').waitFor();
    const tokenTrail = await tokenAuditActions(page);
    await goTokens(page);
    const row = await tableRow(page, id);
    assert(row.Status === 'revoked', `table status ${row.Status}`);
    const trail = await trailActions(page, id);
    assert(trail.join() === 'create,update,update,rotate,revoke', `audit trail ${trail}`);
    const files = await screenshots(env, 'audit-trail');
    return { row, trail, tokenTrail, files };
  }],

  ['csrf_in_browser', async (env) => {
    const { page, pagePort, context } = env;
    await goTokens(page);
    const before = await tokenCount(page);
    const body = JSON.stringify({ name: 'forged', type: 'remote_write' });
    // Same page, the real browser's Origin, but no X-Requested-With.
    const noHeader = await page.evaluate((b) => fetch('/api/v1/tokens', {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: b,
    }).then((r) => r.status), body);
    assert(noHeader === 403, `without the header: ${noHeader}`);
    // Another origin, same browser (the session cookie exists): CORS stops the header, and a
    // no-cors form-like POST carries no cookie (SameSite=Strict) or no header.
    const other = await context.newPage();
    await other.goto(`http://localhost:${pagePort}/`);
    const fromOther = await other.evaluate(async ({ url, b }) => {
      const out = {};
      try {
        const r = await fetch(`${url}/api/v1/tokens`, {
          method: 'POST', credentials: 'include', body: b,
          headers: { 'Content-Type': 'application/json', 'X-Requested-With': 'ingest-edge' },
        });
        out.cors = r.status;
      } catch (e) {
        out.cors = e.name;
      }
      try {
        const r = await fetch(`${url}/api/v1/tokens`, { method: 'POST', mode: 'no-cors', credentials: 'include', body: b });
        out.noCors = r.type;
      } catch (e) {
        out.noCors = e.name;
      }
      return out;
    }, { url: env.console, b: body });
    await other.close();
    assert(fromOther.cors === 'TypeError', `cross-origin fetch: ${JSON.stringify(fromOther)}`);
    assert(await tokenCount(page) === before, 'a forged call created a token');
    return { noHeader, fromOther };
  }],

  ['sign_out', async (env) => {
    const { page } = env;
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('Admin key').waitFor();
    const after = await page.evaluate(() => fetch('/api/v1/tokens').then((r) => r.status));
    assert(after === 401, `a call after sign-out: ${after}`);
    await page.reload();
    await page.getByLabel('Admin key').waitFor();
    const cookies = await env.context.cookies();
    assert(!cookies.some((c) => c.name === 'ingest_edge_session'), 'the cookie outlived sign-out');
    return { after };
  }],
];
