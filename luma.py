"""LUMA: a multimodal (image, audio, text) benchmark for uncertainty quantification, as a `datasets` builder.

from luma import Luma
builder = Luma("clean", data_dir="path/or/url/of/a/luma/source")
builder.download_and_prepare()
train = builder.as_dataset("train")
stream = builder.as_streaming_dataset("train")
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterable
from pathlib import Path

import datasets
import numpy as np
from datasets.builder import Key

from luma_builders.classes import CLASS_NAMES
from luma_builders.codecs import SAMPLING_RATE, read_wav
from luma_builders.errors import SourceError
from luma_builders.features import extractor_from_name, feature_cache_dir
from luma_builders.parameters import CONFIG_ALIASES, CONFIGS, PARAMETERS, LumaConfig, check_parameters, resolve_config
from luma_builders.plan.planning import (
    SPLITS,
    DecodedClips,
    FeatureLookup,
    Shard,
    check_no_split_is_empty,
    needs_features,
    plan_records,
)
from luma_builders.plan.source_cache import PoolImages, cached_source
from luma_builders.publish.export import export_builders
from luma_builders.records import to_example
from luma_builders.schema import AUDIO_FIELDS, decode_media, features_at
from luma_builders.sources.locations import Source
from luma_builders.sources.readers import is_url

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


class Luma(datasets.GeneratorBasedBuilder):
    """LUMA records: one image, one spoken class word and one text of the same class, with provenance."""

    BUILDER_CONFIG_CLASS = LumaConfig
    BUILDER_CONFIGS = CONFIGS
    DEFAULT_CONFIG_NAME = "clean"

    def __init__(self, config_name: str | None = None, **kwargs):
        super().__init__(config_name=CONFIG_ALIASES.get(config_name, config_name), **kwargs)
        self._use_wav_audio()
        self._decoded_clips_folder = None  # set while download_and_prepare builds a variant that needs features

    def _use_wav_audio(self) -> None:
        """datasets rereads a prepared build's features from its dataset_info.json, as plain `Audio`: put ours
        back, whose `WavAudio` streams and rebuilds without torchcodec and names the working pair on decoding."""
        features = features_at(self.config.sampling_rate)
        if self.info.features == features:
            self.info.features = features

    def _create_builder_config(self, config_name=None, custom_features=None, config_id=None, **config_kwargs):
        if config_name is not None:
            config_name = resolve_config(config_name)
        # Canonical values before datasets hashes them into the cache folder's name: "fog,frost" and
        # ("fog", "frost") are one variant.
        config_kwargs = check_parameters(config_kwargs)
        config, config_id = super()._create_builder_config(config_name, custom_features, config_id, **config_kwargs)
        config.validate()
        # Resolved here, before datasets computes the cache folder: its `hash` level is the source's identity
        # (Hub commit, checksums, size and mtime of local files), so a changed source never reuses old tables.
        self.source = Source.open(**config.values("source"), token=self.token)
        self.hash = self.source.identity()
        return config, config_id

    def download_and_prepare(self, *args, num_proc: int | None = None, **kwargs):
        # datasets divides by num_proc: 0 raises ZeroDivisionError, a negative count an unrelated error
        if num_proc is not None and (type(num_proc) is not int or num_proc < 1):
            raise ValueError(f"num_proc must be None or an integer >= 1, got {num_proc!r}")
        try:
            with self._keeping_decoded_clips():
                super().download_and_prepare(*args, num_proc=num_proc, **kwargs)
        except datasets.exceptions.DatasetGenerationError as err:
            # datasets wraps errors raised while generating; ours already name the file and record.
            if isinstance(err.__cause__, SourceError):
                raise err.__cause__ from None
            raise
        self._use_wav_audio()

    @contextlib.contextmanager
    def _keeping_decoded_clips(self):
        """A temporary folder for the clips that planning decodes for their features (see DecodedClips), removed
        when the build ends; none when the variant needs no features."""
        if not needs_features(self.config.selection()):
            yield
            return
        near_the_tables = None if is_url(self._cache_dir_root) else self._cache_dir_root
        with tempfile.TemporaryDirectory(prefix=".luma-decoded-clips-", dir=near_the_tables) as folder:
            self._decoded_clips_folder = folder
            try:
                yield
            finally:
                self._decoded_clips_folder = None

    def _info(self):
        return datasets.DatasetInfo(
            description="LUMA: image, audio and text of 50 classes with controllable uncertainty.",
            features=features_at(self.config.sampling_rate),
            homepage="https://github.com/bezirganyan/LUMA",
            citation=_CITATION,
            license="cc-by-sa-4.0",
        )

    def _split_generators(self, dl_manager):
        source = self.source
        data, images = cached_source(source, self.hash)  # decoded once per source, then mapped from LUMA's cache
        cache = not isinstance(dl_manager, datasets.StreamingDownloadManager)
        decoded = DecodedClips(self._decoded_clips_folder)

        def read_clips(audio_ids):
            clips = source.read_many([data.audio_file(i) for i in audio_ids], cache)
            clips = [decode_clip(source, data.audio_file(i), c, i)[0] for c, i in zip(clips, audio_ids, strict=True)]
            decoded.keep(audio_ids, clips)
            return clips

        selection = self.config.selection()
        features = None
        if needs_features(selection):
            features = FeatureLookup(
                extractor_from_name(self.config.feature_extractor),
                data,
                cache_dir=feature_cache_dir(),  # shared by every variant and cache_dir that reads this source
                source_key=self.hash,  # the source's identity, computed once when the config was made
                read_clips=read_clips,
            )
        plan = plan_records(data, selection, features)
        check_no_split_is_empty(plan, source.location)
        self.info.download_checksums = data.file_checksums  # what this build read, by location (with the commit)
        noise = self.config.sample_noise(source)  # once: building augmenters and reading the noise bank costs
        generators = [
            datasets.SplitGenerator(
                name=split,
                gen_kwargs={
                    "shards": [Shard(plan[split][i : i + SHARD_SIZE]) for i in range(0, len(plan[split]), SHARD_SIZE)],
                    "split": split,
                    "source": source,
                    "cache": cache,
                    "noise": noise,
                    "decoded": decoded,
                    "images": images,  # pickles as its folder: workers map the pools, they are not sent them
                },
            )
            for split in SPLITS
        ]
        for generator in generators:  # the totals of datasets' "Generating" bars, which then show an ETA
            generator.split_info.num_examples = len(plan[generator.name])
        return generators

    def _generate_examples(self, shards, split, source, cache, noise, decoded, images: PoolImages):
        seed, rate = self.config.seed, self.config.sampling_rate
        for shard_id, shard in enumerate(shards):
            clips = shard_clips(shard, source, cache, decoded, rate)
            for i, (record, (audio, audio_rate)) in enumerate(zip(shard, clips, strict=True)):
                image = images.image(record.image_pool, record.image_id)
                if noise is not None and noise.applies(split):
                    image, audio, text, injected = noise.apply(record, image, audio, seed, split, audio_rate)
                else:
                    text, injected = record.text, {}
                yield Key(shard_id, i), to_example(record, image, audio, text, injected, audio_rate)


def config_names(configs: Iterable[str] | str) -> list[str]:
    """Config names, aliases resolved, duplicates dropped, in the order of CONFIGS; unknown names fail here."""
    if isinstance(configs, str):
        configs = configs.split(",")
    names = list(dict.fromkeys(resolve_config(c.strip()) for c in configs if c.strip()))
    if not names:
        raise ValueError("no config to export")
    known = [c.name for c in CONFIGS]
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
    shards with their dataset card into `out_dir` (see `luma_builders.publish.export.export_builders` for `writing`:
    num_proc, max_shard_size, row_group_size, overwrite, repo_id). Every config and parameter is checked (by
    instantiating its builder) before anything is built."""
    parameters = check_parameters(parameters or {})
    if "data_dir" in parameters:
        if data_dir is not None:
            raise ValueError("give data_dir either as the data_dir argument or as a parameter, not both")
        data_dir = parameters.pop("data_dir")
    builders = [Luma(name, data_dir=data_dir, cache_dir=cache_dir, **parameters) for name in config_names(configs)]
    return export_builders(builders, out_dir, CONFIG_ALIASES, parameters, **writing)


