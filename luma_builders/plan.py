"""Global planning: read the source metadata once, check it, and decide every record of every split.

The plan is where selections that need the whole split happen (pairing today; diversity sampling,
label switching and conflicts later). Per-record work (audio decoding, noise) happens when records are
generated, so a plan is cheap to ship to workers and to stream.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .classes import CLASS_NAMES, ID_CLASSES, NUM_ID_CLASSES, OOD_CLASSES
from .rng import generator
from .sources import (
    METADATA_FILES,
    MODALITIES,
    SPLIT_FILES,
    ImagePool,
    SourceError,
    build_pools,
    read_datalist,
    read_split_indices,
    read_texts,
)

SPLITS = ("train", "test", "ood")
SPLIT_FILE_NAMES = {"train": "train_clean", "test": "test"}


@dataclass(frozen=True)
class SourceData:
    """Everything planning needs, read and validated from one source."""

    audio_paths: list[str]
    audio_labels: np.ndarray
    texts: list[str]
    text_labels: np.ndarray
    pools: dict[str, ImagePool]  # "train" pool (train + OOD records) and "test" pool
    split_ids: dict[tuple[str, str], np.ndarray]  # (modality, "train_clean"|"test") -> ids

    def labels(self, modality: str, pool: str) -> np.ndarray:
        return {"audio": self.audio_labels, "text": self.text_labels, "image": self.pools[pool].labels}[modality]


def load_source(fetch: Callable[[str], bytes], names: Callable[[str], str]) -> SourceData:
    """`fetch(relpath)` returns a file's verified bytes; `names(relpath)` its location for messages."""
    audio_paths, audio_labels = read_datalist(fetch(METADATA_FILES["datalist"]), names(METADATA_FILES["datalist"]))
    texts, text_labels = read_texts(fetch(METADATA_FILES["texts"]), names(METADATA_FILES["texts"]))
    pools = build_pools(
        cifar10=fetch(METADATA_FILES["cifar10"]),
        cifar100=fetch(METADATA_FILES["cifar100"]),
        edm=fetch(METADATA_FILES["edm"]),
        names={key: names(METADATA_FILES[key]) for key in ("cifar10", "cifar100", "edm")},
    )
    sizes = {"audio": len(audio_paths), "text": len(texts)}
    split_ids = {}
    for (modality, split), relpath in SPLIT_FILES.items():
        pool_size = sizes.get(modality) or len(pools["test" if split == "test" else "train"].labels)
        split_ids[modality, split] = read_split_indices(fetch(relpath), names(relpath), pool_size)
    data = SourceData(audio_paths, audio_labels, texts, text_labels, pools, split_ids)
    _check_split_files(data, names)
    return data


def _check_split_files(data: SourceData, names: Callable[[str], str]) -> None:
    for split in ("train", "test"):
        counts = {}
        for modality in MODALITIES:
            relpath = SPLIT_FILES[modality, SPLIT_FILE_NAMES[split]]
            labels = data.labels(modality, split)[data.split_ids[modality, SPLIT_FILE_NAMES[split]]]
            if (labels >= NUM_ID_CLASSES).any():
                line = int(np.flatnonzero(labels >= NUM_ID_CLASSES)[0]) + 1
                raise SourceError(
                    f"{names(relpath)} line {line}: indexes an item of the out-of-distribution class "
                    f"{CLASS_NAMES[labels[line - 1]]!r}; split files may only select classes 0-{NUM_ID_CLASSES - 1}"
                )
            counts[modality] = np.bincount(labels, minlength=NUM_ID_CLASSES)
        for c in ID_CLASSES:
            per_modality = {m: int(counts[m][c]) for m in MODALITIES}
            if len(set(per_modality.values())) > 1:
                files = ", ".join(names(SPLIT_FILES[m, SPLIT_FILE_NAMES[split]]) for m in MODALITIES)
                raise SourceError(
                    f"split files disagree on class {CLASS_NAMES[c]!r} in {split}: {per_modality} items "
                    f"({files}); records pair one item of each modality, so the counts must match"
                )


@dataclass(frozen=True)
class PlannedRecord:
    """One record: which item of each modality, and which labels it carries."""

    label: int
    clean_label: int
    is_ood: bool
    image: np.ndarray  # 32x32x3 uint8, carried in the plan so workers need no image pool
    image_id: int
    image_source: str
    audio_id: int
    audio_file: str  # path relative to the source root
    text_id: int
    text: str


def _pair_class(ids_by_modality: dict[str, np.ndarray], seed: int, split: str, c: int, count: int) -> list:
    """Shuffle each modality's items of class `c` with its own stream, then pair by position."""
    shuffled = {
        m: generator(seed, "pairing", split, m, c).permutation(ids)[:count] for m, ids in ids_by_modality.items()
    }
    return [{m: int(shuffled[m][i]) for m in MODALITIES} for i in range(count)]


def plan_split(data: SourceData, split: str, seed: int) -> list[PlannedRecord]:
    """Records of `split` in class order, paired by a seeded within-class shuffle per modality."""
    pool = data.pools["test" if split == "test" else "train"]
    if split == "ood":
        candidates = {m: np.flatnonzero(data.labels(m, "train") >= NUM_ID_CLASSES) for m in MODALITIES}
        classes = OOD_CLASSES
    else:
        candidates = {m: data.split_ids[m, SPLIT_FILE_NAMES[split]] for m in MODALITIES}
        classes = ID_CLASSES
    records = []
    for c in classes:
        per_class = {
            m: ids[data.labels(m, "test" if split == "test" else "train")[ids] == c] for m, ids in candidates.items()
        }
        count = min(len(ids) for ids in per_class.values())
        for ids in _pair_class(per_class, seed, split, c, count):
            records.append(
                PlannedRecord(
                    label=c,
                    clean_label=c,
                    is_ood=split == "ood",
                    image=pool.images[ids["image"]],
                    image_id=ids["image"],
                    image_source=str(pool.sources[ids["image"]]),
                    audio_id=ids["audio"],
                    audio_file="audio/" + data.audio_paths[ids["audio"]],
                    text_id=ids["text"],
                    text=data.texts[ids["text"]],
                )
            )
    return records


def plan_records(data: SourceData, seed: int, ood_in_test: bool) -> dict[str, list[PlannedRecord]]:
    """Every split's records, in a seeded order that mixes classes (so a streaming buffer shuffle works)."""
    planned = {split: plan_split(data, split, seed) for split in SPLITS}
    if ood_in_test:
        planned["test"] = planned["test"] + planned["ood"]
    return {
        split: [records[i] for i in generator(seed, "order", split).permutation(len(records))]
        for split, records in planned.items()
    }
