"""A one-turn LLaVA-format record for tests that write their own LLaVA files."""


def record(n: int, answer: str) -> dict:
    """Record ``r{n}`` on COCO image ``n``: a fixed question and ``answer``."""
    return {
        "id": f"r{n}",
        "image": f"coco/train2017/{n:012d}.jpg",
        "conversations": [
            {"from": "human", "value": "<image>\nDescribe the image."},
            {"from": "gpt", "value": answer},
        ],
    }
