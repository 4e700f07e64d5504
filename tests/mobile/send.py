"""A mobile app's OpenTelemetry sender from PyPI: opentelemetry-sdk with
opentelemetry-exporter-otlp-proto-http (OTLP protobuf over HTTP, no browser, no Origin
header), with the app identity and install id as custom headers. Driven by
tests/mobile_senders.rs.

Environment: EDGE_URL, TOKEN, CLIENT_ORIGIN, CLIENT_ID (optional), SPANS. Prints one JSON
line: {"spans": n, "results": ["SUCCESS" | "FAILURE", ...]}.
"""

import json
import os

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

env = os.environ
headers = {"Authorization": f"Bearer {env['TOKEN']}", "X-Client-Origin": env["CLIENT_ORIGIN"]}
if env.get("CLIENT_ID"):
    headers["X-Client-Id"] = env["CLIENT_ID"]
exporter = OTLPSpanExporter(endpoint=env["EDGE_URL"], headers=headers, timeout=10)


class Recording(SpanExporter):
    """Records each export's outcome (the SDK only logs failures)."""

    def __init__(self, inner):
        self.inner = inner
        self.results = []

    def export(self, spans):
        result = self.inner.export(spans)
        self.results.append(result.name)
        return result

    def shutdown(self):
        self.inner.shutdown()


recording = Recording(exporter)
provider = TracerProvider(resource=Resource.create({"service.name": "shop-app", "os.name": "ios"}))
provider.add_span_processor(BatchSpanProcessor(recording, max_export_batch_size=1000, max_queue_size=10000))
tracer = provider.get_tracer("mobile-test")
n = int(env.get("SPANS", "1"))
for i in range(n):
    with tracer.start_as_current_span(f"screen.view {i}") as span:
        span.set_attribute("screen.name", "cart")
provider.force_flush()
provider.shutdown()
print(json.dumps({"spans": n, "results": recording.results}))
