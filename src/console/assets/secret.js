// The one-time secret box (create and rotate): the secret in `data-testid="new-secret"`, a
// Copy button, and what secret scanners should do with it.

import { h, statusLine } from './dom.js';

export function secretBox(secret, tokenType, heading = 'Your new secret') {
  const status = statusLine();
  const code = h('code', { 'data-testid': 'new-secret', class: 'secret' }, secret);
  const copy = h('button', { type: 'button' }, 'Copy');
  copy.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(secret);
      status.set('Copied to the clipboard.');
    } catch {
      // No clipboard permission: select the text so Ctrl+C copies it.
      const range = document.createRange();
      range.selectNodeContents(code);
      const sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
      status.set('Selected: press Ctrl+C (or Cmd+C) to copy.');
    }
  });
  const scanner = tokenType === 'remote_write'
    ? 'Secret scanners flag iew_ secrets: this one writes metrics. Keep it out of repositories and chat; if it leaks, rotate it.'
    : 'Client tokens (iec_) are public by design: they live in web pages and are bound to their origins. Allow-list the iec_ prefix in your secret scanner; keep flagging iew_ (remote-write) secrets.';
  return h('section', { class: 'card secret-box', 'aria-labelledby': 'secret-title' },
    h('h2', { id: 'secret-title' }, heading),
    h('p', {}, h('strong', {}, 'Shown once.'), ' Copy it now: the edge keeps only a digest and cannot show it again.'),
    h('div', { class: 'secret-row' }, code, copy),
    status.el,
    h('p', { class: 'hint' }, scanner));
}
