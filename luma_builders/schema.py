"""The record schema, declared once: each field's name, `datasets` type, meaning and the step that fills it.

`FEATURES`, `records.to_example`, the card's and the README's field tables and the baselines' provenance flags all
derive from `FIELDS`. Adding a field is one `Field` here plus the step that fills it: the plan sets it on
`PlannedRecord` (a field of that name), sample noise returns it by name from `SampleNoise.apply`.
"""

import dataclasses
from dataclasses import dataclass

import datasets

from luma_builders.classes import CLASS_NAMES
from luma_builders.codecs import SAMPLING_RATE, read_wav
from luma_builders.sources.readers import MODALITIES

DECODE_HELP = (
    "decoding LUMA audio needs a torchcodec that loads beside your torch (a working CPU pair: torch 2.13.0 with "
    "torchcodec 0.13.0; torchcodec 0.17 does not load beside CPU torch 2.13). Without one, read the WAV bytes: "
    "dataset.cast_column('audio', datasets.Audio(decode=False)), or stream.decode(False) on a stream; or decode it "
    "without torchcodec: luma.decode_without_torchcodec(dataset_or_stream)."
)


class WavAudio(datasets.Audio):
    """`datasets.Audio` that stores WAV bytes as given without importing torch and torchcodec.

    datasets 5.2's `Audio.encode_example` imports both before it looks at the value, even for bytes it stores
    unchanged, and `GeneratorBasedBuilder` (as streaming does) encodes every example through the builder's features,
    with no public way to hand the writer Arrow storage instead. A torchcodec that fails to load would fail every
    build and stream, and the import costs seconds. So the feature's own encoding hook is the narrow route.
    Serialized, this is plain `Audio` (`_type` is inherited): whoever loads a build sees `datasets.Audio`.
    """

    def encode_example(self, value):
        given_bytes = isinstance(value, dict) and value.keys() == {"bytes", "path"} and value["path"] is None
        if given_bytes and isinstance(value["bytes"], bytes):
            return value  # what `Audio.encode_example` returns for it, without the import
        return super().encode_example(value)

    def decode_example(self, value, token_per_repo_id=None):
        try:
            import torchcodec.decoders  # noqa: F401  what `Audio.decode_example` imports first
        except (ImportError, RuntimeError) as err:  # a torchcodec whose libraries fail to load raises RuntimeError
            raise ImportError(DECODE_HELP) from err
        return super().decode_example(value, token_per_repo_id)

    def __eq__(self, other):
        # The same feature as the plain `Audio` a build reads back: features compare equal, datasets concatenate.
        return isinstance(other, datasets.Audio) and dataclasses.asdict(self) == dataclasses.asdict(other)


# The steps that fill fields, in the order a build runs them.
SOURCE = "source"  # the record's items as read from the source (`records.to_example` encodes them)
PLAN = "plan"  # pairing: which items make the record
DIVERSITY = "diversity"
LABEL_SWITCHING = "label switching"
CONFLICT = "conflict"
SAMPLE_NOISE = "sample noise"  # per record, when it is generated: `SampleNoise.apply` returns these fields
STEPS = (SOURCE, PLAN, DIVERSITY, LABEL_SWITCHING, CONFLICT, SAMPLE_NOISE)
PLANNED_STEPS = (PLAN, DIVERSITY, LABEL_SWITCHING, CONFLICT)  # their fields are `PlannedRecord` fields


@dataclass(frozen=True)
class Field:
    name: str
    feature: object  # a `datasets` feature type, or a dict of them (a struct)
    step: str  # the step that fills it, one of STEPS
    meaning: str
    flag: str | None = None  # the provenance flag this field sets: true where the value is neither null nor false


_LABEL = datasets.ClassLabel(names=list(CLASS_NAMES))
_STRING = datasets.Value("string")
_INT64 = datasets.Value("int64")
_BOOL = datasets.Value("bool")

