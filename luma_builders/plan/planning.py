"""Global planning: read the source metadata once, check it, and decide every record of every split.

The plan is where selections that need the whole split happen (pairing today; diversity sampling,
label switching and conflicts later). Per-record work (reading pixels and clips, noise) happens when records are
generated: a plan holds ids, not pixels, so it is cheap to ship to workers and to stream.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from functools import partial

import numpy as np

from luma_builders.classes import CLASS_NAMES, ID_CLASSES, NUM_ID_CLASSES, OOD_CLASSES
from luma_builders.features import (
    FeatureExtractor,
    cache_path,
    cached_features,
    read_npz_checked,
    write_npz_atomic,
)
from luma_builders.pickling import reduce_in_one_piece
from luma_builders.plan.distances import cached_class_distances
from luma_builders.plan.selection import (
    NEIGHBOURS,
    choose_conflicts,
    diversity_sample,
    records_to_switch,
    switch_to_nearest,
)
from luma_builders.rng import generator
from luma_builders.sources.readers import (
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

logger = logging.getLogger(__name__)

SPLITS = ("train", "test", "ood")
# Bump whenever diversity sampling picks differently from the same inputs: the version keys the cached picks.
DIVERSITY_VERSION = 1
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
    file_checksums: dict[str, dict] = field(default_factory=dict)  # location -> num_bytes, sha256 of what was read

    def audio_file(self, audio_id: int) -> str:
        """The clip's path relative to the source root (datalist.csv paths are relative to audio/)."""
        return "audio/" + self.audio_paths[audio_id]

    def labels(self, modality: str, pool: str) -> np.ndarray:
        return {"audio": self.audio_labels, "text": self.text_labels, "image": self.pools[pool].labels}[modality]


def load_source(source) -> SourceData:
    """Read and check a source's metadata; `source` is a `locations.Source` (reads verified bytes by relpath)."""
    file_checksums = {}

    def read(relpath: str) -> bytes:
        data = source.read(relpath)
        file_checksums[source.location(relpath)] = _checksum_entry(data)
        return data

    def members(relpath: str) -> dict[str, bytes]:
        members = source.cifar_members(relpath)
        file_checksums.update({f"{source.location(relpath)}#{m}": _checksum_entry(d) for m, d in members.items()})
        return members

    names = {key: source.location(relpath) for key, relpath in METADATA_FILES.items()}
    audio_paths, audio_labels = read_datalist(read(METADATA_FILES["datalist"]), names["datalist"])
    texts, text_labels = read_texts(read(METADATA_FILES["texts"]), names["texts"])
    pools = build_pools(
        cifar10=members(METADATA_FILES["cifar10"]),
        cifar100=members(METADATA_FILES["cifar100"]),
        edm=read(METADATA_FILES["edm"]),
        names={key: names[key] for key in ("cifar10", "cifar100", "edm")},
    )
    sizes = {"audio": len(audio_paths), "text": len(texts)}
    split_ids = {}
    for (modality, split), relpath in SPLIT_FILES.items():
        pool_size = sizes[modality] if modality in sizes else len(pools["test" if split == "test" else "train"].labels)
        split_ids[modality, split] = read_split_indices(read(relpath), source.location(relpath), pool_size)
    data = SourceData(audio_paths, audio_labels, texts, text_labels, pools, split_ids, file_checksums)
    _check_split_files(data, source.location)
    return data


def _checksum_entry(data: bytes) -> dict:
    return {"num_bytes": len(data), "checksum": hashlib.sha256(data).hexdigest()}


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
class Selection:
    """The plan-level parameters of a variant: which items a split keeps, and which labels they carry."""

    seed: int = 0
    ood_in_test: bool = False
    compactness: dict[str, float | None] = field(default_factory=dict)  # modality -> k; None: published split
    num_sampling: int = 10
    normalize_distances: bool = False
    label_switch_prob: float = 0.0
    conflict_ratio: float = 0.0


