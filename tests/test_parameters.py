"""Room: the parameters (luma_builders/parameters.py). Each is declared once; validation, the plan and noise
settings, the command line and the README's table derive from the declarations."""

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest

from luma import PARAMETERS, Luma
from luma_builders.cli import parse_parameters
from luma_builders.noise.image import CORRUPTIONS
from luma_builders.noise.sample_noise import PUBLISHED_TEXT_AUGMENTERS, SampleNoise
from luma_builders.parameters import (
    GROUPS,
    PARAMETER_SPECS,
    PLAN_GROUPS,
    LumaConfig,
    parameters_table,
)
from luma_builders.plan.planning import Selection
from luma_builders.sources.locations import Source

ROOT = Path(__file__).resolve().parent.parent

# The public parameters and their defaults as written on the command line: a rename or a changed default fails.
DEFAULTS = {
    "data_dir": "None",
    "hub_revision": "None",
    "cifar_dir": "None",
    "split_dir": "None",
    "seed": "0",
    "ood_in_test": "False",
    "image_compactness": "None",
    "audio_compactness": "None",
    "text_compactness": "None",
    "num_sampling": "10",
    "normalize_distances": "False",
    "label_switch_prob": "0.0",
    "image_noise_ratio": "0.0",
    "image_corruptions": "all",
    "image_severity": "4",
    "audio_noise_ratio": "0.0",
    "audio_snr_min": "3.0",
    "audio_snr_max": "5.0",
    "audio_noise": "esc50",
    "text_noise_ratio": "0.0",
    "text_augmenters": "KeyboardNoise(aug_char_min=1, aug_char_max=5, aug_word_min=3, aug_word_max=8); "
    "SpellingNoise(aug_p=0.4); OCRNoise(aug_word_p=0.5)",
    "noise_splits": "train,test,ood",
    "conflict_ratio": "0.0",
    "feature_extractor": "model-free",
    "sampling_rate": "16000",
}


def test_every_parameter_is_declared_with_help_and_group():
    assert {p: spec.text(spec.default) for p, spec in PARAMETER_SPECS.items()} == DEFAULTS
    assert list(PARAMETER_SPECS) == PARAMETERS
    for spec in PARAMETER_SPECS.values():
        assert spec.group in GROUPS, spec.name
        assert spec.help.strip() and "|" not in spec.help + spec.accepts(), spec.name  # a pipe would split a row
        assert spec.check(spec.default) == spec.default, spec.name
    assert {spec.group for spec in PARAMETER_SPECS.values()} == set(GROUPS)


def test_readme_holds_the_generated_table():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for spec in PARAMETER_SPECS.values():
        assert f"| `{spec.name}` | `{spec.text(spec.default)}` | {spec.accepts()} | {spec.help} |" in readme, (
            f"README.md's parameter table is out of date ({spec.name}); replace it with parameters_table()"
        )
    assert parameters_table() in readme


@pytest.mark.parametrize(
    ("pair", "name", "value"),
    [
        ("image_corruptions=fog, frost", "image_corruptions", ("fog", "frost")),
        ("image_corruptions=all", "image_corruptions", CORRUPTIONS),
        ("noise_splits=test", "noise_splits", ("test",)),
        (
            "text_augmenters=OCRNoise; KeyboardNoise(aug_char_max=2)",
            "text_augmenters",
            (
                ("OCRNoise", ()),
                ("KeyboardNoise", (("aug_char_max", 2),)),
            ),
        ),
        (
            'text_augmenters=[["SpellingNoise", {"aug_p": 0.2}], "OCRNoise"]',
            "text_augmenters",
            (
                ("SpellingNoise", (("aug_p", 0.2),)),
                ("OCRNoise", ()),
            ),
        ),
        ("audio_snr_min=1", "audio_snr_min", 1.0),
        ("normalize_distances=yes", "normalize_distances", True),
        ("sampling_rate=native", "sampling_rate", 0),
        ("sampling_rate=0", "sampling_rate", 0),
        ("sampling_rate=22050", "sampling_rate", 22050),
    ],
)
def test_structured_values_parse_from_key_value(pair, name, value):
    assert parse_parameters([pair]) == {name: value}
    if PARAMETER_SPECS[name].kind is tuple:  # a structured keyword may also be given as its text
        assert LumaConfig(**{name: value}) == LumaConfig(**{name: pair.partition("=")[2]})


def test_every_default_reads_back_from_its_text():
    for spec in PARAMETER_SPECS.values():
        if spec.default is not None:
            assert spec.from_text(spec.text(spec.default)) == spec.default, spec.name


