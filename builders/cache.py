"""SQLite store of every answer received and of every batch submitted.

Each answer is committed in its own transaction the moment it arrives (WAL journal), so a crash or
``kill -9`` loses nothing that was received, and a rerun finds it under the same key
(:attr:`ChatRequest.key`) instead of paying again. Batch ids are stored the moment a batch is created,
and an *intent* (the input's content hash, its keys, then the uploaded file id) before it is created, so a
process killed between creating a batch and storing its id can find that batch again (see ``batch.py``).
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from svit_data.builders.llm import ChatRequest, ChatResult

SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY, model TEXT NOT NULL, request TEXT NOT NULL, text TEXT NOT NULL,
    input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL, request_id TEXT NOT NULL,
    finish_reason TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS batches (
    batch_id TEXT PRIMARY KEY, input_file_id TEXT NOT NULL, input_path TEXT NOT NULL, keys TEXT NOT NULL,
    status TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS batch_intents (
    content_hash TEXT PRIMARY KEY, input_path TEXT NOT NULL, keys TEXT NOT NULL, input_file_id TEXT,
    created REAL NOT NULL);
"""


class ResponseCache:
    def __init__(self, path: str | Path, *, read_only: bool = False):
        self.path = Path(path)
        if read_only:
            self.db = _connect_read_only(self.path)
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)

    def get(self, key: str) -> ChatResult | None:
        row = self.db.execute(
            "SELECT text, input_tokens, output_tokens, request_id, finish_reason "
            "FROM responses WHERE key = ?",
            (key,),
        ).fetchone()
        return ChatResult(*row, from_cache=True) if row else None

    def __contains__(self, key: str) -> bool:
        return self.db.execute("SELECT 1 FROM responses WHERE key = ?", (key,)).fetchone() is not None

    def put(self, request: ChatRequest, result: ChatResult) -> None:
        self.put_raw(
            request.key,
            request.model,
            json.dumps(request.body(inline_images=False), ensure_ascii=False),
            result,
        )

    def put_raw(self, key: str, model: str, request_json: str, result: ChatResult) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                key,
                model,
                request_json,
                result.text,
                result.input_tokens,
                result.output_tokens,
                result.request_id,
                result.finish_reason,
                time.time(),
            ),
        )

    def __len__(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def add_batch(
        self,
        batch_id: str,
        input_file_id: str,
        input_path: str,
        keys: list[str],
        *,
        intent: str | None = None,
    ) -> None:
        """Store a created batch and, in the same transaction, drop the intent it fulfils."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.db.execute(
                "INSERT OR REPLACE INTO batches VALUES (?, ?, ?, ?, ?, ?)",
                (batch_id, input_file_id, input_path, json.dumps(keys), "submitted", time.time()),
            )
            if intent is not None:
                self.db.execute("DELETE FROM batch_intents WHERE content_hash = ?", (intent,))
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def add_intent(self, content_hash: str, input_path: str, keys: list[str]) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO batch_intents VALUES (?, ?, ?, NULL, ?)",
            (content_hash, input_path, json.dumps(keys), time.time()),
        )

    def set_intent_file(self, content_hash: str, input_file_id: str) -> None:
        self.db.execute(
            "UPDATE batch_intents SET input_file_id = ? WHERE content_hash = ?", (input_file_id, content_hash)
        )

    def drop_intent(self, content_hash: str) -> None:
        self.db.execute("DELETE FROM batch_intents WHERE content_hash = ?", (content_hash,))

    def intents(self) -> list[tuple[str, str, list[str], str | None, float]]:
        """Batches about to be created when a process stopped: ``(hash, input_path, keys, file_id, created)``."""
        rows = self.db.execute(
            "SELECT content_hash, input_path, keys, input_file_id, created FROM batch_intents ORDER BY created"
        ).fetchall()
        return [(h, path, json.loads(keys), file_id, created) for h, path, keys, file_id, created in rows]

    def set_batch_status(self, batch_id: str, status: str) -> None:
        self.db.execute("UPDATE batches SET status = ? WHERE batch_id = ?", (status, batch_id))

    def open_batches(self) -> list[tuple[str, str, list[str]]]:
        """Batches submitted and not yet merged: ``(batch_id, input_path, keys)``."""
        rows = self.db.execute(
            "SELECT batch_id, input_path, keys FROM batches WHERE status = 'submitted' ORDER BY created"
        ).fetchall()
        return [(batch_id, path, json.loads(keys)) for batch_id, path, keys in rows]

    def batched_keys(self) -> set[str]:
        return {key for _, _, keys in self.open_batches() for key in keys}

    def close(self) -> None:
        self.db.close()


def _connect_read_only(path: Path) -> sqlite3.Connection:
    """Open an existing cache without writing a byte (for --dry-run).

    A read-only WAL connection creates ``-wal``/``-shm`` files when they are missing, so a cache closed
    cleanly (no ``-wal`` file) is opened ``immutable``, which creates nothing; when a ``-wal`` file exists
    (a killed or running writer) it holds answers not yet in the main file, and a plain read-only
    connection reads them through the existing files.
    """
    if not path.is_file():
        raise FileNotFoundError(path)
    wal = path.with_name(path.name + "-wal")
    mode = "ro" if wal.exists() else "ro&immutable=1"
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode={mode}", uri=True, check_same_thread=False)
