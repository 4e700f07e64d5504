// The `Allowed origins` field: one origin per line, checked as the operator types by the edge
// itself (`POST /api/v1/origins/validate`, the create path's own rules and messages), the
// messages linked to the field with aria-describedby.

import { api } from './api.js';
import { h, uid } from './dom.js';

const HINTS = {
  web: 'One per line: scheme, host and port if not the default. A leading *. matches exactly one more label.',
  mobile: 'One app identity per line: android:// or ios:// followed by the application or bundle id.',
};

/**
 * Returns {el, textarea, lines(), setClientType(type)}. The client type picks the rules the
 * edge checks with (web origins or mobile app identities, SPEC §14).
 */
export function originsField(initial = [], clientType = 'web') {
  let type = clientType;
  const id = uid('origins');
  const hintId = `${id}-hint`;
  const errorsId = `${id}-errors`;
  const textarea = h('textarea', {
    id, name: 'origins', rows: 3, spellcheck: 'false', autocapitalize: 'off',
    'aria-describedby': `${hintId} ${errorsId}`,
  });
  textarea.value = initial.join('\n');
  const errors = h('ul', { id: errorsId, class: 'field-errors', 'aria-live': 'polite' });
  const lines = () => textarea.value.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  let timer = null;
  let asked = 0;
  const check = async () => {
    const mine = ++asked;
    let details = [];
    try {
      const r = await api('POST', '/api/v1/origins/validate', { origins: lines(), client_type: type });
      details = (r && r.details) || [];
    } catch {
      return; // an edge without the endpoint: the API still checks on submit
    }
    if (mine !== asked) return; // a newer check is on its way
    errors.replaceChildren(...details.map((d) => h('li', {}, d)));
    textarea.setAttribute('aria-invalid', details.length > 0 ? 'true' : 'false');
  };
  const later = () => {
    clearTimeout(timer);
    timer = setTimeout(check, 200);
  };
  textarea.addEventListener('input', later);
  const hint = h('p', { id: hintId, class: 'hint' }, HINTS[type] || HINTS.web);
  const el = h('div', { class: 'field' }, h('label', { for: id }, 'Allowed origins'), textarea, hint, errors);
  const setClientType = (next) => {
    if (next === type) return;
    type = next;
    hint.textContent = HINTS[type] || HINTS.web;
    if (lines().length > 0) later();
  };
  return { el, textarea, lines, setClientType };
}
