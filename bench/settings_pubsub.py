"""The production settings with one change, for an A/B run of the live push (bench/live_push.py):
the pub/sub channel layer. `group_send` then publishes ONE Redis message per event per group, and
each daphne process fans it out to its own sockets in memory; the default layer writes one
message per socket (200 sockets: 200 ZADDs per event, all drained one by one by the daphne
process, and dropped past the channel's capacity)."""

from orderflow.settings import *  # noqa: F403
from orderflow.settings import REDIS_URL

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL], "prefix": "of-ch"},
    }
}