def test_augmenters_accept_python_values_and_stay_hashable():
    config = LumaConfig(text_augmenters=[("KeyboardNoise", {"aug_char_min": 1, "aug_char_max": 5}), "OCRNoise"])
    assert config.text_augmenters == (("KeyboardNoise", (("aug_char_min", 1), ("aug_char_max", 5))), ("OCRNoise", ()))
    again = LumaConfig(**config.changes())
    assert hash(tuple(config.values(*GROUPS).values())) == hash(tuple(again.values(*GROUPS).values()))
    assert LumaConfig().text_augmenters == PUBLISHED_TEXT_AUGMENTERS


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("image_corruptions", ("fog", 3), "must be names"),
        ("image_corruptions", "", "unknown"),
        ("noise_splits", ["train", "dev"], r"unknown \['dev'\]"),
        ("text_augmenters", "[not json", "cannot read"),
        ("text_augmenters", "KeyboardNoise(1)", "cannot read"),
        ("text_augmenters", "os.system('x')", "cannot read"),
        ("text_augmenters", "Shout", "unknown augmenter 'Shout'"),
        ("text_augmenters", [("OCRNoise", 5)], "keywords of OCRNoise"),
        ("text_augmenters", 7, "expected a sequence"),
        ("text_augmenters", ";", "at least one"),
        ("audio_snr_max", "5", "must be of type float"),
        ("data_dir", 5, "must be of type str or None"),
        ("feature_extractor", "vgg", r"must be one of \['model-free', 'pretrained'\]"),
        ("sampling_rate", "fast", "expected a rate in Hz"),
        ("sampling_rate", -8000, "expected a rate in Hz"),
        ("sampling_rate", 16000.0, "expected a rate in Hz"),
    ],
)
def test_bad_values_name_the_parameter(name, value, message):
    with pytest.raises(ValueError, match=f"LumaConfig parameter '{name}'.*{message}"):
        LumaConfig(**{name: value})


def group(*groups: str) -> set[str]:
    return {p for p, spec in PARAMETER_SPECS.items() if spec.group in groups}


def test_every_plan_parameter_reaches_the_selection():
    changes = {
        "seed": 1,
        "ood_in_test": True,
        "image_compactness": 2.0,
        "audio_compactness": 2.0,
        "text_compactness": 2.0,
        "num_sampling": 3,
        "normalize_distances": True,
        "label_switch_prob": 0.5,
        "conflict_ratio": 0.5,
    }
    assert set(changes) == group(*PLAN_GROUPS)
    default = LumaConfig().selection()
    assert isinstance(default, Selection)
    for name, value in changes.items():
        assert LumaConfig(**{name: value}).selection() != default, name


def test_every_noise_parameter_reaches_the_sample_noise(mini_source):
    def settings(config: LumaConfig) -> SampleNoise:
        noise = config.sample_noise(source)  # built augmenters compare by identity: compare their names
        return dataclasses.replace(noise, text_augmenters=tuple(name for name, _ in noise.text_augmenters))

    source = Source.open(str(mini_source))
    assert LumaConfig().sample_noise(source) is None
    noisy = {"image_noise_ratio": 0.5, "audio_noise_ratio": 0.5, "text_noise_ratio": 0.5, "audio_noise": "synthetic"}
    base = settings(LumaConfig(**noisy))
    changes = {
        "image_noise_ratio": 0.25,
        "image_corruptions": ("fog",),
        "image_severity": 2,
        "audio_noise_ratio": 0.25,
        "audio_snr_min": 1.0,
        "audio_snr_max": 6.0,
        "audio_noise": "esc50",
        "text_noise_ratio": 0.25,
        "text_augmenters": (("OCRNoise", ()),),
        "noise_splits": ("test",),
    }
    assert set(changes) == group("sample noise")
    for name, value in changes.items():
        assert settings(LumaConfig(**{**noisy, name: value})) != base, name


def test_a_structured_value_gives_one_stable_cache_folder(mini_source, tmp_path):
    script = (
        "import sys; from luma import Luma; "
        "builder = Luma('clean', data_dir=sys.argv[1], cache_dir=sys.argv[2], image_corruptions=('fog', 'frost')); "
        "print(builder.config_id)"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    ids = {
        subprocess.run(
            [sys.executable, "-c", script, str(mini_source), str(tmp_path)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for _ in range(2)
    }
    text = Luma("clean", data_dir=str(mini_source), cache_dir=str(tmp_path), image_corruptions="fog,frost")
    assert ids == {text.config_id} and text.config_id.startswith("clean-")


def test_native_sampling_rate_has_one_canonical_value_and_one_cache_folder(mini_source, tmp_path):
    from luma import Luma

    given = [None, 0, "0", "native"]
    assert {LumaConfig(sampling_rate=value).sampling_rate for value in given} == {0}
    folders = {
        Luma("clean", data_dir=str(mini_source), cache_dir=str(tmp_path), sampling_rate=v).cache_dir for v in given
    }
    assert len(folders) == 1 and PARAMETER_SPECS["sampling_rate"].text(0) == "native"
