"""No default secret in production: with DEBUG off every process refuses to start, naming the
setting, while a secret is unset or a development value (orderflow/core/secrets.py, run by
settings.py at import); and `manage.py check --deploy` is clean with the documented production
settings (.env.example, README)."""

from __future__ import annotations

import base64
import os
import secrets as stdlib_secrets
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from orderflow.core import secrets
from tests.conftest import ROOT, load_run_stack

NAMES = ["SECRET_KEY", "API_KEY_PEPPER", "CARRIER_SECRETS", "CARD_VAULT_KEY", "IDEMPOTENCY_FINGERPRINT_KEY"]


def _good() -> dict[str, object]:
    return {
        "SECRET_KEY": stdlib_secrets.token_urlsafe(50),
        "API_KEY_PEPPER": stdlib_secrets.token_urlsafe(32),
        "CARRIER_SECRETS": {"dhl": stdlib_secrets.token_urlsafe(32), "ups": stdlib_secrets.token_urlsafe(32)},
        "CARD_VAULT_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "IDEMPOTENCY_FINGERPRINT_KEY": stdlib_secrets.token_urlsafe(32),
    }


def _as_env(values: dict[str, object]) -> dict[str, str]:
    return {
        k: ",".join(f"{c}={s}" for c, s in v.items()) if isinstance(v, dict) else str(v)
        for k, v in values.items()
    }


