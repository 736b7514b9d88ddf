"""Materialise LUMA variants as a Hub-ready folder: Parquet shards with embedded media and a dataset card.

`datasets` >= 4 runs no loading scripts and the Hub viewer only reads data files, so a repo that answers
`load_dataset("<user>/luma", "label_noise")` must hold the variants themselves. `export` builds each
variant with the `Luma` builder and writes

    <out>/README.md                                   the card: YAML (configs, dataset_info, licence, ...) + text
    <out>/croissant.json                              its Croissant JSON-LD (see `croissant.py`)
    <out>/data/<config>/<split>-NNNNN-of-NNNNN.parquet

Image and audio bytes are embedded; row groups hold `row_group_size` records, so one row group is a few MB,
far below the dataset viewer's 286 MiB per-request limit. Everything is written into a staging folder next
to `out` and renamed at the end: a failed export leaves nothing behind.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from importlib import resources
from pathlib import Path

import datasets
import yaml
from datasets.arrow_writer import ParquetWriter
from datasets.info import DatasetInfosDict
from datasets.utils import tqdm as hf_tqdm
from datasets.utils.metadata import MetadataConfigs
from datasets.utils.py_utils import convert_file_size_to_int
from huggingface_hub import DatasetCard, DatasetCardData

from luma_builders.classes import CLASS_NAMES, NUM_ID_CLASSES
from luma_builders.mini.source import MINI_MARKER
from luma_builders.parameters import PARAMETER_SPECS, RECORD_GROUPS, SOURCE_PARAMETERS, parameters_table
from luma_builders.publish.croissant import CROISSANT_FILE, croissant
from luma_builders.schema import FEATURES, FIELDS
from luma_builders.sources.readers import is_url

CARD_TEMPLATES = resources.files("dataset_card")  # package data: export works from an installed wheel
DEFAULT_CONFIG = "clean"
MAX_SHARD_SIZE = "500MB"  # Arrow bytes per Parquet file, as `push_to_hub`
ROW_GROUP_SIZE = 100  # records per row group: ~3-20 MB with image + audio, a cheap random access for the viewer
SIZE_CATEGORIES = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"))


def data_dir_of(config: str) -> str:
    return f"data/{config}"


def shard_name(split: str, index: int, count: int) -> str:
    return f"{split}-{index:05d}-of-{count:05d}.parquet"


def export_builders(
    builders: list,
    out_dir,
    aliases: dict[str, str],
    parameters: dict,
    num_proc: int | None = None,
    max_shard_size: int | str = MAX_SHARD_SIZE,
    row_group_size: int = ROW_GROUP_SIZE,
    overwrite: bool = False,
    repo_id: str | None = None,
) -> Path:
    """Prepare each LUMA builder and write its splits, with the card, into `out_dir`; returns its path.

    `aliases` maps alias config names to exported ones (each gets a `configs:` entry); `parameters` are those
    changed for every config (the card says so); `repo_id` (the Hub repo it is meant for) only appears in the
    card's examples. `max_shard_size` is the Arrow size of a split per Parquet file, `row_group_size` the records
    per row group. The output appears only when complete; `out_dir` must not exist or be empty, unless
    `overwrite` (then it is replaced at the very end). `luma.export` is the entry point by config names.
    """
    if row_group_size < 1:
        raise ValueError(f"row_group_size must be >= 1, got {row_group_size}")
    max_shard_bytes = convert_file_size_to_int(max_shard_size)
    out = Path(out_dir).absolute()
    if out.exists() and not overwrite and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{out} exists and is not empty (pass overwrite=True / --overwrite to replace it)")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.partial-"))
    try:
        written = {}
        for builder in builders:
            builder.download_and_prepare(num_proc=num_proc)
            written[builder.config.name] = _write_config(builder, staging, max_shard_bytes, row_group_size)
        aliases = {alias: target for alias, target in aliases.items() if target in written}
        render_card(builders, written, aliases, parameters, repo_id).save(staging / "README.md")
        _write_croissant(staging, builders, written, aliases, repo_id)
        _replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out


def _write_croissant(root: Path, builders, written: dict, aliases: dict, repo_id: str | None) -> None:
    """`croissant.json` beside the card, from the card's metadata (licences) and what was written."""
    card_path = root / "README.md"
    info = builders[0].info
    descriptions = {
        b.config.name: b.config.description + "".join(f" Alias: {a}." for a, t in aliases.items() if t == b.config.name)
        for b in builders
    }
    document = croissant(
        DatasetCard.load(card_path).data.to_dict(),
        card_path,
        written,
        descriptions,
        url=f"https://huggingface.co/datasets/{repo_id}" if repo_id else info.homepage,
        citation=info.citation.strip(),
        version=_exporter_version(),
    )
    (root / CROISSANT_FILE).write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _replace(staging: Path, out: Path) -> None:
    if not out.exists():
        staging.rename(out)
        return
    if out.is_dir() and not any(out.iterdir()):
        out.rmdir()
        staging.rename(out)
        return
    old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old-"))
    old.rmdir()
    out.rename(old)
    staging.rename(out)
    if old.is_dir():
        shutil.rmtree(old)
    else:
        old.unlink()


