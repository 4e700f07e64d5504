// `New token`: one form in the product's own steps (token type, client type, allowed origins,
// name, environment), then the secret, shown once.

import { api, ApiError } from './api.js';
import { h, field, uid } from './dom.js';
import { originsField } from './origins.js';
import { secretBox } from './secret.js';

function radios(legend, name, options) {
  const inputs = options.map(([value, label], i) => {
    const id = uid(name);
    const input = h('input', { type: 'radio', name, id, value, checked: i === 0 });
    return [input, h('label', { for: id, class: 'choice' }, input, ' ', label)];
  });
  const set = h('fieldset', {}, h('legend', {}, legend), inputs.map(([, l]) => l));
  return { el: set, value: () => (inputs.find(([i]) => i.checked) || inputs[0])[0].value, inputs: inputs.map(([i]) => i) };
}

export function createScreen(view) {
  const tokenType = radios('Token type', 'token-type', [['client', 'Client'], ['remote_write', 'Prometheus Remote-Write']]);
  const clientType = radios('Client type', 'client-type', [['web', 'Web Browser'], ['mobile', 'Mobile']]);
  const origins = originsField();
  const [nameField, name] = field('Name', h('input', { type: 'text', name: 'name', required: true, maxlength: 200, autocomplete: 'off' }));
  const listId = uid('envs');
  const [envField, env] = field('Environment', h('input', { type: 'text', name: 'environment', list: listId, autocomplete: 'off' }),
    'Free text; letters, digits, _ . -');
  envField.append(h('datalist', { id: listId }, ['production', 'staging', 'development'].map((v) => h('option', { value: v }))));
  const problems = h('div', { role: 'alert', class: 'error' });
  const submit = h('button', { type: 'submit' }, 'Create token');

  const sync = () => {
    const client = tokenType.value() === 'client';
    clientType.el.hidden = !client;
    origins.el.hidden = !client;
    origins.setClientType(clientType.value());
  };
  [...tokenType.inputs, ...clientType.inputs].forEach((i) => i.addEventListener('change', sync));
  sync();

  const form = h('form', { class: 'card create-form', 'aria-labelledby': 'new-title', novalidate: true },
    h('h1', { id: 'new-title' }, 'New token'),
    h('ol', { class: 'steps' },
      h('li', {}, tokenType.el),
      h('li', {}, clientType.el),
      h('li', {}, origins.el),
      h('li', {}, nameField, envField)),
    problems,
    h('div', { class: 'actions' }, submit, h('a', { href: '#/tokens', class: 'button quiet' }, 'Cancel')));

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    problems.replaceChildren();
    const body = { name: name.value, type: tokenType.value(), environment: env.value.trim() };
    if (body.type === 'client') {
      body.client_type = clientType.value();
      body.origins = origins.lines();
    }
    submit.disabled = true;
    try {
      const created = await api('POST', '/api/v1/tokens', body);
      view.replaceChildren(
        h('h1', {}, `Created ${created.name}`),
        secretBox(created.token, created.type),
        h('p', { class: 'actions' },
          h('a', { class: 'button', href: `#/token/${encodeURIComponent(created.id)}` }, 'Open the token'),
          h('a', { class: 'button quiet', href: '#/tokens' }, 'Back to tokens')));
    } catch (err) {
      const lines = err instanceof ApiError && err.details.length > 0 ? err.details : [];
      problems.replaceChildren(h('p', {}, `The edge refused the token: ${err.message}`),
        h('ul', {}, lines.map((d) => h('li', {}, d))));
    } finally {
      submit.disabled = false;
    }
  });
  view.replaceChildren(form);
}
