import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tagllm.parsing import AnswerParser
from tagllm.vocab import builtin_names, builtin_vocabulary

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


def vocabulary_of(*names):
    from tagllm.vocab import parse_vocabulary

    categories = "".join(f"  - name: {name!r}\n" for name in names)
    return parse_vocabulary(f"name: tricky\nversion: '1'\ncategories:\n{categories}")


TRICKY = vocabulary_of(
    "Cabinet/shelf",
    "Monitor/TV",
    "cabinet",
    "salt and pepper",
    "salt",
    "knife, fork",
    "knife",
    "Bread & Butter",
)


def test_names_holding_separators_are_one_label():
    parser = AnswerParser(TRICKY)
    answer = "Cabinet/shelf, Monitor/TV, salt and pepper, knife, fork, Bread & Butter"
    assert parser.parse(answer).labels == (
        "Cabinet/shelf",
        "Monitor/TV",
        "salt and pepper",
        "knife, fork",
        "Bread & Butter",
    )
    assert parser.parse("cabinet, salt, knife").labels == ("cabinet", "salt", "knife")
    assert parser.parse("cabinet/salt").labels == ("cabinet", "salt")


def test_the_papers_no_is_an_empty_answer():
    for answer in ("NO", "No.", "no"):
        assert PARSER.parse(answer).said_none


def test_open_ended_negation_names_nothing():
    parsed = PARSER.parse("There is no car. I see a dog, but not a cat", search_phrases=True)
    assert parsed.labels == ("dog",)
    assert PARSER.parse("a photo without people", search_phrases=True).labels == ()


@pytest.mark.parametrize("vocabulary", builtin_names())
def test_every_builtin_name_survives_the_parser(vocabulary):
    parser = AnswerParser(builtin_vocabulary(vocabulary))
    for category in builtin_vocabulary(vocabulary).categories:
        for spelling in (category.name, category.display_name):
            assert parser.parse(spelling).labels == (category.name,), spelling


@pytest.mark.parametrize("vocabulary", builtin_names())
@settings(max_examples=50, deadline=None)
@given(data=st.data())
def test_lists_of_builtin_display_names_parse_back_exactly(vocabulary, data):
    source = builtin_vocabulary(vocabulary)
    chosen = data.draw(st.lists(st.sampled_from(source.categories), min_size=1, max_size=12, unique=True))
    parsed = AnswerParser(source).parse(", ".join(c.display_name for c in chosen))
    assert parsed.labels == tuple(c.name for c in chosen) and parsed.dropped == ()


def test_validation_names_what_an_answer_cannot_tell_apart():
    from tagllm.parsing import indistinct_names

    warnings = indistinct_names(vocabulary_of("knife, fork", "knife", "fork", "no", "cup"))
    assert any("'knife, fork'" in w and "['fork', 'knife']" in w for w in warnings)
    assert any("'no'" in w and "nothing" in w for w in warnings)
    assert len(warnings) == 2
    assert all(indistinct_names(builtin_vocabulary(name)) == [] for name in builtin_names())
