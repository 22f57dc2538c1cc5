"""A cache's counters on a service's /metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from tagllm.caching import LRUCache


class CacheCollector(Collector):
    """Exports `tagllm_<name>_cache_{hits,misses,evictions}_total` and `tagllm_<name>_cache_entries`."""

    def __init__(self, name: str, cache: LRUCache) -> None:
        self.name = name
        self.cache = cache

    def collect(self):
        stats = self.cache.stats()
        prefix = f"tagllm_{self.name}_cache"
        for key, doc in (
            ("hits", "Lookups answered from the cache."),
            ("misses", "Lookups the cache could not answer."),
            ("evictions", "Entries dropped to make room."),
        ):
            yield CounterMetricFamily(f"{prefix}_{key}", doc, value=stats[key])
        yield GaugeMetricFamily(f"{prefix}_entries", "Weight held (entries, or bytes).", value=stats["size"])


def export_cache(registry: CollectorRegistry, name: str, cache: LRUCache) -> None:
    registry.register(CacheCollector(name, cache))
