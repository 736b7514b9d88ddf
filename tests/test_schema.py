"""The record schema (luma_builders/schema.py) and what derives from it: FEATURES, to_example, the field tables."""

import dataclasses
import io
from pathlib import Path

import datasets
import numpy as np
import pytest
import soundfile

from luma_builders import records
from luma_builders.errors import SourceError
from luma_builders.noise.sample_noise import SampleNoise
from luma_builders.plan.planning import PlannedRecord
from luma_builders.publish.export import fields_table
from luma_builders.records import to_example
from luma_builders.schema import (
    FEATURES,
    FIELDS,
    PLANNED_FIELDS,
    PROVENANCE_FLAGS,
    SAMPLE_NOISE_FIELDS,
    STEPS,
    WavAudio,
    decode_media,
    provenance_flags,
)

README = Path(__file__).resolve().parent.parent / "README.md"


IMAGE = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)


def planned_record(**changes) -> PlannedRecord:
    fields = dict(label=3, clean_label=3, is_ood=False, image_pool="train", image_id=7, image_source="edm")
    fields.update(audio_id=11, audio_path="audio/x.wav", text_id=13, text="a text", index=5)
    return PlannedRecord(**{**fields, **changes})


def test_readme_field_table_is_the_schema():
    lines = README.read_text(encoding="utf-8").splitlines()
    start = lines.index("| field | type | filled by | meaning |")
    table = lines[start : next(i for i in range(start, len(lines)) if not lines[i].startswith("|"))]
    assert table == fields_table().splitlines(), "paste luma_builders.publish.export.fields_table() into README.md"
    assert [row.split(" | ")[0] for row in table[2:]] == [f"| `{f.name}`" for f in FIELDS]


def test_every_field_is_filled_by_a_known_step_and_derives_features():
    assert list(FEATURES) == [f.name for f in FIELDS] and len(set(FEATURES)) == len(FIELDS)
    assert all(f.step in STEPS and f.meaning for f in FIELDS)
    record_fields = {f.name for f in dataclasses.fields(PlannedRecord)}
    assert set(PLANNED_FIELDS) <= record_fields, "a field the plan fills must be a PlannedRecord field"
    assert isinstance(FEATURES["audio"], WavAudio) and FEATURES["audio"].sampling_rate == 16_000


def test_sample_noise_returns_its_schema_fields_by_name():
    noise = SampleNoise(image_ratio=1.0, corruptions=("fog",), severity=2)
    record = planned_record()
    image, audio, text, injected = noise.apply(record, IMAGE, np.zeros(1600, np.float32), seed=0, split="train")
    assert list(injected) == list(SAMPLE_NOISE_FIELDS)
    assert injected["image_noise"] == "fog" and injected["image_severity"] == 2 and injected["text_noise"] is None
    example = to_example(record, image, audio, text, injected)
    assert list(example) == list(FEATURES)
    assert example["image_noise"] == "fog" and example["image_id"] == 7 and example["text"] == "a text"
    FEATURES.encode_example(example)  # every value has the schema's type


def test_without_sample_noise_its_fields_are_null():
    record = planned_record(label_switched=True, conflict_modality="audio", conflict_label=4)
    example = to_example(record, IMAGE, np.zeros(1600, np.float32), record.text, {})
    assert all(example[name] is None for name in SAMPLE_NOISE_FIELDS)
    assert example["label_switched"] and example["conflict_modality"] == "audio" and example["conflict_label"] == 4


@pytest.mark.parametrize(
    "injected",
    [
        {"image_noise": "fog"},  # a field missing
        {**dict.fromkeys(SAMPLE_NOISE_FIELDS), "image_colour": "red"},  # a field the schema does not know
    ],
)
def test_to_example_refuses_sample_noise_fields_that_are_not_the_schemas(injected):
    record = planned_record()
    with pytest.raises(ValueError, match="sample noise returned fields"):
        to_example(record, IMAGE, np.zeros(1600, np.float32), record.text, injected)


def test_to_example_refuses_a_schema_field_that_no_step_fills(monkeypatch):
    # as if a field were declared with a step to_example does not fill
    monkeypatch.setattr(records, "FEATURES", datasets.Features({**FEATURES, "colour": datasets.Value("string")}))
    record = planned_record()
    with pytest.raises(ValueError, match=r"no value for schema fields \['colour'\]"):
        to_example(record, IMAGE, np.zeros(1600, np.float32), record.text, {})


def test_provenance_flags_are_set_where_their_field_is_neither_null_nor_false():
    assert PROVENANCE_FLAGS == {
        "label_switched": "label_switched",
        "image_noise": "image_noise",
        "audio_noise": "audio_noise",
        "text_noise": "text_noise",
        "conflict": "conflict_modality",
    }
    row = {"label_switched": False, "image_noise": "fog", "audio_noise": None, "conflict_modality": "text"}
    assert provenance_flags(row) == {
        "label_switched": False,
        "image_noise": True,
        "audio_noise": False,
        "text_noise": False,  # a row without the field
        "conflict": True,
    }
    assert provenance_flags({"label_switched": True})["label_switched"]


def test_decode_media_reads_each_clip_at_its_own_rate_and_images_as_datasets_does():
    wav = io.BytesIO()
    samples = np.random.default_rng(1).uniform(-0.5, 0.5, 2205).astype(np.float32)
    soundfile.write(wav, samples, 22_050, subtype="PCM_16", format="WAV")
    png = FEATURES["image"].encode_example(IMAGE)
    record = {"id": "train-7", "image": png, "audio": {"bytes": wav.getvalue(), "path": None}, "text": "a cat"}
    decoded = decode_media(dict(record))
    expected, _ = soundfile.read(io.BytesIO(wav.getvalue()), dtype="float32")
    assert decoded["audio"]["sampling_rate"] == 22_050 and decoded["audio"]["path"] is None
    assert decoded["audio"]["array"].dtype == np.float32
    np.testing.assert_array_equal(decoded["audio"]["array"], expected)
    np.testing.assert_array_equal(np.asarray(decoded["image"]), IMAGE)
    assert decoded["text"] == "a cat"
    again = decode_media(dict(decoded))  # what is decoded stays as it is
    assert again["audio"] is decoded["audio"] and again["image"] is decoded["image"]


@pytest.mark.parametrize(
    ("audio", "message"),
    [({"bytes": None, "path": "clip.wav"}, "no WAV bytes"), ({"bytes": b"RIFF....", "path": None}, "not a readable")],
)
def test_decode_media_names_the_record_and_field_of_undecodable_audio(audio, message):
    with pytest.raises((ValueError, SourceError), match=rf"record 'test-3', field 'audio'.*{message}"):
        decode_media({"id": "test-3", "audio": audio})
