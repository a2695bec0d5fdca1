"""The metrics each process records, defined once.

With PROMETHEUS_MULTIPROC_DIR set (in the environment, before the process starts) prometheus_client
keeps every value in a file of that directory per process, and a scrape sums the files: a counter
then counts what every web, worker and dispatcher process of the host did, not one process's
share. Without it (development, tests) the values live in the process that scrapes.

Labels stay bounded: a route is the URL pattern (never the raw path), a task its registered name,
a store its slug, an outcome one of a few words.
"""

from prometheus_client import Counter, Histogram

# Seconds; from a cached read to a slow intake under load.
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Seconds; tasks run from milliseconds (a handler) to a gateway call's timeouts.
TASK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)

REQUEST_DURATION = Histogram(
    "orderflow_http_request_duration_seconds",
    "Time to answer an HTTP request, per URL pattern (route), method and status code.",
    ["route", "method", "status"],
    buckets=REQUEST_BUCKETS,
)

TASK_DURATION = Histogram(
    "orderflow_task_duration_seconds",
    "Run time of a Celery task, per task name and outcome (success, failure, retry, ...).",
    ["task", "outcome"],
    buckets=TASK_BUCKETS,
)

ORDERS = Counter(
    "orderflow_orders",
    "Orders per store reaching an outcome: accepted (202 at intake), paid, failed (payment), "
    "rejected (fraud), cancelled, expired. Counted when the order's event is published.",
    ["store", "outcome"],
)

WEBHOOK_DELIVERIES = Counter(
    "orderflow_webhook_deliveries",
    "Outgoing webhook delivery attempts per outcome: succeeded, failed, retry, skipped, error.",
    ["outcome"],
)

STOCKOUTS = Counter(
    "orderflow_stockouts",
    "Products whose available stock reached zero, per store (one per crossing).",
    ["store"],
)

# The order event topics the ORDERS counter follows, and the outcome each one counts as.
ORDER_OUTCOMES = {
    "order.created": "accepted",
    "order.paid": "paid",
    "order.payment_failed": "failed",
    "order.rejected": "rejected",
    "order.cancelled": "cancelled",
    "order.expired": "expired",
}
