// The page under test: the real OpenTelemetry web SDK, bundled by build.mjs.
//
// It exposes `window.edgeTest`, a set of actions the runner calls through
// `page.evaluate`. Each action returns plain JSON describing what the page's own
// JavaScript observed (export result codes, HTTP statuses, readable headers,
// error names), so the cargo test can compare it with what the edge counted.

import { WebTracerProvider, BatchSpanProcessor, InMemorySpanExporter } from '@opentelemetry/sdk-trace-web';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPLogExporter } from '@opentelemetry/exporter-logs-otlp-http';
import { LoggerProvider, BatchLogRecordProcessor } from '@opentelemetry/sdk-logs';
import { JsonTraceSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';

const SERVICE = 'ingest-edge-browser-test';

function resource() {
  return resourceFromAttributes({
    'service.name': SERVICE,
    'app.page_origin': window.location.origin,
  });
}

// Wraps an SDK exporter so the page records every export result the SDK reports,
// instead of trusting that a flush that returned means the data arrived.
function recording(inner, results) {
  return {
    export(items, done) {
      inner.export(items, (result) => {
        results.push({
          code: result.code,
          items: items.length,
          error: result.error ? String(result.error.message || result.error) : null,
        });
        done(result);
      });
    },
    shutdown: () => inner.shutdown(),
    forceFlush: () => (inner.forceFlush ? inner.forceFlush() : Promise.resolve()),
  };
}

// A timeout far below the runner's own, so a hung export shows up as a failed
// result rather than as a runner timeout.
const EXPORT_TIMEOUT_MS = 5000;

function bearer(token) {
  return { Authorization: `Bearer ${token}` };
}

async function exportTraces({ edge, token, spans }) {
  const results = [];
  const exporter = new OTLPTraceExporter({
    url: `${edge}/v1/traces`,
    headers: bearer(token),
    timeoutMillis: EXPORT_TIMEOUT_MS,
  });
  // A batch larger than `spans` so a single flush sends one request.
  const provider = new WebTracerProvider({
    resource: resource(),
    spanProcessors: [
      new BatchSpanProcessor(recording(exporter, results), {
        maxExportBatchSize: 512,
        scheduledDelayMillis: 60000,
        exportTimeoutMillis: EXPORT_TIMEOUT_MS,
      }),
    ],
  });
  const tracer = provider.getTracer(SERVICE, '0.1.0');
  for (let i = 0; i < spans; i += 1) {
    const span = tracer.startSpan(`browser.span.${i}`, { attributes: { 'app.index': i } });
    span.end();
  }
  await provider.forceFlush();
  await provider.shutdown();
  return { results };
}

async function exportLogs({ edge, token, records }) {
  const results = [];
  const exporter = new OTLPLogExporter({
    url: `${edge}/v1/logs`,
    headers: bearer(token),
    timeoutMillis: EXPORT_TIMEOUT_MS,
  });
  const provider = new LoggerProvider({
    resource: resource(),
    processors: [
      // sdk-logs 0.2xx takes one options object, unlike BatchSpanProcessor.
      new BatchLogRecordProcessor({
        exporter: recording(exporter, results),
        maxExportBatchSize: 512,
        scheduledDelayMillis: 60000,
        exportTimeoutMillis: EXPORT_TIMEOUT_MS,
      }),
    ],
  });
  const logger = provider.getLogger(SERVICE, '0.1.0');
  for (let i = 0; i < records; i += 1) {
    logger.emit({ severityText: 'INFO', body: `browser log ${i}`, attributes: { 'app.index': i } });
  }
  await provider.forceFlush();
  await provider.shutdown();
  return { results };
}

// OTLP JSON made by the SDK itself (spans from a real tracer, serialized by the
// SDK's JSON serializer), sent the way pages send on unload: sendBeacon with a
// string body (text/plain, no preflight) and the token in the query.
async function beaconTraces({ edge, token, spans }) {
  const memory = new InMemorySpanExporter();
  const provider = new WebTracerProvider({
    resource: resource(),
    spanProcessors: [new BatchSpanProcessor(memory, { scheduledDelayMillis: 60000 })],
  });
  const tracer = provider.getTracer(SERVICE, '0.1.0');
  for (let i = 0; i < spans; i += 1) {
    tracer.startSpan(`browser.beacon.${i}`).end();
  }
  await provider.forceFlush();
  const finished = memory.getFinishedSpans();
  const json = new TextDecoder().decode(JsonTraceSerializer.serializeRequest(finished));
  await provider.shutdown();
  const url = `${edge}/v1/traces?token=${encodeURIComponent(token)}`;
  const queued = navigator.sendBeacon(url, json);
  return { queued, spans: finished.length, bytes: json.length };
}

// Plain fetches, so the page reads status and headers exactly as any script
// would: the point is what CORS lets it see.
async function post({ url, headers, body, times }) {
  const out = [];
  for (let i = 0; i < (times || 1); i += 1) {
    try {
      const response = await fetch(url, { method: 'POST', mode: 'cors', headers, body });
      out.push({
        status: response.status,
        retryAfter: response.headers.get('Retry-After'),
        body: await response.text(),
        error: null,
      });
    } catch (error) {
      out.push({ status: null, retryAfter: null, body: null, error: error.name, message: String(error.message) });
    }
  }
  return { responses: out };
}

window.edgeTest = { exportTraces, exportLogs, beaconTraces, post };
window.edgeTestReady = true;
