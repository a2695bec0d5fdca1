"""Workers export their metrics through the host's PROMETHEUS_MULTIPROC_DIR: a real Celery worker
(prefork: its task runs in a child process) writes there, and both the web process's /metrics and
`manage.py serve_metrics` (for a host with no web process) answer its figures, behind the token."""

from __future__ import annotations

import pytest
from django.test import Client
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from alerts.tasks import resend_stale_deliveries
from orderflow.observability.exposition import wsgi_app
from tests.conftest import wait_until

TASK = {"task": "alerts.resend_stale_deliveries", "outcome": "success"}


def runs_in(path) -> float:
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(path))
    return registry.get_sample_value("orderflow_task_duration_seconds_count", TASK) or 0.0


def runs_in_text(text: str) -> float:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "orderflow_task_duration_seconds_count" and s.labels == TASK:
                return s.value
    return 0.0


@pytest.mark.timeout(120)
def test_a_worker_exports_its_task_metrics_through_the_shared_directory(
    start_worker, transactional_db, tmp_path, monkeypatch
):
    start_worker(queues="default", concurrency=1, env={"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)})
    for _ in range(2):
        resend_stale_deliveries.apply_async(queue="default")
    wait_until(lambda: runs_in(tmp_path) >= 2, 30, message="the worker's task runs in the metrics directory")
    assert runs_in(tmp_path) == 2

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))  # as the web process of that host
    scraped = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer test-suite-metrics-token")
    assert scraped.status_code == 200
    text = scraped.content.decode()
    assert runs_in_text(text) == 2
    assert "orderflow_queue_messages" in text  # and the cluster's state beside it

    replies = []

    def start_response(status, headers):
        replies.append((status, dict(headers)))

    assert b"".join(wsgi_app({"PATH_INFO": "/metrics"}, start_response)).startswith(b"the metrics token")
    assert replies[-1][0].startswith("401")
    body = b"".join(
        wsgi_app(
            {"PATH_INFO": "/metrics", "HTTP_AUTHORIZATION": "Bearer test-suite-metrics-token"}, start_response
        )
    )
    assert replies[-1][0].startswith("200")
    assert runs_in_text(body.decode()) == 2
