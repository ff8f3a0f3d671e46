"""The sample x concept matrix: which concepts each sample's questions and answers mention.

Computed once per (pool fingerprint, vocabulary hash) and cached under
``$SVIT_CACHE/matrices/<fingerprint>-<vocabulary hash>/``; every recipe reuses it. Matching runs
batch by batch (bounded memory, two batches in flight on worker threads), by one compiled pass over the
turns' text (:mod:`~svit_data.recipes.match_kernel`): every turn is lowercased and split into words at
every run of non-letter, non-digit characters; words are looked up in the vocabulary's word table, and
n-grams of up to :data:`~svit_data.recipes.vocabulary.MAX_WORDS` known words within one turn are coded
as integers (:class:`FormTable`) and looked up in a table of the forms' codes. The same pass counts
yes/no answers (see :mod:`~svit_data.recipes.yesno`) and answer words.
"""

from __future__ import annotations

import json
import logging
import os
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp
from tqdm.auto import tqdm

from svit_data import paths
from svit_data.atomic import staged_folder
from svit_data.boxes import BOX_RE, END, START
from svit_data.pool import Pool
from svit_data.recipes.tokenize import WordIndex, compile_forms, match_turns
from svit_data.recipes.vocabulary import MAX_WORDS, Vocabulary
from svit_data.recipes.yesno import count_yes_no
from svit_data.schema import GPT
from svit_data.splits import test_image_ids
from svit_data.tasks import TASKS

log = logging.getLogger(__name__)

# 3: answer words exclude boxes and <st>/<ed> markers; 4: matrix.npz by scipy.sparse.save_npz;
# 5: the CSR's arrays as .npy files (np.load reads them without the zip layer's CRC pass over 200 MB);
# 6: the per-sample columns as .npy files and the ids as an Arrow IPC file, mapped (decoding
# columns.parquet cost a warm build 0.2-0.35 s CPU at 3.0M samples)
MATCHING_VERSION = "6"
CSR_PARTS = ("data", "indices", "indptr")
NUMERIC_COLUMNS = ("task", "test", "yes", "no", "answer_words")
IDS_FILE = "ids.arrow"
BATCH_ROWS = 65_536
COLUMNS = ["id", "image_id", "task", "conversations"]
BOX_LIST = rf"{BOX_RE.pattern}(?:\s*,\s*{BOX_RE.pattern})*"  # a box, or boxes separated by commas


@dataclass
class MatchedPool:
    """The matrix and the per-sample columns selection and diagnostics need, in pool order."""

    matrix: sp.csr_matrix  # samples x concepts, occurrence counts (uint8, capped at 255)
    ids: pa.Array  # sample ids (string)
    task: np.ndarray  # index into svit_data.tasks.TASKS (int8)
    test: np.ndarray  # image in the held-out test list (bool)
    yes: np.ndarray  # yes answers per sample (int32)
    no: np.ndarray  # no answers per sample (int32)
    answer_words: np.ndarray  # words in the sample's answers (int32)
    concepts: list[str]
    weights: np.ndarray  # w_c per concept (float64)
    key: str

    @property
    def num_rows(self) -> int:
        return self.matrix.shape[0]


class FormTable:
    """The vocabulary's surface forms as integer codes: word ids in base ``len(words)``, per length.

    Forms map to concepts through a CSR-like table (a form may name several concepts). :attr:`kernel`
    holds the tables of the compiled pass; the same lookup in numpy arrays (``word_form``, and the
    sorted codes per length in ``ngrams``) is the reference it is tested against
    (``tests/recipes/matching_oracle.py``).
    """

    def __init__(self, vocabulary: Vocabulary):
        forms = vocabulary.forms()
        words = sorted({w for form in forms for w in form.split()})
        self.words = pa.array(words, pa.string())
        self.index = WordIndex(self.words)
        self.base = max(1, len(words))
        if self.base**MAX_WORDS >= 2**63:
            raise ValueError(
                f"vocabulary has too many distinct words ({self.base}) to code {MAX_WORDS}-grams"
            )
        word_id = {w: i for i, w in enumerate(words)}
        concept_lists = list(forms.values())
        self.form_indptr = np.cumsum([0] + [len(c) for c in concept_lists]).astype(np.int64)
        self.form_concepts = np.array([c for cs in concept_lists for c in cs], np.int32)
        self.word_form = np.full(len(words), -1, np.int64)
        per_length: dict[int, list[tuple[int, int]]] = {}
        for index, form in enumerate(forms):
            ids = [word_id[w] for w in form.split()]
            if len(ids) == 1:
                self.word_form[ids[0]] = index
                continue
            code = 0
            for i in ids:
                code = code * self.base + i
            per_length.setdefault(len(ids), []).append((code, index))
        self.ngrams: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # n -> (sorted codes, form indices)
        for n, pairs in sorted(per_length.items()):
            pairs.sort()
            self.ngrams[n] = (
                np.array([p[0] for p in pairs], np.int64),
                np.array([p[1] for p in pairs], np.int64),
            )
        self.kernel = compile_forms(
            self.word_form,
            self.ngrams,
            self.base,
            self.form_indptr,
            self.form_concepts,
            MAX_WORDS,
            len(vocabulary.concepts),
        )


