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
from dataclasses import dataclass

import datasets
from datasets.builder import Key
from datasets.utils.file_utils import xopen

from luma_builders.classes import CLASS_NAMES
from luma_builders.plan import SPLITS, load_source, plan_records
from luma_builders.records import FEATURES, to_example
from luma_builders.sources import (
    CHECKSUM_FILE,
    Source,
    SourceError,
    decode_wav,
    is_url,
    parse_checksum_file,
    published_checksums,
)

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
SHARD_SIZE = 500  # records per shard: the unit of num_proc jobs and of streaming shuffles


@dataclass
class LumaConfig(datasets.BuilderConfig):
    """A LUMA variant. `data_dir`: a local folder or base URL in the published layout; None = the real sources."""

    version: datasets.Version | str | None = datasets.Version("1.0.0")
    seed: int = 0
    ood_in_test: bool = False  # also put the OOD records, flagged, in the test split
    allow_unverified_pickle: bool = False  # local folders only: load edm_images.pickle without a checksum

    def validate(self) -> None:
        if type(self.seed) is not int or self.seed < 0:
            raise ValueError(f"LumaConfig parameter 'seed' must be a non-negative integer, got {self.seed!r}")
        for name in ("ood_in_test", "allow_unverified_pickle"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"LumaConfig parameter {name!r} must be True or False, got {getattr(self, name)!r}")
        if self.allow_unverified_pickle and (self.data_dir is None or is_url(self.data_dir)):
            raise ValueError("allow_unverified_pickle=True is only allowed with a local data_dir")
        if self.name in NOT_YET_IMPLEMENTED:
            raise NotImplementedError(
                f"config {self.name!r} is declared but not implemented yet: its uncertainty transforms "
                "(diversity, label switching, sample noise, conflict) land with the next release"
            )


PARAMETERS = [
    f.name for f in dataclasses.fields(LumaConfig) if f.name not in ("name", "version", "description", "data_files")
]
CONFIGS = [
    LumaConfig(name="clean", description="The published splits with no injected uncertainty."),
    LumaConfig(name="low_diversity", description="Train resampled per class with lower diversity."),
    LumaConfig(name="label_noise_0.3", description="Labels switched to the nearest class with p = 0.3."),
    LumaConfig(name="sample_noise", description="Every record noised: image corruption, audio noise, text noise."),
    LumaConfig(name="conflict_0.4", description="In 40% of test records one modality comes from another class."),
    LumaConfig(name="ood", ood_in_test=True, description="Clean, with the OOD records injected and flagged in test."),
]
CONFIG_ALIASES = {"label_noise": "label_noise_0.3"}
NOT_YET_IMPLEMENTED = {"low_diversity", "label_noise_0.3", "sample_noise", "conflict_0.4"}


