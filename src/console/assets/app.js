// The console's shell: checks the session, shows sign-in or the navigation, and routes
// `#/tokens`, `#/new`, `#/token/<id>`, `#/abuse`, `#/audit` to one module per screen.

import { api, onSignedOut } from './api.js';
import { h } from './dom.js';
import { signInScreen } from './signin.js';
import { tokensScreen } from './tokens.js';
import { createScreen } from './create.js';
import { tokenScreen } from './token.js';
import { abuseScreen } from './abuse.js';
import { auditScreen } from './audit.js';

const routes = {
  tokens: tokensScreen,
  new: createScreen,
  token: tokenScreen,
  abuse: abuseScreen,
  audit: auditScreen,
};

const main = document.getElementById('main');
const nav = document.getElementById('nav');
let signedIn = false;
/** Cleanups of the screen on show (timers): run when it is left. */
let leaving = [];

function leave() {
  for (const fn of leaving) fn();
  leaving = [];
}

async function show() {
  leave();
  nav.hidden = !signedIn;
  if (!signedIn) {
    const view = h('div');
    main.replaceChildren(view);
    signInScreen(view, () => {
      signedIn = true;
      show();
    });
    return;
  }
  const [name, ...rest] = location.hash.replace(/^#\/?/, '').split('/');
  const route = routes[name] ? name : 'tokens';
  for (const a of nav.querySelectorAll('a')) {
    const current = a.dataset.route === route || (route !== 'abuse' && route !== 'audit' && a.dataset.route === 'tokens');
    if (current) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  // Each screen draws into its own view: a screen still loading when the operator moves on
  // draws into a detached node, never over the next screen.
  const view = h('div', { class: 'screen' });
  main.replaceChildren(view);
  const ctx = { onLeave: (fn) => leaving.push(fn), isShown: () => view.isConnected };
  try {
    await routes[route](view, decodeURIComponent(rest.join('/')), ctx);
  } catch (err) {
    if (view.isConnected) view.replaceChildren(h('p', { role: 'alert', class: 'error' }, String(err.message || err)));
  }
}

onSignedOut(() => {
  if (!signedIn) return;
  signedIn = false;
  show();
});

document.getElementById('sign-out').addEventListener('click', async () => {
  try {
    await api('DELETE', '/api/v1/session');
  } finally {
    signedIn = false;
    location.hash = '#/tokens';
    show();
  }
});

window.addEventListener('hashchange', show);
// A link to the screen already shown redraws it (no hashchange fires): fresh data on click.
for (const a of nav.querySelectorAll('a')) {
  a.addEventListener('click', () => {
    if (a.getAttribute('href') === location.hash) show();
  });
}

api('GET', '/api/v1/session').then(
  () => { signedIn = true; },
  () => { signedIn = false; },
).finally(show);
