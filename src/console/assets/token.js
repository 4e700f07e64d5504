// A token's page: its details (status, last used, age, origins), usage, the abuse panel,
// lifecycle and edit, and its audit trail. Details, usage, abuse and audit refresh every 10 s
// while the page is shown; the forms redraw only after a change.

import { api, optional } from './api.js';
import { h, ago, fmtDuration, fmtTime, typeName, signalName } from './dom.js';
import { usageSection } from './usage.js';
import { abusePanel } from './abusepanel.js';
import { manageSection } from './manage.js';
import { auditTable, tokenEvents } from './audit.js';

const REFRESH_MS = 10_000;
/** The trail is re-read on every 6th refresh (it is read whole from disk), and after changes. */
const TRAIL_EVERY = 6;

function details(t, abuse, createdBy) {
  const active = ((abuse && abuse.signals) || []).filter((x) => x.active);
  const row = (term, ...value) => h('div', {}, h('dt', {}, term), h('dd', {}, value));
  const wide = (term, ...value) => h('div', { class: 'wide' }, h('dt', {}, term), h('dd', {}, value));
  return h('dl', { class: 'details', 'aria-label': 'Token details' },
    row('ID', h('code', {}, t.id)),
    row('Type', typeName(t)),
    row('Environment', t.environment || '—'),
    row('Status', h('span', { class: `status-${t.status}`, 'data-testid': 'token-status' }, t.status)),
    row('Last used', h('span', { 'data-testid': 'last-used' }, ago(t.last_used_at))),
    row('Age', fmtDuration(t.age_seconds || 0), t.rotation_due ? h('span', { class: 'badge warn' }, 'Rotation due') : null),
    row('Anomalies', active.length ? active.map((x) => h('span', { class: 'badge alert' }, signalName(x.signal))) : 'none'),
    row('Created', fmtTime(t.created_at), createdBy ? h('span', { class: 'muted' }, ` by ${createdBy}`) : null),
    t.rotated_at ? row('Rotated', fmtTime(t.rotated_at)) : null,
    t.previous_secret_valid_until ? row('Previous secret valid until', fmtTime(t.previous_secret_valid_until)) : null,
    t.revoked_at ? row('Revoked', fmtTime(t.revoked_at)) : null,
    t.type === 'client' && (t.origins || []).length
      ? wide('Allowed origins', h('ul', { class: 'plain' }, t.origins.map((o) => h('li', {}, h('code', {}, o)))))
      : null);
}

export async function tokenScreen(view, id, ctx) {
  const path = `/api/v1/tokens/${encodeURIComponent(id)}`;
  const title = h('h1', {}, id);
  const detailBox = h('section', { class: 'card', 'aria-label': 'Details' });
  const usage = usageSection(id);
  const abuse = abusePanel(id, () => refresh({ trail: true }));
  const manage = manageSection(id, () => refresh({ forms: true, trail: true }));
  const auditBox = h('div', { class: 'table-wrap' });
  view.replaceChildren(
    h('p', {}, h('a', { href: '#/tokens' }, '← Tokens')),
    title, detailBox, usage.el, abuse.el, manage.el,
    h('section', { class: 'card', 'aria-labelledby': 'trail-title' },
      h('h2', { id: 'trail-title' }, 'Audit trail of this token'), auditBox));

  let events = [];
  let ticks = 0;
  /** `forms`: redraw lifecycle and edit (after a change); `trail`: re-read the audit trail. */
  async function refresh({ forms = false, trail: wantTrail = false } = {}) {
    const readTrail = wantTrail || ticks % TRAIL_EVERY === 0;
    ticks += 1;
    let t;
    try {
      t = await api('GET', path);
    } catch (e) {
      if (e.status === 404) {
        view.replaceChildren(h('h1', {}, 'No such token'), h('p', {}, h('a', { href: '#/tokens' }, 'Back to tokens')));
        return false;
      }
      throw e;
    }
    const [report, trail] = await Promise.all([
      optional(`${path}/abuse`).catch(() => null),
      readTrail ? tokenEvents(id).catch(() => null) : null,
    ]);
    if (trail) events = trail;
    title.textContent = t.name;
    document.title = `${t.name} · ingest-edge console`;
    const created = events.find((e) => e.action === 'create');
    detailBox.replaceChildren(details(t, report, created ? created.who : ''));
    abuse.show(report);
    if (forms) manage.show(t);
    auditBox.replaceChildren(auditTable(events, 'Audit trail of this token', false));
    await usage.refresh(report);
    return true;
  }

  if (!(await refresh({ forms: true, trail: true }))) return;
  const timer = setInterval(() => { if (ctx.isShown() && !document.hidden) refresh().catch(() => {}); }, REFRESH_MS);
  ctx.onLeave(() => {
    clearInterval(timer);
    document.title = 'ingest-edge console';
  });
}
