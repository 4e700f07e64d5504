// A token's usage over 1 h / 24 h / 7 d: totals as text, the chart with the baseline band, and
// rejections by reason. `GET /api/v1/tokens/{id}/usage?range=`; a 404 reads "no data".

import { optional } from './api.js';
import { h, fmtNumber } from './dom.js';
import { usageChart, rejectedOf } from './chart.js';

const RANGES = [['1h', '1 h'], ['24h', '24 h'], ['7d', '7 d']];

/** Returns {el, refresh(abuseReport)}; the abuse report gives the baseline band. */
export function usageSection(id) {
  let range = '24h';
  let lastAbuse = null;
  const buttons = RANGES.map(([value, label]) => h('button', {
    type: 'button', class: 'seg', 'aria-pressed': value === range ? 'true' : 'false',
    onclick: () => {
      range = value;
      for (const b of buttons) b.setAttribute('aria-pressed', b.dataset.range === range ? 'true' : 'false');
      refresh(lastAbuse);
    },
    'data-range': value,
  }, label));
  const body = h('div', { class: 'usage-body' }, h('p', { class: 'muted' }, 'Loading usage…'));
  const el = h('section', { class: 'card', 'aria-labelledby': 'usage-title' },
    h('div', { class: 'title-row' },
      h('h2', { id: 'usage-title' }, 'Usage'),
      h('div', { role: 'group', 'aria-label': 'Range', class: 'segmented' }, buttons)),
    body);

  async function refresh(abuse) {
    lastAbuse = abuse;
    const asked = range;
    let usage;
    try {
      usage = await optional(`/api/v1/tokens/${encodeURIComponent(id)}/usage?range=${asked}`);
    } catch (e) {
      usage = null;
    }
    if (asked !== range) return;
    if (!usage || !Array.isArray(usage.points)) {
      body.replaceChildren(h('p', { class: 'muted' }, 'Usage: no data (this edge keeps no usage history for the token).'));
      return;
    }
    const points = usage.points;
    const step = usage.step_seconds || 60;
    const sum = (f) => points.reduce((a, p) => a + f(p), 0);
    const reasons = {};
    for (const p of points) {
      for (const [r, n] of Object.entries(p.rejected || {})) reasons[r] = (reasons[r] || 0) + n;
    }
    let band = null;
    if (abuse && typeof abuse.baseline_items_per_second === 'number') {
      const set = abuse.settings || {};
      const low = abuse.baseline_items_per_second * step;
      const factor = set.spike_factor || 5;
      const floor = (set.min_items_per_second || 0) * step;
      band = { low, high: Math.max(low * factor, floor) };
    }
    const label = RANGES.find(([v]) => v === asked)[1];
    body.replaceChildren(
      h('dl', { class: 'totals' },
        h('div', {}, h('dt', {}, 'Requests'), h('dd', { 'data-total': 'requests' }, fmtNumber(sum((p) => p.requests || 0)))),
        h('div', {}, h('dt', {}, 'Items'), h('dd', { 'data-total': 'items' }, fmtNumber(sum((p) => p.items || 0)))),
        h('div', {}, h('dt', {}, 'Rejected'), h('dd', { 'data-total': 'rejected' }, fmtNumber(sum(rejectedOf))))),
      usageChart(points, step, band, `Accepted items and rejected requests per ${step} s over ${label}`),
      h('p', { class: 'legend' },
        h('span', { class: 'key items' }), 'accepted items ',
        h('span', { class: 'key rejected' }), 'rejected requests ',
        band ? [h('span', { class: 'key band' }), 'baseline to spike threshold'] : null),
      h('h3', {}, 'Rejections by reason'),
      Object.keys(reasons).length === 0
        ? h('p', { class: 'muted' }, 'None in this range.')
        : h('table', { class: 'compact', 'aria-label': 'Rejections by reason' },
          h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Reason'), h('th', { scope: 'col' }, 'Requests'))),
          h('tbody', {}, Object.entries(reasons).sort((a, b) => b[1] - a[1])
            .map(([r, n]) => h('tr', {}, h('td', {}, r), h('td', {}, fmtNumber(n)))))));
  }
  return { el, refresh };
}
