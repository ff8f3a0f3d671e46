import json

import pytest

from svit_data.errors import InputError
from svit_data.recipes.vocabulary import inflections, load_vocabulary, normalize, parse_vocabulary


def test_normalize_case_punctuation_and_spaces():
    assert normalize("  Traffic-Light's,  RED!! ") == "traffic light s red"


def test_inflections_cover_plural_and_singular_forms():
    assert set(inflections("traffic light")) == {"traffic light", "traffic lights"}
    assert "buses" in inflections("bus")
    assert "people" in inflections("person")
    assert "person" in inflections("people")
    assert "cars" in inflections("car") and "car" in inflections("cars")
    assert "berries" in inflections("berry")


def test_bundled_vocabulary_covers_benchmark_concept_kinds():
    vocab = load_vocabulary()
    categories = {c.category for c in vocab.concepts}
    assert {"object", "color", "count", "position", "scene", "text", "action", "attribute"} <= categories
    forms = vocab.forms()
    assert "dogs" in forms and "how many" in forms and "in front of" in forms
    # a form naming several concepts maps to all of them
    assert len(forms["table"]) == 2
    assert len(vocab.hash) == 16 and vocab.hash == load_vocabulary().hash


def test_vocabulary_hash_changes_with_content():
    a = parse_vocabulary({"concepts": ["dog", "cat"]})
    b = parse_vocabulary({"concepts": ["dog", {"concept": "cat", "synonyms": ["kitten"]}]})
    assert a.hash != b.hash


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"concepts": []}, "empty"),
        ({"words": ["dog"]}, "'concepts' list"),
        ("dog", "'concepts' list"),
        ({"concepts": [{"concept": ""}]}, "field 'concept'"),
        ({"concepts": [{"concept": "dog", "synonyms": "puppy"}]}, "field 'synonyms'"),
        ({"concepts": [{"concept": "dog", "weight": 0}]}, "field 'weight'"),
        ({"concepts": ["dog", "Dog"]}, "repeats record 0"),
        ({"concepts": [{"concept": "a b c d e"}]}, "longer than 4 words"),
        ({"concepts": [3]}, "record 0"),
    ],
)
def test_malformed_vocabularies_are_reported(data, message):
    with pytest.raises(InputError, match=message):
        parse_vocabulary(data, file="v.json")


def test_unreadable_and_invalid_json_files(tmp_path):
    with pytest.raises(InputError, match="cannot read"):
        load_vocabulary(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        load_vocabulary(bad)
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"concepts": []}))
    with pytest.raises(InputError, match="empty"):
        load_vocabulary(empty)
