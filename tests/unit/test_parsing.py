from hypothesis import given
from hypothesis import strategies as st

from tagllm.parsing import AnswerParser
from tagllm.vocab import builtin_vocabulary

COCO = builtin_vocabulary("coco")
PARSER = AnswerParser(COCO)
NAMES = list(COCO.names)


def test_case_punctuation_plurals_synonyms():
    parsed = PARSER.parse("Dogs, a Cat; two hot dogs. computer mice, Sofa!")
    assert parsed.labels == ("dog", "cat", "hot dog", "mouse", "couch")


def test_none_answers():
    for answer in ("none", "None.", "nothing", " NONE "):
        parsed = PARSER.parse(answer)
        assert parsed.said_none and parsed.labels == ()


def test_out_of_vocabulary_and_out_of_list_names_are_dropped_and_counted():
    parsed = PARSER.parse("dog, unicorn, cat", allowed={"dog"})
    assert parsed.labels == ("dog",)
    assert parsed.dropped == ("unicorn", "cat")


def test_free_text_search_finds_longest_terms():
    parsed = PARSER.parse("I see a man holding a baseball bat near a red car", search_phrases=True)
    assert set(parsed.labels) == {"person", "baseball bat", "car"}


@given(st.lists(st.sampled_from(NAMES), min_size=1, max_size=12), st.sampled_from([", ", ",", "; ", "\n"]))
def test_listed_names_parse_back_exactly(chosen, separator):
    parsed = PARSER.parse(separator.join(chosen))
    assert parsed.labels == tuple(dict.fromkeys(chosen))
    assert parsed.dropped == ()


@given(st.lists(st.sampled_from(NAMES), min_size=1, max_size=8), st.booleans())
def test_case_and_trailing_punctuation_do_not_matter(chosen, upper):
    text = ", ".join(n.upper() if upper else n.title() for n in chosen) + "."
    assert PARSER.parse(text).labels == tuple(dict.fromkeys(chosen))


@given(st.text(max_size=200))
def test_any_text_yields_only_vocabulary_labels_without_duplicates(text):
    for search in (False, True):
        parsed = PARSER.parse(text, search_phrases=search)
        assert set(parsed.labels) <= set(NAMES)
        assert len(parsed.labels) == len(set(parsed.labels))


@given(
    st.lists(st.sampled_from(NAMES), min_size=1, max_size=10), st.sets(st.sampled_from(NAMES), max_size=20)
)
def test_allowed_restricts_labels(chosen, allowed):
    parsed = PARSER.parse(", ".join(chosen), allowed=allowed)
    assert set(parsed.labels) == set(chosen) & allowed
    assert len(parsed.dropped) == sum(1 for n in chosen if n not in allowed)
