"""Probe dataset folders for svit-eval tests, in the probe configs' contract (issue 9, section 1).

Columns id, image_id, question, answer (yes/no), object, sampler, image (embedded bytes), image_file;
split test; configs declared in the README's `configs:` block, loadable with `load_dataset`.
"""

from __future__ import annotations

from pathlib import Path

from svit_train_helpers import make_image

OBJECTS = ("dog", "cat", "car", "cup", "tree", "bus")


def probe_rows(sampler: str, images: int = 4, per_image: int = 3) -> list[dict]:
    rows = []
    for i in range(images):
        for k in range(per_image):
            for answer, obj in (("yes", OBJECTS[(i + k) % 6]), ("no", OBJECTS[(i + k + 3) % 6])):
                article = "an" if obj[0] in "aeiou" else "a"
                rows.append(
                    {
                        "id": f"{sampler}/{100 + i}/{len(rows)}",
                        "image_id": 100 + i,
                        "question": f"Is there {article} {obj} in the image?",
                        "answer": answer,
                        "object": obj,
                        "sampler": sampler,
                        "image": {"bytes": make_image(i), "path": f"{100 + i}.png"},
                        "image_file": f"{100 + i}.png",
                    }
                )
    return rows


def write_folder(root: Path, configs: dict[str, list[dict]]) -> Path:
    """A dataset folder: data/<config>/test-00000-of-00001.parquet + README.md with configs."""
    from datasets import Dataset, Features, Image, Value

    features = Features(
        {
            "id": Value("string"),
            "image_id": Value("int64"),
            "question": Value("string"),
            "answer": Value("string"),
            "object": Value("string"),
            "sampler": Value("string"),
            "image": Image(),
            "image_file": Value("string"),
        }
    )
    card = ["---", "configs:"]
    for name, rows in configs.items():
        folder = root / "data" / name
        folder.mkdir(parents=True)
        names = set(rows[0])
        feats = (
            Features({k: v for k, v in features.items() if k in names}) if names <= set(features) else None
        )
        Dataset.from_list(rows, features=feats).to_parquet(folder / "test-00000-of-00001.parquet")
        card += [
            f"- config_name: {name}",
            "  data_files:",
            "  - split: test",
            f"    path: data/{name}/test-*.parquet",
        ]
    (root / "README.md").write_text("\n".join([*card, "---", ""]))
    return root
