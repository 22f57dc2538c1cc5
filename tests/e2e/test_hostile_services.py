"""The stack's internal ports defend themselves: the refiner, the metrics service (poisoned
records counted as invalid and nowhere else) and Triton each refuse hostile input on their own."""

import urllib.request

import grpc
import numpy as np
import pytest
import tritonclient.grpc as triton_grpc
from tritonclient.utils import InferenceServerException

from tagllm.internal.v1 import metrics_pb2, metrics_pb2_grpc, refinement_pb2, refinement_pb2_grpc
from tagllm.mllm.contract import MLLMRequest, Mode
from tagllm.mllm.tensors import INPUTS, MODEL_NAME, OUTPUTS, request_to_arrays
from tagllm.v1 import common_pb2
from tests.conftest import png, scraped_total, tag_request, wait_until
from tests.e2e.hostile import AUTH, refused

pytestmark = pytest.mark.e2e


def test_repeated_reference_labels_count_once_and_reach_the_metrics(api, stack):
    url = f"http://{stack.settings.scrape_targets().metrics_service}/metrics"
    before = scraped_total(url, "tagllm_reference_images_total", 'vocabulary="coco"')
    invalid = scraped_total(url, "tagllm_metrics_records_invalid_total")
    crowd = ["person"] * 120 + ["dog"] * 3  # one label per box: more than coco's 80 categories
    response = api.Tag(tag_request(png(49, 49), reference=crowd), timeout=60, metadata=AUTH)
    assert response.result.usage.mllm_calls == 1
    # The refiner sends its record after answering.
    wait_until(lambda: scraped_total(url, "tagllm_reference_images_total", 'vocabulary="coco"') > before,
               30, "the record reaching the metrics service")  # fmt: skip
    assert scraped_total(url, "tagllm_reference_images_total", 'vocabulary="coco"') == before + 1
    assert scraped_total(url, "tagllm_metrics_records_invalid_total") == invalid


def test_the_refiner_refuses_a_large_image_and_a_long_unknown_vocabulary(stack):
    with grpc.insecure_channel(stack.settings.refiner_address) as channel:
        refiner = refinement_pb2_grpc.RefinementServiceStub(channel)
        big = refinement_pb2.RefineRequest(image=png(2000, 1000), vocabulary="coco")
        error = refused(refiner.Refine, big, timeout=30)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        unknown = refinement_pb2.RefineRequest(image=png(), vocabulary="v" * 20_000)
        error = refused(refiner.Refine, unknown, timeout=30)
        assert error.code() == grpc.StatusCode.NOT_FOUND
        garbage = channel.unary_unary("/tagllm.internal.v1.RefinementService/Refine")
        error = refused(garbage, b"\x0a\xff\xff\xff\xff\x0f", timeout=10)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


def _record(named: str, **change) -> metrics_pb2.TaggingRecord:
    """A record of one image tagged with the vocabulary `named`, but for `change`."""
    result = common_pb2.TaggingResult(
        labels=[common_pb2.Label(name="cat", score=0.9)],
        version=common_pb2.VersionStamp(model="m/1", vocabulary=named, strategy=common_pb2.STRATEGY_BINARY),
    )
    record = metrics_pb2.TaggingRecord(result=result, vocabulary_size=80, seconds=0.1)
    for name, value in change.items():
        if name == "label":
            record.result.labels[0].name = value
        elif name == "vocabulary":
            record.result.version.vocabulary = value
        else:
            setattr(record, name, value)
    return record


POISONS = {
    "nan": dict(seconds=float("nan")),
    "negative": dict(seconds=-1.0),
    "infinite": dict(seconds=float("inf")),
    "bidi label": dict(label="cat\u202e"),
    "long label": dict(label="x" * 5000),
    "long vocabulary": dict(vocabulary="v" * 5000),
    "no categories": dict(vocabulary_size=0),
}


@pytest.mark.parametrize("case", list(POISONS))
def test_the_metrics_service_counts_no_poisoned_record(stack, case):
    # Each record names a vocabulary of its own, so that its series are told apart from the
    # records the refiner sends.
    clean, poisoned = (f"{kind}-{case.replace(' ', '-')}" for kind in ("clean", "poisoned"))
    poison = _record(poisoned, **POISONS[case])
    url = f"http://{stack.settings.scrape_targets().metrics_service}/metrics"
    invalid = scraped_total(url, "tagllm_metrics_records_invalid_total")
    with grpc.insecure_channel(stack.settings.metrics_address) as channel:
        stub = metrics_pb2_grpc.MetricsServiceStub(channel)
        reply = stub.Record(metrics_pb2.RecordRequest(records=[poison, _record(clean)]), timeout=10)
    assert reply.accepted == 1  # the good record beside it counts
    # What /metrics exports (the Record call counts before it answers): the poisoned record is
    # counted as invalid and nowhere else, the good one as one image.
    assert scraped_total(url, "tagllm_metrics_records_invalid_total") == invalid + 1
    assert scraped_total(url, "tagllm_images_total", f'vocabulary="{clean}"') == 1
    exported = urllib.request.urlopen(url, timeout=5).read().decode()
    assert f'vocabulary="{poison.result.version.vocabulary}"' not in exported
    assert poison.result.labels[0].name == "cat" or poison.result.labels[0].name not in exported


def test_triton_caps_generation_itself(stack):
    arrays = request_to_arrays(MLLMRequest(png(), ("Name the objects.",), Mode.GENERATE, max_new_tokens=8))
    arrays["MAX_NEW_TOKENS"] = np.full_like(arrays["MAX_NEW_TOKENS"], 512)
    specs = {spec.name: spec for spec in INPUTS}
    client = triton_grpc.InferenceServerClient(stack.settings.triton_grpc_address)
    try:
        inputs = []
        for name, array in arrays.items():
            tensor = triton_grpc.InferInput(name, list(array.shape), specs[name].wire_type)
            tensor.set_data_from_numpy(array)
            inputs.append(tensor)
        outputs = [triton_grpc.InferRequestedOutput(spec.name) for spec in OUTPUTS]
        with pytest.raises(InferenceServerException, match="max_new_tokens is 512"):
            client.infer(MODEL_NAME, inputs, outputs=outputs, client_timeout=60)
    finally:
        client.close()
