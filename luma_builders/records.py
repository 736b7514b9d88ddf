"""The record schema, declared once, and turning a planned record into an example."""

import dataclasses
import io

import datasets
import numpy as np
from PIL import Image

from .classes import CLASS_NAMES
from .plan import PlannedRecord
from .sources import MODALITIES, SAMPLING_RATE, encode_wav

DECODE_HELP = (
    "decoding LUMA audio needs a torchcodec that loads beside your torch (a working CPU pair: torch 2.13.0 with "
    "torchcodec 0.13.0; torchcodec 0.17 does not load beside CPU torch 2.13). Without one, read the WAV bytes: "
    "dataset.cast_column('audio', datasets.Audio(decode=False)), or stream.decode(False) on a stream."
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


_LABEL = datasets.ClassLabel(names=list(CLASS_NAMES))
FEATURES = datasets.Features(
    {
        "image": datasets.Image(),
        "audio": WavAudio(sampling_rate=SAMPLING_RATE),
        "text": datasets.Value("string"),
        "label": _LABEL,  # the target
        "clean_label": _LABEL,  # the class the three items were drawn for
        "is_ood": datasets.Value("bool"),
        # provenance: where each item comes from
        "image_source": datasets.Value("string"),  # cifar10 | cifar100 | edm
        "image_id": datasets.Value("int64"),  # index in the image pool the split files use
        "audio_id": datasets.Value("int64"),  # row of audio/datalist.csv
        "text_id": datasets.Value("int64"),  # row of text_data.tsv
        # provenance: what was injected (null where nothing was)
        "label_switched": datasets.Value("bool"),
        "modality_targets": {m: _LABEL for m in MODALITIES},  # each modality's nearest class, where they differ
        "image_noise": datasets.Value("string"),  # corruption name
        "image_severity": datasets.Value("int8"),
        "audio_noise": datasets.Value("string"),  # noise clip id, e.g. esc50:1-100038-A-14.wav
        "audio_snr_db": datasets.Value("float64"),
        "text_noise": datasets.Value("string"),  # augmenter name
        "conflict_modality": datasets.Value("string"),
        "conflict_label": _LABEL,  # class of the item that replaced conflict_modality
        "diversity_weight": {m: datasets.Value("float64") for m in MODALITIES},
    }
)


def encode_png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def to_example(record: PlannedRecord, image: np.ndarray, audio: np.ndarray, text: str, injected: dict) -> dict:
    """The example for `record`, its modalities after per-record noise; `injected` holds that noise's provenance
    (image_noise, image_severity, audio_noise, audio_snr_db, text_noise; None where nothing was applied)."""
    return {
        "image": {"bytes": encode_png(image), "path": None},
        "audio": {"bytes": encode_wav(audio), "path": None},
        "text": text,
        "label": record.label,
        "clean_label": record.clean_label,
        "is_ood": record.is_ood,
        "image_source": record.image_source,
        "image_id": record.image_id,
        "audio_id": record.audio_id,
        "text_id": record.text_id,
        "label_switched": record.label_switched,
        "modality_targets": record.modality_targets,
        "conflict_modality": record.conflict_modality,
        "conflict_label": record.conflict_label,
        "diversity_weight": record.diversity_weight,
        **injected,
    }
