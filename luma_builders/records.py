"""The record schema, declared once, and turning a planned record into an example."""

import io

import datasets
import numpy as np
from PIL import Image

from .classes import CLASS_NAMES
from .plan import PlannedRecord
from .sources import SAMPLING_RATE, encode_wav

FEATURES = datasets.Features(
    {
        "image": datasets.Image(),
        "audio": datasets.Audio(sampling_rate=SAMPLING_RATE),
        "text": datasets.Value("string"),
        "label": datasets.ClassLabel(names=list(CLASS_NAMES)),
        "clean_label": datasets.ClassLabel(names=list(CLASS_NAMES)),
        "is_ood": datasets.Value("bool"),
        "image_source": datasets.Value("string"),  # cifar10 | cifar100 | edm
        "image_id": datasets.Value("int64"),  # index in the image pool the split files use
        "audio_id": datasets.Value("int64"),  # row of audio/datalist.csv
        "text_id": datasets.Value("int64"),  # row of text_data.tsv
    }
)


def encode_png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def to_example(record: PlannedRecord, audio: np.ndarray) -> dict:
    """`audio` is the record's clip as float32 mono at 16 kHz, after any per-record transform."""
    return {
        "image": {"bytes": encode_png(record.image), "path": None},
        "audio": {"bytes": encode_wav(audio), "path": None},
        "text": record.text,
        "label": record.label,
        "clean_label": record.clean_label,
        "is_ood": record.is_ood,
        "image_source": record.image_source,
        "image_id": record.image_id,
        "audio_id": record.audio_id,
        "text_id": record.text_id,
    }
