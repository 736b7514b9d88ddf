"""The parameters of a LUMA variant, each declared once: a field of `LumaConfig` with its help, its group and the
values it accepts. Validation, the plan and noise settings, `luma configs`, the command line's help and the
parameter tables of the README and the dataset card all derive from these declarations.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import typing
from collections.abc import Callable
from dataclasses import dataclass

import datasets

from luma_builders.codecs import SAMPLING_RATE
from luma_builders.features import EXTRACTORS
from luma_builders.noise.image import CORRUPTIONS
from luma_builders.noise.sample_noise import (
    AUGMENTERS_SYNTAX,
    PUBLISHED_TEXT_AUGMENTERS,
    Augmenters,
    SampleNoise,
    build_text_augmenters,
    format_augmenters,
    noise_bank,
    parse_augmenters,
)
from luma_builders.plan.planning import SPLITS, Selection
from luma_builders.sources.locations import Source
from luma_builders.sources.readers import MODALITIES

GROUPS = ("source", "selection", "label switching", "sample noise", "conflict", "features", "encoding")
RECORD_GROUPS = tuple(g for g in GROUPS if g != "source")  # the source says where the files come from, not what
PLAN_GROUPS = ("selection", "label switching", "conflict")  # the parameters `Selection` takes
TRUE_WORDS, FALSE_WORDS = ("true", "yes", "1"), ("false", "no", "0")
_FRACTION = {"low": 0.0, "high": 1.0}


@dataclass(frozen=True)
class Parameter:
    """A parameter as declared: `kind` is its annotated type (tuple: names from `choices`, or read by `parse`);
    `every` is the word standing for all the choices; `parse` and `show` read and write a structured value."""

    name: str
    kind: type
    optional: bool
    default: object
    help: str
    group: str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    every: str | None = None
    parse: Callable[[object], object] | None = None
    show: Callable[[object], str] | None = None
    syntax: str | None = None

    def check(self, value):
        """`value` in its canonical form (a float for an int given to a float, a tuple for names given as text), or
        a ValueError naming the parameter."""
        if value is None and self.optional:
            return None
        if self.parse is not None:
            try:
                return self.parse(value)
            except (TypeError, ValueError) as err:
                raise ValueError(f"LumaConfig parameter {self.name!r}: {err}") from None
        if self.kind is tuple:
            return self._names(value)
        value = self._typed(value)
        if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
            raise ValueError(f"LumaConfig parameter {self.name!r} must be {self._bounds()}, got {value!r}")
        if self.choices and value not in self.choices:
            raise ValueError(f"LumaConfig parameter {self.name!r} must be one of {list(self.choices)}, got {value!r}")
        return value

    def _typed(self, value):
        if self.kind is float and type(value) is int:
            return float(value)
        if self.kind is str and isinstance(value, os.PathLike):
            return os.fspath(value)
        if type(value) is not self.kind:
            none = " or None" if self.optional else ""
            raise ValueError(
                f"LumaConfig parameter {self.name!r} must be of type {self.kind.__name__}{none}, got {value!r}"
            )
        return value

    def _names(self, value) -> tuple[str, ...]:
        if isinstance(value, str):
            value = self.choices if value.strip() == self.every else [n.strip() for n in value.split(",") if n.strip()]
        if not isinstance(value, (list, tuple)) or not all(isinstance(n, str) for n in value):
            raise ValueError(
                f"LumaConfig parameter {self.name!r} must be names (a tuple, or comma-separated), got {value!r}"
            )
        unknown = [n for n in value if n not in self.choices]
        if unknown or not value:
            raise ValueError(f"LumaConfig parameter {self.name!r}: unknown {unknown or value!r}; {self.accepts()}")
        return tuple(value)

    def from_text(self, text: str):
        """The value of `key=text` on the command line."""
        if self.kind is bool:
            if text.lower() not in TRUE_WORDS + FALSE_WORDS:
                raise ValueError("expected true or false")
            return text.lower() in TRUE_WORDS
        return self.check(self.kind(text) if self.kind in (int, float) and self.parse is None else text)

    def text(self, value) -> str:
        """`value` as written on the command line."""
        if value is not None and self.show is not None:
            return self.show(value)
        if value is not None and self.kind is tuple:
            return self.every if self.every and value == self.choices else ",".join(value)
        return str(value)

    def _bounds(self) -> str:
        return f">= {self.low}" if self.high is None else f"in [{self.low}, {self.high}]"

    def accepts(self) -> str:
        """What the parameter accepts, in words."""
        if self.syntax is not None:
            said = self.syntax
        elif self.kind is tuple:
            every = f", or {self.every}" if self.every else ""
            said = f"comma-separated names from {', '.join(self.choices)}{every}"
        elif self.choices:
            said = "one of " + ", ".join(self.choices)
        elif self.kind is bool:
            said = "true or false"
        else:
            said = self.kind.__name__ + ("" if self.low is None else " " + self._bounds())
        return said + (", or None" if self.optional else "")


NATIVE = "native"  # the `sampling_rate` that keeps each clip's own rate


def parse_sampling_rate(value) -> int:
    """A rate in Hz (an int >= 1), or 0 for each clip's own rate (given as 0, `native` or None)."""
    if value is None or value == NATIVE:
        return 0
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if type(value) is not int or value < 0:
        raise ValueError(f"expected a rate in Hz (an integer >= 1), or {NATIVE} (also 0 or None), got {value!r}")
    return value