def _write_config(builder, root: Path, max_shard_bytes: int, row_group_size: int) -> dict:
    """Write every split of a prepared builder; returns {split: [(relative path, bytes, records), ...]}."""
    name = builder.config.name
    folder = root / data_dir_of(name)
    folder.mkdir(parents=True)
    files = {}
    total = sum(info.num_examples for info in builder.info.splits.values())
    # datasets' bar: rate and ETA, and off with datasets.disable_progress_bars() (`luma --quiet`)
    progress = hf_tqdm(total=total, unit=" records", desc=f"Writing {name}")
    for split, info in builder.info.splits.items():
        dataset = builder.as_dataset(split)
        table = dataset.with_format("arrow")  # the prepared Arrow file, memory-mapped
        rows = len(dataset)
        num_shards = max(1, min(rows, math.ceil((info.num_bytes or dataset.data.nbytes) / max_shard_bytes)))
        files[split] = []
        for index in range(num_shards):
            start, end = index * rows // num_shards, (index + 1) * rows // num_shards
            path = folder / shard_name(split, index, num_shards)
            with ParquetWriter(
                path=str(path), features=dataset.features, writer_batch_size=row_group_size, embed_local_files=True
            ) as writer:
                for offset in range(start, end, row_group_size):
                    writer.write_table(table[offset : min(offset + row_group_size, end)])
                    progress.update(min(offset + row_group_size, end) - offset)
                writer.finalize()
            files[split].append((path.relative_to(root).as_posix(), path.stat().st_size, end - start))
    progress.close()
    return files


def render_card(builders, written, aliases, parameters, repo_id=None) -> DatasetCard:
    """The dataset card: YAML metadata (configs, dataset_info per config, licence, ...) and the text."""
    names = [b.config.name for b in builders]
    default = DEFAULT_CONFIG if DEFAULT_CONFIG in names else names[0]
    info = builders[0].info
    return DatasetCard.from_template(
        _card_data(builders, written, aliases, default),
        template_str=CARD_TEMPLATES.joinpath("template.md").read_text(encoding="utf-8"),
        repo_id=repo_id or "<user>/luma",
        default_config=default,
        example_config=next((n for n in names if n != default), default),
        source=_source_sentence(builders[0].source),
        source_files_table=source_files_table(info.download_checksums or {}, builders[0].source),
        overrides=", ".join(f"`{k}={PARAMETER_SPECS[k].text(v)}`" for k, v in sorted(_data(parameters).items())),
        configs_table=configs_table(builders, aliases, default),
        parameters_table=parameters_table(RECORD_GROUPS),
        classes_table=classes_table(),
        fields_table=fields_table(info.features),
        exporter=_exporter_version(),
        audio_rate=rate_in_words(builders[0].config.sampling_rate),  # a parameter: the same for every config
        homepage=info.homepage,
        citation=info.citation.strip(),
    )


def _card_data(builders, written, aliases, default) -> DatasetCardData:
    """The card's YAML: static metadata, `configs:` (aliases point at their target's files), infos per config."""
    by_name = {b.config.name: b for b in builders}
    order = [default] + [n for n in by_name if n != default]

    def entry(target):
        return {
            "data_files": [{"split": split, "path": f"{data_dir_of(target)}/{split}-*"} for split in written[target]],
        }

    configs = {name: {**entry(name), **({"default": True} if name == default else {})} for name in order}
    configs.update({alias: entry(target) for alias, target in aliases.items()})
    infos = {}
    for name in [*order, *aliases]:
        target = aliases.get(name, name)
        info = by_name[target].info
        infos[name] = datasets.DatasetInfo(
            config_name=name,
            features=info.features,
            splits=info.splits,
            download_size=sum(size for files in written[target].values() for _, size, _ in files),
            dataset_size=sum(split.num_bytes for split in info.splits.values()),
        )
    records = max(sum(s.num_examples for s in b.info.splits.values()) for b in builders)
    static = yaml.safe_load(CARD_TEMPLATES.joinpath("metadata.yaml").read_text(encoding="utf-8"))
    if any(_mixes_esc50(b.config) for b in builders):  # ESC-50's NonCommercial licence reaches the noisy audio
        static["license"] = [*static["license"], "cc-by-nc-3.0"]
        static["source_datasets"] = [*static["source_datasets"], "extended|esc50"]
    card_data = DatasetCardData(
        **static, size_categories=[next((c for limit, c in SIZE_CATEGORIES if records < limit), "1M<n<10M")]
    )
    MetadataConfigs(configs).to_dataset_card_data(card_data)
    DatasetInfosDict(infos).to_dataset_card_data(card_data)
    return card_data


