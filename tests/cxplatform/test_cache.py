"""cxplatform.cache: Django's Redis cache with one redis-py client per pool (runs against the
real Redis when REDIS_URL is set, as in CI)."""
import os

import pytest

from cxplatform.cache import RedisCache

pytestmark = pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL (a real Redis server)")


@pytest.fixture
def redis_cache():
    cache = RedisCache(os.environ["REDIS_URL"], {"KEY_PREFIX": "cx-cache-test"})
    cache.clear()
    yield cache
    cache.clear()


def test_one_client_per_pool_is_reused(redis_cache):
    client = redis_cache._cache.get_client(write=True)
    assert redis_cache._cache.get_client(write=True) is client
    assert redis_cache._cache.get_client("any-key") is client  # one server: reads use the same pool


def test_operations_still_behave_like_djangos_backend(redis_cache):
    assert redis_cache.add("wake", 1, timeout=60) is True
    assert redis_cache.add("wake", 2, timeout=60) is False  # SET NX
    assert redis_cache.get("wake") == 1
    redis_cache.set_many({"a": {"x": 1}, "b": [2]}, timeout=60)
    assert redis_cache.get_many(["a", "b", "c"]) == {"a": {"x": 1}, "b": [2]}
    redis_cache.set("counter", 1, timeout=60)
    assert redis_cache.incr("counter") == 2
    redis_cache.delete("wake")
    assert redis_cache.get("wake") is None


def test_threads_share_the_client_safely(redis_cache):
    from concurrent.futures import ThreadPoolExecutor

    def work(i: int) -> int:
        redis_cache.set(f"k{i}", i, timeout=60)
        return redis_cache.get(f"k{i}")

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(work, range(200))) == list(range(200))
