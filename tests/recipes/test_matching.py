import os

import numpy as np
import pyarrow as pa
import pytest

from svit_data.recipes import matching
from svit_data.recipes.matching import FormTable, match_batch, match_pool
from svit_data.recipes.vocabulary import load_vocabulary, parse_vocabulary
from svit_data.schema import FEATURES

VOCAB = parse_vocabulary(
    {
        "concepts": [
            "dog",
            {"concept": "traffic light", "synonyms": ["stoplight"]},
            {"concept": "in front of"},
            {"concept": "person", "synonyms": ["man"]},
            {"concept": "road", "category": "object"},
            {"concept": "street scene", "synonyms": ["road"]},
        ]
    }
)


def batch(samples: list[list[tuple[str, str]]]) -> pa.RecordBatch:
    rows = [
        {
            "id": f"conversation/{i + 1}/0",
            "image_id": i + 1,
            "task": "conversation",
            "conversations": [{"from": f, "value": v} for f, v in turns],
        }
        for i, turns in enumerate(samples)
    ]
    schema = pa.schema([FEATURES.arrow_schema.field(n) for n in ("id", "image_id", "task", "conversations")])
    return pa.RecordBatch.from_pylist(rows, schema=schema)


def concepts_of(result, row: int) -> dict[str, int]:
    m = result.matrix.tocsr()
    names = VOCAB.names
    return {names[c]: int(v) for c, v in zip(m[row].indices, m[row].data, strict=True)}


def test_matches_words_plurals_ngrams_and_shared_forms():
    result = match_batch(
        batch(
            [
                [("user", "Are the DOGS in front of the Traffic-Lights?"), ("gpt", "Yes, two dogs are.")],
                [("user", "Who is on the road?"), ("gpt", "No, only men; a stoplight.")],
                [("user", "Is it in front"), ("gpt", "of the dog?")],  # a phrase across turns does not count
                [("user", "Describe."), ("gpt", "Nothing to see.")],
            ]
        ),
        FormTable(VOCAB),
        len(VOCAB.concepts),
    )
    assert concepts_of(result, 0) == {"dog": 2, "traffic light": 1, "in front of": 1}
    assert concepts_of(result, 1) == {"person": 1, "road": 1, "street scene": 1, "traffic light": 1}
    assert concepts_of(result, 2) == {"dog": 1}
    assert concepts_of(result, 3) == {}
    assert result.yes.tolist() == [1, 0, 0, 0] and result.no.tolist() == [0, 1, 0, 0]
    assert result.answer_words.tolist() == [4, 5, 3, 3]
    assert result.task.tolist() == [0, 0, 0, 0]


def test_matrix_is_cached_per_pool_and_vocabulary(pool, monkeypatch):
    first = match_pool(pool, load_vocabulary(), progress=False)
    assert first.num_rows == pool.num_rows
    assert matching.cache_path(pool, load_vocabulary()).is_dir()

    def fail(*args, **kwargs):
        raise AssertionError("the matrix was computed again")

    monkeypatch.setattr(matching, "compute_matrix", fail)
    again = match_pool(pool, load_vocabulary(), progress=False)
    assert (again.matrix != first.matrix).nnz == 0
    assert again.ids.equals(first.ids) and np.array_equal(again.yes, first.yes)
    with pytest.raises(AssertionError, match="computed again"):
        match_pool(pool, VOCAB, progress=False)  # another vocabulary is another cache entry


def test_matrix_sees_the_sample_yes_no_mix(pool):
    matched = match_pool(pool, load_vocabulary(), progress=False)
    assert matched.yes.sum() > matched.no.sum() > 0  # the sample is yes-heavy
    assert matched.test.sum() > 0 and (~matched.test).sum() > 0
    assert matched.matrix.nnz > matched.num_rows


