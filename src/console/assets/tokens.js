// The token table: filters, last used, age with rotation due, a 24 h sparkline and anomaly
// badges per token. Refreshed every 30 s while shown (listing reads the token store, which
// takes seconds with a million tokens; the Tokens link reloads at once); at most ROWS rows
// are drawn (and get a sparkline), so a large edge does not stall the page.

import { api, optional } from './api.js';
import { h, ago, fmtDuration, typeName, signalName } from './dom.js';
import { sparkline } from './chart.js';

const ROWS = 100;
const REFRESH_MS = 30_000;

function select(label, options) {
  const el = h('select', { 'aria-label': label }, options.map(([v, t]) => h('option', { value: v }, t)));
  return el;
}

function anomalyMap(report) {
  const map = new Map();
  for (const t of (report && report.tokens) || []) {
    map.set(t.token_id, (t.signals || []).filter((x) => x.active).map((x) => x.signal));
  }
  return map;
}

function cell(label, ...content) {
  return h('td', { role: 'cell', 'data-label': label }, content);
}

export async function tokensScreen(view, _arg, ctx) {
  const search = h('input', { type: 'search', 'aria-label': 'Filter tokens', placeholder: 'Filter tokens by name, id or origin' });
  const envSel = select('Environment', [['', 'All environments']]);
  const typeSel = select('Type', [['', 'All types'], ['client', 'Client'], ['remote_write', 'Prometheus Remote-Write']]);
  const statusSel = select('Status', [['', 'Any status'], ['active', 'active'], ['disabled', 'disabled'], ['revoked', 'revoked']]);
  const heads = ['Name', 'ID', 'Type', 'Environment', 'Status', 'Last used', 'Age', 'Usage (24 h)', 'Anomalies'];
  const body = h('tbody', { role: 'rowgroup' });
  const table = h('table', { role: 'table', 'aria-label': 'Tokens', class: 'tokens', 'aria-busy': 'true' },
    h('thead', { role: 'rowgroup' }, h('tr', { role: 'row' }, heads.map((t) => h('th', { role: 'columnheader', scope: 'col' }, t)))),
    body);
  const note = h('p', { class: 'muted', role: 'status' });
  view.replaceChildren(
    h('div', { class: 'title-row' },
      h('h1', {}, 'Tokens'),
      h('button', { type: 'button', onclick: () => { location.hash = '#/new'; } }, 'New token')),
    h('div', { class: 'filters' }, search, envSel, typeSel, statusSel),
    h('div', { class: 'table-wrap' }, table),
    note);

  let tokens = [];
  let anomalies = new Map();
  const sparks = new Map();

  const matches = (t) => {
    const q = search.value.trim().toLowerCase();
    const text = [t.name, t.id, t.environment, ...(t.origins || [])].join(' ').toLowerCase();
    return (!q || text.includes(q))
      && (!envSel.value || t.environment === envSel.value)
      && (!typeSel.value || t.type === typeSel.value)
      && (!statusSel.value || t.status === statusSel.value);
  };

  const draw = () => {
    const shown = tokens.filter(matches);
    body.replaceChildren(...shown.slice(0, ROWS).map((t) => {
      const flags = anomalies.get(t.id) || [];
      const spark = sparks.get(t.id);
      return h('tr', { role: 'row', 'data-token-id': t.id },
        h('th', { role: 'rowheader', scope: 'row', 'data-label': 'Name' }, h('a', { href: `#/token/${encodeURIComponent(t.id)}` }, t.name)),
        cell('ID', h('code', {}, t.id)),
        cell('Type', typeName(t)),
        cell('Environment', t.environment || '—'),
        cell('Status', h('span', { class: `status-${t.status}` }, t.status)),
        cell('Last used', ago(t.last_used_at)),
        cell('Age', fmtDuration(t.age_seconds || 0),
          t.rotation_due ? h('span', { class: 'badge warn' }, 'Rotation due') : null),
        cell('Usage (24 h)', spark === undefined ? '…' : spark === null ? 'no data' : sparkline(spark, `Requests over 24 h for ${t.name}`)),
        cell('Anomalies', flags.length
          ? flags.map((f) => h('span', { class: 'badge alert' }, signalName(f)))
          : h('span', { class: 'muted' }, 'none')));
    }));
    note.textContent = shown.length > ROWS
      ? `Showing ${ROWS} of ${shown.length} matching tokens: narrow the filter to see the rest.`
      : `${shown.length} of ${tokens.length} tokens`;
  };

  const loadSparks = async (again) => {
    const ids = tokens.filter(matches).slice(0, ROWS)
      .filter((t) => t.status !== 'revoked' && (again || !sparks.has(t.id))).map((t) => t.id);
    await Promise.all(ids.map(async (id) => {
      try {
        const u = await optional(`/api/v1/tokens/${encodeURIComponent(id)}/usage?range=24h`);
        sparks.set(id, u && Array.isArray(u.points) ? u.points : null);
      } catch {
        sparks.set(id, null);
      }
    }));
    if (ctx.isShown()) draw();
  };

  const load = async () => {
    const [list, report] = await Promise.all([
      api('GET', '/api/v1/tokens'),
      optional('/api/v1/abuse').catch(() => null),
    ]);
    tokens = (list.tokens || []).sort((a, b) => String(b.created_at).localeCompare(String(a.created_at)));
    anomalies = anomalyMap(report);
    const envs = [...new Set(tokens.map((t) => t.environment).filter(Boolean))].sort();
    const keep = envSel.value;
    envSel.replaceChildren(h('option', { value: '' }, 'All environments'), ...envs.map((e) => h('option', { value: e }, e)));
    envSel.value = envs.includes(keep) ? keep : '';
    draw();
    table.setAttribute('aria-busy', 'false');
    loadSparks(true);
  };

  for (const el of [search, envSel, typeSel, statusSel]) {
    el.addEventListener('input', () => { draw(); loadSparks(false); });
  }
  await load();
  const timer = setInterval(() => { if (ctx.isShown() && !document.hidden) load().catch(() => {}); }, REFRESH_MS);
  ctx.onLeave(() => clearInterval(timer));
}
