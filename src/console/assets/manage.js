// What an owner does to a token: edit (name, environment, origins, limits), Rotate with a
// grace period, Disable / Enable, and Revoke after a confirmation dialog.

import { api, describe, ApiError } from './api.js';
import { h, field, statusLine } from './dom.js';
import { originsField } from './origins.js';
import { secretBox } from './secret.js';

const LIMITS = [
  ['requests_per_second', 'Requests per second'],
  ['requests_burst', 'Request burst'],
  ['items_per_second', 'Items per second'],
  ['items_burst', 'Item burst'],
  ['per_client_requests_per_second', 'Requests per second per client'],
  ['per_client_requests_burst', 'Request burst per client'],
];

const GRACE = [[0, 'Now'], [3600, '1 hour'], [86400, '24 hours'], [7 * 86400, '7 days']];

function editForm(t, path, changed) {
  const [nameField, name] = field('Name', h('input', { type: 'text', value: t.name, maxlength: 200 }));
  const [envField, env] = field('Environment', h('input', { type: 'text', value: t.environment || '', list: 'edit-envs' }));
  envField.append(h('datalist', { id: 'edit-envs' }, ['production', 'staging', 'development'].map((v) => h('option', { value: v }))));
  const origins = t.type === 'client' ? originsField(t.origins || [], t.client_type || 'web') : null;
  const limitInputs = LIMITS.map(([key, label]) => field(label,
    h('input', { type: 'number', min: 1, step: 1, inputmode: 'numeric', value: (t.limits || {})[key] ?? '', placeholder: 'default' })));
  const status = statusLine();
  const form = h('form', { class: 'card', 'aria-labelledby': 'edit-title' },
    h('h2', { id: 'edit-title' }, 'Edit'),
    nameField, envField, origins ? origins.el : null,
    h('fieldset', {}, h('legend', {}, 'Limits (empty: the type\'s default)'),
      h('div', { class: 'grid' }, limitInputs.map(([f]) => f))),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Save changes')),
    status.el);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    // Only what changed is sent, so the audit trail names exactly the fields changed.
    const limits = {};
    LIMITS.forEach(([key], i) => {
      const v = limitInputs[i][1].value.trim();
      if (v !== '') limits[key] = Number(v);
    });
    const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
    const body = {};
    if (name.value !== t.name) body.name = name.value;
    if (env.value.trim() !== (t.environment || '')) body.environment = env.value.trim();
    if (origins && !same(origins.lines(), t.origins || [])) body.origins = origins.lines();
    const sorted = (o) => Object.fromEntries(Object.entries(o || {}).sort());
    if (!same(sorted(limits), sorted(t.limits))) body.limits = limits;
    if (Object.keys(body).length === 0) {
      status.set('Nothing changed.');
      return;
    }
    try {
      await api('PATCH', path, body);
      changed('Saved.');
    } catch (err) {
      status.set(err instanceof ApiError ? describe(err) : String(err), true);
    }
  });
  return form;
}

function revokeDialog(t, path, changed) {
  const confirm = h('button', { type: 'button', class: 'danger' }, 'Revoke');
  // Focus lands on Cancel when the dialog opens: Enter must not revoke.
  const cancel = h('button', { type: 'button', class: 'quiet', autofocus: true }, 'Cancel');
  const status = statusLine();
  const dialog = h('dialog', { 'aria-labelledby': 'revoke-title', 'aria-describedby': 'revoke-text' },
    h('h2', { id: 'revoke-title' }, `Revoke ${t.name}?`),
    h('p', { id: 'revoke-text' }, 'Its secret stops working at once, and a revoked token cannot be enabled again. To stop it for a while, use Disable instead.'),
    status.el,
    h('div', { class: 'actions' }, confirm, cancel));
  cancel.addEventListener('click', () => dialog.close());
  confirm.addEventListener('click', async () => {
    try {
      await api('DELETE', path);
      dialog.close();
      dialog.remove();
      changed();
    } catch (err) {
      status.set(describe(err), true);
    }
  });
  return dialog;
}

/** Returns {el, show(token)}: redrawn after each change (not on the 10 s refresh, so that an
 * edit in progress is never overwritten). */
export function manageSection(id, changed) {
  const path = `/api/v1/tokens/${encodeURIComponent(id)}`;
  const el = h('div', { class: 'manage' });
  let rotated = null;
  /** Said once after the redraw that follows a change (the form it came from is redrawn). */
  let notice = '';
  const changedWith = (message) => {
    notice = message;
    changed();
  };

  function show(t) {
    if (t.status === 'revoked') {
      el.replaceChildren(...[rotated].filter(Boolean), h('p', { class: 'card muted' }, 'This token is revoked: nothing more can be changed.'));
      return;
    }
    const status = statusLine();
    const grace = h('select', {}, GRACE.map(([v, label]) => h('option', { value: v }, label)));
    grace.value = '86400';
    const [graceField] = field('Grace period', grace, 'How long the current secret keeps working after the rotation.');
    const rotate = h('button', { type: 'button' }, 'Rotate');
    rotate.addEventListener('click', async () => {
      try {
        const r = await api('POST', `${path}/rotate`, { grace_period_seconds: Number(grace.value) });
        rotated = secretBox(r.token, r.type, 'Rotated: the new secret');
        changed();
      } catch (err) {
        status.set(describe(err), true);
      }
    });
    const disabled = t.status === 'disabled';
    const toggle = h('button', { type: 'button', class: disabled ? '' : 'quiet' }, disabled ? 'Enable' : 'Disable');
    toggle.addEventListener('click', async () => {
      try {
        await api('POST', `${path}/${disabled ? 'enable' : 'disable'}`);
        changed();
      } catch (err) {
        status.set(err.status === 404 ? 'This edge cannot disable tokens yet.' : describe(err), true);
      }
    });
    const dialog = revokeDialog(t, path, changed);
    const revoke = h('button', { type: 'button', class: 'danger' }, 'Revoke');
    revoke.addEventListener('click', () => dialog.showModal());
    const said = h('p', { role: 'status', class: 'status' }, notice);
    notice = '';
    el.replaceChildren(
      said,
      ...[rotated].filter(Boolean),
      h('section', { class: 'card', 'aria-labelledby': 'lifecycle-title' },
        h('h2', { id: 'lifecycle-title' }, 'Lifecycle'),
        h('div', { class: 'lifecycle' },
          h('div', { class: 'rotate' }, graceField, rotate),
          h('div', { class: 'actions' }, toggle, revoke)),
        status.el),
      editForm(t, path, changedWith),
      dialog);
  }
  return { el, show };
}
