// A token's abuse panel: signal states, top rejected origins, top clients, origins first seen,
// recent events, and the two operator actions (expect a spike, reset). `GET
// /api/v1/tokens/{id}/abuse`; a 404 reads "no data".

import { api, describe } from './api.js';
import { h, fmtNumber, fmtTime, signalName, statusLine } from './dom.js';

function counted(title, list) {
  return h('div', {},
    h('h3', {}, title),
    list && list.length
      ? h('ul', { class: 'counted', 'aria-label': title }, list.map((c) => h('li', {}, h('code', {}, c.key), ` · ${fmtNumber(c.count)}`)))
      : h('p', { class: 'muted' }, 'none'));
}

export function eventsTable(events, label) {
  if (!events || events.length === 0) return h('p', { class: 'muted' }, 'No events.');
  return h('table', { class: 'compact', 'aria-label': label },
    h('thead', {}, h('tr', {}, ['When', 'Event', 'Token', 'Signal', 'Value', 'Baseline'].map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, [...events].reverse().map((e) => h('tr', {},
      h('td', {}, fmtTime(e.at)), h('td', {}, e.event),
      h('td', {}, e.token_id ? h('a', { href: `#/token/${encodeURIComponent(e.token_id)}` }, e.name || e.token_id) : 'edge-wide'),
      h('td', {}, signalName(e.signal)),
      h('td', {}, fmtNumber(Math.round(e.value * 100) / 100)), h('td', {}, fmtNumber(Math.round(e.baseline * 100) / 100))))));
}

/** Returns {el, show(report)}; `report` is the abuse read, or null when the edge has none. */
export function abusePanel(id, reload) {
  const status = statusLine();
  const body = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  const forSel = h('select', { 'aria-label': 'Expect a spike for' },
    [[3600, '1 hour'], [6 * 3600, '6 hours'], [86400, '24 hours'], [7 * 86400, '7 days']].map(([v, t]) => h('option', { value: v }, t)));
  const act = async (path, payload, done) => {
    try {
      await api('POST', `/api/v1/tokens/${encodeURIComponent(id)}/${path}`, payload);
      status.set(done);
      reload();
    } catch (e) {
      status.set(e.status === 404 ? 'This edge has no abuse monitoring.' : describe(e), true);
    }
  };
  const actions = h('div', { class: 'actions' },
    forSel,
    h('button', { type: 'button', onclick: () => act('expect-spike', { for_seconds: Number(forSel.value) }, 'Spike expected: it will neither flag nor throttle.') }, 'Expect spike'),
    h('button', { type: 'button', class: 'quiet', onclick: () => act('abuse/reset', undefined, 'Abuse state reset: baseline forgotten, warm-up restarted.') }, 'Reset abuse state'));
  const el = h('section', { class: 'card', 'aria-labelledby': 'abuse-title' },
    h('h2', { id: 'abuse-title' }, 'Abuse'), body, actions, status.el);

  function show(r) {
    if (!r) {
      body.replaceChildren(h('p', { class: 'muted' }, 'Abuse monitoring: no data.'));
      return;
    }
    const active = (r.signals || []).filter((x) => x.active);
    const settings = r.settings || {};
    body.replaceChildren(
      h('p', {},
        active.length
          ? active.map((x) => h('span', { class: 'badge alert' }, signalName(x.signal)))
          : h('span', { class: 'badge ok' }, 'no active signal'),
        ` mode ${settings.mode || '?'}`,
        r.throttled ? h('span', { class: 'badge warn' }, 'throttled') : null,
        r.expect_spike_until ? ` · spike expected until ${fmtTime(r.expect_spike_until)}` : null,
        r.warm === false ? ' · warming up' : null),
      h('table', { class: 'compact', 'aria-label': 'Signals' },
        h('thead', {}, h('tr', {}, ['Signal', 'State', 'Value', 'Threshold', 'Action'].map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, (r.signals || []).map((x) => h('tr', {},
          h('td', {}, signalName(x.signal)), h('td', {}, x.active ? 'active' : 'quiet'),
          h('td', {}, fmtNumber(Math.round(x.value * 100) / 100)), h('td', {}, fmtNumber(Math.round(x.threshold * 100) / 100)),
          h('td', {}, x.action || '—'))))),
      h('div', { class: 'grid' },
        counted('Top rejected origins', r.top_rejected_origins),
        counted('Top clients', r.top_clients),
        h('div', {}, h('h3', {}, 'New origins'),
          r.origins_first_seen && r.origins_first_seen.length
            ? h('ul', { 'aria-label': 'New origins' }, r.origins_first_seen.map((o) => h('li', {}, h('code', {}, o.origin), ` ${fmtTime(o.at)}`)))
            : h('p', { class: 'muted' }, 'none'))),
      h('h3', {}, 'Events'),
      eventsTable(r.recent_events, 'Abuse events'));
  }
  return { el, show };
}
