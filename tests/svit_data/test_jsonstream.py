"""Streaming JSON: arrays of any size read element by element, JSON Lines, and located errors."""

from __future__ import annotations

import json
import resource
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from svit_data.errors import InputError
from svit_data.formats.jsonstream import (
    iter_json_array,
    iter_json_array_spans,
    iter_json_lines,
    iter_json_object_array,
    iter_json_object_arrays,
    iter_json_records,
    read_span,
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**12), 10**12)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(st.lists(json_values, max_size=8), st.integers(1, 40), st.sampled_from(["", " ", "\n  ", "\t"]))
def test_reads_every_element_whatever_the_chunk_size(tmp_path_factory, items, chunk, space):
    path = tmp_path_factory.mktemp("j") / "a.json"
    path.write_text(
        "[" + space + f",{space}".join(json.dumps(i, ensure_ascii=False) for i in items) + space + "]"
    )
    assert list(iter_json_array(path, chunk_chars=chunk)) == items


def test_empty_array_bom_and_trailing_whitespace(tmp_path):
    path = tmp_path / "a.json"
    path.write_text("\ufeff  [ ]  \n")
    assert list(iter_json_array(path)) == []
    path.write_text('\ufeff[{"a": 1}]\n')
    assert list(iter_json_array(path)) == [{"a": 1}]


def test_numbers_cut_by_the_chunk_edge_are_read_whole(tmp_path):
    path = tmp_path / "a.json"
    path.write_text("[123456789, 1.5e10, true, null, -0.25]")
    for chunk in range(1, 12):
        assert list(iter_json_array(path, chunk_chars=chunk)) == [123456789, 1.5e10, True, None, -0.25]


@pytest.mark.parametrize(
    "text, record, message",
    [
        ('{"a": 1}', None, "is not a JSON array"),
        ("", None, "is not a JSON array"),
        ('[{"a": 1}, {"a": 2}', 2, "ends before the JSON array is closed"),
        ('[{"a": 1}, {"a": 2,}]', 1, "malformed JSON"),
        ('[{"a": 1} {"a": 2}]', 0, "expected ',' or ']' after this element"),
        ('[{"a": 1}, {"a": "x}]', 1, "malformed JSON"),
        ('[{"a": 1},]', 1, "malformed JSON"),
    ],
)
def test_malformed_arrays_name_the_file_and_record(tmp_path, text, record, message):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(InputError, match=message) as caught:
        list(iter_json_array(path, chunk_chars=4))
    assert caught.value.file == str(path)
    assert caught.value.record == record
    assert str(caught.value).startswith(str(path))
    assert "\n" not in str(caught.value)


def test_records_before_the_error_are_yielded(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('[{"a": 1}, {"a": 2}, {"a": oops}]')
    got = []
    with pytest.raises(InputError) as caught:
        for item in iter_json_array(path):
            got.append(item)
    assert got == [{"a": 1}, {"a": 2}] and caught.value.record == 2


def test_an_early_error_in_a_big_file_is_reported_without_reading_it_all(tmp_path):
    path = tmp_path / "big.json"
    with open(path, "w") as handle:
        handle.write('[{"a": 1}, {"a": oops}')
        for _ in range(2_000):
            handle.write(', {"text": "' + "x" * 1_000 + '"}')
        handle.write("]")
    reads = []
    import svit_data.formats.jsonstream as module

    real_open = open

    class Counting:
        def __init__(self, handle):
            self.handle = handle

        def read(self, n):
            reads.append(n)
            return self.handle.read(n)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

    module_open = lambda *a, **k: Counting(real_open(*a, **k))  # noqa: E731
    module.open = module_open  # type: ignore[attr-defined]
    try:
        with pytest.raises(InputError, match="record 1"):
            list(iter_json_array(path, chunk_chars=64))
    finally:
        del module.open  # type: ignore[attr-defined]
    assert len(reads) < 5


def test_not_utf8_is_an_input_error(tmp_path):
    path = tmp_path / "latin.json"
    path.write_bytes(b'[{"a": "caf\xe9"}]')
    with pytest.raises(InputError, match="not UTF-8"):
        list(iter_json_array(path))
    lines = tmp_path / "latin.jsonl"
    lines.write_bytes(b'{"a": "caf\xe9"}\n')
    with pytest.raises(InputError, match="not UTF-8"):
        list(iter_json_lines(lines))


def test_json_lines_skip_blank_lines_and_locate_errors(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text('{"a": 1}\n\n{"a": 2}\n')
    assert list(iter_json_records(path)) == [{"a": 1}, {"a": 2}]
    path.write_text('{"a": 1}\n{"a": \n')
    with pytest.raises(InputError, match="line 2") as caught:
        list(iter_json_records(path))
    assert caught.value.record == 1


def test_dispatch_by_suffix(tmp_path):
    (tmp_path / "a.json").write_text('[{"a": 1}]')
    (tmp_path / "a.jsonl").write_text('{"a": 1}\n')
    assert list(iter_json_records(tmp_path / "a.json")) == list(iter_json_records(tmp_path / "a.jsonl"))


@settings(max_examples=150, deadline=None)
@given(
    st.lists(json_values, max_size=8),
    st.integers(1, 40),
    st.sampled_from(["", " ", "\r\n  ", "\t"]),
    st.booleans(),
)
def test_spans_read_back_the_elements_whatever_the_chunk_size(tmp_path_factory, items, chunk, space, bom):
    """Byte spans stay exact across chunk edges, multi-byte text, CRLF and a leading BOM."""
    path = tmp_path_factory.mktemp("j") / "a.json"
    text = "[" + space + f",{space}".join(json.dumps(i, ensure_ascii=False) for i in items) + space + "]"
    path.write_bytes(("\ufeff" if bom else "").encode() + text.encode("utf-8"))
    data = path.read_bytes()
    got = list(iter_json_array_spans(path, chunk_chars=chunk))
    assert [item for item, _, _ in got] == items
    for item, offset, length in got:
        assert read_span(path, offset, length) == item
        assert json.loads(data[offset : offset + length]) == item


def test_spans_of_a_non_ascii_file(tmp_path):
    path = tmp_path / "a.json"
    items = [{"name": "café"}, {"name": "猫"}, {"name": "x"}]
    path.write_text("[\n" + ",\n".join(json.dumps(i, ensure_ascii=False) for i in items) + "\n]")
    spans = [(offset, length) for _, offset, length in iter_json_array_spans(path, chunk_chars=3)]
    assert [read_span(path, *span) for span in spans] == items
    assert spans[1][0] == len('[\n{"name": "café"},\n'.encode())


def test_a_stale_span_is_an_input_error(tmp_path):
    path = tmp_path / "a.json"
    path.write_text('[{"a": 1}, {"a": 2}]')
    (_, offset, length), _ = iter_json_array_spans(path)
    path.write_text('[   {"a": 1}]')
    with pytest.raises(InputError, match="changed since it was indexed") as caught:
        read_span(path, offset, length)
    assert caught.value.file == str(path)


COCO_LIKE = {
    "info": {"year": 2017, "images": [1, 2]},
    "licenses": [{"id": 1, "name": "x"}],
    "images": [{"id": 1, "width": 10}, {"id": 2, "width": 20}],
    "annotations": [{"id": 7, "image_id": 1, "segmentation": [[1.5, 2.5, 3.25]]}, {"id": 8, "image_id": 2}],
    "categories": [],
    "n": 123456789,
}


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 40), st.sampled_from([None, 0, 2]))
def test_named_arrays_of_a_top_level_object_whatever_the_chunk_size(tmp_path_factory, chunk, indent):
    path = tmp_path_factory.mktemp("j") / "coco.json"
    path.write_text(json.dumps(COCO_LIKE, indent=indent))
    keys = ("images", "annotations", "categories")
    got = list(iter_json_object_arrays(path, keys, chunk_chars=chunk))
    assert got == [(k, v) for k in keys for v in COCO_LIKE[k]]  # file order; "info" has its own "images"
    assert list(iter_json_object_array(path, "annotations", chunk_chars=chunk)) == COCO_LIKE["annotations"]


