// The `Allowed origins` field: one origin per line, checked as the operator types by the edge
// itself (`POST /api/v1/origins/validate`, the create path's own rules and messages), the
// messages linked to the field with aria-describedby.

import { api } from './api.js';
import { h, uid } from './dom.js';

/** Returns {el, textarea, lines()}. */
export function originsField(initial = []) {
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
      const r = await api('POST', '/api/v1/origins/validate', { origins: lines() });
      details = (r && r.details) || [];
    } catch {
      return; // an edge without the endpoint: the API still checks on submit
    }
    if (mine !== asked) return; // a newer check is on its way
    errors.replaceChildren(...details.map((d) => h('li', {}, d)));
    textarea.setAttribute('aria-invalid', details.length > 0 ? 'true' : 'false');
  };
  textarea.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(check, 200);
  });
  const el = h('div', { class: 'field' },
    h('label', { for: id }, 'Allowed origins'),
    textarea,
    h('p', { id: hintId, class: 'hint' },
      'One per line: scheme, host and port if not the default. A leading *. matches exactly one more label.'),
    errors);
  return { el, textarea, lines };
}