def _mixes_esc50(config) -> bool:
    return config.audio_noise_ratio > 0 and config.audio_noise == "esc50"


def _source_sentence(source) -> str:
    data_dir = source.data_dir
    if data_dir is None:
        return (
            f"the published LUMA sources: the Hub repo `{source.hub_repo}` at commit `{source.hub_commit}`, and the "
            "pinned locations and checksums of `luma_builders/sources/default_source.json`"
        )
    if is_url(data_dir):
        return f"the LUMA source at <{data_dir}>, not the published locations"
    if (Path(data_dir) / MINI_MARKER).is_file():
        return "the embedded synthetic mini source (generated offline by `luma mini`), **not the LUMA data**"
    return f"a local LUMA source folder (`{Path(data_dir).resolve().name}`), **not the published data**"


def source_files_table(checksums: dict, source) -> str:
    """What the builds read, by location: a local folder shows as its own name, never as a path of this machine."""
    folders = [f for f in (source.data_dir, source.cifar_dir, source.split_dir) if f and not is_url(f)]

    def shown(where: str) -> str:
        folder = next((f for f in folders if where.startswith(f + os.sep)), None)
        return where if folder is None else Path(folder).name + "/" + Path(where).relative_to(folder).as_posix()

    rows = [f"| `{shown(w)}` | {entry['num_bytes']:,} | `{entry['checksum']}` |" for w, entry in checksums.items()]
    return "\n".join(["| file | bytes | sha256 |", "|---|---|---|", *rows])


def _data(parameters: dict) -> dict:
    """The parameters that shape the records: not those of the source group, which say where the files come from."""
    return {p: value for p, value in parameters.items() if p not in SOURCE_PARAMETERS}


def configs_table(builders, aliases: dict, default: str) -> str:
    """One row per exported config: what it is, the parameters it sets (vs the defaults), records per split."""
    splits = list(builders[0].info.splits)
    lines = [
        "| config | what it is | parameters (others at their defaults) | " + " | ".join(splits) + " |",
        "|---|---|---|" + "---|" * len(splits),
    ]
    for builder in builders:
        c = builder.config
        name = f"`{c.name}` (default)" if c.name == default else f"`{c.name}`"
        name += "".join(f", alias `{a}`" for a, t in aliases.items() if t == c.name)
        changed = " ".join(f"`{k}={PARAMETER_SPECS[k].text(v)}`" for k, v in _data(c.changes()).items()) or "none"
        counts = " | ".join(f"{builder.info.splits[s].num_examples:,}" for s in splits)
        lines.append(f"| {name} | {c.description} | {changed} | {counts} |")
    return "\n".join(lines)


def classes_table() -> str:
    ood = ", ".join(f"{i} {n}" for i, n in enumerate(CLASS_NAMES) if i >= NUM_ID_CLASSES)
    in_dist = ", ".join(f"{i} {n}" for i, n in enumerate(CLASS_NAMES) if i < NUM_ID_CLASSES)
    return (
        "| ids | classes |\n|---|---|\n"
        f"| 0-{NUM_ID_CLASSES - 1} (in-distribution) | {in_dist} |\n"
        f"| {NUM_ID_CLASSES}-{len(CLASS_NAMES) - 1} (out-of-distribution) | {ood} |"
    )


def feature_type(feature) -> str:
    if isinstance(feature, datasets.Image):
        return "Image (PNG bytes)"
    if isinstance(feature, datasets.Audio):
        return f"Audio (WAV bytes, mono, {rate_in_words(feature.sampling_rate)})"
    if isinstance(feature, datasets.ClassLabel):
        return f"ClassLabel ({feature.num_classes} classes)"
    if isinstance(feature, datasets.Value):
        return feature.dtype
    if isinstance(feature, dict):
        inner = {feature_type(f) for f in feature.values()}
        kind = inner.pop() if len(inner) == 1 else "mixed"
        return "{" + ", ".join(feature) + "} of " + kind
    return type(feature).__name__


def rate_in_words(sampling_rate: int | None) -> str:
    """An audio rate as the card says it: `16 kHz`; 0 or None (each clip's own rate) as such."""
    return f"{sampling_rate / 1000:g} kHz" if sampling_rate else "each clip at its own rate"


def fields_table(features: datasets.Features = FEATURES) -> str:
    """The schema's fields, of `features` (a build's: its audio rate), as a Markdown table: the card's, and the
    README's (tests/test_schema.py checks it)."""
    lines = ["| field | type | filled by | meaning |", "|---|---|---|---|"]
    lines += [f"| `{f.name}` | {feature_type(features[f.name])} | {f.step} | {f.meaning} |" for f in FIELDS]
    return "\n".join(lines)


def _exporter_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("luma-for-datasets")
    except PackageNotFoundError:
        return "unknown"