@dataclass
class _BatchResult:
    matrix: sp.csr_matrix
    ids: pa.Array
    task: np.ndarray
    test: np.ndarray
    yes: np.ndarray
    no: np.ndarray
    answer_words: np.ndarray


def prose_words(values: pa.Array) -> np.ndarray:
    """Whitespace words per text once boxes and ``<st>``/``<ed>`` markers are removed (not their numbers)."""
    text = pc.replace_substring_regex(values, BOX_LIST, " ")
    text = pc.utf8_trim_whitespace(pc.replace_substring_regex(text, f"{START}|{END}", " "))
    words = (
        pc.list_value_length(pc.utf8_split_whitespace(text))
        .fill_null(0)
        .to_numpy(zero_copy_only=False)
        .copy()
    )
    words[pc.binary_length(text).to_numpy(zero_copy_only=False) == 0] = 0  # "" splits into [""]
    return words


def match_batch(batch: pa.RecordBatch, forms: FormTable, num_concepts: int) -> _BatchResult:
    """Concepts, yes/no answers and answer words of one batch of pool rows."""
    n = batch.num_rows
    conversations = batch.column("conversations")
    turns = pc.list_flatten(conversations)
    sample_of_turn = pc.list_parent_indices(conversations).to_numpy()
    values = turns.field("value").fill_null("")
    is_answer = pc.equal(turns.field("from"), GPT).fill_null(False).to_numpy(zero_copy_only=False)
    found = match_turns(values, is_answer, sample_of_turn, n, forms.index, forms.kernel)
    other = np.flatnonzero(is_answer & ~found.ascii)  # non-ASCII answers: pyarrow's Unicode kernels
    lengths, yes, no = found.prose, found.yes, found.no
    if len(other):
        text = values.take(pa.array(other))
        lengths[other] = prose_words(text)
        more_yes, more_no = count_yes_no(text, np.ones(len(other), bool), sample_of_turn[other], n)
        yes, no = yes + more_yes, no + more_no
    answer_words = np.bincount(sample_of_turn, weights=lengths, minlength=n)
    matrix = sp.csr_matrix((found.counts, found.indices, found.indptr), shape=(n, num_concepts))
    image_ids = batch.column("image_id")
    return _BatchResult(
        matrix=matrix,
        ids=batch.column("id"),
        # third-party samples (task "") get index len(TASKS): svit_data.tasks.TASK_LABELS
        task=pc.index_in(batch.column("task"), value_set=pa.array(TASKS))
        .fill_null(len(TASKS))
        .to_numpy()
        .astype(np.int8),
        test=pc.is_in(image_ids, value_set=pa.array(sorted(test_image_ids()), pa.int64()))
        .to_numpy(zero_copy_only=False)
        .astype(bool),
        yes=yes,
        no=no,
        answer_words=answer_words.astype(np.int32),
    )


