"""Which model-server replica an image's call goes to: its own, unless that one is much busier."""

from __future__ import annotations

import pytest

from tagllm.mllm.tensors import with_queue_bound
from tagllm.mllm.triton_client import bounded_load_order, replica_order

URLS = ["10.0.0.1:8001", "10.0.0.2:8001", "10.0.0.3:8001"]


def _preferred_order(image: bytes) -> list[str]:
    return [URLS[i] for i in replica_order(URLS, image)]


def test_an_image_keeps_its_replica_under_even_or_moderate_load():
    order = _preferred_order(b"image")
    assert bounded_load_order(order, {}, slack=4) == order
    busy = {order[0]: 6, order[1]: 2, order[2]: 1}  # 6 <= 2 * 1 + 4
    assert bounded_load_order(order, busy, slack=4) == order


def test_an_image_leaves_a_replica_much_busier_than_the_least_loaded():
    order = _preferred_order(b"image")
    load = {order[0]: 7, order[1]: 3, order[2]: 1}  # 7 > 2 * 1 + 4
    assert bounded_load_order(order, load, slack=4) == [order[1], order[2], order[0]]


@pytest.mark.parametrize("count", range(20))
def test_spill_over_goes_to_the_images_next_replica_not_a_fixed_one(count):
    image = f"image {count}".encode()
    order = _preferred_order(image)
    chosen = bounded_load_order(order, {order[0]: 100}, slack=4)[0]
    assert chosen == order[1]


def test_the_queue_bound_is_written_into_the_model_config():
    plain = 'backend: "python"\nmax_batch_size: 0\n'
    bounded = with_queue_bound(plain, 16)
    assert (
        bounded.startswith(plain)
        and "dynamic_batching { default_queue_policy { max_queue_size: 16 } }" in bounded
    )
    assert with_queue_bound(bounded, 3).count("max_queue_size") == 1
    assert "max_queue_size: 3" in with_queue_bound(bounded, 3)
    assert with_queue_bound(plain, 0) == plain


def test_the_queue_bound_joins_dynamic_batching_settings_already_there():
    batching = "max_batch_size: 8\ndynamic_batching {\n  max_queue_delay_microseconds: 100\n}\n"
    bounded = with_queue_bound(batching, 16)
    assert bounded.count("dynamic_batching") == 1
    assert "default_queue_policy { max_queue_size: 16 }" in bounded
    assert "max_queue_delay_microseconds: 100" in bounded
