// The audit trail (`GET /api/v1/audit`): the whole trail as a screen, and one token's events
// for its page. Action words as the API writes them (create, update, rotate, revoke, disable,
// enable, abuse.*).

import { api } from './api.js';
import { h, fmtTime } from './dom.js';

/** Events read for filtering by token on the client: the API returns the newest ones. */
const LIMIT = 10_000;

export function auditTable(events, label, withToken = true) {
  if (events.length === 0) return h('p', { class: 'muted' }, 'No events.');
  const heads = ['When', 'Action', ...(withToken ? ['Token'] : []), 'Who', 'Detail'];
  return h('table', { class: 'compact audit', 'aria-label': label },
    h('thead', {}, h('tr', {}, heads.map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, [...events].reverse().map((e) => h('tr', {},
      h('td', {}, fmtTime(e.at)),
      h('td', {}, h('span', { class: 'action' }, e.action)),
      withToken ? h('td', {}, e.token_id ? h('a', { href: `#/token/${encodeURIComponent(e.token_id)}` }, h('code', {}, e.token_id)) : '—') : null,
      h('td', {}, e.who),
      h('td', {}, e.detail || '')))));
}

export async function tokenEvents(id) {
  const r = await api('GET', `/api/v1/audit?limit=${LIMIT}`);
  return (r.events || []).filter((e) => e.token_id === id);
}

export async function auditScreen(view) {
  const filter = h('input', { type: 'search', 'aria-label': 'Filter events', placeholder: 'Filter by action, token or who' });
  const holder = h('div', { class: 'table-wrap' });
  view.replaceChildren(h('h1', {}, 'Audit trail'), h('div', { class: 'filters' }, filter), holder);
  const r = await api('GET', `/api/v1/audit?limit=${LIMIT}`);
  const events = r.events || [];
  const draw = () => {
    const q = filter.value.trim().toLowerCase();
    const shown = events.filter((e) => !q || [e.action, e.token_id, e.who, e.detail].join(' ').toLowerCase().includes(q));
    holder.replaceChildren(auditTable(shown, 'Audit trail'));
  };
  filter.addEventListener('input', draw);
  draw();
}
