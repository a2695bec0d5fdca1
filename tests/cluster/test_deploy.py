"""deploy/ is the production layout, and `make run` runs the same role definitions: every queue of
the settings has its worker in deploy/Procfile, there is one beat, and every process `make run`
starts but the mock gateway (our test bank, no production role) goes through deploy/run-role."""

import subprocess

from django.conf import settings

from tests.cluster.harness import DEPLOY, ROOT, procfile

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
