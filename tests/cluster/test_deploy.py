"""deploy/ is the production layout, and `make run` runs the same role definitions: every queue of
the settings has its worker in deploy/Procfile, there is one beat, and every process `make run`
starts but the mock gateway (our test bank, no production role) goes through deploy/run-role."""

import os
import subprocess

from django.conf import settings

from tests.cluster.harness import DEPLOY, ROOT, procfile
from tests.conftest import load_run_stack

RUN_ROLE = "deploy/run-role "


def test_every_queue_has_one_worker_and_the_install_one_beat_one_dispatcher_one_web():
    roles = {name: command.removeprefix(RUN_ROLE).split() for name, command in DEPLOY.items()}
    assert all(command.startswith(RUN_ROLE) for command in DEPLOY.values()), DEPLOY
    worker_queues = [args[1] for args in roles.values() if args[0] == "worker"]
    queues = [q for group in worker_queues for q in group.split(",")]
    assert sorted(queues) == sorted(q.name for q in settings.CELERY_TASK_QUEUES)
    assert [args[0] for args in roles.values()].count("beat") == 1
    assert [args for args in roles.values() if args[0] != "worker"] == [["web"], ["beat"], ["dispatcher"]]


def test_make_run_starts_its_processes_through_the_same_roles():
    processes = procfile(ROOT / "Procfile")
    assert processes.pop("gateway").startswith("$VENV_BIN/python -m mock_gateway")
    assert processes == {
        "web": "deploy/run-role web",
        "worker": "deploy/run-role worker",  # no queues named: every queue of the settings
        "beat": "deploy/run-role beat",
        "outbox": "deploy/run-role dispatcher",
    }


def test_run_role_refuses_a_role_it_does_not_know():
    run = subprocess.run([str(ROOT / "deploy" / "run-role"), "gateway"], capture_output=True, text=True)
    assert run.returncode == 64 and "usage: deploy/run-role" in run.stderr


def _worker_command(tmp_path, **env) -> list[str]:
    """The command line `deploy/run-role worker payments` execs, read by a stand-in `celery` on
    VENV_BIN that prints its arguments."""
    celery = tmp_path / "celery"
    celery.write_text('#!/bin/sh\nprintf "%s\\n" "$@"\n')
    celery.chmod(0o755)
    run = subprocess.run(
        [str(ROOT / "deploy" / "run-role"), "worker", "payments"],
        env={"PATH": os.environ["PATH"], "VENV_BIN": str(tmp_path), **env},
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    return run.stdout.splitlines()


def _concurrency(args: list[str]) -> int:
    return int(args[args.index("-c") + 1])


def test_a_worker_runs_two_processes_per_core_unless_told(tmp_path):
    args = _worker_command(tmp_path)
    assert _concurrency(args) == 2 * len(os.sched_getaffinity(0))
    assert args[args.index("-Q") + 1] == "payments"
    assert _concurrency(_worker_command(tmp_path, WORKER_CONCURRENCY="3")) == 3


def test_make_run_keeps_two_worker_processes_on_embedded_sqlite_only():
    run_stack = load_run_stack()
    sqlite, postgres, told = {}, {"DATABASE_URL": "postgres://db/orderflow"}, {"WORKER_CONCURRENCY": "5"}
    for env in (sqlite, postgres, told):
        run_stack.default_worker_concurrency(env)
    assert sqlite["WORKER_CONCURRENCY"] == "2"
    assert "WORKER_CONCURRENCY" not in postgres  # deploy/run-role's default: two per core
    assert told["WORKER_CONCURRENCY"] == "5"
