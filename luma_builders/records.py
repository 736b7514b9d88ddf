"""Turning a planned record into an example: every field of the schema, filled by name."""

import numpy as np

from luma_builders.codecs import SAMPLING_RATE, encode_png, encode_wav
from luma_builders.plan.planning import PlannedRecord
from luma_builders.schema import FEATURES, PLANNED_FIELDS, SAMPLE_NOISE_FIELDS


def to_example(
    record: PlannedRecord, image: np.ndarray, audio: np.ndarray, text: str, injected: dict, rate: int = SAMPLING_RATE
) -> dict:
    """The example for `record`, its items after per-record noise (the clip `audio` at `rate` Hz). `injected` holds
    the sample-noise fields by schema name (`SampleNoise.apply`), or is empty where no sample noise ran: they are
    then null."""
    if injected and injected.keys() != set(SAMPLE_NOISE_FIELDS):
        raise ValueError(f"sample noise returned fields {sorted(injected)}; the schema's are {SAMPLE_NOISE_FIELDS}")
    values = {
        "image": {"bytes": encode_png(image), "path": None},
        "audio": {"bytes": encode_wav(audio, rate), "path": None},
        "text": text,
        **{name: getattr(record, name) for name in PLANNED_FIELDS},
        **{name: injected.get(name) for name in SAMPLE_NOISE_FIELDS},
    }
    if values.keys() != FEATURES.keys():  # a schema field no step fills, or an item the schema lacks
        missing, unknown = sorted(FEATURES.keys() - values.keys()), sorted(values.keys() - FEATURES.keys())
        raise ValueError(f"to_example: no value for schema fields {missing}; values for unknown fields {unknown}")
    return {name: values[name] for name in FEATURES}
