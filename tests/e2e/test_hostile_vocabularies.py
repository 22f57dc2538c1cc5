"""Hostile vocabularies sent to RegisterVocabulary through the real stack: each is refused at
registration, quickly, with INVALID_ARGUMENT naming the problem."""

import time

import grpc
import pytest
import yaml

from tagllm.v1 import tagging_pb2
from tests.e2e.hostile import AUTH, refused

pytestmark = pytest.mark.e2e


def _vocabulary(**change) -> str:
    base = {"name": "hostile", "version": "1", "categories": [{"name": "cat"}, {"name": "dog"}]}
    base.update(change)
    return yaml.safe_dump(base, allow_unicode=True)


VOCABULARIES = {
    "yaml alias bomb": (
        "a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
        "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
        "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n",
        "aliases",
    ),
    "8 MB description": (_vocabulary(description="d" * 8_000_000), "larger than"),
    "100000 categories": (_vocabulary(categories=[{"name": f"c{i}"} for i in range(100_000)]), "larger than"),
    "right-to-left override in a name": (_vocabulary(categories=[{"name": "cat\u202e"}]), "bidirectional"),
    "zero-width space in a name": (_vocabulary(categories=[{"name": "c\u200bat"}]), "zero-width"),
    "control character in a name": (_vocabulary(categories=[{"name": "c\x07at"}]), "control"),
    "template with an unknown kind": (_vocabulary(prompt_styles={"x": {"evil": "Hi."}}), "evil"),
    "template reaching into an object": (
        _vocabulary(prompt_styles={"x": {"yes_no": "Is there {object.__class__}?"}}),
        "prompt",
    ),
    "template with an unbounded width": (
        _vocabulary(prompt_styles={"x": {"multi_option": "Pick: {cls_list:_>12000}"}}),
        "prompt",
    ),
    "not a mapping": ("- just\n- a list\n", "mapping"),
    "duplicate category names": (_vocabulary(categories=[{"name": "cat"}, {"name": "cat"}]), "cat"),
    "a name too long": (_vocabulary(categories=[{"name": "c" * 500}]), "name"),
    "nesting 20000 levels deep": ("name: deep\nx: " + "[" * 20_000 + "]" * 20_000, "nested deeper than 8"),
    "a number of 5000 digits": (_vocabulary() + "x: " + "9" * 5000 + "\n", "a number of 5000 characters"),
    "a key given twice": (_vocabulary() + "name: other\n", "key 'name' is given twice"),
    "a name with a trailing newline": (_vocabulary(name="hostile\n"), "name: must be"),
    "version 1.10 unquoted": (_vocabulary().replace("version: '1'", "version: 1.10"), "float 1.1"),
    "a description that is a list": (_vocabulary(description=["a", "b"]), "description: must be text"),
    "a description that is a mapping": (_vocabulary(description={"a": "b"}), "description: must be text"),
}


@pytest.mark.parametrize("case", list(VOCABULARIES))
def test_hostile_vocabularies_are_refused_at_registration(api, case):
    text, message = VOCABULARIES[case]
    started = time.monotonic()
    error = refused(
        api.RegisterVocabulary, tagging_pb2.RegisterVocabularyRequest(yaml=text), timeout=30, metadata=AUTH
    )
    elapsed = time.monotonic() - started
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and message in error.details(), error.details()
    print(f"{case}: refused in {elapsed * 1000:.0f} ms")  # the figure BENCHMARKS.md reports
