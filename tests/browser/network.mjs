// Watches, through the Chrome DevTools Protocol, the requests a page makes to
// the edge, CORS preflights included (Playwright's own request events do not
// show preflights). This is the browser's side of the story: which requests it
// sent, what status it got, and whether CORS blocked them.

/**
 * Starts watching `page`'s requests whose URL starts with `edge`.
 * Returns { settled(ms), summary() }.
 */
export async function watchNetwork(context, page, edge) {
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  /** requestId -> entry; a preflight has its own requestId. */
  const entries = new Map();
  const order = [];

  const entryFor = (requestId) => {
    let entry = entries.get(requestId);
    if (!entry) {
      entry = { method: null, url: null, type: null, status: null, protocol: null, done: false, failed: null, cors: null };
      entries.set(requestId, entry);
      order.push(requestId);
    }
    return entry;
  };
  const isEdge = (url) => typeof url === 'string' && url.startsWith(edge);

  cdp.on('Network.requestWillBeSent', (e) => {
    if (!isEdge(e.request.url)) return;
    const entry = entryFor(e.requestId);
    entry.method = e.request.method;
    entry.url = e.request.url;
    entry.type = e.type || null;
  });
  cdp.on('Network.responseReceived', (e) => {
    const entry = entries.get(e.requestId);
    if (!entry) return;
    entry.status = e.response.status;
    // "h2" or "http/1.1": what the connection to the edge spoke.
    entry.protocol = e.response.protocol || null;
  });
  cdp.on('Network.loadingFinished', (e) => {
    const entry = entries.get(e.requestId);
    if (entry) entry.done = true;
  });
  cdp.on('Network.loadingFailed', (e) => {
    const entry = entries.get(e.requestId);
    if (!entry) return;
    entry.done = true;
    entry.failed = e.errorText || 'failed';
    if (e.corsErrorStatus) entry.cors = e.corsErrorStatus.corsError;
  });

  return {
    /** Resolves once no request to the edge is in flight, or after `ms`. */
    async settled(ms) {
      const deadline = Date.now() + ms;
      // A short quiet period first: a beacon is queued before it is sent.
      await new Promise((r) => setTimeout(r, 100));
      while (Date.now() < deadline) {
        const pending = [...entries.values()].filter((x) => !x.done);
        if (pending.length === 0) return;
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    summary() {
      const list = order.map((id) => entries.get(id));
      return {
        preflights: list.filter((x) => x.type === 'Preflight' || x.method === 'OPTIONS'),
        requests: list.filter((x) => !(x.type === 'Preflight' || x.method === 'OPTIONS')),
      };
    },
  };
}