def production_env(**overrides: str) -> dict[str, str]:
    """The documented production setup, and nothing of this test process's environment (which
    settings_test filled with its own secrets and plain-http switches)."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "DJANGO_SETTINGS_MODULE": "orderflow.settings",
        "DEBUG": "false",
        "DATABASE_URL": "postgres://orderflow@db.example.com:5432/orderflow",
        "REDIS_URL": "redis://redis.example.com:6379/0",
        "ALLOWED_HOSTS": "shop.example.com",
        "CSRF_TRUSTED_ORIGINS": "https://shop.example.com",
        "SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO,https",
        "LOG_LEVEL": "WARNING",
        "SECRETS_ENV_FILE": "",  # never the var/secrets.env a `make run` in this checkout made
        **_as_env(_good()),
    }
    env.update(overrides)
    return env


def _start(*args: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _finish(proc: subprocess.Popen) -> tuple[int, str]:
    out, err = proc.communicate(timeout=120)
    return proc.returncode, out + err


SETUP = (sys.executable, "-c", "import django; django.setup()")


# ----------------------------------------------------------------------- the rule, in process


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("bad", ["unset", "development", "short"])
def test_debug_off_refuses_each_unset_development_or_short_secret_by_name(name, bad):
    values = _good()
    if bad == "unset":
        values[name] = {} if name == "CARRIER_SECRETS" else ""
    elif bad == "development":
        values[name] = secrets.DEVELOPMENT_VALUES[name]
    else:
        values[name] = {"dhl": "short"} if name == "CARRIER_SECRETS" else "short"
    with pytest.raises(ImproperlyConfigured) as refused:
        secrets.settle(debug=False, **values)
    assert name in str(refused.value)
    assert all(other not in str(refused.value) for other in NAMES if other != name)


def test_one_development_carrier_secret_among_real_ones_is_refused():
    values = _good()
    values["CARRIER_SECRETS"] = {"dhl": stdlib_secrets.token_urlsafe(32), "ups": "ups-dev-secret"}
    with pytest.raises(ImproperlyConfigured, match=r"CARRIER_SECRETS \(ups\) is a development value"):
        secrets.settle(debug=False, **values)


def test_card_vault_key_must_be_fernet_keys_and_may_be_a_rotation_list():
    values = _good()
    values["CARD_VAULT_KEY"] = "not-a-fernet-key-but-long-enough"
    with pytest.raises(ImproperlyConfigured, match="CARD_VAULT_KEY: key 1 is not a Fernet key"):
        secrets.settle(debug=False, **values)
    rotation = ",".join(base64.urlsafe_b64encode(os.urandom(32)).decode() for _ in range(2))
    values["CARD_VAULT_KEY"] = rotation
    assert secrets.settle(debug=False, **values)["CARD_VAULT_KEY"] == rotation


def test_debug_on_fills_unset_secrets_with_development_values_and_keeps_set_ones():
    settled = secrets.settle(
        debug=True, SECRET_KEY="", API_KEY_PEPPER="mine-and-long-enough", CARRIER_SECRETS={}
    )
    assert settled["SECRET_KEY"] == secrets.DEVELOPMENT_VALUES["SECRET_KEY"]
    assert settled["API_KEY_PEPPER"] == "mine-and-long-enough"
    assert settled["CARRIER_SECRETS"] == secrets.DEVELOPMENT_VALUES["CARRIER_SECRETS"]


# ------------------------------------------------------------- every entry point, for real


def test_every_process_refuses_to_start_with_each_secret_unset():
    """django.setup() (what manage.py, the outbox dispatcher and the ASGI app run) once per unset
    secret, and the ASGI module, a Celery worker and `manage.py run_outbox` themselves."""
    runs = {name: _start(*SETUP, env=production_env(**{name: ""})) for name in NAMES}
    bad = production_env(SECRET_KEY="")
    entry_points = {
        "asgi": _start(sys.executable, "-c", "import orderflow.asgi", env=bad),
        "celery worker": _start(
            sys.executable,
            "-m",
            "celery",
            "-A",
            "orderflow",
            "worker",
            "-P",
            "solo",
            "--without-mingle",
            env=bad,
        ),
        "celery beat": _start(sys.executable, "-m", "celery", "-A", "orderflow", "beat", env=bad),
        "run_outbox": _start(sys.executable, "manage.py", "run_outbox", env=bad),
    }
    for name, proc in runs.items():
        code, output = _finish(proc)
        assert code != 0, output
        assert f"{name} is not set" in output, output[-2000:]
    for what, proc in entry_points.items():
        code, output = _finish(proc)
        assert code != 0, f"{what} started:\n{output[-2000:]}"
        assert "SECRET_KEY is not set" in output, f"{what}:\n{output[-2000:]}"


def test_setup_refuses_the_development_values_naming_each():
    dev = _as_env(secrets.DEVELOPMENT_VALUES)
    code, output = _finish(_start(*SETUP, env=production_env(**dev)))
    assert code != 0
    for name in NAMES:
        named = f"{name} (dhl)" if name == "CARRIER_SECRETS" else name
        assert f"{named} is a development value" in output, output[-2000:]


def test_debug_on_starts_without_any_secret():
    env = production_env(DEBUG="true", **{name: "" for name in NAMES})
    code, output = _finish(_start(*SETUP, env=env))
    assert code == 0, output[-2000:]


def test_check_deploy_is_clean_with_the_documented_production_settings():
    code, output = _finish(
        _start(
            sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING", env=production_env()
        )
    )
    assert code == 0, output[-3000:]
    assert "no issues" in output


# ------------------------------------------------------------------------------- make run


def test_make_run_makes_its_secrets_once_privately_and_reuses_them(tmp_path, monkeypatch):
    run_stack = load_run_stack()
    monkeypatch.setattr(run_stack, "SECRETS_FILE", tmp_path / "secrets.env")
    monkeypatch.setattr(run_stack, "ROOT", tmp_path)  # no .env there

    first: dict[str, str] = {}
    assert run_stack.install_secrets(first) is True  # made now: the admin password is shown once
    assert (tmp_path / "secrets.env").stat().st_mode & 0o777 == 0o600
    assert set(first) == set(NAMES) | {"DJANGO_SUPERUSER_PASSWORD"}
    made = {**first, "CARRIER_SECRETS": dict(p.split("=", 1) for p in first["CARRIER_SECRETS"].split(","))}
    secrets.settle(debug=False, **{n: made[n] for n in NAMES})  # every one good enough for production

    again: dict[str, str] = {"SECRET_KEY": "exported-by-the-developer-and-long"}
    assert run_stack.install_secrets(again) is False  # reused: API keys and the password keep working
    assert again["API_KEY_PEPPER"] == first["API_KEY_PEPPER"]
    assert again["DJANGO_SUPERUSER_PASSWORD"] == first["DJANGO_SUPERUSER_PASSWORD"]
    assert again["SECRET_KEY"] == "exported-by-the-developer-and-long"  # what the developer set wins


def test_manage_py_reads_the_secrets_make_run_made(tmp_path):
    """`make run` keeps its secrets in var/secrets.env; a `manage.py` command in that checkout (how
    the README and a store's scripts create stores and keys) finds them there; exported ones win."""
    secrets_file = tmp_path / "secrets.env"
    secrets_file.write_text("".join(f"{k}={v}\n" for k, v in _as_env(_good()).items()))
    bare = {k: v for k, v in production_env().items() if k not in _as_env(_good())}
    code, output = _finish(_start(*SETUP, env={**bare, "SECRETS_ENV_FILE": str(secrets_file)}))
    assert code == 0, output
    code, output = _finish(_start(*SETUP, env={**bare, "SECRETS_ENV_FILE": ""}))
    assert code != 0 and "SECRET_KEY" in output