def decode_without_torchcodec(records: datasets.Dataset | datasets.IterableDataset):
    """`records` (a split or a stream of LUMA records) with every clip decoded by LUMA's own WAV reader instead of
    torchcodec, into {"path", "array", "sampling_rate"} (see `schema.decode_media`); images stay PIL images. For
    those whose torchcodec does not load beside their torch, and for speed: torchcodec spends about 1.5 ms opening
    each clip, this reader a few microseconds."""
    if isinstance(records, datasets.IterableDataset):
        return records.decode(False).map(decode_media)  # a stream would re-encode every clip on cast_column
    for name in AUDIO_FIELDS:
        records = records.cast_column(name, datasets.Audio(decode=False))
    return records.with_transform(_decode_media_batch)


def _decode_media_batch(batch: dict[str, list]) -> dict[str, list]:
    records = [decode_media(dict(zip(batch, values, strict=True))) for values in zip(*batch.values(), strict=True)]
    return {name: [record[name] for record in records] for name in batch}


def decode_clip(
    source: Source, relpath: str, data: bytes, audio_id: int, rate: int = SAMPLING_RATE
) -> tuple[np.ndarray, int]:
    """(float32 mono samples at `rate` Hz, the rate); `rate` 0 keeps the clip's own."""
    return read_wav(data, f"{source.location(relpath)} (audio_id {audio_id})", rate)


def shard_clips(
    shard: list, source: Source, cache: bool, decoded: DecodedClips, rate: int = SAMPLING_RATE
) -> list[tuple[np.ndarray, int]]:
    """(samples, rate) of each record's clip in `shard`: kept from planning (at 16 kHz), or read and decoded now."""
    kept = decoded if rate == SAMPLING_RATE else ()
    to_read = list({r.audio_id: r.audio_path for r in shard if r.audio_id not in kept}.items())
    read = source.read_many([relpath for _, relpath in to_read], cache)
    clips = {i: decode_clip(source, relpath, data, i, rate) for (i, relpath), data in zip(to_read, read, strict=True)}
    return [clips[r.audio_id] if r.audio_id in clips else (decoded.get(r.audio_id), rate) for r in shard]


__all__ = [
    "CLASS_NAMES",
    "CONFIGS",
    "CONFIG_ALIASES",
    "Luma",
    "LumaConfig",
    "PARAMETERS",
    "config_names",
    "decode_without_torchcodec",
    "export",
]
