"""A socket's end cancels its channel-layer receive, and the cancel must end it.

When a dashboard socket closes, its consumer cancels the layer's pending `receive()` (a BZPOPMIN
on Redis). With a redis-py socket timeout, redis-py sends each command through `asyncio.wait_for`,
which on Python 3.11 loses a cancel that lands just as the write completes: the receive went on to
the next BZPOPMIN, and with reads outlasting the block it looped for ever (one close in ~25: the
consumer never ended, a test's event loop never closed). The layer as settings.py configures it,
200 receives cancelled at random points: every one ends, cancelled."""

from __future__ import annotations

import asyncio
import random
from collections import Counter

from channels_redis.core import RedisChannelLayer
from django.conf import settings

ROUNDS = 200


def test_every_cancelled_receive_ends_cancelled():
    rng = random.Random(17)

    async def scenario() -> Counter:
        layer = RedisChannelLayer(**settings.CHANNEL_LAYERS["default"]["CONFIG"])
        outcomes: Counter = Counter()
        for _ in range(ROUNDS):
            channel = await layer.new_channel()
            receive = asyncio.ensure_future(layer.receive(channel))
            await asyncio.sleep(rng.random() * 0.02)
            receive.cancel()
            await asyncio.wait([receive], timeout=2 * RedisChannelLayer.brpop_timeout)
            if not receive.done():
                outcomes["still running"] += 1
                receive.cancel()
                break
            try:
                receive.result()
                outcomes["returned"] += 1
            except asyncio.CancelledError:
                outcomes["cancelled"] += 1
            except Exception as exc:
                outcomes[type(exc).__name__] += 1
        await layer.close_pools()
        return outcomes

    outcomes = asyncio.run(scenario())
    assert outcomes == Counter(cancelled=ROUNDS), outcomes