class Luma(datasets.GeneratorBasedBuilder):
    """LUMA records: one image, one spoken class word and one text of the same class, with provenance."""

    BUILDER_CONFIG_CLASS = LumaConfig
    BUILDER_CONFIGS = CONFIGS
    DEFAULT_CONFIG_NAME = "clean"

    def __init__(self, config_name: str | None = None, **kwargs):
        super().__init__(config_name=CONFIG_ALIASES.get(config_name, config_name), **kwargs)

    def _create_builder_config(self, config_name=None, custom_features=None, config_id=None, **config_kwargs):
        unknown = sorted(set(config_kwargs) - set(PARAMETERS))
        if unknown:
            raise ValueError(f"unknown LUMA parameter(s) {unknown}; known: {PARAMETERS}")
        if config_name is not None and config_name not in self.builder_configs:
            known = [c.name for c in CONFIGS] + list(CONFIG_ALIASES)
            raise ValueError(f"unknown LUMA config {config_name!r}; known: {known}")
        config, config_id = super()._create_builder_config(config_name, custom_features, config_id, **config_kwargs)
        config.validate()
        return config, config_id

    def download_and_prepare(self, *args, **kwargs):
        try:
            super().download_and_prepare(*args, **kwargs)
        except datasets.exceptions.DatasetGenerationError as err:
            # datasets wraps errors raised while generating; ours already name the file and record.
            if isinstance(err.__cause__, SourceError):
                raise err.__cause__ from None
            raise

    def _info(self):
        return datasets.DatasetInfo(
            description="LUMA: image, audio and text of 50 classes with controllable uncertainty.",
            features=FEATURES,
            homepage="https://github.com/bezirganyan/LUMA",
            citation=_CITATION,
            license="cc-by-sa-4.0",
        )

    def _source(self, dl_manager) -> Source:
        root = self.config.data_dir
        if root is None:
            return Source(None, published_checksums())
        root = root.rstrip("/") if is_url(root) else os.path.abspath(root)
        source = Source(root, allow_unverified_pickle=self.config.allow_unverified_pickle)
        try:
            text = _read(source.location(CHECKSUM_FILE), dl_manager).decode()
        except FileNotFoundError:
            return source  # a custom source may carry no checksums
        return dataclasses.replace(source, checksums=parse_checksum_file(text, source.location(CHECKSUM_FILE)))

    def _split_generators(self, dl_manager):
        source = self._source(dl_manager)

        def fetch(relpath: str) -> bytes:
            if relpath.endswith(".pickle"):
                source.require_verified(relpath)
            return _read_verified(source, relpath, dl_manager)

        plan = plan_records(load_source(fetch, source.location), self.config.seed, self.config.ood_in_test)
        audio_files = sorted({record.audio_file for records in plan.values() for record in records})
        locations = dl_manager.download([source.location(relpath) for relpath in audio_files])
        audio_locations = dict(zip(audio_files, locations, strict=True))
        return [
            datasets.SplitGenerator(
                name=split,
                gen_kwargs={
                    "shards": [plan[split][i : i + SHARD_SIZE] for i in range(0, len(plan[split]), SHARD_SIZE)],
                    "source": source,
                    "audio_locations": audio_locations,
                    "download_config": dl_manager.download_config,
                },
            )
            for split in SPLITS
        ]

    def _generate_examples(self, shards, source, audio_locations, download_config):
        for shard_id, shard in enumerate(shards):
            for i, record in enumerate(shard):
                data = _read(audio_locations[record.audio_file], download_config=download_config)
                source.verify(record.audio_file, data)
                audio = decode_wav(data, f"{source.location(record.audio_file)} (audio_id {record.audio_id})")
                yield Key(shard_id, i), to_example(record, audio)


def _read(location: str, dl_manager=None, download_config=None) -> bytes:
    """The bytes of a local file or URL; FileNotFoundError if absent, SourceError if unreachable."""
    download_config = download_config or (dl_manager.download_config if dl_manager else None)
    try:
        with xopen(location, "rb", download_config=download_config) as file:
            return file.read()
    except OSError as err:
        _raise_if_unreachable(location, err)
        raise


def _raise_if_unreachable(location: str, err: BaseException) -> None:
    """fsspec and datasets report a refused connection as FileNotFoundError: look at the causes."""
    cause = err
    while cause is not None:
        if isinstance(cause, OSError) and not isinstance(cause, FileNotFoundError):
            raise SourceError(f"{location}: cannot be reached ({type(cause).__name__}: {cause})") from err
        cause = cause.__cause__ or cause.__context__


def _read_verified(source: Source, relpath: str, dl_manager) -> bytes:
    """Download (cached) or stream one source file and check it; a bad download leaves no cache entry."""
    original = source.location(relpath)
    try:
        location = dl_manager.download(original)
        data = _read(location, dl_manager)
    except OSError as err:
        _raise_if_unreachable(original, err)
        raise SourceError(f"{original}: file not found") from err
    try:
        source.verify(relpath, data)
    except SourceError:
        if location != original and os.path.exists(location):
            for leftover in (location, location + ".json", location + ".lock"):
                if os.path.exists(leftover):
                    os.remove(leftover)
        raise
    return data


__all__ = ["CLASS_NAMES", "CONFIGS", "CONFIG_ALIASES", "Luma", "LumaConfig", "PARAMETERS"]
