// Sign-in: the admin key starts a server-side session (an HttpOnly cookie the page never sees).

import { api, describe } from './api.js';
import { h, field, statusLine } from './dom.js';

export function signInScreen(view, onSignedIn) {
  const [keyField, key] = field(
    'Admin key',
    h('input', { type: 'password', name: 'key', autocomplete: 'current-password', required: true }),
    'The key from the edge config, INGEST_EDGE_ADMIN_KEY, or the data directory\'s admin.key.',
  );
  const status = statusLine();
  const button = h('button', { type: 'submit' }, 'Sign in');
  const form = h('form', { class: 'card narrow', 'aria-labelledby': 'signin-title' },
    h('h1', { id: 'signin-title' }, 'Sign in'),
    keyField, button, status.el);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    button.disabled = true;
    status.set('Signing in…');
    try {
      await api('POST', '/api/v1/session', { key: key.value });
      key.value = '';
      onSignedIn();
    } catch (err) {
      status.set(err.status === 401 ? 'Wrong admin key.' : describe(err), true);
    } finally {
      button.disabled = false;
    }
  });
  view.replaceChildren(form);
  key.focus();
}
