"""What an operator sees: Prometheus metrics of every process and of the cluster's shared state,
and OpenTelemetry traces.

Part of the wiring (the top floor): it may read every app, and no app imports it (the process
entry points — asgi, wsgi, celery, `run_outbox` — call `tracing.setup_tracing()`). It hooks in from
outside the flow — a middleware, Celery's task signals, the `events_published` signal, and reads
of the database and Redis at scrape time — so the flow's code carries no metrics calls.

    instruments.py  the metrics each process records (names, labels, buckets), defined once
    middleware.py   request latency per route and status
    receivers.py    task runtime and outcome, webhook deliveries, order outcomes, stock-outs
    cluster.py      read at scrape time: queue depth, outbox backlog and lag, the breaker
    exposition.py   what /metrics (and `manage.py serve_metrics`) answer, and the token check
    tracing.py      OpenTelemetry traces, off unless OTEL_EXPORTER_OTLP_ENDPOINT is set; one order is
                    one trace across the outbox (core's events get hooks from it, never import it)
"""
