"""Upload an exported LUMA folder (see `export.py`) to a Hub dataset repo with huggingface_hub."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

from huggingface_hub import DatasetCard
from huggingface_hub.utils import validate_repo_id

REPO_TYPE = "dataset"
COMMIT_MESSAGE = "Upload LUMA variants (luma export)"


class PushError(Exception):
    """A push the Hub refused or could not receive; the message is one line and names the repo."""


def check_export(folder: Path) -> list[str]:
    """The configs of an exported folder; fails, naming what is wrong, if it is not one."""
    card_path = folder / "README.md"
    if not card_path.is_file() or not (folder / "data").is_dir():
        raise ValueError(f"{folder} is not a LUMA export (no README.md or data/): run `luma export` first")
    configs = DatasetCard.load(card_path).data.to_dict().get("configs") or []
    names = [c.get("config_name") for c in configs]
    if not names:
        raise ValueError(f"{card_path} declares no configs")
    for config in configs:
        for entry in config.get("data_files", []):
            prefix = entry["path"].rstrip("*")
            if not any(folder.glob(prefix + "*")):
                raise ValueError(f"{card_path}: config {config['config_name']!r} has no file matching {entry['path']}")
    return names


def push(
    folder,
    repo_id: str,
    private: bool = False,
    api=None,
    token: str | None = None,
    revision: str | None = None,
    create_pr: bool = False,
    commit_message: str = COMMIT_MESSAGE,
) -> str:
    """Create the dataset repo `repo_id` (if needed) and upload the exported `folder` in one commit on `revision`
    (a branch that exists; default main), or as a pull request on it (`create_pr`). Returns the repo's URL, or the
    pull request's.

    `data/` in the repo is made to mirror the folder: shards of an earlier export that this one does not have are
    deleted in the same commit, or `data/<config>/<split>-*` would load them too. huggingface_hub's `upload_folder`
    skips files the repo already holds, so re-running after an interruption resumes. `api` is an `HfApi` (default:
    `HfApi(token=token)`). Fails with `PushError` when the Hub cannot be reached, refuses the token, or has no such
    repo or revision.
    """
    folder = Path(folder)
    validate_repo_id(repo_id)
    check_export(folder)
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi(token=token)
    with _push_errors(repo_id, revision, getattr(api, "endpoint", "the Hub")):
        url = api.create_repo(repo_id, repo_type=REPO_TYPE, private=private, exist_ok=True)
        repo_id = getattr(url, "repo_id", None) or repo_id  # the canonical id (e.g. with the user's namespace)
        commit = api.upload_folder(
            repo_id=repo_id,
            folder_path=str(folder),
            repo_type=REPO_TYPE,
            revision=revision,
            create_pr=create_pr,
            commit_message=commit_message,
            delete_patterns=["data/**"],  # never the files being uploaded: they are re-added in the same commit
        )
    return commit.pr_url if create_pr else str(url)


@contextmanager
def _push_errors(repo_id: str, revision: str | None, endpoint: str):
    """huggingface_hub's and httpx2's failures as one-line `PushError`s that say what to do."""
    import httpx2
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

    try:
        yield
    except RevisionNotFoundError as err:
        raise PushError(
            f"{repo_id}: no branch {revision!r} on the Hub: create it first (HfApi.create_branch) or push to main"
        ) from err
    except HfHubHTTPError as err:
        status = err.response.status_code if err.response is not None else None
        if status in (401, 403):
            raise PushError(
                f"{repo_id}: not authorised to push (HTTP {status}): log in with `hf auth login`, set HF_TOKEN or "
                "pass --token, with a token that may write to this repo"
            ) from err
        if isinstance(err, RepositoryNotFoundError):
            raise PushError(f"{repo_id}: no such dataset repo, or none this token can see (HTTP {status})") from err
        raise PushError(f"{repo_id}: the Hub refused the push (HTTP {status}): {_one_line(err)}") from err
    except (httpx2.TransportError, ConnectionError) as err:  # huggingface_hub's OfflineModeIsEnabled: ConnectionError
        raise PushError(f"{repo_id}: cannot reach the Hub at {endpoint}: {_one_line(err)}") from err


def _one_line(err: Exception) -> str:
    return " ".join(str(err).split()) or type(err).__name__
