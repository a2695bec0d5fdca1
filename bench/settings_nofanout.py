"""The production settings without the webhook fan-out handler (A/B: `BENCH_STACK_ENV=
'{"DJANGO_SETTINGS_MODULE": "bench.settings_nofanout"}' bench/pipeline.py`), to measure what a
publish-time "does this store have any endpoint for this topic?" check would save."""

from orderflow.settings import *  # noqa: F403
from orderflow.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "bench.apps.NoFanoutConfig"]
