"""LUMA: a multimodal (image, audio, text) benchmark for uncertainty quantification, as a `datasets` builder.

from luma import Luma
builder = Luma("clean", data_dir="path/or/url/of/a/luma/source")
builder.download_and_prepare()
train = builder.as_dataset("train")
stream = builder.as_streaming_dataset("train")
"""

from __future__ import annotations

import dataclasses
import os
import typing
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import datasets
import numpy as np
from datasets.builder import Key

from luma_builders.classes import CLASS_NAMES
from luma_builders.errors import SourceError
from luma_builders.export import export_builders
from luma_builders.features import EXTRACTORS, extractor_from_name
from luma_builders.locations import Source
from luma_builders.noise import (
    PUBLISHED_TEXT_AUGMENTERS,
    SampleNoise,
    build_text_augmenters,
    noise_bank,
    parse_corruptions,
)
from luma_builders.plan import (
    SPLITS,
    FeatureLookup,
    Selection,
    check_no_split_is_empty,
    load_source,
    needs_features,
    plan_records,
)
from luma_builders.records import to_example
from luma_builders.schema import FEATURES
from luma_builders.sources import decode_wav
from luma_builders.transfer import in_parallel

_CITATION = """\
@inproceedings{bezirganyan2025luma,
  title={LUMA: A Benchmark Dataset for Learning from Uncertain and Multimodal Data},
  author={Bezirganyan, Grigor and Sellami, Sana and Berti-{\\'E}quille, Laure and Fournier, S{\\'e}bastien},
  booktitle={SIGIR},
  year={2025},
  eprint={2406.09864},
  archivePrefix={arXiv}
}
"""
SHARD_SIZE = 64  # records per shard: the unit of num_proc jobs and of streaming shuffles


@dataclass
class LumaConfig(datasets.BuilderConfig):
    """A LUMA variant: every field is a parameter (a keyword of `Luma(...)`, a `key=value` of `luma build`).

    `data_dir`: a local folder (a clone of the Hub repo will do) or base URL in the published layout; None reads
    the published sources. `cifar_dir`, `split_dir`, `hub_revision`: see `luma_builders.locations`.
    """

    version: datasets.Version | str | None = datasets.Version("1.0.0")
    seed: int = 0  # every random choice flows from it
    ood_in_test: bool = False  # also put the OOD records, flagged, in the test split
    hub_revision: str | None = None  # branch, tag or commit of the Hub repo (None: main), without data_dir
    cifar_dir: str | None = None  # CIFAR tarballs or torchvision's extracted folders (None: data_dir or the web)
    split_dir: str | None = None  # the six split files (None: data_dir or the authors' pinned commit)
    # diversity sampling of train, per modality (None: the published split)
    image_compactness: float | None = None
    audio_compactness: float | None = None
    text_compactness: float | None = None
    num_sampling: int = 10
    normalize_distances: bool = False  # divide distances by their mean before the power (see README)
    # label switching to the nearest class, train and test
    label_switch_prob: float = 0.0
    # sample noise, per modality
    image_noise_ratio: float = 0.0
    image_corruptions: str = "all"  # "all" or comma-separated CIFAR-10-C corruption names
    image_severity: int = 4
    audio_noise_ratio: float = 0.0
    audio_snr_min: float = 3.0
    audio_snr_max: float = 5.0
    audio_noise: str = "esc50"  # esc50 | synthetic | folder or URL in ESC-50 layout | folder of wavs
    text_noise_ratio: float = 0.0
    text_augmenters: str = PUBLISHED_TEXT_AUGMENTERS
    noise_splits: str = "train,test,ood"
    # conflicting modalities, test only
    conflict_ratio: float = 0.0
    # per-sample features for diversity sampling and label switching
    feature_extractor: str = "model-free"  # model-free | pretrained

    def changes(self) -> dict:
        """The parameters whose values differ from the defaults."""
        defaults = LumaConfig()
        return {p: getattr(self, p) for p in PARAMETERS if getattr(self, p) != getattr(defaults, p)}

    def validate(self) -> None:
        for name, kind in PARAMETER_TYPES.items():
            value = getattr(self, name)
            if name in _OPTIONAL and value is None:
                continue
            if kind is float and type(value) is int:
                value = float(value)
                setattr(self, name, value)
            if type(value) is not kind:
                raise ValueError(f"LumaConfig parameter {name!r} must be of type {kind.__name__}, got {value!r}")
            low, high = _RANGES.get(name, (None, None))
            if (low is not None and value < low) or (high is not None and value > high):
                bounds = f">= {low}" if high is None else f"in [{low}, {high}]"
                raise ValueError(f"LumaConfig parameter {name!r} must be {bounds}, got {value!r}")
        if self.audio_snr_min > self.audio_snr_max:
            raise ValueError(
                f"audio_snr_min ({self.audio_snr_min}) must not exceed audio_snr_max ({self.audio_snr_max})"
            )
        if self.hub_revision is not None and self.data_dir is not None:
            raise ValueError("hub_revision applies to the published Hub repo only: drop data_dir, or hub_revision")
        unknown_splits = set(self.noise_splits.split(",")) - set(SPLITS)
        if unknown_splits:
            raise ValueError(f"noise_splits: unknown split(s) {sorted(unknown_splits)}; choose from {SPLITS}")
        parse_corruptions(self.image_corruptions)
        if self.text_noise_ratio > 0:
            build_text_augmenters(self.text_augmenters)  # a missing resource fails here, before any work
        if self.feature_extractor not in EXTRACTORS:
            raise ValueError(f"feature_extractor must be one of {list(EXTRACTORS)}, got {self.feature_extractor!r}")


