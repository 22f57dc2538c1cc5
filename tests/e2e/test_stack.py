"""The whole chain: client -> gateway -> refiner -> Triton (tiny Qwen2.5-VL), over real gRPC."""

import io
import threading

import grpc
import pytest
import yaml
from google.protobuf import descriptor_pool, message_factory
from google.rpc import code_pb2
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase
from PIL import Image

from tagllm.v1 import tagging_pb2, tagging_pb2_grpc
from tagllm.vocab import builtin_vocabulary
from tests.conftest import (
    SERVING,
    TAGGING_SERVICE,
    free_port,
    health_status,
    in_process_gateway,
    png,
    tag_request,
)
from tests.e2e.conftest import MAX_IMAGE_BYTES

pytestmark = pytest.mark.e2e
COCO = builtin_vocabulary("coco")


@pytest.mark.parametrize("strategy", ["tagllm", "multi_option", "binary", "open_ended"])
def test_every_strategy_returns_vocabulary_labels_with_usage(gateway, strategy):
    response = gateway.Tag(tag_request(png(), strategy, image_id="red.png"), timeout=120)
    assert response.image_id == "red.png" and response.request_id
    assert {label.name for label in response.result.labels} <= set(COCO.names)
    assert all(0.0 <= label.score <= 1.0 for label in response.result.labels)
    assert response.result.usage.mllm_calls >= 1 and response.result.usage.model_compute_seconds > 0
    assert response.result.usage.prompt_tokens > 0
    assert response.result.version.model.startswith("qwen2_5_vl")
    assert (
        response.result.version.vocabulary_version == COCO.full_version
        and response.result.version.prompt_template_hash
    )
    if strategy == "binary":
        assert response.result.usage.mllm_calls == 80 and response.result.usage.mllm_requests == 1
    if strategy == "tagllm":
        # The tiny model proposes and confirms some names for this picture: both stages ran.
        assert response.result.candidates and response.result.labels
        assert response.result.usage.mllm_calls == len(COCO.groups) + len(response.result.candidates)
        assert response.result.usage.mllm_requests == 2
        assert [s.stage for s in response.result.stages] == ["candidates", "verification"]
        for label in response.result.labels:
            assert label.provenance.group and label.provenance.proposed
            assert label.provenance.verdict == label.provenance.VERDICT_CONFIRMED


@pytest.mark.parametrize("grouping", [True, False])
def test_tagllm_calls_are_groups_plus_candidates(gateway, grouping):
    response = gateway.Tag(tag_request(png(64, 64, (1, 2, 3)), "tagllm", grouping=grouping), timeout=120)
    groups = len(COCO.groups) if grouping else 1
    assert response.result.candidates, "the tiny model proposes names for this picture"
    assert response.result.usage.mllm_calls == groups + len(response.result.candidates)
    assert set(response.result.candidates) <= set(COCO.names)
    assert {label.name for label in response.result.labels} <= set(response.result.candidates)
    assert len(response.result.stages) == 2


def test_results_are_cached_by_image_and_options(gateway):
    content = png(50, 70, (9, 9, 9))
    first = gateway.Tag(tag_request(content, "tagllm"), timeout=120)
    second = gateway.Tag(tag_request(content, "tagllm"), timeout=120)
    assert not first.cached and second.cached
    assert list(first.result.labels) == list(second.result.labels)
    other = gateway.Tag(tag_request(content, "multi_option"), timeout=120)
    assert not other.cached


def test_bad_input_gets_invalid_argument_and_the_stack_keeps_serving(gateway):
    bomb = io.BytesIO()
    Image.new("1", (4000, 2000)).save(bomb, format="PNG")
    cases = [
        (b"", "image is empty"),
        (b"GIF89a but not really", "not a decodable image"),
        (b"\x00" * (MAX_IMAGE_BYTES + 1), f"the limit is {MAX_IMAGE_BYTES} bytes"),
        (bomb.getvalue(), "pixels"),
    ]
    for content, message in cases:
        with pytest.raises(grpc.RpcError) as caught:
            gateway.Tag(tag_request(content), timeout=30)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert message in caught.value.details()
    with pytest.raises(grpc.RpcError) as caught:
        gateway.Tag(tag_request(png(), vocabulary="klingon"), timeout=30)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    request = tag_request(png())
    request.reference.labels.append("unicorn")
    with pytest.raises(grpc.RpcError) as caught:
        gateway.Tag(request, timeout=30)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "unicorn" in caught.value.details()
    assert gateway.Tag(tag_request(png(), "multi_option"), timeout=60).result.usage.mllm_calls == 1


def test_batch_reports_a_status_per_image(gateway):
    batch = tagging_pb2.BatchTagRequest(
        requests=[
            tag_request(png(), "multi_option"),
            tag_request(b"junk"),
            tag_request(png(), vocabulary="nope"),
        ]
    )
    results = gateway.BatchTag(batch, timeout=120).results
    assert [r.status.code for r in results] == [code_pb2.OK, code_pb2.INVALID_ARGUMENT, code_pb2.NOT_FOUND]
    assert results[0].response.result.usage.mllm_calls == 1 and "decodable" in results[1].status.message


def test_stream_answers_every_image_by_id(gateway):
    requests = [tag_request(png(40 + i, 40), "multi_option", image_id=f"img-{i}") for i in range(4)]
    requests.append(tag_request(b"junk", image_id="broken"))
    answers = {r.image_id: r for r in gateway.StreamTag(iter(requests), timeout=120)}
    assert set(answers) == {"img-0", "img-1", "img-2", "img-3", "broken"}
    assert answers["broken"].status.code == code_pb2.INVALID_ARGUMENT
    assert all(answers[f"img-{i}"].status.code == code_pb2.OK for i in range(4))


