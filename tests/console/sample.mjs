// Sample data in the shapes SPEC §12 gives for issue 11's reads (usage series, abuse state,
// the abuse overview, last_used_at), served to the page with Playwright's request routing.
// This checks the console's drawing of those shapes on a branch where the reads do not exist
// yet; abuse.mjs checks the same screens against the real reads once they are merged.

const STEP = 600;
const FORGED = 'http://forged-shop.test:8000';

/** 24 h of 10 min steps: a daily curve, rejections in a few steps. */
function usage(range, now) {
  const step = { '1h': 60, '24h': STEP, '7d': 3600 }[range];
  const n = { '1h': 60, '24h': 144, '7d': 168 }[range];
  const start = Math.floor(now / step) * step - (n - 1) * step;
  const points = [];
  for (let i = 0; i < n; i += 1) {
    const items = Math.round(400 + 300 * Math.sin(i / 9)) * (range === '1h' ? 1 : 3);
    const rejected = i % 17 === 5 ? { origin_not_allowed: 40 + i, rate_limited: 7 } : {};
    points.push({ t: start + i * step, requests: Math.round(items / 5) + 3, items, bytes: items * 310, rejected });
  }
  return { step_seconds: step, points };
}

function sum(points, f) {
  return points.reduce((a, p) => a + f(p), 0);
}

/** The totals the page must show for a range. */
export function expectedTotals(range, now) {
  const { points } = usage(range, now);
  return {
    requests: sum(points, (p) => p.requests),
    items: sum(points, (p) => p.items),
    rejected: sum(points, (p) => Object.values(p.rejected).reduce((a, b) => a + b, 0)),
  };
}

function signals(now) {
  return [
    { signal: 'spike', active: false, since: null, action: null, value: 3.1, threshold: 10 },
    { signal: 'origin_storm', active: true, since: now - 300, action: 'flagged', value: 4.2, threshold: 1 },
    { signal: 'client_storm', active: false, since: null, action: null, value: 12, threshold: 40 },
  ];
}

function event(t, now) {
  return {
    id: 'ev_0000000000000001', event: 'abuse.flagged', token_id: t.id, name: t.name,
    environment: t.environment, signal: 'origin_storm', action: 'flagged', value: 4.2, baseline: 0, at: now - 300,
  };
}

/** Routes the reads for token `t`; returns the list of usage ranges the page asked for. */
export async function routeSamples(page, t, pagePort, now) {
  const asked = [];
  await page.route((url) => url.pathname === `/api/v1/tokens/${t.id}/usage`, (route) => {
    const range = new URL(route.request().url()).searchParams.get('range');
    asked.push(range);
    route.fulfill({ json: usage(range, now) });
  });
  await page.route((url) => url.pathname === `/api/v1/tokens/${t.id}/abuse`, (route) => route.fulfill({
    json: {
      token_id: t.id, settings: { mode: 'flag', spike_factor: 5, min_items_per_second: 10 }, warm: true,
      items_per_second: 3.1, baseline_items_per_second: 2.5, distinct_clients: 12, baseline_distinct_clients: 8,
      new_series_per_second: 0, baseline_new_series_per_second: 0, throttled: false, expect_spike_until: null,
      last_used_at: now - 120, signals: signals(now),
      top_rejected_origins: [{ key: FORGED, count: 250, error: 0 }, { key: 'null', count: 3, error: 0 }],
      top_clients: [{ key: '127.0.0.1', count: 48, error: 0 }],
      origins_first_seen: [{ origin: `http://app.localtest:${pagePort}`, at: now - 3600 }],
      recent_events: [event(t, now)],
    },
  }));
  await page.route((url) => url.pathname === '/api/v1/abuse', (route) => route.fulfill({
    json: {
      tokens: [{ token_id: t.id, name: t.name, environment: t.environment, signals: signals(now) }],
      recent_events: [event(t, now)],
      auth_storm: { signal: 'auth_storm', active: false, since: null, action: null, value: 0.2, threshold: 10 },
      auth_storm_top_addresses: [{ key: '127.0.0.1', count: 5, error: 0 }],
    },
  }));
  // The real list and token, with the field issue 11 adds.
  const withLastUsed = (x) => (x.id === t.id ? { ...x, last_used_at: new Date((now - 120) * 1000).toISOString() } : x);
  await page.route((url) => url.pathname === '/api/v1/tokens' || url.pathname === `/api/v1/tokens/${t.id}`, async (route) => {
    if (route.request().method() !== 'GET') return route.continue();
    const resp = await route.fetch();
    const body = await resp.json();
    route.fulfill({ response: resp, json: body.tokens ? { tokens: body.tokens.map(withLastUsed) } : withLastUsed(body) });
  });
  return asked;
}
