"""The gateway's limits as settings, quotas and the decoded-pixel budget, each on its own (how the
core applies them: test_gateway_core.py)."""

import pytest

from services.gateway.budgets import PixelBudget
from services.gateway.contract import Code, GatewayError
from services.gateway.quota import QuotaExceeded, Quotas
from tagllm.settings import GatewaySettings, load_settings


def test_limits_must_be_positive():
    with pytest.raises(ValueError, match="MAX_IN_FLIGHT"):
        load_settings(GatewaySettings, "X_", max_in_flight=0)
    with pytest.raises(ValueError, match="STREAM_WINDOW"):
        load_settings(GatewaySettings, "X_", environ={"X_STREAM_WINDOW": "0"})
    with pytest.raises(ValueError, match="STREAM_IDLE_SECONDS"):
        load_settings(GatewaySettings, "X_", stream_idle_seconds=0)


def test_a_gateway_that_requires_keys_does_not_start_without_them(tmp_path):
    with pytest.raises(
        ValueError, match="REQUIRE_API_KEYS is set but TAGLLM_GATEWAY_API_KEYS.* holds no key"
    ):
        load_settings(GatewaySettings, "X_", require_api_keys=True)
    assert load_settings(GatewaySettings, "X_", require_api_keys=True, api_keys=("k",)).api_keys == ("k",)
    # Keys from a file (a mounted Secret): an empty one is no key at all, a missing one an error.
    keys = tmp_path / "keys"
    keys.write_text("\n")
    with pytest.raises(ValueError, match="holds no key"):
        load_settings(GatewaySettings, "X_", require_api_keys=True, api_keys_file=str(keys))
    keys.write_text("alpha, beta\ngamma\n")
    settings = load_settings(GatewaySettings, "X_", environ={"X_API_KEYS_FILE": str(keys), "X_API_KEYS": "k"})
    assert settings.api_keys == ("k", "alpha", "beta", "gamma")
    with pytest.raises(ValueError, match="cannot read"):
        load_settings(GatewaySettings, "X_", api_keys_file=str(tmp_path / "absent"))


def test_a_new_callers_first_charge_passes_on_a_real_clock():
    quotas = Quotas(requests_per_second=0.01, images_per_second=0)
    quotas.charge("a", requests=1)
    with pytest.raises(QuotaExceeded) as caught:
        quotas.charge("a", requests=1)
    assert 99 < caught.value.retry_after <= 100


def test_quotas_refuse_whole_charges_with_the_time_to_wait():
    now = [0.0]
    quotas = Quotas(requests_per_second=2, images_per_second=4, burst_seconds=1, clock=lambda: now[0])
    quotas.charge("a", requests=1, images=4)
    with pytest.raises(QuotaExceeded) as caught:
        quotas.charge("a", requests=1, images=1)  # the images bucket is empty
    assert caught.value.retry_after == pytest.approx(0.25)
    quotas.charge("b", requests=1, images=1)  # another caller has buckets of its own
    now[0] = 0.25
    quotas.charge("a", requests=1, images=1)  # the refused charge took no request token
    with pytest.raises(QuotaExceeded, match="requests per second"):
        quotas.charge("a", requests=1)
    with pytest.raises(QuotaExceeded, match="burst"):
        quotas.charge("c", images=5)


def test_decoded_pixels_are_bounded_per_request_per_caller_and_in_all():
    budget = PixelBudget(total=100, per_caller=60, per_request=40)
    with budget.reserve("a", "r1", 40):
        with pytest.raises(GatewayError, match="40 decoded pixels in flight allowed for this request"):
            budget.reserve("a", "r1", 1).__enter__()
        with budget.reserve("a", "r2", 20):
            with pytest.raises(GatewayError, match="60 decoded pixels in flight allowed for this caller"):
                budget.reserve("a", "r3", 1).__enter__()
            with budget.reserve("b", "r4", 40):
                with pytest.raises(GatewayError) as caught:
                    budget.reserve("c", "r5", 1).__enter__()
                assert budget.in_flight == 100
    assert caught.value.code == Code.RESOURCE_EXHAUSTED and caught.value.retry_after == 1.0
    assert "allowed for the gateway" in str(caught.value)
    assert budget.in_flight == 0  # and every refusal took nothing
    with budget.reserve("a", "r1", 40), budget.reserve("a", "r2", 20):
        pass


def test_a_budget_smaller_than_one_image_is_refused_at_start():
    with pytest.raises(ValueError, match="MAX_CALLER_PIXELS_IN_FLIGHT must be at least"):
        load_settings(GatewaySettings, "X_", max_image_pixels=1000, max_caller_pixels_in_flight=999)