@dataclass(frozen=True)
class FeatureLookup:
    """Features of a source's items by (modality, pool, ids), and label switching's distances between them, cached on
    disk per source and extractor.

    Only diversity sampling and label switching ask for features; `read_clips(audio_ids)` decodes clips.
    """

    extractor: FeatureExtractor
    data: SourceData
    cache_dir: str
    source_key: str
    read_clips: Callable[[np.ndarray], list[np.ndarray]]

    def __call__(self, modality: str, pool: str, ids: np.ndarray) -> np.ndarray:
        if modality == "image":
            images = self.data.pools[pool].images
            return cached_features(
                self.extractor,
                "image",
                ids,
                lambda missing: images[missing],
                self.cache_dir,
                f"{self.source_key} {pool}",
            )
        if modality == "text":
            return cached_features(
                self.extractor,
                "text",
                ids,
                lambda missing: [self.data.texts[i] for i in missing],
                self.cache_dir,
                self.source_key,
                labels=self.data.text_labels[ids],
            )
        return cached_features(self.extractor, "audio", ids, self.read_clips, self.cache_dir, self.source_key)

    def class_distances(
        self, modality: str, pool: str, ids: np.ndarray, labels: np.ndarray, queries: np.ndarray
    ) -> np.ndarray:
        """Label switching's nearest_class_distances of the records `queries` among records whose items are `ids`,
        labelled `labels` (see distances.cached_class_distances)."""
        return cached_class_distances(
            partial(self, modality, pool),
            ids,
            labels,
            queries,
            NUM_ID_CLASSES,
            NEIGHBOURS,
            lambda name: cache_path(self.cache_dir, self.source_key, self.extractor.name, f"{modality}-{pool}-{name}"),
        )

    def diversity_samples(
        self, modality: str, ids: np.ndarray, labels: np.ndarray, counts: dict[int, int], selection: Selection
    ) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """diversity_sample of counts[c] items in each class c among the train pool's items `ids` labelled `labels`:
        class -> (the chosen items' positions among the class's items, their weights).

        The picks are cached per exact inputs, beside the features: a rebuild reads them instead of reading the
        features, drawing again and measuring every draw's spread (most of a feature-cached low_diversity build's
        extra cost). The draws come from the seeded streams, so the picks read are the picks drawn."""
        classes = sorted(counts)
        inputs = (
            DIVERSITY_VERSION,
            selection.seed,
            selection.compactness[modality],
            selection.num_sampling,
            selection.normalize_distances,
            [counts[c] for c in classes],
            classes,
        )
        arrays = np.asarray(ids, np.int64).tobytes() + np.asarray(labels, np.int64).tobytes()
        digest = hashlib.sha256(repr(inputs).encode() + arrays)
        path = cache_path(
            self.cache_dir, self.source_key, self.extractor.name, f"{modality}-diversity-{digest.hexdigest()[:16]}"
        )
        sizes = {c: (counts[c], int(np.sum(labels == c))) for c in classes}
        picks = read_npz_checked(path, "diversity picks", partial(_checked_picks, sizes=sizes))
        if picks is None:
            features = self(modality, "train", ids)
            picks = {
                c: diversity_sample(
                    features[labels == c],
                    counts[c],
                    selection.compactness[modality],
                    selection.num_sampling,
                    generator(selection.seed, "diversity", modality, c),
                    normalize=selection.normalize_distances,
                )
                for c in classes
            }
            chosen, weights = (np.concatenate([picks[c][i] for c in classes]) for i in (0, 1))
            write_npz_atomic(path, chosen=chosen.astype(np.int64), weights=weights.astype(np.float64))
            logger.info("diversity picks of %s drawn and kept in %s", modality, path)
        return picks


