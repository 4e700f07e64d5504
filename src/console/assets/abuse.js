// The abuse overview: every token with an active signal, the edge-wide auth_storm with the
// addresses behind it, and recent events across tokens (`GET /api/v1/abuse`).

import { optional } from './api.js';
import { h, fmtNumber, signalName } from './dom.js';
import { eventsTable } from './abusepanel.js';

const REFRESH_MS = 10_000;

export async function abuseScreen(view, _arg, ctx) {
  const body = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  view.replaceChildren(h('h1', {}, 'Abuse'), body);
  const load = async () => {
    const r = await optional('/api/v1/abuse');
    if (!r) {
      body.replaceChildren(h('p', { class: 'muted' }, 'Abuse monitoring: no data.'));
      return;
    }
    const tokens = r.tokens || [];
    const auth = r.auth_storm || {};
    body.replaceChildren(
      h('section', { class: 'card', 'aria-labelledby': 'flagged-title' },
        h('h2', { id: 'flagged-title' }, 'Tokens with an active signal'),
        tokens.length === 0
          ? h('p', { class: 'muted' }, 'None: every token looks normal.')
          : h('ul', { class: 'flagged' }, tokens.map((t) => h('li', {},
            h('a', { href: `#/token/${encodeURIComponent(t.token_id)}` }, t.name || t.token_id),
            ` ${t.environment || ''} `,
            (t.signals || []).filter((x) => x.active).map((x) => h('span', { class: 'badge alert' }, signalName(x.signal))))))),
      h('section', { class: 'card', 'aria-labelledby': 'auth-title' },
        h('h2', { id: 'auth-title' }, 'Unknown and malformed tokens (edge-wide)'),
        h('p', {}, auth.active ? h('span', { class: 'badge alert' }, 'auth storm') : h('span', { class: 'badge ok' }, 'quiet'),
          ` ${fmtNumber(Math.round((auth.value || 0) * 100) / 100)} refusals/s`),
        (r.auth_storm_top_addresses || []).length
          ? h('ul', { 'aria-label': 'Top addresses' }, r.auth_storm_top_addresses.map((c) => h('li', {}, h('code', {}, c.key), ` · ${fmtNumber(c.count)}`)))
          : null),
      h('section', { class: 'card', 'aria-labelledby': 'events-title' },
        h('h2', { id: 'events-title' }, 'Recent events'),
        h('div', { class: 'table-wrap' }, eventsTable(r.recent_events, 'Recent abuse events'))));
  };
  await load();
  const timer = setInterval(() => { if (ctx.isShown() && !document.hidden) load().catch(() => {}); }, REFRESH_MS);
  ctx.onLeave(() => clearInterval(timer));
}