FIELDS = (
    Field(
        "id",
        _STRING,
        PLAN,
        "the record's id, `<split>-<position in the split>` (e.g. `test-00042`): unique in a variant, the same at "
        "the same position in every variant",
    ),
    Field("image", datasets.Image(), SOURCE, "the 32x32 RGB image (CIFAR-10, CIFAR-100 or EDM), after any corruption"),
    Field(
        "audio",
        WavAudio(sampling_rate=SAMPLING_RATE),
        SOURCE,
        "the spoken class word, mono, resampled to 16 kHz (or as the `sampling_rate` parameter says: another rate, "
        "or the clip's own), after any background noise",
    ),
    Field("text", _STRING, SOURCE, "the LLM-written text about the class, after any text noise"),
    Field("label", _LABEL, PLAN, "the target; OOD records carry their own class (42-49)"),
    Field(
        "clean_label",
        _LABEL,
        PLAN,
        "the class the three items were drawn for (differs from `label` only after label switching)",
    ),
    Field("is_ood", _BOOL, PLAN, "the record belongs to one of the 8 held-out classes"),
    Field("image_source", _STRING, PLAN, "`cifar10`, `cifar100` or `edm`"),
    Field(
        "image_id",
        _INT64,
        PLAN,
        "index into the image pool the split files use: the train pool for train and OOD records, the test pool "
        "for test records",
    ),
    Field("audio_id", _INT64, PLAN, "row of `audio/datalist.csv` in the LUMA sources"),
    Field("audio_path", _STRING, PLAN, "the clip's path in the LUMA source (the Hub repo), as `audio/cv_audio/x.wav`"),
    Field("text_id", _INT64, PLAN, "row of `text_data.tsv` in the LUMA sources"),
    Field("label_switched", _BOOL, LABEL_SWITCHING, "the target was switched to the nearest class", "label_switched"),
    Field(
        "modality_targets",
        {m: _LABEL for m in MODALITIES},
        LABEL_SWITCHING,
        "each modality's own nearest class, where they differ from `label` (else null)",
    ),
    Field("image_noise", _STRING, SAMPLE_NOISE, "the CIFAR-10-C corruption applied (null if none)", "image_noise"),
    Field("image_severity", datasets.Value("int8"), SAMPLE_NOISE, "the corruption's severity, 1-5"),
    Field(
        "audio_noise",
        _STRING,
        SAMPLE_NOISE,
        "the background noise clip (`esc50:<file>`, `folder:<path>`, `synthetic:<colour>`)",
        "audio_noise",
    ),
    Field("audio_snr_db", datasets.Value("float64"), SAMPLE_NOISE, "the signal-to-noise ratio used, in dB"),
    Field("text_noise", _STRING, SAMPLE_NOISE, "the text augmenter applied", "text_noise"),
    Field("conflict_modality", _STRING, CONFLICT, "the modality replaced by an item of another class", "conflict"),
    Field("conflict_label", _LABEL, CONFLICT, "the class of the replacing item"),
    Field(
        "diversity_weight",
        {m: datasets.Value("float64") for m in MODALITIES},
        DIVERSITY,
        "per modality, the item's sampling weight in diversity sampling (null where not sampled)",
    ),
)


def features_at(sampling_rate: int) -> datasets.Features:
    """The features of records whose audio is at `sampling_rate` Hz; 0 (each clip's own rate) is the `Audio` of
    no fixed rate, which decodes a clip at the rate its WAV header gives."""
    audio = WavAudio(sampling_rate=sampling_rate or None)
    return datasets.Features({f.name: audio if isinstance(f.feature, datasets.Audio) else f.feature for f in FIELDS})


FEATURES = features_at(SAMPLING_RATE)
AUDIO_FIELDS = tuple(f.name for f in FIELDS if isinstance(f.feature, datasets.Audio))
IMAGE_FIELDS = tuple(f.name for f in FIELDS if isinstance(f.feature, datasets.Image))
PLANNED_FIELDS = tuple(f.name for f in FIELDS if f.step in PLANNED_STEPS)
SAMPLE_NOISE_FIELDS = tuple(f.name for f in FIELDS if f.step == SAMPLE_NOISE)
DIVERSITY_FIELDS = tuple(f.name for f in FIELDS if f.step == DIVERSITY)  # per modality, set where it was sampled
PROVENANCE_FLAGS = {f.flag: f.name for f in FIELDS if f.flag}  # flag name -> the field that sets it
ITEM_ID_FIELDS = {m: f"{m}_id" for m in MODALITIES}  # modality -> the field naming its item in the source


def decode_media(record: dict) -> dict:
    """`record` (a row whose images and clips are still bytes) with each image decoded as `datasets` decodes it (a
    PIL image) and each clip by LUMA's WAV reader, at the rate it was built at, into the dict `datasets` 3 gave:
    {"path", "array" (float32 mono samples, the values torchcodec gives), "sampling_rate"}. Neither torch nor
    torchcodec is imported. Values already decoded are left as they are."""
    for name in IMAGE_FIELDS:
        if isinstance(record.get(name), dict):
            record[name] = FEATURES[name].decode_example(record[name])
    for name in AUDIO_FIELDS:
        value = record.get(name)
        if isinstance(value, dict) and "bytes" in value:
            where = f"record {record.get('id')!r}, field {name!r}"
            if value["bytes"] is None:
                raise ValueError(f"{where}: no WAV bytes to decode (path {value.get('path')!r})")
            samples, rate = read_wav(value["bytes"], where, rate=0)
            record[name] = {"path": value.get("path"), "array": samples, "sampling_rate": rate}
    return record


def provenance_flags(record: dict) -> dict[str, bool]:
    """Each provenance flag of a record (a row as `datasets` gives it); a field the row lacks counts as not set."""
    return {flag: record.get(name) not in (None, False) for flag, name in PROVENANCE_FLAGS.items()}