_HIDDEN = ("name", "version", "description", "data_files")
PARAMETERS = [f.name for f in dataclasses.fields(LumaConfig) if f.name not in _HIDDEN]
_HINTS = {name: hint for name, hint in typing.get_type_hints(LumaConfig).items() if name in PARAMETERS}
PARAMETER_TYPES = {
    name: next(t for t in typing.get_args(hint) or (hint,) if t is not type(None))
    for name, hint in _HINTS.items()
    if name != "data_dir"
}
_OPTIONAL = {name for name, hint in _HINTS.items() if type(None) in typing.get_args(hint)}
_FRACTION = (0.0, 1.0)
_RANGES = {
    "seed": (0, None),
    "image_compactness": (0.0, None),
    "audio_compactness": (0.0, None),
    "text_compactness": (0.0, None),
    "num_sampling": (1, None),
    "label_switch_prob": _FRACTION,
    "image_noise_ratio": _FRACTION,
    "image_severity": (1, 5),
    "audio_noise_ratio": _FRACTION,
    "text_noise_ratio": _FRACTION,
    "conflict_ratio": _FRACTION,
}
CONFIGS = [
    LumaConfig(name="clean", description="The published splits with no injected uncertainty."),
    LumaConfig(
        name="low_diversity",
        image_compactness=20.0,
        audio_compactness=10.0,
        text_compactness=20.0,
        num_sampling=10,
        normalize_distances=True,
        description="Train resampled per class towards the class mean (compactness audio 10, text 20, image 20).",
    ),
    LumaConfig(
        name="label_noise_0.3", label_switch_prob=0.3, description="Records relabelled to the nearest class, p=0.3."
    ),
    LumaConfig(
        name="sample_noise",
        image_noise_ratio=1.0,
        audio_noise_ratio=1.0,
        text_noise_ratio=1.0,
        description="Every record noised: a corruption at severity 4, background noise at 3-5 dB SNR, text noise.",
    ),
    LumaConfig(
        name="conflict_0.4", conflict_ratio=0.4, description="40% of test records get one modality of class c+1."
    ),
    LumaConfig(name="ood", ood_in_test=True, description="Clean, with the OOD records injected and flagged in test."),
]
CONFIG_ALIASES = {"label_noise": "label_noise_0.3"}


