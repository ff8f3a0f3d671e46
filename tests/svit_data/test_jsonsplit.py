"""Record boundaries of a JSON array or JSON Lines file, and reading a file range by range."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import svit_data.formats.jsonsplit as jsonsplit
from svit_data.errors import InputError
from svit_data.formats.jsonsplit import boundaries, file_range, is_splittable, open_range, range_stop
from svit_data.formats.jsonstream import FileRange, iter_json_records
from svit_data.formats.sources import read_source

# strings that hold what a structural scan must not take for structure
TRICKY = [
    'a "quoted" {brace} and [bracket], comma',
    "backslash at the end \\",
    'escaped quote then brace \\"}',
    '\\\\"[',
    "non-ASCII: übergroß 中文 🙂, with {",
    "",
]


def tricky_records(count: int) -> list[dict]:
    records = []
    for i in range(count):
        text = TRICKY[i % len(TRICKY)]
        records.append(
            {
                "id": f"{text}{i}",
                "image": f"img/{i}.jpg" if i % 3 else [f"a{i}.jpg", f"b{i}.jpg"],
                "conversations": [
                    {"from": "human", "value": "<image>\n" * (2 - i % 3) + f"Q{i} {text}"},
                    {"from": "gpt", "value": f"A [{i}] {{{text}}}"},
                ],
                "n": [i, -1.5e3, None, True, {"deep": [[{}], []]}],
            }
        )
    return records


def write_array(path: Path, records: list, separators: list[str]) -> list[tuple[int, int]]:
    """Write ``records`` as a JSON array (``separators[i]`` after element i's comma; a BOM first) and return
    each comma's byte offset and the records before the byte after it (the expected boundaries)."""
    data = bytearray(b"\xef\xbb\xbf \n[\n")
    commas = []
    for i, record in enumerate(records):
        data += json.dumps(record, ensure_ascii=i % 2 == 0).encode()
        if i < len(records) - 1:
            commas.append((len(data), i + 1))
            data += b"," + separators[i % len(separators)].encode()
    data += b"\n]\n"
    path.write_bytes(bytes(data))
    return commas


def expected_boundary(commas: list[tuple[int, int]], target: int) -> FileRange | None:
    for offset, records in commas:
        if offset >= target:
            return FileRange(offset + 1, None, records)
    return None


@pytest.mark.parametrize("chunk", [1, 7, 64, 1 << 20])
def test_array_boundaries_are_the_commas_between_top_level_elements(tmp_path, monkeypatch, chunk):
    monkeypatch.setattr(jsonsplit, "SCAN_CHUNK_BYTES", chunk)  # state carried across chunk edges
    path = tmp_path / "records.json"
    commas = write_array(path, tricky_records(13), ["", " ", "\n  ", "\t\r\n"])
    size = path.stat().st_size
    targets = list(range(size + 2))
    assert boundaries(path, targets) == [expected_boundary(commas, t) for t in targets]


def test_nothing_after_the_top_level_array_counts(tmp_path):
    path = tmp_path / "trailing.json"
    path.write_text('[{"a": ","}, [1, 2]]\n[3, 4, 5]')
    assert boundaries(path, [0, 11, 12]) == [FileRange(12, None, 1), FileRange(12, None, 1), None]


@pytest.mark.parametrize("parts", [1, 2, 3, 5, 40])
def test_ranges_cover_the_file_once_in_order_with_global_record_indices(tmp_path, parts):
    records = tricky_records(31)
    path = tmp_path / "records.json"
    write_array(path, records, [" ", "\n"])
    read, indices = [], []
    for k in range(parts):
        part = file_range(path, k, parts)
        if part is None:
            continue
        read += list(iter_json_records(path, part))
        for _, index, record in read_source(path, "llava", part):
            indices.append(index)
            assert record.source_id == str(records[index]["id"])
    assert read == records
    assert indices == list(range(len(records)))


@pytest.mark.parametrize("parts", [1, 2, 3, 5, 40, 400])
def test_a_range_that_finds_its_own_end_is_the_same_range(tmp_path, parts):
    path = tmp_path / "records.json"
    write_array(path, tricky_records(31), [" ", "\n", ""])
    for k in range(parts):
        whole = file_range(path, k, parts)
        found = open_range(path, k, parts)
        assert (found is None) == (whole is None)
        if whole is not None:
            start, until = found
            assert (start.start, start.record) == (whole.start, whole.record) and start.stop is None
            assert range_stop(path, until) == whole.stop


def write_lines(path: Path) -> list:
    """A JSON Lines file with LF, CRLF and CR line ends, blank and whitespace-only lines; its records."""
    records = tricky_records(9)
    ends = ["\n", "\r\n", "\r", "\n \t \n", "\r\n\r\n", "\n"]
    text = "\n"
    for i, record in enumerate(records):
        text += json.dumps(record, ensure_ascii=False) + ends[i % len(ends)]
    path.write_bytes(text.encode())
    return records


@pytest.mark.parametrize("parts", [1, 2, 3, 4, 7, 60])
def test_json_lines_ranges_count_records_and_lines_as_the_whole_file_does(tmp_path, monkeypatch, parts):
    monkeypatch.setattr(jsonsplit, "SCAN_CHUNK_BYTES", 3)  # a CRLF across a chunk edge
    path = tmp_path / "records.jsonl"
    records = write_lines(path)
    with open(path, "ab") as handle:
        handle.write(b"{not json\n")  # its line number locates the error: lines must be counted exactly
    with pytest.raises(InputError) as whole:
        list(iter_json_records(path))
    read: list = []
    error = None
    for k in range(parts):
        part = file_range(path, k, parts)
        if part is None:
            continue
        try:
            for record in iter_json_records(path, part):
                read.append(record)
        except InputError as raised:
            error = raised
            break
    assert read == records
    assert error is not None and str(error) == str(whole.value)
    assert whole.value.record == 12  # lines 0-11: 9 records, 3 blank


def test_json_lines_boundaries_follow_line_feeds(tmp_path):
    path = tmp_path / "small.jsonl"
    path.write_bytes(b'{"a": 1}\r\n \n{"b": "\\n"}\r{"c": 3}\n{"d": 4}')
    # boundaries after each LF: (byte, non-blank lines before, lines before)
    assert boundaries(path, [0, 10, 11, 13, 40]) == [
        FileRange(10, None, 1, 1),
        FileRange(12, None, 1, 2),
        FileRange(12, None, 1, 2),
        FileRange(33, None, 3, 4),
        None,
    ]


def test_only_arrays_and_json_lines_are_split(tmp_path):
    (tmp_path / "a.json").write_bytes(b"\xef\xbb\xbf\n  [1]")
    (tmp_path / "b.json").write_text('{"images": []}')
    (tmp_path / "c.jsonl").write_text("{}\n")
    (tmp_path / "d.parquet").write_bytes(b"PAR1")
    assert [is_splittable(tmp_path / name) for name in ("a.json", "b.json", "c.jsonl", "d.parquet")] == [
        True,
        False,
        True,
        False,
    ]