def show_sampling_rate(value: int) -> str:
    return NATIVE if value == 0 else str(value)


def parameter(default, help: str, group: str, **accepts) -> dataclasses.Field:
    """A LumaConfig field declaring a parameter: `accepts` holds `low`, `high`, `choices`, `every`, `parse`,
    `show`, `syntax` (see Parameter)."""
    return dataclasses.field(default=default, metadata={"parameter": {"help": help, "group": group, **accepts}})


@dataclass
class LumaConfig(datasets.BuilderConfig):
    """A LUMA variant: every field but the BuilderConfig's name, version, description and data_files is a
    parameter (a keyword of `Luma(...)`, a `key=value` of `luma build`), declared here once."""

    version: datasets.Version | str | None = datasets.Version("1.0.0")
    data_dir: str | None = parameter(
        None,
        "the source: a folder (a clone of the Hub repo will do) or base URL in the published layout; "
        "None: the published locations",
        "source",
    )
    hub_revision: str | None = parameter(
        None, "branch, tag or commit of the Hub repo, resolved once per build (without data_dir); None: main", "source"
    )
    cifar_dir: str | None = parameter(
        None, "CIFAR tarballs or torchvision's extracted folders, instead of data_dir or the CIFAR site", "source"
    )
    split_dir: str | None = parameter(
        None, "the six split files, instead of data_dir or the authors' pinned commit", "source"
    )
    seed: int = parameter(0, "every random choice flows from it", "selection", low=0)
    ood_in_test: bool = parameter(False, "also put the OOD records, flagged, into test", "selection")
    image_compactness: float | None = parameter(
        None, "diversity exponent k of train images (None: the published train split)", "selection", low=0.0
    )
    audio_compactness: float | None = parameter(
        None, "diversity exponent k of train audio (None: the published train split)", "selection", low=0.0
    )
    text_compactness: float | None = parameter(
        None, "diversity exponent k of train texts (None: the published train split)", "selection", low=0.0
    )
    num_sampling: int = parameter(10, "diversity draws per class; the most spread one is kept", "selection", low=1)
    normalize_distances: bool = parameter(
        False, "divide distances to the class mean by their mean before raising them to k", "selection"
    )
    label_switch_prob: float = parameter(
        0.0, "probability that a train/test record is relabelled to its nearest class", "label switching", **_FRACTION
    )
    image_noise_ratio: float = parameter(
        0.0, "probability that a record's image is corrupted", "sample noise", **_FRACTION
    )
    image_corruptions: tuple[str, ...] = parameter(
        CORRUPTIONS, "the CIFAR-10-C corruptions to choose from", "sample noise", choices=CORRUPTIONS, every="all"
    )
    image_severity: int = parameter(4, "severity of the image corruptions", "sample noise", low=1, high=5)
    audio_noise_ratio: float = parameter(
        0.0, "probability that a record's audio gets background noise", "sample noise", **_FRACTION
    )
    audio_snr_min: float = parameter(
        3.0, "lowest SNR in dB (relative to the clip's RMS), drawn uniformly per record", "sample noise"
    )
    audio_snr_max: float = parameter(
        5.0, "highest SNR in dB (relative to the clip's RMS), drawn uniformly per record", "sample noise"
    )
    audio_noise: str = parameter(
        "esc50",
        "the background noise: `esc50`, `synthetic` (white/pink/brown), a folder or URL in ESC-50 layout, "
        "or a folder of wavs",
        "sample noise",
    )
    text_noise_ratio: float = parameter(
        0.0, "probability that a record's text is augmented", "sample noise", **_FRACTION
    )
    text_augmenters: Augmenters = parameter(
        PUBLISHED_TEXT_AUGMENTERS,
        "the text augmenters to choose from, with their keyword arguments",
        "sample noise",
        parse=parse_augmenters,
        show=format_augmenters,
        syntax=AUGMENTERS_SYNTAX,
    )
    noise_splits: tuple[str, ...] = parameter(
        SPLITS, "the splits sample noise applies to", "sample noise", choices=SPLITS
    )
    conflict_ratio: float = parameter(
        0.0, "fraction of each class's test records with a conflicting modality", "conflict", **_FRACTION
    )
    feature_extractor: str = parameter(
        "model-free", "features for diversity sampling and label switching", "features", choices=tuple(EXTRACTORS)
    )
    sampling_rate: int = parameter(
        SAMPLING_RATE,
        "the audio's rate in Hz: each clip is resampled to it (background noise is mixed in at it); native keeps "
        "each clip's own rate (LUMA's clips come at several)",
        "encoding",
        parse=parse_sampling_rate,
        show=show_sampling_rate,
        syntax=f"int >= 1, or {NATIVE} (also 0)",
    )

    def __post_init__(self):
        super().__post_init__()
        self.check_each()

    def check_each(self) -> None:
        """Check every parameter on its own and put it in its canonical form."""
        for name, declared in PARAMETER_SPECS.items():
            setattr(self, name, declared.check(getattr(self, name)))

    def validate(self) -> None:
        """Every check, before any work: each parameter, then the few that concern several."""
        self.check_each()
        if self.audio_snr_min > self.audio_snr_max:
            raise ValueError(
                f"audio_snr_min ({self.audio_snr_min}) must not exceed audio_snr_max ({self.audio_snr_max})"
            )
        if self.hub_revision is not None and self.data_dir is not None:
            raise ValueError("hub_revision applies to the published Hub repo only: drop data_dir, or hub_revision")
        if self.text_noise_ratio > 0:
            build_text_augmenters(self.text_augmenters)  # a missing resource fails here, before any work

    def changes(self) -> dict:
        """The parameters whose values differ from the defaults."""
        return {p: getattr(self, p) for p, spec in PARAMETER_SPECS.items() if getattr(self, p) != spec.default}

    def values(self, *groups: str) -> dict:
        """The parameters of `groups`, by name."""
        return {p: getattr(self, p) for p, spec in PARAMETER_SPECS.items() if spec.group in groups}

    def selection(self) -> Selection:
        """The plan's settings: every parameter of PLAN_GROUPS goes to Selection, which refuses one it lacks."""
        values = self.values(*PLAN_GROUPS)
        compactness = {m: values.pop(f"{m}_compactness") for m in MODALITIES}
        return Selection(compactness=compactness, **values)

    def sample_noise(self, source: Source) -> SampleNoise | None:
        """The per-record noise, None without any: every parameter of the group goes to `_sample_noise`."""
        return _sample_noise(source, **self.values("sample noise"))


