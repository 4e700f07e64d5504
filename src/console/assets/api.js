// The admin API, as the console calls it: same origin, the session cookie, and on every call
// the header the server's CSRF check asks for (the browser adds the Origin itself).

export class ApiError extends Error {
  constructor(status, body) {
    const err = (body && body.error) || {};
    super(err.message || `HTTP ${status}`);
    this.status = status;
    this.code = err.code || '';
    this.details = Array.isArray(err.details) ? err.details : [];
  }
}

let signedOut = () => {};
/** Called when a call answers 401: the session ended (expired, signed out elsewhere). */
export function onSignedOut(fn) {
  signedOut = fn;
}

export async function api(method, path, body) {
  const headers = { 'X-Requested-With': 'ingest-edge', Accept: 'application/json' };
  const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const resp = await fetch(path, init);
  let data = null;
  if (resp.status !== 204) {
    try {
      data = await resp.json();
    } catch {
      data = null;
    }
  }
  if (!resp.ok) {
    const error = new ApiError(resp.status, data);
    if (resp.status === 401 && path !== '/api/v1/session') signedOut();
    throw error;
  }
  return data;
}

/** A read that an older edge may not have: `null` on 404 (shown as "no data"). */
export async function optional(path) {
  try {
    return await api('GET', path);
  } catch (e) {
    if (e.status === 404) return null;
    throw e;
  }
}

/** One line for an error: its message and details. */
export function describe(error) {
  if (!(error instanceof ApiError)) return String(error && error.message ? error.message : error);
  return [error.message, ...error.details].join(': ');
}
