"""Push a built dataset folder to a Hub dataset repo with huggingface_hub, uploading only what changed.

The plan compares each local file with the remote tree (LFS sha256 for large files, git blob id for
small ones) and also deletes remote data files the build no longer has; everything else in the
repo (``.gitattributes``, files added by hand) is kept. Shard names carry a content hash, so a push
interrupted half way is resumed by pushing again: objects already uploaded are skipped by the LFS
batch API and only the missing ones travel. The token is passed to huggingface_hub and nowhere else.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from svit_data.errors import SvitError
from svit_data.folder import IDS_FILE, MANIFEST_FILE, STATE_FILE, read_state

log = logging.getLogger(__name__)

REPO_TYPE = "dataset"
DATA_PREFIX = "data/"
REPO_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$")


@dataclass
class PushPlan:
    """What a push would do: files to add (new or changed), to delete, and left as they are."""

    repo_id: str
    revision: str
    repo_exists: bool
    adds: list[str] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    sizes: dict[str, int] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.adds and not self.deletes


@dataclass
class PushResult:
    plan: PushPlan
    commit_url: str | None = None
    pr_url: str | None = None


def check_repo_id(repo_id: str) -> str:
    if not REPO_ID_RE.match(repo_id or "") or "--" in repo_id or ".." in repo_id or repo_id.endswith(".git"):
        raise SvitError(
            f"--repo-id must look like ORG/NAME (letters, digits, '-', '_', '.'), got {repo_id!r}"
        )
    return repo_id


def resolve_token(required: bool = True) -> str | None:
    """``HF_TOKEN`` or the huggingface_hub login; a missing token is a user error before any upload."""
    from huggingface_hub import get_token

    token = os.environ.get("HF_TOKEN") or get_token()
    if token is None and required:
        raise SvitError("no Hugging Face token: set HF_TOKEN or log in with 'hf auth login' first")
    return token


def local_files(folder: Path) -> dict[str, Path]:
    """Files a push sends: the card, the build state and every data file the state lists."""
    state = read_state(folder)
    files = {"README.md": folder / "README.md", STATE_FILE: folder / STATE_FILE}
    for name, config in sorted(state.configs.items()):
        names = [file for split in config.splits.values() for file in split.files]
        if config.recipe is not None and config.recipe.ids_file:  # the selection travels with the data
            names += [IDS_FILE, MANIFEST_FILE]
        for file in names:
            files[f"{DATA_PREFIX}{name}/{file}"] = folder / "data" / name / file
    missing = [path for path, local in files.items() if not local.is_file()]
    if missing:
        raise SvitError(f"{folder} is incomplete: {', '.join(missing[:3])} missing; rebuild it")
    return files


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _git_blob_id(path: Path) -> str:
    data = path.read_bytes()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _same(local: Path, remote) -> bool:
    if local.stat().st_size != remote.size:
        return False
    if remote.lfs is not None:
        return _sha256(local) == remote.lfs.sha256
    return _git_blob_id(local) == remote.blob_id


def validate_folder(folder: Path) -> None:
    """A push needs a built svit folder whose card parses and agrees with its data."""
    from svit_data.cards.validate import card_problems
    from svit_data.folder_check import load_folder

    state, meta = load_folder(folder)
    problems = card_problems(meta, state)
    if problems:
        raise SvitError(f"{folder / 'README.md'} does not match the data ({problems[0]}); rebuild the folder")


def unreachable(error: Exception, repo_id: str) -> SvitError | None:
    """One sentence when ``error`` is a network failure (the same test as ``build --source hf://``)."""
    from svit_data.hub_source import is_connection_error

    if not is_connection_error(error):
        return None
    from huggingface_hub import constants

    return SvitError(
        f"cannot reach the Hub at {constants.ENDPOINT} to push to dataset {repo_id} "
        f"({type(error).__name__}); check the network or HF_ENDPOINT"
    )


def hub_error(error: Exception, repo_id: str, revision: str) -> SvitError:
    """One sentence for each way the Hub refuses a push."""
    from huggingface_hub.errors import HfHubHTTPError, RevisionNotFoundError

    status = getattr(getattr(error, "response", None), "status_code", None)
    if status == 401:
        return SvitError(
            f"the Hub refused the token for dataset {repo_id} (401 Unauthorized): "
            "check HF_TOKEN or log in again with 'hf auth login'"
        )
    if status == 403:
        return SvitError(
            f"the token may not write to dataset {repo_id} (403 Forbidden): "
            "use a token with write access to that namespace, or open a pull request with --create-pr"
        )
    if isinstance(error, RevisionNotFoundError):
        return SvitError(f"revision {revision!r} does not exist in dataset {repo_id} (404 Not Found)")
    if status == 404:
        return SvitError(
            f"dataset {repo_id} was not found on the Hub (404 Not Found), or the token cannot see it"
        )
    if isinstance(error, HfHubHTTPError):
        return SvitError(f"the Hub answered HTTP {status} while pushing to dataset {repo_id}")
    return SvitError(f"pushing to dataset {repo_id} failed: {type(error).__name__}")


def plan_push(folder: Path, repo_id: str, *, revision: str = "main", token: str | None = None) -> PushPlan:
    """Compare the folder with the remote revision (absent repo: everything is an add)."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

    files = local_files(folder)
    api = HfApi(token=token)
    remote: dict = {}
    exists = True
    try:
        entries = api.list_repo_tree(
            repo_id, repo_type=REPO_TYPE, revision=revision, recursive=True, expand=True
        )
        remote = {e.path: e for e in entries if hasattr(e, "blob_id")}
    except RevisionNotFoundError:
        if revision == "main":
            exists = False  # a repo without commits
    except RepositoryNotFoundError as error:
        if getattr(error.response, "status_code", None) in (401, 403) and token is not None:
            raise hub_error(error, repo_id, revision) from None
        exists = False
    except HfHubHTTPError as error:
        raise hub_error(error, repo_id, revision) from None
    except Exception as error:
        raise (unreachable(error, repo_id) or error) from None
    plan = PushPlan(repo_id, revision, exists, sizes={p: f.stat().st_size for p, f in files.items()})
    for path, local in files.items():
        (plan.unchanged if path in remote and _same(local, remote[path]) else plan.adds).append(path)
    plan.deletes = sorted(p for p in remote if p.startswith(DATA_PREFIX) and p not in files)
    return plan


def push(
    folder: str | Path,
    repo_id: str,
    *,
    revision: str | None = None,
    private: bool = False,
    create_pr: bool = False,
    dry_run: bool = False,
) -> PushResult:
    """Create the repo if needed and commit only changed files; ``dry_run`` only plans."""
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi
    from huggingface_hub.errors import HfHubHTTPError

    folder = Path(folder)
    check_repo_id(repo_id)
    branch = revision or "main"
    token = resolve_token(required=not dry_run)
    plan = plan_push(folder, repo_id, revision=branch, token=token)
    if dry_run or plan.empty:
        return PushResult(plan)
    api = HfApi(token=token)
    files = local_files(folder)
    try:
        api.create_repo(repo_id, repo_type=REPO_TYPE, private=private, exist_ok=True)
        if branch != "main" and not create_pr:
            api.create_branch(repo_id, repo_type=REPO_TYPE, branch=branch, exist_ok=True)
        operations = [CommitOperationAdd(path, str(files[path])) for path in plan.adds]
        operations += [CommitOperationDelete(path) for path in plan.deletes]
        log.info(
            "pushing %d files, deleting %d, keeping %d",
            len(plan.adds),
            len(plan.deletes),
            len(plan.unchanged),
        )
        info = api.create_commit(
            repo_id,
            operations,
            repo_type=REPO_TYPE,
            revision=branch,
            create_pr=create_pr,
            commit_message=f"svit: update {len(plan.adds)} files, delete {len(plan.deletes)}",
        )
    except HfHubHTTPError as error:
        raise hub_error(error, repo_id, branch) from None
    except RuntimeError as error:  # an LFS upload failed part-way; what was uploaded is kept server-side
        raise SvitError(
            f"the upload to dataset {repo_id} was interrupted ({error}); run the same push again to resume"
        ) from None
    except Exception as error:
        if unreachable(error, repo_id) is None:
            raise
        raise SvitError(
            f"the connection to the Hub broke while pushing to dataset {repo_id} ({type(error).__name__}); "
            "run the same push again to resume"
        ) from None
    return PushResult(plan, commit_url=info.commit_url, pr_url=info.pr_url)