def test_a_missing_key_names_the_file_and_key(tmp_path):
    path = tmp_path / "coco.json"
    path.write_text(json.dumps({"images": [{"id": 1}]}))
    with pytest.raises(InputError, match="no such top-level key") as caught:
        list(iter_json_object_array(path, "annotations"))
    assert (caught.value.file, caught.value.field) == (str(path), "annotations")
    path.write_text("{ }")
    with pytest.raises(InputError, match="'images'"):
        list(iter_json_object_array(path, "images"))


@pytest.mark.parametrize(
    "text, record, field, message",
    [
        ("[]", None, None, "is not a JSON object"),
        ('{"images": {"id": 1}}', None, "images", "is not a JSON array"),
        ('{"images": [{"id": 1}, {"id": 2,}]}', 1, "images", "malformed JSON"),
        ('{"images": [{"id": 1} {"id": 2}]}', 0, "images", "expected ',' or ']'"),
        ('{"images": [{"id": 1}, {"id": 2}', 2, "images", "ends before the JSON array is closed"),
        ('{"images": [], "info": {"a": }}', None, "info", "malformed JSON"),
        ('{"images": [] "info": 1}', None, "images", "expected ',' or '}'"),
        ('{"images": [], }', None, None, "',' before '}'"),
        ('{"images" [1]}', None, "images", "expected ':'"),
        ("{images: [1]}", None, None, "expected a key"),
        ('{"images": [1], "licenses": [{"a": 1}, oops]}', 1, "licenses", "malformed JSON"),
        ('{"images": [1], "info": ', None, "info", "ends before the JSON object is closed"),
    ],
)
def test_malformed_objects_name_the_file_record_and_key(tmp_path, text, record, field, message):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(InputError, match=message) as caught:
        list(iter_json_object_array(path, "images", chunk_chars=4))
    assert (caught.value.file, caught.value.record, caught.value.field) == (str(path), record, field)
    assert "\n" not in str(caught.value)


@pytest.mark.slow
def test_memory_stays_bounded_on_a_large_array(tmp_path):
    """~200 MB of records: peak RSS grows by far less than the file (one chunk plus one record)."""
    path = tmp_path / "big.json"
    record = json.dumps(
        {"image_id": 1, "conversations": [{"content": [{"from": "gpt", "value": "y" * 2000}]}]}
    )
    with open(path, "w") as handle:
        handle.write("[" + ",\n".join([record] * 100_000) + "]")
    code = (
        "import resource, sys\n"
        "from svit_data.formats.jsonstream import iter_json_array\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        f"n = sum(1 for _ in iter_json_array({str(path)!r}))\n"
        "after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "print(n, (after - before) // 1024)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    count, grown_mb = map(int, out.split())
    assert count == 100_000
    assert path.stat().st_size > 150e6
    assert grown_mb < 60
    assert resource  # the parent's own RSS is not what is measured
