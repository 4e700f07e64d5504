// Drives the console (SPEC §13) in Debian's headless Chromium through playwright-core, with
// the browser suite's node_modules (tests/browser), against an edge the cargo test started.
//
// Protocol: the config comes in the CONSOLE_TEST env var as JSON
//   {"suite": "core" | "abuse", "console": "http://127.0.0.1:OPS", "ingest": "http://127.0.0.1:P",
//    "admin_key": "...", "screenshots": "<dir>"}
// and one line goes out on stdout: {"page_port": N, "browser": "...", "results": [{"id", "ok",
// "error", "ms", "data"}]}. Each step runs even when an earlier one failed (when it can), so one
// run names every failure. Diagnostics go to stderr; every wait is bounded.

import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundlePage } from '../browser/build.mjs';
import { coreSteps } from './core.mjs';
import { abuseSteps } from './abuse.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(join(here, '..', 'browser', 'package.json'));
const { chromium } = require('playwright-core');

const RUN_TIMEOUT_MS = 170_000;
export const STEP_TIMEOUT_MS = 30_000;
const log = (msg) => process.stderr.write(`[console-runner] ${msg}\n`);

setTimeout(() => {
  log(`run exceeded ${RUN_TIMEOUT_MS} ms, giving up`);
  process.exit(2);
}, RUN_TIMEOUT_MS).unref();

/** The browser suite's OTel page, served on 127.0.0.1 (loaded as http://localhost:<port>). */
async function startPageServer() {
  const html = await readFile(join(here, '..', 'browser', 'page', 'index.html'), 'utf8');
  const js = await bundlePage();
  const server = createServer((req, res) => {
    const path = new URL(req.url, 'http://placeholder').pathname;
    if (path === '/') {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
      res.end(html);
    } else if (path === '/bundle.js') {
      res.writeHead(200, { 'Content-Type': 'text/javascript; charset=utf-8' });
      res.end(js);
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  return { server, port: server.address().port };
}

async function main() {
  const config = JSON.parse(process.env.CONSOLE_TEST || '{}');
  const { server, port } = await startPageServer();
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    headless: true,
    timeout: STEP_TIMEOUT_MS,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--disable-default-apps', '--disable-extensions',
      '--host-resolver-rules=MAP *.localtest 127.0.0.1'],
  });
  const results = [];
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    page.setDefaultTimeout(STEP_TIMEOUT_MS);
    page.on('console', (m) => log(`console.${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => log(`page error: ${e.message}`));
    const env = { ...config, page, context, browser, pagePort: port, log, state: {} };
    const steps = config.suite === 'abuse' ? abuseSteps : coreSteps;
    for (const [id, step] of steps) {
      const started = Date.now();
      log(`step ${id}`);
      try {
        const data = await step(env);
        results.push({ id, ok: true, ms: Date.now() - started, data: data ?? null });
      } catch (e) {
        log(`step ${id} failed: ${e && e.stack ? e.stack : e}`);
        results.push({ id, ok: false, ms: Date.now() - started, error: String(e && e.message ? e.message : e) });
      }
    }
  } finally {
    process.stdout.write(`${JSON.stringify({ page_port: port, browser: browser.version(), results })}\n`);
    await browser.close();
    server.close();
  }
}

main().then(() => process.exit(0), (e) => {
  log(`failed: ${e && e.stack ? e.stack : e}`);
  process.exit(1);
});
