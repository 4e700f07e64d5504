// A mobile app's OpenTelemetry sender, as React Native apps use it: sdk-trace-base and the
// OTLP HTTP exporter under Node (no browser, no Origin header), with the app identity and the
// install id as custom headers. Driven by tests/mobile_senders.rs.
//
// Environment: EDGE_URL (e.g. http://127.0.0.1:PORT/v1/traces), TOKEN, CLIENT_ORIGIN,
// CLIENT_ID (optional), SPANS (how many spans). Prints one JSON line:
// {"spans": n, "results": [{"code": 0|1, "status": <HTTP status on failure>}]}.
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';

const env = process.env;
const headers = { Authorization: `Bearer ${env.TOKEN}`, 'X-Client-Origin': env.CLIENT_ORIGIN };
if (env.CLIENT_ID) headers['X-Client-Id'] = env.CLIENT_ID;
const exporter = new OTLPTraceExporter({ url: env.EDGE_URL, headers });

// Records each export's outcome (the SDK only logs failures).
const results = [];
const recording = {
  export(spans, done) {
    exporter.export(spans, (r) => {
      results.push({ code: r.code, status: r.error?.code ?? null, message: r.error ? String(r.error.message) : null });
      done(r);
    });
  },
  shutdown: () => exporter.shutdown(),
  forceFlush: () => exporter.forceFlush(),
};

const provider = new BasicTracerProvider({
  resource: resourceFromAttributes({ 'service.name': 'shop-app', 'os.name': 'android' }),
  spanProcessors: [new BatchSpanProcessor(recording, { maxExportBatchSize: 1000, maxQueueSize: 10000 })],
});
const tracer = provider.getTracer('mobile-test');
const n = Number(env.SPANS ?? '1');
for (let i = 0; i < n; i++) {
  tracer.startActiveSpan(`screen.view ${i}`, (span) => {
    span.setAttribute('screen.name', 'cart');
    span.end();
  });
}
// A failed export also rejects the flush; the outcome is in `results` either way.
await provider.forceFlush().catch(() => {});
await provider.shutdown().catch(() => {});
console.log(JSON.stringify({ spans: n, results }));
