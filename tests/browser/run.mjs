// Drives the OpenTelemetry web SDK page in Debian's headless Chromium through
// playwright-core, against an edge the caller started.
//
// Protocol (one JSON document per line, so the caller can pick ports first):
//   1. stdout: {"ready":true,"page_port":N,"browser":"<version>"} once the page
//      server listens on 127.0.0.1:N and Chromium is up. The caller now creates
//      tokens whose origins name that port.
//   2. stdin:  {"edge":"http://127.0.0.1:P","scenarios":[{"id","host","action","args"}]}
//      `host` is the name the page is loaded from (localhost, 127.0.0.1, or a
//      *.localtest name mapped to 127.0.0.1 by --host-resolver-rules); `action`
//      is one of the functions page/main.js puts on window.edgeTest. A scenario
//      may name its own `edge` (the HTTPS edge); TRUST_SPKI in the environment
//      (base64 SHA-256 of a test key's SubjectPublicKeyInfo) makes Chromium accept
//      that edge's test certificate.
//   3. stdout: {"results":[{"id","origin","served_host","page","network"}]}
// Diagnostics go to stderr. Every wait is bounded; the whole run is capped by
// RUN_TIMEOUT_MS and exits non-zero on any failure.

import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';
import { bundlePage } from './build.mjs';
import { watchNetwork } from './network.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const RUN_TIMEOUT_MS = 120_000;
const STEP_TIMEOUT_MS = 20_000;

const log = (msg) => process.stderr.write(`[browser-runner] ${msg}\n`);

const overall = setTimeout(() => {
  log(`run exceeded ${RUN_TIMEOUT_MS} ms, giving up`);
  process.exit(2);
}, RUN_TIMEOUT_MS);
overall.unref();

/** Serves the page and its bundle; remembers the Host header of each page load. */
async function startPageServer(html, js) {
  const hostsSeen = [];
  const server = createServer((req, res) => {
    const path = new URL(req.url, 'http://placeholder').pathname;
    if (path === '/' || path === '/index.html') {
      hostsSeen.push(req.headers.host || '');
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
      res.end(html);
    } else if (path === '/bundle.js') {
      res.writeHead(200, { 'Content-Type': 'text/javascript; charset=utf-8', 'Cache-Control': 'no-store' });
      res.end(js);
    } else if (path === '/favicon.ico') {
      res.writeHead(204);
      res.end();
    } else {
      res.writeHead(404, { 'Content-Type': 'text/plain' });
      res.end('not found');
    }
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  return { server, port: server.address().port, hostsSeen };
}

/** Reads exactly one line from stdin, bounded in time. */
function readConfigLine() {
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input: process.stdin });
    const timer = setTimeout(() => reject(new Error('no config on stdin in time')), STEP_TIMEOUT_MS * 3);
    rl.once('line', (line) => {
      clearTimeout(timer);
      resolve(line);
      rl.close();
    });
    rl.once('close', () => reject(new Error('stdin closed before the config line')));
  });
}

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function runScenario(browser, pagePort, hostsSeen, defaultEdge, scenario) {
  const edge = scenario.edge || defaultEdge;
  const origin = `http://${scenario.host}:${pagePort}`;
  const started = Date.now();
  // A fresh context per scenario: no cached preflights, cookies or sockets
  // carry over from one scenario to the next.
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    page.on('console', (m) => log(`${scenario.id} console.${m.type()}: ${m.text()}`));
    const network = await watchNetwork(context, page, edge);
    const before = hostsSeen.length;
    await page.goto(`${origin}/`, { timeout: STEP_TIMEOUT_MS });
    await page.waitForFunction(() => window.edgeTestReady === true, null, { timeout: STEP_TIMEOUT_MS });
    const args = { edge, ...scenario.args };
    const result = await withTimeout(
      page.evaluate(({ action, args }) => window.edgeTest[action](args), { action: scenario.action, args }),
      STEP_TIMEOUT_MS,
      `scenario ${scenario.id}`,
    );
    // sendBeacon and keepalive fetches outlive the call that made them: wait
    // until the browser reports every request to the edge as finished.
    await network.settled(STEP_TIMEOUT_MS);
    return {
      id: scenario.id,
      origin,
      served_host: hostsSeen.slice(before)[0] || null,
      page: result,
      network: network.summary(),
      ms: Date.now() - started,
    };
  } finally {
    await context.close();
  }
}

async function main() {
  const t0 = Date.now();
  const html = await readFile(join(here, 'page', 'index.html'), 'utf8');
  const js = await bundlePage();
  const { server, port, hostsSeen } = await startPageServer(html, js);
  let browser;
  try {
    // launch() gives Chromium a fresh temporary profile and deletes it on close.
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      timeout: STEP_TIMEOUT_MS,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-dev-shm-usage',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--disable-default-apps',
        '--disable-extensions',
        // Wildcard origins need names with several labels; map them all to
        // the page server so no DNS is ever asked.
        '--host-resolver-rules=MAP *.localtest 127.0.0.1',
        ...(process.env.TRUST_SPKI ? [`--ignore-certificate-errors-spki-list=${process.env.TRUST_SPKI}`] : []),
      ],
    });
    log(`ready after ${Date.now() - t0} ms`);
    process.stdout.write(`${JSON.stringify({ ready: true, page_port: port, browser: browser.version() })}\n`);
    const config = JSON.parse(await readConfigLine());
    const results = [];
    for (const scenario of config.scenarios) {
      log(`scenario ${scenario.id}: ${scenario.action} from http://${scenario.host}:${port}`);
      results.push(await runScenario(browser, port, hostsSeen, config.edge, scenario));
    }
    process.stdout.write(`${JSON.stringify({ results })}\n`);
  } finally {
    if (browser) await browser.close();
    server.close();
  }
}

main().then(
  () => process.exit(0),
  (error) => {
    log(`failed: ${error && error.stack ? error.stack : error}`);
    process.exit(1);
  },
);
