"""Download files of a (gated) Hub dataset repo with the user's token: SVIT's release, or third-party data."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from svit_data.errors import SvitError
from svit_data.tasks import TASK_FILES

log = logging.getLogger(__name__)
T = TypeVar("T")


def is_connection_error(error: Exception) -> bool:
    """Network failures surface as OSError or as the HTTP client's TransportError (httpx or httpx2)."""
    if isinstance(error, OSError):
        return True
    return any(cls.__name__ == "TransportError" for cls in type(error).__mro__)


def _split(repo: str) -> tuple[str, str | None]:
    repo_id, _, revision = repo.partition("@")
    if repo_id.count("/") != 1:
        raise SvitError(f"hub source must be hf://datasets/OWNER/NAME, got {repo!r}")
    return repo_id, revision or None


def _hub_call(repo_id: str, call: Callable[[], T]) -> T:
    """``call()`` with the Hub's failures turned into one sentence each (gated, missing, HTTP, network)."""
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError

    try:
        return call()
    except GatedRepoError:
        raise SvitError(
            f"access to the gated dataset {repo_id} was refused: accept its terms on the Hub, then "
            "log in (huggingface-cli login) or set HF_TOKEN"
        ) from None
    except RepositoryNotFoundError:
        raise SvitError(f"dataset {repo_id} was not found on the Hub, or your token cannot see it") from None
    except HfHubHTTPError as error:
        status = error.response.status_code if error.response is not None else "?"
        raise SvitError(f"downloading {repo_id} failed with HTTP {status}") from None
    except Exception as error:
        if not is_connection_error(error):
            raise
        raise SvitError(
            f"cannot reach the Hub to download {repo_id} ({type(error).__name__}); check the network or HF_ENDPOINT"
        ) from None


def repo_files(repo: str) -> list[str]:
    """The file paths of the dataset repo ``OWNER/NAME[@revision]``."""
    from huggingface_hub import HfApi

    repo_id, revision = _split(repo)
    return _hub_call(
        repo_id, lambda: HfApi().list_repo_files(repo_id, repo_type="dataset", revision=revision)
    )


def has_released_files(files: list[str]) -> bool:
    return any(Path(f).name in TASK_FILES.values() for f in files)


def download(repo: str, files: list[str]) -> list[Path]:
    """Local paths (the Hub cache) of ``files`` of the dataset repo ``OWNER/NAME[@revision]``."""
    from huggingface_hub import hf_hub_download

    repo_id, revision = _split(repo)
    return _hub_call(
        repo_id,
        lambda: [Path(hf_hub_download(repo_id, f, repo_type="dataset", revision=revision)) for f in files],
    )


def download_released(repo: str) -> Path:
    """``OWNER/NAME[@revision]`` -> local folder holding the task files found in the repo."""
    repo_id, _ = _split(repo)
    files = repo_files(repo)
    wanted = [f for f in files if Path(f).name in TASK_FILES.values() or Path(f).name == "image_data.json"]
    if not has_released_files(wanted):
        raise SvitError(
            f"dataset {repo_id} has none of the SVIT task files ({', '.join(TASK_FILES.values())}); "
            "for LLaVA, ShareGPT, messages or the_cauldron data give --format or name the source (NAME=hf://...)"
        )
    local = download(repo, wanted)
    folder = local[0].parent
    if any(path.parent != folder for path in local):
        raise SvitError(f"dataset {repo_id} keeps its task files in several folders; svit expects one")
    log.info("using released SVIT files of %s from %s", repo_id, folder)
    return folder
