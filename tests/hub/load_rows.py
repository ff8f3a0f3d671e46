"""Print a JSON digest of every config and split of a dataset, loaded with ``datasets``.

Usage: ``python load_rows.py PATH_OR_REPO CONFIG...``. Run in a subprocess so HF_ENDPOINT applies.
Each split gives its row count and a digest over every row (ids, text, image bytes), loaded in full and
streamed, so a local folder and its pushed copy can be compared exactly. Streams are read to the end:
a half-read stream leaves reader threads behind that abort the interpreter at exit.
"""

import hashlib
import json
import sys

import datasets
from datasets import load_dataset

datasets.disable_progress_bars()


def digest(dataset) -> str:
    h = hashlib.sha256()
    for row in dataset:
        image = row["image"]["bytes"] if row["image"] else b""
        h.update(json.dumps([row["id"], row["conversations"], row["width"]]).encode())
        h.update(hashlib.sha256(image or b"").digest())
    return h.hexdigest()


def main(path: str, configs: list[str]) -> None:
    out = {}
    for config in configs:
        loaded = load_dataset(path, config)
        streamed = load_dataset(path, config, streaming=True)
        out[config] = {}
        for split, ds in sorted(loaded.items()):
            full = digest(ds.cast_column("image", datasets.Image(decode=False)))
            stream = digest(streamed[split].cast_column("image", datasets.Image(decode=False)))
            out[config][split] = {"rows": len(ds), "digest": full, "streamed_digest": stream}
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