def _bounded_map(fn, items: Iterator, workers: int) -> Iterator:
    """``map`` on a thread pool keeping at most ``workers + 1`` items in flight, in order."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending: deque[Future] = deque()
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) > workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def compute_matrix(pool: Pool, vocabulary: Vocabulary, *, progress: bool = True) -> MatchedPool:
    """Match every pool sample against ``vocabulary`` (no cache; see :func:`match_pool`)."""
    forms = FormTable(vocabulary)
    num_concepts = len(vocabulary.concepts)
    workers = max(1, min(2, os.cpu_count() or 1))
    parts: list[_BatchResult] = []
    with tqdm(total=pool.num_rows, desc="match concepts", unit=" samples", disable=not progress) as bar:
        batches = pool.iter_batches(columns=COLUMNS, batch_size=BATCH_ROWS)
        for part in _bounded_map(lambda b: match_batch(b, forms, num_concepts), batches, workers):
            parts.append(part)
            bar.update(part.matrix.shape[0])
    return assembled(parts, vocabulary, cache_key(pool, vocabulary))


def assembled(parts: list[_BatchResult], vocabulary: Vocabulary, key: str) -> MatchedPool:
    """The batches' results one above the other, in pool order (their matrices are let go as they are
    stacked): what :func:`compute_matrix` and matching during ingest
    (:mod:`~svit_data.recipes.match_at_ingest`) both return."""
    num_concepts = len(vocabulary.concepts)
    if not parts:
        matrix = sp.csr_matrix((0, num_concepts), dtype=np.uint8)
    else:
        matrix = sp.vstack([p.matrix for p in parts], format="csr", dtype=np.uint8)
        for p in parts:
            p.matrix = None

    def cat(name: str, dtype: type) -> np.ndarray:
        return (
            np.concatenate([getattr(p, name) for p in parts]).astype(dtype) if parts else np.zeros(0, dtype)
        )

    return MatchedPool(
        matrix=matrix,
        ids=pa.concat_arrays([p.ids for p in parts]) if parts else pa.array([], pa.string()),
        task=cat("task", np.int8),
        test=cat("test", bool),
        yes=cat("yes", np.int32),
        no=cat("no", np.int32),
        answer_words=cat("answer_words", np.int32),
        concepts=vocabulary.names,
        weights=np.asarray(vocabulary.weights, np.float64),
        key=key,
    )


def stacked(parts: list[MatchedPool]) -> MatchedPool:
    """The matched pools one above the other: a sample's row depends on that sample alone, so a mixed
    pool's matrix is its sources' matrices stacked in pool order (``key`` is the first part's)."""
    first = parts[0]

    def cat(name: str) -> np.ndarray:
        return np.concatenate([getattr(p, name) for p in parts])

    return MatchedPool(
        matrix=sp.vstack([p.matrix for p in parts], format="csr", dtype=np.uint8),
        ids=pa.concat_arrays([p.ids for p in parts]),
        task=cat("task"),
        test=cat("test"),
        yes=cat("yes"),
        no=cat("no"),
        answer_words=cat("answer_words"),
        concepts=first.concepts,
        weights=first.weights,
        key=first.key,
    )


def cache_key(pool: Pool, vocabulary: Vocabulary) -> str:
    return f"{pool.fingerprint}-{vocabulary.hash}-m{MATCHING_VERSION}"


def cache_path(pool: Pool, vocabulary: Vocabulary) -> Path:
    return paths.cache_dir() / "matrices" / cache_key(pool, vocabulary)


def save(matched: MatchedPool, folder: Path) -> None:
    """Write atomically: a temporary folder renamed into place."""
    with staged_folder(folder) as tmp:
        for part in CSR_PARTS:
            np.save(tmp / f"matrix-{part}.npy", getattr(matched.matrix, part))
        for name in NUMERIC_COLUMNS:
            np.save(tmp / f"column-{name}.npy", getattr(matched, name))
        ids = pa.table({"id": matched.ids})
        with pa.OSFile(str(tmp / IDS_FILE), "wb") as sink, pa.ipc.new_file(sink, ids.schema) as writer:
            writer.write_table(ids)  # one uncompressed batch: read back by mapping, without decoding
        meta = {
            "concepts": matched.concepts,
            "weights": matched.weights.tolist(),
            "key": matched.key,
            "shape": list(matched.matrix.shape),
        }
        (tmp / "meta.json").write_text(json.dumps(meta))


def load(folder: Path) -> MatchedPool:
    """Every array mapped from the cache files (copy-on-write: pages come from the page cache as they are
    touched, writes stay private to the process) instead of read and decoded into fresh memory: decoding the
    columns from parquet cost a warm build at 3.0M samples 0.2-0.35 s CPU, and it needs only the selected
    ids."""
    meta = json.loads((folder / "meta.json").read_text())
    data, indices, indptr = (np.load(folder / f"matrix-{part}.npy", mmap_mode="c") for part in CSR_PARTS)
    matrix = sp.csr_matrix((data, indices, indptr), shape=tuple(meta["shape"]), copy=False)
    columns = {name: np.load(folder / f"column-{name}.npy", mmap_mode="c") for name in NUMERIC_COLUMNS}
    table = pa.ipc.open_file(pa.memory_map(str(folder / IDS_FILE))).read_all()
    ids = table.column("id")
    ids = ids.chunk(0) if ids.num_chunks == 1 else ids.combine_chunks()
    lengths = {len(ids), *(len(column) for column in columns.values())}
    if lengths != {matrix.shape[0]} or int(indptr[-1]) != len(indices):
        raise ValueError(
            f"columns of {sorted(lengths)} rows and {int(indptr[-1])} entries for a {matrix.shape} matrix"
        )
    return MatchedPool(
        matrix=matrix,
        ids=ids,
        **columns,
        concepts=meta["concepts"],
        weights=np.asarray(meta["weights"], np.float64),
        key=meta["key"],
    )


def match_pool(pool: Pool, vocabulary: Vocabulary, *, progress: bool = True) -> MatchedPool:
    """The pool's matrix for ``vocabulary``: from the cache, or computed once and cached."""
    folder = cache_path(pool, vocabulary)
    if (folder / "meta.json").is_file():
        try:
            cached = load(folder)
        except (OSError, ValueError, KeyError, TypeError, pa.ArrowException) as error:
            # written atomically, so only damage from outside (a disk error, a hand edit): computed again
            log.warning("the concept matrix cached in %s is unreadable (%s): matching again", folder, error)
        else:
            log.info("concept matrix from cache %s", folder)
            return cached
    if pool.parts:  # a mixed pool: its sources' matrices (each cached by its own pool) one above the other
        matched = stacked([match_pool(part, vocabulary, progress=progress) for part in pool.parts])
        matched.key = cache_key(pool, vocabulary)
    else:
        matched = compute_matrix(pool, vocabulary, progress=progress)
    save(matched, folder)
    log.info(
        "concept matrix: %s samples x %d concepts, %s entries (cached in %s)",
        f"{matched.num_rows:,}",
        len(matched.concepts),
        f"{matched.matrix.nnz:,}",
        folder,
    )
    return matched
