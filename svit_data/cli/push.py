"""``svit-recipe push DIR --repo-id ORG/NAME``: publish a built folder to the Hub, only what changed.

Everything a user can get wrong (not a built folder, a broken or stale card, a missing token, a bad
repo id) is reported before any upload starts. The token comes from ``HF_TOKEN`` or the
huggingface_hub login and is never printed or written anywhere.
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "upload a built dataset folder to a Hugging Face Hub dataset repo (only changed files)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", help="dataset folder built by 'svit-recipe build' (e.g. ./svit)")
    parser.add_argument("--repo-id", required=True, help="Hub dataset repo to push to, as ORG/NAME")
    parser.add_argument("--revision", help="branch to push to (default: main; created if missing)")
    parser.add_argument(
        "--private", action="store_true", help="create the repo as private if it does not exist"
    )
    parser.add_argument(
        "--create-pr", action="store_true", help="open a pull request instead of committing to the branch"
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="list the files that would be added and deleted; upload nothing",
    )


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MB" if n >= 1 << 20 else f"{n / 1024:.1f} KB"


def run(args: argparse.Namespace) -> int:
    from svit_data.publish import check_repo_id, push, resolve_token, validate_folder

    folder = Path(args.folder)
    check_repo_id(args.repo_id)
    validate_folder(folder)
    if not args.dry_run:
        resolve_token(required=True)
    result = push(
        folder,
        args.repo_id,
        revision=args.revision,
        private=args.private,
        create_pr=args.create_pr,
        dry_run=args.dry_run,
    )
    plan = result.plan
    target = f"{args.repo_id}@{plan.revision}" + (" (new repo)" if not plan.repo_exists else "")
    for path in plan.adds:
        print(f"add     {path}  ({_size(plan.sizes[path])})")
    for path in plan.deletes:
        print(f"delete  {path}")
    print(
        f"{len(plan.adds)} to add, {len(plan.deletes)} to delete, {len(plan.unchanged)} unchanged: {target}"
    )
    if args.dry_run:
        print("dry run: nothing was uploaded")
    elif plan.empty:
        print("nothing to push: the repo already has this build")
    elif result.pr_url:
        print(f"opened pull request {result.pr_url}")
    else:
        print(f"committed {result.commit_url}")
    return 0
