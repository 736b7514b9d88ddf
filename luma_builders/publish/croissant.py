"""The Croissant description (JSON-LD, https://mlcommons.org/croissant/1.0) of an exported LUMA folder.

It sits next to the card as `croissant.json` and describes the same repo: the card as a FileObject, each exported
config's Parquet shards as a FileSet (one `includes` glob per split), and one record set per config whose fields are
the schema's `FIELDS` (every provenance field included) plus `split`, read from the shard's path. The licences and
the citation are the card's. FileSets have no `containedIn`: a reader resolves their globs against the folder that
holds `croissant.json`, a local copy or a clone of the Hub repo. No date is written (an export is byte-reproducible:
when it is published is not known when it is written), so Croissant checkers note that `datePublished` is missing.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import datasets

from luma_builders.classes import CLASS_NAMES, NUM_ID_CLASSES
from luma_builders.schema import FIELDS

CROISSANT_FILE = "croissant.json"
CONFORMS_TO = "http://mlcommons.org/croissant/1.0"
PARQUET = "application/x-parquet"
# The Croissant 1.0 context, as the specification gives it.
CONTEXT = {
    "@language": "en",
    "@vocab": "https://schema.org/",
    "citeAs": "cr:citeAs",
    "column": "cr:column",
    "conformsTo": "dct:conformsTo",
    "cr": "http://mlcommons.org/croissant/",
    "rai": "http://mlcommons.org/croissant/RAI/",
    "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "dct": "http://purl.org/dc/terms/",
    "equivalentProperty": "cr:equivalentProperty",
    "examples": {"@id": "cr:examples", "@type": "@json"},
    "extract": "cr:extract",
    "field": "cr:field",
    "fileProperty": "cr:fileProperty",
    "fileObject": "cr:fileObject",
    "fileSet": "cr:fileSet",
    "format": "cr:format",
    "includes": "cr:includes",
    "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath",
    "key": "cr:key",
    "md5": "cr:md5",
    "parentField": "cr:parentField",
    "path": "cr:path",
    "recordSet": "cr:recordSet",
    "references": "cr:references",
    "regex": "cr:regex",
    "repeated": "cr:repeated",
    "replace": "cr:replace",
    "samplingRate": "cr:samplingRate",
    "sc": "https://schema.org/",
    "separator": "cr:separator",
    "source": "cr:source",
    "subField": "cr:subField",
    "transform": "cr:transform",
}
# The Hub's licence ids (the card's `license:`) as SPDX pages; `other` is the card's `license_link`.
LICENCE_URLS = {
    name: f"https://spdx.org/licenses/{spdx}.html"
    for name, spdx in {
        "cc-by-sa-4.0": "CC-BY-SA-4.0",
        "cc0-1.0": "CC0-1.0",
        "cc-by-4.0": "CC-BY-4.0",
        "apache-2.0": "Apache-2.0",
        "cc-by-nc-3.0": "CC-BY-NC-3.0",
    }.items()
}
VALUE_TYPES = {"string": "sc:Text", "bool": "sc:Boolean"}  # other Values: sc:Integer or sc:Float by dtype
CLASSES = "classes"  # the record set of the 50 class names that the ClassLabel fields reference
SPLITS = "splits"
_CLASSES_DESCRIPTION = (
    f"the classes by id: 0-{NUM_ID_CLASSES - 1} in-distribution, {NUM_ID_CLASSES}-{len(CLASS_NAMES) - 1} "
    "out-of-distribution (the ood split)"
)


def croissant(
    card_data: dict, card_path: Path, written: dict, descriptions: dict[str, str], url: str, citation: str, version: str
) -> dict:
    """The Croissant JSON-LD of an export: `card_data` is the card's YAML metadata, `card_path` the card,
    `written` {config: {split: [(relative path, bytes, records), ...]}} as `export` wrote them, `descriptions`
    {config: what it is}, `url` the dataset's page, `version` the exporter's."""
    splits = list(dict.fromkeys(split for files in written.values() for split in files))
    return {
        "@context": CONTEXT,
        "@type": "sc:Dataset",
        "conformsTo": CONFORMS_TO,
        "name": card_data["pretty_name"],
        "description": (
            "LUMA, a benchmark for uncertainty quantification in multimodal classification (image, spoken word, "
            f"text; {len(CLASS_NAMES)} classes, {len(CLASS_NAMES) - NUM_ID_CLASSES} of them out-of-distribution), "
            "exported as one record set per config. The dataset card (README.md) says how it was built."
        ),
        "url": url,
        "license": [licence_url(name, card_data) for name in card_data["license"]],
        "citeAs": citation,
        "keywords": card_data["tags"],
        "inLanguage": card_data["language"],
        "version": version,
        "distribution": [_card_object(card_path), *(_file_set(config, files) for config, files in written.items())],
        "recordSet": [
            _enumeration(CLASSES, "sc:Enumeration", _CLASSES_DESCRIPTION, CLASS_NAMES),
            _enumeration(SPLITS, "cr:Split", "the splits of every config", splits),
            *(_record_set(config, descriptions[config], splits) for config in written),
        ],
    }


def licence_url(name: str, card_data: dict) -> str:
    """The URL of a licence of the card (`other`: the card's `license_link`)."""
    if name == "other":
        return card_data["license_link"]
    if name not in LICENCE_URLS:
        raise ValueError(f"licence {name!r} of the card has no URL for the Croissant file: add it to LICENCE_URLS")
    return LICENCE_URLS[name]


def _card_object(card_path: Path) -> dict:
    return {
        "@type": "cr:FileObject",
        "@id": card_path.name,
        "name": card_path.name,
        "description": "the dataset card: configs, fields, sources, licences",
        "contentUrl": card_path.name,
        "encodingFormat": "text/markdown",
        "sha256": hashlib.sha256(card_path.read_bytes()).hexdigest(),
    }


def _file_set_id(config: str) -> str:
    return f"parquet-{config}"


def _file_set(config: str, files: dict) -> dict:
    # One glob per split, as the card's `configs:` data_files (data/<config>/<split>-*).
    includes = [f"{Path(paths[0][0]).parent.as_posix()}/{split}-*.parquet" for split, paths in files.items()]
    return {
        "@type": "cr:FileSet",
        "@id": _file_set_id(config),
        "name": _file_set_id(config),
        "description": f"the Parquet shards of config {config}, images and audio embedded",
        "encodingFormat": PARQUET,
        "includes": includes,
    }


def _enumeration(name: str, data_type: str, description: str, values) -> dict:
    """A record set of `values` given inline: record i has `<name>/id` i and `<name>/name` values[i]."""
    return {
        "@type": "cr:RecordSet",
        "@id": name,
        "name": name,
        "description": description,
        "dataType": data_type,
        "key": {"@id": f"{name}/name"},
        "field": [
            {"@type": "cr:Field", "@id": f"{name}/id", "name": f"{name}/id", "dataType": "sc:Integer"},
            {"@type": "cr:Field", "@id": f"{name}/name", "name": f"{name}/name", "dataType": "sc:Text"},
        ],
        "data": [{f"{name}/id": i, f"{name}/name": value} for i, value in enumerate(values)],
    }


def _record_set(config: str, description: str, splits: list[str]) -> dict:
    split = {
        "@type": "cr:Field",
        "@id": f"{config}/split",
        "name": f"{config}/split",
        "description": "the split the record belongs to, from its shard's file name",
        "dataType": "sc:Text",
        "source": {
            "fileSet": {"@id": _file_set_id(config)},
            "extract": {"fileProperty": "fullpath"},
            "transform": {"regex": rf"^.*/({'|'.join(splits)})-[^/]*\.parquet$"},
        },
        "references": {"field": {"@id": f"{SPLITS}/name"}},
    }
    return {
        "@type": "cr:RecordSet",
        "@id": config,
        "name": config,
        "description": description,
        "key": {"@id": f"{config}/id"},
        "field": [*(_field(config, f.name, f.feature, f.meaning) for f in FIELDS), split],
    }


def _field(config: str, column: str, feature, meaning: str, member: str | None = None) -> dict:
    """The Croissant field of a schema field, or of `member` of a struct field (read from the column by JSON path)."""
    name = "/".join(part for part in (config, column, member) if part)
    field = {"@type": "cr:Field", "@id": name, "name": name, "description": meaning}
    if isinstance(feature, dict):
        field["subField"] = [_field(config, column, inner, f"{meaning}: {key}", key) for key, inner in feature.items()]
        return field
    source = {"fileSet": {"@id": _file_set_id(config)}, "extract": {"column": column}}
    if member or isinstance(feature, datasets.Image | datasets.Audio):
        # a struct's member; or the `bytes` of the {bytes, path} struct that embeds an image or audio file
        source["transform"] = {"jsonPath": member or "bytes"}
    field.update(dataType=data_type(feature), source=source)
    if isinstance(feature, datasets.ClassLabel):
        field["references"] = {"field": {"@id": f"{CLASSES}/id"}}
    return field


def data_type(feature) -> str:
    if isinstance(feature, datasets.Image):
        return "sc:ImageObject"
    if isinstance(feature, datasets.Audio):
        return "sc:AudioObject"
    if isinstance(feature, datasets.ClassLabel):
        return "sc:Integer"
    if feature.dtype in VALUE_TYPES:
        return VALUE_TYPES[feature.dtype]
    return "sc:Float" if feature.dtype.startswith("float") else "sc:Integer"