def _checked_picks(
    arrays: dict[str, np.ndarray], sizes: dict[int, tuple[int, int]]
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """The picks `FeatureLookup.diversity_samples` wrote (`arrays`), split by class and checked against `sizes`
    (class -> (picks, items)); ValueError where they do not fit."""
    chosen, weights = arrays["chosen"], arrays["weights"]
    bounds = np.cumsum([0] + [picked for picked, _ in sizes.values()])
    expected = (int(bounds[-1]),)
    if chosen.dtype != np.int64 or weights.dtype != np.float64 or not chosen.shape == weights.shape == expected:
        raise ValueError(f"{chosen.dtype} picks {chosen.shape}, {weights.dtype} weights {weights.shape}")
    picks = {}
    for (c, (_, items)), start, stop in zip(sizes.items(), bounds[:-1], bounds[1:], strict=True):
        if not ((chosen[start:stop] >= 0) & (chosen[start:stop] < items)).all():
            raise ValueError(f"a pick of class {c} is not one of its {items} items")
        picks[c] = chosen[start:stop], weights[start:stop]
    return picks


class DecodedClips:
    """Clips decoded while planning (for their features), kept in files so that generating the records reads them
    back instead of decoding every clip a second time: one file of float32 samples per batch in `folder`, which the
    caller owns and removes after the build. Without a folder (streaming) nothing is kept. Picklable: workers get the
    folder and the index."""

    def __init__(self, folder: str | None) -> None:
        self.folder = folder
        self._where: dict[int, tuple[str, int, int]] = {}  # audio id -> (file, first sample, sample count)
        self._files = 0

    def keep(self, audio_ids: np.ndarray, clips: list[np.ndarray]) -> None:
        """Keep `clips` (float32, as `codecs.decode_wav` returns them) of `audio_ids`."""
        if self.folder is None or not clips:
            return
        path = os.path.join(self.folder, f"{self._files}.f32")
        np.concatenate(clips).astype(np.float32, copy=False).tofile(path)
        self._files += 1
        stops = np.cumsum([len(clip) for clip in clips])
        for audio_id, stop, clip in zip(audio_ids, stops, clips, strict=True):
            self._where[int(audio_id)] = (path, int(stop) - len(clip), len(clip))

    def __contains__(self, audio_id: int) -> bool:
        return audio_id in self._where

    def get(self, audio_id: int) -> np.ndarray:
        path, start, count = self._where[audio_id]
        return np.fromfile(path, dtype=np.float32, count=count, offset=start * np.dtype(np.float32).itemsize)


@dataclass(frozen=True)
class PlannedRecord:
    """One record: which item of each modality, which labels it carries, and what the plan injected.

    The fields the plan's steps fill (`schema.PLANNED_FIELDS`) go into the example by name; the others are what
    generating the record's items needs.
    """

    label: int
    clean_label: int
    is_ood: bool
    image_pool: str  # "train" or "test": with image_id, where generating the record reads its pixels
    image_id: int
    image_source: str
    audio_id: int
    audio_path: str  # path relative to the source root
    text_id: int
    text: str
    index: int = 0  # position in its split: keys the record's own random streams
    id: str = ""  # "<split>-<index>", set with the index
    label_switched: bool = False
    modality_targets: dict[str, int] | None = None  # nearest class per modality, where they differ from `label`
    conflict_modality: str | None = None
    conflict_label: int | None = None  # class of the item that replaced `conflict_modality`
    diversity_weight: dict[str, float | None] | None = None


class Shard(list):
    """Planned records generated together. Pickled in one piece, as datasets hands each num_proc worker its shards
    (see `luma_builders.pickling`)."""

    def __reduce__(self):
        return reduce_in_one_piece(Shard, list(self))


def _pool(split: str) -> str:
    return "test" if split == "test" else "train"


def _candidates(data: SourceData, split: str, selection: Selection) -> dict[str, np.ndarray]:
    """The items each modality may draw from: the split file's, or for diversity sampling every in-distribution
    item of the modality that the test split does not use."""
    if split == "ood":
        return {m: np.flatnonzero(data.labels(m, "train") >= NUM_ID_CLASSES) for m in MODALITIES}
    candidates = {m: data.split_ids[m, SPLIT_FILE_NAMES[split]] for m in MODALITIES}
    for m in _sampled_modalities(split, selection):
        in_id_class = np.flatnonzero(data.labels(m, "train") < NUM_ID_CLASSES)
        # test images come from their own pool; audio and text test items share the train items' table
        test_ids = data.split_ids[m, "test"] if m != "image" else np.empty(0, np.int64)
        candidates[m] = np.setdiff1d(in_id_class, test_ids)
    return candidates


def _sampled_modalities(split: str, selection: Selection) -> list[str]:
    return [m for m in MODALITIES if split == "train" and selection.compactness.get(m) is not None]


def _class_items(
    data: SourceData, split: str, selection: Selection, features: FeatureLookup | None
) -> Iterator[tuple[int, dict[str, np.ndarray], dict[str, dict[int, float]], int]]:
    """Per class of `split`: each modality's items, the diversity weights of sampled items, and the record count."""
    candidates = _candidates(data, split, selection)
    labels = {m: data.labels(m, _pool(split))[ids] for m, ids in candidates.items()}
    if split == "ood":
        for c in OOD_CLASSES:
            per_class = {m: ids[labels[m] == c] for m, ids in candidates.items()}
            yield c, per_class, {}, min(len(ids) for ids in per_class.values())
        return
    published = data.audio_labels[data.split_ids["audio", SPLIT_FILE_NAMES[split]]]
    counts = {c: int(np.sum(published == c)) for c in ID_CLASSES}
    picks = {
        m: features.diversity_samples(m, candidates[m], labels[m], counts, selection)
        for m in _sampled_modalities(split, selection)
    }
    for c in ID_CLASSES:
        per_class = {m: ids[labels[m] == c] for m, ids in candidates.items()}
        weights = {}
        for m, by_class in picks.items():
            chosen, chosen_weights = by_class[c]
            per_class[m] = per_class[m][chosen]
            weights[m] = dict(zip(per_class[m].tolist(), chosen_weights.tolist(), strict=True))
        yield c, per_class, weights, counts[c]


def _pair_class(per_class: dict[str, np.ndarray], seed: int, split: str, c: int, count: int) -> list[dict]:
    """Shuffle each modality's items of class `c` with its own stream, then pair by position."""
    shuffled = {m: generator(seed, "pairing", split, m, c).permutation(ids)[:count] for m, ids in per_class.items()}
    return [{m: int(shuffled[m][i]) for m in MODALITIES} for i in range(count)]


def plan_split(
    data: SourceData, split: str, selection: Selection, features: FeatureLookup | None = None
) -> list[PlannedRecord]:
    """Records of `split` in class order (position within a class is what conflicts pair on)."""
    pool = data.pools[_pool(split)]
    records = []
    for c, per_class, weights, count in _class_items(data, split, selection, features):
        for ids in _pair_class(per_class, selection.seed, split, c, count):
            records.append(
                PlannedRecord(
                    label=c,
                    clean_label=c,
                    is_ood=split == "ood",
                    image_pool=_pool(split),
                    image_id=ids["image"],
                    image_source=str(pool.sources[ids["image"]]),
                    audio_id=ids["audio"],
                    audio_path=data.audio_file(ids["audio"]),
                    text_id=ids["text"],
                    text=data.texts[ids["text"]],
                    diversity_weight={m: weights.get(m, {}).get(ids[m]) for m in MODALITIES} if weights else None,
                )
            )
    return records


def switch_split_labels(
    records: list[PlannedRecord], split: str, selection: Selection, features: FeatureLookup
) -> list[PlannedRecord]:
    """Switch whole records (all three items keep their class) to the nearest class, found per modality on the
    original labels and combined; where the modalities' own nearest classes differ, the record says so."""
    labels = np.array([r.clean_label for r in records])
    chosen = records_to_switch(
        len(records), selection.label_switch_prob, generator(selection.seed, "label switching", split)
    )
    distances = {
        m: features.class_distances(m, _pool(split), np.array([getattr(r, f"{m}_id") for r in records]), labels, chosen)
        for m in MODALITIES
    }
    new_labels, switched, nearest = switch_to_nearest(labels, chosen, distances, NUM_ID_CLASSES)
    switched_records = []
    for i, record in enumerate(records):
        if switched[i]:
            targets = {m: int(nearest[m][i]) for m in MODALITIES}
            record = replace(
                record,
                label=int(new_labels[i]),
                label_switched=True,
                modality_targets=targets if set(targets.values()) != {int(new_labels[i])} else None,
            )
        switched_records.append(record)
    return switched_records


_MODALITY_FIELDS = {
    "image": ("image_pool", "image_id", "image_source"),
    "audio": ("audio_id", "audio_path"),
    "text": ("text_id", "text"),
}


def inject_conflicts(records: list[PlannedRecord], selection: Selection) -> list[PlannedRecord]:
    """In a fraction of each class's records, one modality's item comes from the record at the same position in
    class (c + 1) mod 42; the target label stays."""
    conflicted, modality, donor = choose_conflicts(
        np.array([r.clean_label for r in records]),
        selection.conflict_ratio,
        MODALITIES,
        generator(selection.seed, "conflict"),
        NUM_ID_CLASSES,
    )
    result = []
    for i, record in enumerate(records):
        if conflicted[i]:
            m, source = MODALITIES[modality[i]], records[donor[i]]
            moved = {name: getattr(source, name) for name in _MODALITY_FIELDS[m]}
            record = replace(record, **moved, conflict_modality=m, conflict_label=source.clean_label)
        result.append(record)
    return result


def plan_records(
    data: SourceData, selection: Selection, features: FeatureLookup | None = None
) -> dict[str, list[PlannedRecord]]:
    """Every split's records, in a seeded order that mixes classes (so a streaming buffer shuffle works)."""
    planned = {split: plan_split(data, split, selection, features) for split in SPLITS}
    if selection.label_switch_prob > 0:
        for split in ("train", "test"):
            planned[split] = switch_split_labels(planned[split], split, selection, features)
    if selection.conflict_ratio > 0:
        planned["test"] = inject_conflicts(planned["test"], selection)
    if selection.ood_in_test:
        planned["test"] = planned["test"] + planned["ood"]
    ordered = {}
    for split, records in planned.items():
        order = generator(selection.seed, "order", split).permutation(len(records))
        ordered[split] = [_placed(records[j], split, i) for i, j in enumerate(order)]
    return ordered


def _placed(record: PlannedRecord, split: str, index: int) -> PlannedRecord:
    """`record` at position `index` of `split`: a copy with its index and id set. Copied as `copy.copy` copies, not
    through the frozen dataclass's __init__, whose setattr per field took half of a full-scale plan's time (and so
    of a warm stream's first record)."""
    placed = object.__new__(PlannedRecord)
    placed.__dict__.update(vars(record), index=index, id=f"{split}-{index:05d}")
    return placed


def check_no_split_is_empty(plan: dict[str, list[PlannedRecord]], location: Callable[[str], str]) -> None:
    """datasets caches a 0-record split, then fails on every load of it: refuse before writing anything."""
    for split, records in plan.items():
        if records:
            continue
        if split == "ood":
            classes = ", ".join(CLASS_NAMES[c] for c in OOD_CLASSES)
            raise SourceError(f"split 'ood' would be empty: no OOD class ({classes}) has an item of every modality")
        files = ", ".join(location(SPLIT_FILES[m, SPLIT_FILE_NAMES[split]]) for m in MODALITIES)
        raise SourceError(f"split {split!r} would be empty: {files} list no items")


def needs_features(selection: Selection) -> bool:
    return selection.label_switch_prob > 0 or any(k is not None for k in selection.compactness.values())