def _sample_noise(
    source: Source,
    *,
    image_noise_ratio,
    image_corruptions,
    image_severity,
    audio_noise_ratio,
    audio_snr_min,
    audio_snr_max,
    audio_noise,
    text_noise_ratio,
    text_augmenters,
    noise_splits,
) -> SampleNoise | None:
    if max(image_noise_ratio, audio_noise_ratio, text_noise_ratio) == 0:
        return None
    return SampleNoise(
        image_ratio=image_noise_ratio,
        corruptions=image_corruptions,
        severity=image_severity,
        audio_ratio=audio_noise_ratio,
        snr_range=(audio_snr_min, audio_snr_max),
        noise_bank=noise_bank(audio_noise, source) if audio_noise_ratio > 0 else None,
        text_ratio=text_noise_ratio,
        text_augmenters=build_text_augmenters(text_augmenters) if text_noise_ratio > 0 else (),
        splits=noise_splits,
    )


def _declare(f: dataclasses.Field, hint) -> Parameter:
    if "parameter" not in f.metadata:
        raise TypeError(f"LumaConfig field {f.name!r} is not declared with parameter(...)")
    optional = type(None) in typing.get_args(hint)
    base = next(t for t in typing.get_args(hint) if t is not type(None)) if optional else hint  # X | None -> X
    kind = typing.get_origin(base) or base  # tuple[str, ...] -> tuple
    return Parameter(f.name, kind, optional, f.default, **f.metadata["parameter"])


