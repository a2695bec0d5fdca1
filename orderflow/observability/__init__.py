"""What an operator scrapes: Prometheus metrics of every process and of the cluster's shared state.

Part of the wiring (the top floor): it may read every app, and no app imports it. It hooks in from
outside the flow — a middleware, Celery's task signals, the `events_published` signal, and reads
of the database and Redis at scrape time — so the flow's code carries no metrics calls.

    instruments.py  the metrics each process records (names, labels, buckets), defined once
    middleware.py   request latency per route and status
    receivers.py    task runtime and outcome, webhook deliveries, order outcomes, stock-outs
    cluster.py      read at scrape time: queue depth, outbox backlog and lag, the breaker
    exposition.py   what /metrics (and `manage.py serve_metrics`) answer, and the token check
"""
