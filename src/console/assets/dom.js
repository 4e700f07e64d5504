// DOM helpers. Every element is built with createElement and text nodes, never from an HTML
// string, so a token's name or an origin from an attacker is only ever text.

const SVG_NS = 'http://www.w3.org/2000/svg';

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** An HTML element: `h('a', {href: '#/'}, 'text', child)`. `on<event>` props add listeners. */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'value') el.value = v;
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

/** An SVG element, attributes as given. */
export function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v !== undefined && v !== null) el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

let nextId = 0;
/** A document-unique id for label/aria wiring. */
export function uid(prefix) {
  nextId += 1;
  return `${prefix}-${nextId}`;
}

/** A labelled form control: returns [wrapper, control]. */
export function field(label, control, hint) {
  const id = control.id || uid('f');
  control.id = id;
  const parts = [h('label', { for: id }, label), control];
  if (hint) {
    const hintId = uid('hint');
    control.setAttribute('aria-describedby', hintId);
    parts.push(h('p', { id: hintId, class: 'hint' }, hint));
  }
  return [h('div', { class: 'field' }, parts), control];
}

export function fmtNumber(n) {
  return Number(n || 0).toLocaleString('en-US');
}

/** "12 s", "5 min", "3 h", "4 d". */
export function fmtDuration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) return `${Math.floor(s / 3600)} h`;
  return `${Math.floor(s / 86400)} d`;
}

/** "3 min ago" from an RFC 3339 time or unix seconds; "never" when absent. */
export function ago(when) {
  if (when === null || when === undefined || when === '') return 'never';
  const t = typeof when === 'number' ? when * 1000 : Date.parse(when);
  if (Number.isNaN(t)) return String(when);
  const secs = (Date.now() - t) / 1000;
  return secs < 60 ? 'just now' : `${fmtDuration(secs)} ago`;
}

/** An RFC 3339 or unix time as the reader's local date and time. */
export function fmtTime(when) {
  if (when === null || when === undefined || when === '') return '';
  const t = typeof when === 'number' ? when * 1000 : Date.parse(when);
  return Number.isNaN(t) ? String(when) : new Date(t).toLocaleString('en-GB');
}

export function typeName(t) {
  if (t.type === 'remote_write') return 'Prometheus Remote-Write';
  return t.client_type === 'mobile' ? 'Client (mobile)' : 'Client (web)';
}

/** "origin_storm" -> "origin storm". */
export function signalName(signal) {
  return String(signal).replaceAll('_', ' ');
}

/** A status line announced to screen readers; `set(text, isError)`. */
export function statusLine() {
  const el = h('p', { role: 'status', class: 'status' });
  return {
    el,
    set(text, isError = false) {
      el.textContent = text;
      el.classList.toggle('error', isError);
    },
  };
}