_HIDDEN = ("name", "version", "description", "data_files")  # BuilderConfig's own fields
_HINTS = typing.get_type_hints(LumaConfig)
PARAMETER_SPECS = {f.name: _declare(f, _HINTS[f.name]) for f in dataclasses.fields(LumaConfig) if f.name not in _HIDDEN}
PARAMETERS = list(PARAMETER_SPECS)
SOURCE_PARAMETERS = [p for p, spec in PARAMETER_SPECS.items() if spec.group == "source"]


def did_you_mean(name: str, known) -> str:
    """ "did you mean 'x'? " for the known name closest to a misspelt `name`, or "" when none is close."""
    close = difflib.get_close_matches(name, list(known), n=1)
    return f"did you mean {close[0]!r}? " if close else ""


def check_parameters(parameters: dict) -> dict:
    """Keyword arguments of `Luma(...)` in their canonical form; an unknown name or bad value fails here."""
    unknown = sorted(set(parameters) - set(PARAMETERS))
    if unknown:
        hint = did_you_mean(unknown[0], PARAMETERS)
        raise ValueError(f"unknown LUMA parameter(s) {unknown}; {hint}known: {PARAMETERS}")
    return {name: PARAMETER_SPECS[name].check(value) for name, value in parameters.items()}


def resolve_config(name: str) -> str:
    """The named config `name` stands for (itself, or an alias's target); an unknown name fails here."""
    known = [c.name for c in CONFIGS]
    target = CONFIG_ALIASES.get(name, name)
    if target not in known:
        known += list(CONFIG_ALIASES)
        raise ValueError(f"unknown LUMA config {name!r}; {did_you_mean(name, known)}known: {known}")
    return target


def parameters_table(groups: tuple[str, ...] = GROUPS) -> str:
    """The markdown table of the parameters of `groups`: the README's and the dataset card's."""
    lines = ["| group | parameter | default | accepts | meaning |", "|---|---|---|---|---|"]
    for group in groups:
        lines += [
            f"| {group} | `{p.name}` | `{p.text(p.default)}` | {p.accepts()} | {p.help} |"
            for p in PARAMETER_SPECS.values()
            if p.group == group
        ]
    return "\n".join(lines)


def parameters_help() -> str:
    """Each parameter with its default, what it accepts and its meaning, by group: `luma configs`, `--help`."""
    lines = []
    for group in GROUPS:
        lines.append(f"{group}:")
        for p in (p for p in PARAMETER_SPECS.values() if p.group == group):
            lines += [f"  {p.name}={p.text(p.default)}", f"      {p.help} ({p.accepts()})"]
    return "\n".join(lines)


CONFIGS = [
    LumaConfig(name="clean", description="The published splits with no injected uncertainty."),
    LumaConfig(
        name="low_diversity",
        image_compactness=20.0,
        audio_compactness=10.0,
        text_compactness=20.0,
        num_sampling=10,
        normalize_distances=True,
        description="Train resampled per class towards the class mean (compactness audio 10, text 20, image 20).",
    ),
    LumaConfig(
        name="label_noise_0.3", label_switch_prob=0.3, description="Records relabelled to the nearest class, p=0.3."
    ),
    LumaConfig(
        name="sample_noise",
        image_noise_ratio=1.0,
        audio_noise_ratio=1.0,
        text_noise_ratio=1.0,
        description="Every record noised: a corruption at severity 4, background noise at 3-5 dB SNR, text noise.",
    ),
    LumaConfig(
        name="sample_noise_0.5",
        image_noise_ratio=0.5,
        audio_noise_ratio=0.5,
        text_noise_ratio=0.5,
        description="Half the records noised per modality, drawn independently: noisy and clean records side by side.",
    ),
    LumaConfig(
        name="conflict_0.4", conflict_ratio=0.4, description="40% of test records get one modality of class c+1."
    ),
    LumaConfig(name="ood", ood_in_test=True, description="Clean, with the OOD records injected and flagged in test."),
]
CONFIG_ALIASES = {"label_noise": "label_noise_0.3"}