def test_answer_words_leave_out_boxes_and_markers():
    import pyarrow as pa

    from svit_data.recipes.matching import prose_words

    texts = [
        "The <st>dog<ed> [0.1, 0.2, 0.3, 0.4] and <st>cats<ed> [0.5, 0.5, 0.6, 0.6], [0.1, 0.1, 0.2, 0.2] sit.",
        "",
        "   ",
        "Yes, it is 3.5 m tall.",
        None,
    ]
    # by hand: The dog and cats sit. -> 5; "Yes, it is 3.5 m tall." -> 6 (numbers outside boxes are words)
    assert prose_words(pa.array(texts, pa.string())).tolist() == [5, 0, 0, 6, 0]


def test_the_cached_matrix_round_trips_exactly(pool, tmp_path):
    import scipy.sparse as sp

    matched = match_pool(pool, load_vocabulary(), progress=False)
    matching.save(matched, tmp_path / "matrix")
    loaded = matching.load(tmp_path / "matrix")
    back = loaded.matrix
    assert isinstance(back, sp.csr_matrix) and back.dtype == np.uint8 and back.shape == matched.matrix.shape
    for part in ("data", "indices", "indptr"):
        assert np.array_equal(getattr(back, part), getattr(matched.matrix, part)), part
    assert loaded.ids.equals(matched.ids) and loaded.ids.type == matched.ids.type
    for name in ("task", "test", "yes", "no", "answer_words"):
        column, original = getattr(loaded, name), getattr(matched, name)
        assert column.dtype == original.dtype and np.array_equal(column, original), name
    assert (loaded.concepts, loaded.key) == (matched.concepts, matched.key)
    assert np.array_equal(loaded.weights, matched.weights)


@pytest.mark.parametrize(
    "damage", ["cut-indices", "bad-meta", "short-column", "short-ids", "cut-ids", "no-data"]
)
def test_a_damaged_matrix_cache_is_computed_again_and_replaced(pool, damage, caplog, monkeypatch):
    import io

    import pyarrow as pa

    expected = matching.compute_matrix(pool, load_vocabulary(), progress=False)
    match_pool(pool, load_vocabulary(), progress=False)  # cached
    folder = matching.cache_path(pool, load_vocabulary())

    def replace(name: str, content: bytes) -> None:
        # a new file renamed over the old one: an earlier load maps the old file, which must not change
        (folder / f"{name}.new").write_bytes(content)
        os.replace(folder / f"{name}.new", folder / name)

    if damage == "cut-indices":
        replace("matrix-indices.npy", (folder / "matrix-indices.npy").read_bytes()[:-100])
    elif damage == "bad-meta":
        replace("meta.json", b'{"concepts": [')
    elif damage == "short-column":
        buffer = io.BytesIO()
        np.save(buffer, np.load(folder / "column-yes.npy")[:-1])
        replace("column-yes.npy", buffer.getvalue())
    elif damage == "short-ids":
        ids = pa.ipc.open_file(folder / "ids.arrow").read_all()
        sink = pa.BufferOutputStream()
        with pa.ipc.new_file(sink, ids.schema) as writer:
            writer.write_table(ids.slice(0, ids.num_rows - 1))
        replace("ids.arrow", sink.getvalue().to_pybytes())
    elif damage == "cut-ids":
        replace("ids.arrow", (folder / "ids.arrow").read_bytes()[:-100])
    else:
        (folder / "matrix-data.npy").unlink()
    with caplog.at_level("WARNING", logger=matching.__name__):
        again = match_pool(pool, load_vocabulary(), progress=False)
    assert "unreadable" in caplog.text and str(folder) in caplog.text
    assert (again.matrix != expected.matrix).nnz == 0 and again.ids.equals(expected.ids)

    def fail(*args, **kwargs):
        raise AssertionError("the matrix was computed again")

    monkeypatch.setattr(matching, "compute_matrix", fail)  # the replaced cache reads whole
    back = match_pool(pool, load_vocabulary(), progress=False)
    assert (back.matrix != expected.matrix).nnz == 0 and isinstance(back.ids, pa.Array)
