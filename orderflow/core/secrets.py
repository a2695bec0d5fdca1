"""The one check on the deployment's secrets, run by settings.py at import — so by every process:
manage.py commands, the ASGI server, Celery worker and beat, the outbox dispatcher.

With DEBUG on, an unset secret takes its development value below. With DEBUG off, an unset one or
a development value stops the process with ImproperlyConfigured naming the setting: tracking
numbers are public, so a known carrier secret lets anyone sign a `delivered` update, and a known
SECRET_KEY or API-key pepper forges sessions and key hashes.

Generate a value with `python -c "import secrets; print(secrets.token_urlsafe(50))"` (a Fernet key
for CARD_VAULT_KEY: `python -c "from cryptography.fernet import Fernet;
print(Fernet.generate_key().decode())"`). `make run` writes its own to var/secrets.env.
"""

from __future__ import annotations

import base64
import binascii

from django.core.exceptions import ImproperlyConfigured

# The development values: used only with DEBUG on, refused with DEBUG off. The old defaults of
# settings.py and .env.example are here too, so an install that copied them stops.
DEVELOPMENT_VALUES: dict[str, object] = {
    "SECRET_KEY": "dev-insecure-change-me-" + "x" * 32,
    "API_KEY_PEPPER": "dev-insecure-api-key-pepper",
    "CARD_VAULT_KEY": base64.urlsafe_b64encode(b"dev-insecure-card-vault-key-32b!").decode(),
    "IDEMPOTENCY_FINGERPRINT_KEY": "dev-insecure-idempotency-fingerprint-key",
    "CARRIER_SECRETS": {"dhl": "dhl-dev-secret", "ups": "ups-dev-secret"},
}
_KNOWN_DEV_STRINGS = {
    v
    for value in DEVELOPMENT_VALUES.values()
    for v in (value.values() if isinstance(value, dict) else [value])
}
# A secret shorter than this is a placeholder or a typo, not a secret.
MIN_LENGTH = 16


def settle(*, debug: bool, **values: object) -> dict[str, object]:
    """The secrets to use, by setting name (SECRET_KEY, API_KEY_PEPPER, CARD_VAULT_KEY,
    IDEMPOTENCY_FINGERPRINT_KEY, CARRIER_SECRETS), or ImproperlyConfigured naming every bad one."""
    settled: dict[str, object] = {}
    problems: list[str] = []
    for name, value in values.items():
        if not value and debug:
            settled[name] = DEVELOPMENT_VALUES[name]
            continue
        settled[name] = value
        if not debug:
            problems += _problems(name, value)
    if problems:
        raise ImproperlyConfigured(
            "Refusing to start with DEBUG off: "
            + "; ".join(problems)
            + ". Set each in the environment (see .env.example; `make run` generates its own in "
            "var/secrets.env). Generate one with: "
            'python -c "import secrets; print(secrets.token_urlsafe(50))"'
        )
    return settled


def _problems(name: str, value: object) -> list[str]:
    if isinstance(value, dict):
        if not value:
            return [f"{name} is not set (carrier=secret pairs, e.g. dhl=…,ups=…)"]
        out = []
        for carrier, secret in value.items():
            out += _problems(f"{name} ({carrier})", secret)
        return out
    value = str(value or "")
    if not value:
        return [f"{name} is not set"]
    if value in _KNOWN_DEV_STRINGS:
        return [f"{name} is a development value"]
    if len(value) < MIN_LENGTH:
        return [f"{name} is too short (at least {MIN_LENGTH} characters)"]
    if name == "CARD_VAULT_KEY":
        return [f"{name}: {p}" for p in _fernet_key_problems(value)]
    return []


def _fernet_key_problems(value: str) -> list[str]:
    """CARD_VAULT_KEY is a Fernet key, or several comma-separated (the first encrypts; all decrypt,
    for rotation): each is 32 bytes in url-safe base64."""
    out = []
    for i, key in enumerate(k.strip() for k in value.split(",")):
        try:
            ok = len(base64.urlsafe_b64decode(key.encode())) == 32
        except (binascii.Error, ValueError):
            ok = False
        if not ok:
            out.append(f"key {i + 1} is not a Fernet key (32 bytes, url-safe base64)")
        elif key in _KNOWN_DEV_STRINGS:
            out.append(f"key {i + 1} is a development value")
    return out