class Luma(datasets.GeneratorBasedBuilder):
    """LUMA records: one image, one spoken class word and one text of the same class, with provenance."""

    BUILDER_CONFIG_CLASS = LumaConfig
    BUILDER_CONFIGS = CONFIGS
    DEFAULT_CONFIG_NAME = "clean"

    def __init__(self, config_name: str | None = None, **kwargs):
        super().__init__(config_name=CONFIG_ALIASES.get(config_name, config_name), **kwargs)
        self._use_wav_audio()

    def _use_wav_audio(self) -> None:
        """datasets rereads a prepared build's features from its dataset_info.json, as plain `Audio`: put FEATURES
        back, whose `WavAudio` streams and rebuilds without torchcodec and names the working pair on decoding."""
        if self.info.features == FEATURES:
            self.info.features = FEATURES

    def _create_builder_config(self, config_name=None, custom_features=None, config_id=None, **config_kwargs):
        unknown = sorted(set(config_kwargs) - set(PARAMETERS))
        if unknown:
            raise ValueError(f"unknown LUMA parameter(s) {unknown}; known: {PARAMETERS}")
        if config_name is not None and config_name not in self.builder_configs:
            known = [c.name for c in CONFIGS] + list(CONFIG_ALIASES)
            raise ValueError(f"unknown LUMA config {config_name!r}; known: {known}")
        config, config_id = super()._create_builder_config(config_name, custom_features, config_id, **config_kwargs)
        config.validate()
        # Resolved here, before datasets computes the cache folder: its `hash` level is the source's identity
        # (Hub commit, checksums, size and mtime of local files), so a changed source never reuses old tables.
        self.source = Source.open(config.data_dir, config.hub_revision, config.cifar_dir, config.split_dir, self.token)
        self.hash = self.source.identity()
        return config, config_id

    def download_and_prepare(self, *args, num_proc: int | None = None, **kwargs):
        # datasets divides by num_proc: 0 raises ZeroDivisionError, a negative count an unrelated error
        if num_proc is not None and (type(num_proc) is not int or num_proc < 1):
            raise ValueError(f"num_proc must be None or an integer >= 1, got {num_proc!r}")
        try:
            super().download_and_prepare(*args, num_proc=num_proc, **kwargs)
        except datasets.exceptions.DatasetGenerationError as err:
            # datasets wraps errors raised while generating; ours already name the file and record.
            if isinstance(err.__cause__, SourceError):
                raise err.__cause__ from None
            raise
        self._use_wav_audio()

    def _info(self):
        return datasets.DatasetInfo(
            description="LUMA: image, audio and text of 50 classes with controllable uncertainty.",
            features=FEATURES,
            homepage="https://github.com/bezirganyan/LUMA",
            citation=_CITATION,
            license="cc-by-sa-4.0",
        )

    def _selection(self) -> Selection:
        c = self.config
        return Selection(
            seed=c.seed,
            ood_in_test=c.ood_in_test,
            compactness={"image": c.image_compactness, "audio": c.audio_compactness, "text": c.text_compactness},
            num_sampling=c.num_sampling,
            normalize_distances=c.normalize_distances,
            label_switch_prob=c.label_switch_prob,
            conflict_ratio=c.conflict_ratio,
        )

    def _sample_noise(self, source: Source) -> SampleNoise | None:
        c = self.config
        if max(c.image_noise_ratio, c.audio_noise_ratio, c.text_noise_ratio) == 0:
            return None
        return SampleNoise(
            image_ratio=c.image_noise_ratio,
            corruptions=parse_corruptions(c.image_corruptions),
            severity=c.image_severity,
            audio_ratio=c.audio_noise_ratio,
            snr_range=(c.audio_snr_min, c.audio_snr_max),
            noise_bank=noise_bank(c.audio_noise, source) if c.audio_noise_ratio > 0 else None,
            text_ratio=c.text_noise_ratio,
            text_augmenters=build_text_augmenters(c.text_augmenters) if c.text_noise_ratio > 0 else (),
            splits=tuple(c.noise_splits.split(",")),
        )

    def _split_generators(self, dl_manager):
        source = self.source
        data = load_source(source)
        cache = not isinstance(dl_manager, datasets.StreamingDownloadManager)

        def read_clips(audio_ids):
            clips = read_clips_concurrently(source, [data.audio_file(i) for i in audio_ids], cache)
            return [decode_clip(source, data.audio_file(i), clip, i) for clip, i in zip(clips, audio_ids, strict=True)]

        selection = self._selection()
        features = None
        if needs_features(selection):
            features = FeatureLookup(
                extractor_from_name(self.config.feature_extractor),
                data,
                cache_dir=os.path.join(self._cache_dir_root, "luma_features"),
                source_key=source.identity(),
                read_clips=read_clips,
            )
        plan = plan_records(data, selection, features)
        check_no_split_is_empty(plan, source.location)
        self.info.download_checksums = data.file_checksums  # what this build read, by location (with the commit)
        noise = self._sample_noise(source)  # once: building augmenters and reading the noise bank costs
        return [
            datasets.SplitGenerator(
                name=split,
                gen_kwargs={
                    "shards": [plan[split][i : i + SHARD_SIZE] for i in range(0, len(plan[split]), SHARD_SIZE)],
                    "split": split,
                    "source": source,
                    "cache": cache,
                    "noise": noise,
                },
            )
            for split in SPLITS
        ]

    def _generate_examples(self, shards, split, source, cache, noise):
        seed = self.config.seed
        for shard_id, shard in enumerate(shards):
            clips = read_clips_concurrently(source, [record.audio_file for record in shard], cache)
            for i, (record, clip) in enumerate(zip(shard, clips, strict=True)):
                audio = decode_clip(source, record.audio_file, clip, record.audio_id)
                if noise is not None and noise.applies(split):
                    image, audio, text, injected = noise.apply(record, audio, seed, split)
                else:
                    image, text, injected = record.image, record.text, {}
                yield Key(shard_id, i), to_example(record, image, audio, text, injected)


