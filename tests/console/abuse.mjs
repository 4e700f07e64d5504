// The console steps that need issue 11's admin reads and actions (usage series, abuse state,
// last_used_at, disable/enable): until they are merged these steps fail, and the cargo test
// says which. Live usage from the OTel web SDK on an allowed origin, disable and enable, and a
// token under an origin storm.

import { request } from 'node:http';
import {
  assert, eventually, signIn, createClientToken, tableRow, openToken, goTokens,
  tokenAuditActions, trailActions,
} from './ui.mjs';

/** The origin the storm forges: a page that is not allowed (never fetched; only a header). */
export const FORGED_ORIGIN = 'http://forged-shop.test:8000';
/** Refused requests sent in the storm: 5/s over a 1 min window, above the 1/s default. */
const STORM_REQUESTS = 300;

const SPAN = '{"resourceSpans":[{"resource":{"attributes":[]},"scopeSpans":[{"scope":{"name":"console-test"},"spans":[{"traceId":"7a45a473ee2442a0dd22ee14f4d3c294","spanId":"302c4bca8acd807e","name":"storm","kind":1,"startTimeUnixNano":"1795822429197000000","endTimeUnixNano":"1795822429197500000"}]}]}]}';

function post(url, headers, body) {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', headers, timeout: 5000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end(body);
  });
}

async function totals(page) {
  return page.evaluate(() => Object.fromEntries([...document.querySelectorAll('dd[data-total]')]
    .map((dd) => [dd.dataset.total, Number(dd.textContent.replaceAll(',', ''))])));
}

/** Fails at once (instead of after each step's wait) when the edge lacks issue 11's reads. */
function needsReads(step) {
  return async (env) => {
    if (env.state.missing) throw new Error(env.state.missing);
    return step(env);
  };
}

export const abuseSteps = [
  ['sign_in', async (env) => {
    await signIn(env);
    const status = await env.page.evaluate(() => fetch('/api/v1/abuse').then((r) => r.status));
    if (status === 404) {
      env.state.missing = 'needs the abuse-monitoring reads (issue 11): GET /api/v1/abuse is 404 on this edge';
    }
    return { abuse_read: status };
  }],

  ['usage_live', needsReads(async (env) => {
    const { page, pagePort, context } = env;
    const origins = [`http://localhost:${pagePort}`, `http://*.localtest:${pagePort}`];
    const b = await createClientToken(env, { name: 'Live RUM', origins, environment: 'production' });
    env.state.b = b;
    await openToken(page, b.id);
    const lastUsed = page.getByTestId('last-used');
    assert((await lastUsed.textContent()) === 'never', `last used before use: ${await lastUsed.textContent()}`);
    await page.evaluate(() => { window.consoleNotReloaded = true; });
    // The browser suite's page and the OTel web SDK, on an allowed origin.
    const app = await context.newPage();
    await app.goto(`http://localhost:${pagePort}/`);
    await app.waitForFunction(() => window.edgeTestReady === true);
    const exported = await app.evaluate(({ edge, token }) => window.edgeTest.exportTraces({ edge, token, spans: 5 }),
      { edge: env.ingest, token: b.secret });
    await app.close();
    assert(exported.results.length > 0 && exported.results.every((r) => r.code === 0), `export: ${JSON.stringify(exported)}`);
    // No reload: the page's own refresh (every 10 s) must show it.
    const seen = await eventually(async () => {
      const t = await totals(page);
      const used = await lastUsed.textContent();
      return t.requests >= 1 && t.items >= 5 && used !== 'never' ? { t, used } : null;
    }, 'usage and last used on the open token page', 30_000, 500);
    assert(await page.evaluate(() => window.consoleNotReloaded === true), 'the page was reloaded');
    await goTokens(page);
    const row = await tableRow(page, b.id);
    assert(row['Last used'] !== 'never', `table last used ${row['Last used']}`);
    assert(await page.locator(`tr[data-token-id="${b.id}"] svg.spark`).count() === 1, 'no sparkline');
    return { seen, row };
  })],

  ['disable_enable', needsReads(async (env) => {
    const { page } = env;
    const { id } = env.state.b;
    await openToken(page, id);
    await page.getByRole('button', { name: 'Disable' }).click();
    await eventually(async () => (await page.getByTestId('token-status').textContent()) === 'disabled', 'status disabled');
    await goTokens(page);
    assert((await tableRow(page, id)).Status === 'disabled', 'table shows disabled');
    await openToken(page, id);
    await page.getByRole('button', { name: 'Enable' }).click();
    await eventually(async () => (await page.getByTestId('token-status').textContent()) === 'active', 'status active');
    const own = await tokenAuditActions(page);
    await goTokens(page);
    assert((await tableRow(page, id)).Status === 'active', 'table shows active');
    const trail = await trailActions(page, id);
    assert(trail.join() === 'create,disable,enable', `audit trail ${trail}`);
    return { own, trail };
  })],

  ['origin_storm', needsReads(async (env) => {
    const { page } = env;
    const { id, secret } = env.state.b;
    const url = `${env.ingest}/v1/traces`;
    const statuses = {};
    const started = Date.now();
    for (let i = 0; i < STORM_REQUESTS && Date.now() - started < 20_000; i += 1) {
      const s = await post(url, {
        'Content-Type': 'application/json', Authorization: `Bearer ${secret}`, Origin: FORGED_ORIGIN,
      }, SPAN);
      statuses[s] = (statuses[s] || 0) + 1;
    }
    assert(statuses[403] >= 100, `the storm was not refused: ${JSON.stringify(statuses)}`);
    await goTokens(page);
    const row = await eventually(async () => {
      await goTokens(page);
      const r = await tableRow(page, id);
      return r.Anomalies.includes('origin storm') ? r : null;
    }, 'the origin storm badge in the table', 30_000, 2000);
    await openToken(page, id);
    const origins = page.getByRole('list', { name: 'Top rejected origins' });
    await origins.waitFor();
    const text = await origins.textContent();
    assert(text.includes(FORGED_ORIGIN), `top rejected origins: ${text}`);
    await page.getByRole('button', { name: 'Expect spike' }).click();
    // The status line says it; the panel also shows "spike expected until ..." once refreshed.
    await page.getByRole('status').filter({ hasText: 'Spike expected' }).waitFor();
    await page.getByRole('button', { name: 'Reset abuse state' }).click();
    await page.getByRole('status').filter({ hasText: 'Abuse state reset' }).waitFor();
    await page.getByRole('navigation').getByRole('link', { name: 'Abuse' }).click();
    await page.getByRole('heading', { name: 'Tokens with an active signal' }).waitFor();
    return { statuses, anomalies: row.Anomalies, top: text };
  })],
];