def test_custom_vocabularies_register_and_tag(gateway):
    listed = {v.name: v for v in gateway.ListVocabularies(tagging_pb2.ListVocabulariesRequest()).vocabularies}
    assert {"coco", "voc", "objects365"} <= set(listed)
    assert listed["objects365"].categories == 365 and listed["objects365"].builtin
    pets = {
        "name": "pets",
        "version": "1",
        "categories": [
            {"name": "cat", "super_category": "animal", "descriptions": ["domestic cat"]},
            {"name": "dog", "super_category": "animal", "descriptions": ["domestic dog"]},
        ],
    }
    info = gateway.RegisterVocabulary(
        tagging_pb2.RegisterVocabularyRequest(yaml=yaml.safe_dump(pets))
    ).vocabulary
    assert (info.name, info.categories, info.builtin) == ("pets", 2, False)
    response = gateway.Tag(tag_request(png(), "binary", vocabulary="pets"), timeout=60)
    assert response.result.usage.mllm_calls == 2 and {label.name for label in response.result.labels} <= {
        "cat",
        "dog",
    }
    with pytest.raises(grpc.RpcError) as caught:
        gateway.RegisterVocabulary(tagging_pb2.RegisterVocabularyRequest(yaml=yaml.safe_dump(pets)))
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
    with pytest.raises(grpc.RpcError) as caught:
        gateway.RegisterVocabulary(tagging_pb2.RegisterVocabularyRequest(yaml="name: [broken"))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_a_deadline_too_short_is_deadline_exceeded(gateway):
    with pytest.raises(grpc.RpcError) as caught:
        gateway.Tag(tag_request(png(33, 33), "binary"), timeout=0.005)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


def test_a_client_knowing_only_reflection_can_tag(stack):
    with grpc.insecure_channel(stack.settings.gateway_address) as channel:
        database = ProtoReflectionDescriptorDatabase(channel)
        assert "tagllm.v1.TaggingService" in database.get_services()
        pool = descriptor_pool.DescriptorPool(database)
        method = pool.FindServiceByName("tagllm.v1.TaggingService").FindMethodByName("Tag")
        request_class = message_factory.GetMessageClass(method.input_type)
        response_class = message_factory.GetMessageClass(method.output_type)
        request = request_class()
        request.image.content = png()
        request.vocabulary = "coco"
        call = channel.unary_unary(
            "/tagllm.v1.TaggingService/Tag",
            request_serializer=request_class.SerializeToString,
            response_deserializer=response_class.FromString,
        )
        response = call(request, timeout=120)
    assert {label.name for label in response.result.labels} <= set(COCO.names)
    assert response.result.usage.mllm_calls >= len(COCO.groups) and response.result.usage.prompt_tokens > 0


def test_gateway_health_follows_the_refiner(stack):
    assert health_status(stack.settings.gateway_address, TAGGING_SERVICE) == SERVING
    with (
        in_process_gateway(f"127.0.0.1:{free_port()}", wait_serving=False) as orphan,
        in_process_gateway(stack.settings.refiner_address),  # fails unless it says SERVING
    ):
        assert health_status(orphan, TAGGING_SERVICE) == health_pb2.HealthCheckResponse.NOT_SERVING


def test_api_keys_guard_the_api_but_not_health(stack):
    with (
        in_process_gateway(stack.settings.refiner_address, api_keys=("s3cret",)) as address,
        grpc.insecure_channel(address) as channel,
    ):
        stub = tagging_pb2_grpc.TaggingServiceStub(channel)
        request = tag_request(png(), "multi_option")
        with pytest.raises(grpc.RpcError) as caught:
            stub.Tag(request, timeout=30)
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        for wrong in ("Bearer wrong", "s3cret", "Basic s3cret", "Bearer s3cret-and-more"):
            with pytest.raises(grpc.RpcError) as caught:
                stub.Tag(request, timeout=30, metadata=[("authorization", wrong)])
            assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED, wrong
        with pytest.raises(grpc.RpcError) as caught:
            stub.Tag(request, timeout=30, metadata=[("x-api-key", "s3cret")])
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        # A stream without a key is refused at once, before it sends any message.
        idle = threading.Event()

        def never_sends():
            idle.wait(30)
            yield from ()

        with pytest.raises(grpc.RpcError) as caught:
            list(stub.StreamTag(never_sends(), timeout=20))
        idle.set()
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        keyed = [("authorization", "Bearer s3cret")]
        assert stub.Tag(request, timeout=60, metadata=keyed).result.usage.mllm_calls == 1
        # Health answers without a key.
        assert health_status(address, TAGGING_SERVICE) == SERVING


def test_the_refiner_applies_the_gateways_limits_itself(stack):
    from tagllm.internal.v1 import refinement_pb2, refinement_pb2_grpc

    with grpc.insecure_channel(stack.settings.refiner_address) as channel:
        refiner = refinement_pb2_grpc.RefinementServiceStub(channel)
        big = refinement_pb2.RefineRequest(image=png(2000, 1000), vocabulary="coco")
        with pytest.raises(grpc.RpcError) as caught:
            refiner.Refine(big, timeout=30)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "the limit is 1003520 pixels" in caught.value.details()
