"""The one cache: bounded by entries or by weight, counted, and exported."""

from prometheus_client import CollectorRegistry

from services.common.cache_metrics import export_cache
from tagllm.caching import LRUCache


def test_least_recently_used_goes_first():
    cache: LRUCache[str, int] = LRUCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # "b" is now the oldest
    cache.put("c", 3)
    assert cache.get("b") is None and cache.get("a") == 1 and cache.get("c") == 3
    assert cache.stats() == {"hits": 3, "misses": 1, "evictions": 1, "size": 2}


def test_weights_bound_the_cache_and_a_zero_size_cache_keeps_nothing():
    cache: LRUCache[str, bytes] = LRUCache(10, size_of=len)
    cache.put("a", b"x" * 6)
    cache.put("b", b"y" * 6)
    assert len(cache) == 1 and cache.size == 6 and cache.get("a") is None
    cache.put("huge", b"z" * 11)
    assert cache.get("huge") is None and cache.get("b") == b"y" * 6
    disabled: LRUCache[str, int] = LRUCache(0)
    disabled.put("a", 1)
    assert disabled.get("a") is None


def test_get_or_build_builds_once():
    built = []
    cache: LRUCache[str, str] = LRUCache(4)
    for _ in range(3):
        assert cache.get_or_build("k", lambda key: built.append(key) or key.upper()) == "K"
    assert built == ["k"]


def test_counters_reach_the_registry():
    registry = CollectorRegistry()
    cache: LRUCache[str, int] = LRUCache(4)
    export_cache(registry, "result", cache)
    cache.put("a", 1)
    cache.get("a")
    cache.get("b")
    assert registry.get_sample_value("tagllm_result_cache_hits_total") == 1
    assert registry.get_sample_value("tagllm_result_cache_misses_total") == 1
    assert registry.get_sample_value("tagllm_result_cache_entries") == 1