def config_names(configs: Iterable[str] | str) -> list[str]:
    """Config names, aliases resolved, duplicates dropped, in the order of CONFIGS; unknown names fail here."""
    if isinstance(configs, str):
        configs = configs.split(",")
    known = [c.name for c in CONFIGS]
    names = []
    for name in (c.strip() for c in configs if c.strip()):
        name = CONFIG_ALIASES.get(name, name)
        if name not in known:
            raise ValueError(f"unknown LUMA config {name!r}; known: {known + list(CONFIG_ALIASES)}")
        if name not in names:
            names.append(name)
    if not names:
        raise ValueError("no config to export")
    return sorted(names, key=known.index)  # the same configs give the same card, whatever the order asked


def export(
    configs: Iterable[str] | str,
    out_dir,
    data_dir: str | None = None,
    parameters: dict | None = None,
    cache_dir: str | None = None,
    **writing,
) -> Path:
    """Build `configs` (names or aliases) with `Luma(name, data_dir=..., **parameters)` and write them as Parquet
    shards with their dataset card into `out_dir` (see `luma_builders.export.export_builders` for `writing`:
    num_proc, max_shard_size, row_group_size, overwrite, repo_id). Every config and parameter is checked (by
    instantiating its builder) before anything is built."""
    parameters = dict(parameters or {})
    if "data_dir" in parameters:
        if data_dir is not None:
            raise ValueError("give data_dir either as the data_dir argument or as a parameter, not both")
        data_dir = parameters.pop("data_dir")
    builders = [Luma(name, data_dir=data_dir, cache_dir=cache_dir, **parameters) for name in config_names(configs)]
    return export_builders(builders, out_dir, CONFIG_ALIASES, parameters, **writing)


CLIP_READERS = 8  # clips are single small files: concurrent reads hide the network's latency


def read_clips_concurrently(source: Source, relpaths: list[str], cache: bool) -> list[bytes]:
    clips: dict[str, bytes] = {}

    def read(relpath: str) -> None:
        clips[relpath] = source.read(relpath, cache=cache)

    in_parallel(read, sorted(set(relpaths)), workers=CLIP_READERS)
    return [clips[relpath] for relpath in relpaths]


def decode_clip(source: Source, relpath: str, data: bytes, audio_id: int) -> np.ndarray:
    return decode_wav(data, f"{source.location(relpath)} (audio_id {audio_id})")


__all__ = ["CLASS_NAMES", "CONFIGS", "CONFIG_ALIASES", "Luma", "LumaConfig", "PARAMETERS", "config_names", "export"]
