"""Upload an exported LUMA folder (see `export.py`) to a Hub dataset repo with huggingface_hub."""

from __future__ import annotations

from pathlib import Path

from huggingface_hub import DatasetCard
from huggingface_hub.utils import validate_repo_id

REPO_TYPE = "dataset"
# Above this size, and where huggingface_hub has it (1.x), `upload_large_folder`: many commits, resumable.
# In huggingface_hub 2.x `upload_folder` itself is streamed, multi-commit and resumable (with hf_xet), and
# `upload_large_folder` is gone.
LARGE_FOLDER_BYTES = 1 << 30
COMMIT_MESSAGE = "Upload LUMA variants (luma export)"


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


def folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def push(
    folder,
    repo_id: str,
    private: bool = False,
    api=None,
    token: str | None = None,
    large_folder_bytes: int = LARGE_FOLDER_BYTES,
) -> str:
    """Create the dataset repo `repo_id` (if needed) and upload the exported `folder`; returns the repo URL.

    `data/` in the repo is made to mirror the folder: shards of an earlier export that this one does not
    have are deleted, or `data/<config>/<split>-*` would load them too. Re-running after an interruption
    resumes (already uploaded files are skipped). `api` is an `HfApi` (default: `HfApi(token=token)`).
    """
    folder = Path(folder)
    validate_repo_id(repo_id)
    check_export(folder)
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi(token=token)
    url = api.create_repo(repo_id, repo_type=REPO_TYPE, private=private, exist_ok=True)
    repo_id = getattr(url, "repo_id", None) or repo_id  # the canonical id (e.g. with the user's namespace)
    if hasattr(api, "upload_large_folder") and folder_size(folder) > large_folder_bytes:
        api.upload_large_folder(repo_id=repo_id, folder_path=str(folder), repo_type=REPO_TYPE, private=private)
        local = {p.relative_to(folder).as_posix() for p in (folder / "data").rglob("*") if p.is_file()}
        remote = api.list_repo_files(repo_id, repo_type=REPO_TYPE)
        stale = sorted(f for f in remote if f.startswith("data/") and f not in local)
        if stale:
            api.delete_files(
                repo_id=repo_id, delete_patterns=stale, repo_type=REPO_TYPE, commit_message="Remove stale shards"
            )
    else:
        api.upload_folder(
            repo_id=repo_id,
            folder_path=str(folder),
            repo_type=REPO_TYPE,
            commit_message=COMMIT_MESSAGE,
            delete_patterns=["data/**"],  # never the files being uploaded: they are re-added in the same commit
        )
    return str(url)
