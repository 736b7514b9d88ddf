"""Text noise through nlpaug augmenters, chosen by name and made reproducible.

nlpaug draws from the global `random` and `numpy.random` states. `augment_text` seeds both from the caller's
``numpy.random.Generator`` just before augmenting and restores them afterwards, so an output depends only on
(text, augmenter, generator), not on call order, streaming or worker processes.

Augmenters that need resources this package cannot ship (NLTK's WordNet, Hugging Face translation models) are
checked in `make_text_augmenter`, at configuration time, without any network access; the error says what to get.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import random
import threading
from numbers import Real

import numpy as np

# name -> (nlpaug module, class); nlpaug is imported on first use because importing it takes about two seconds.
_NLPAUG_CLASSES = {
    "KeyboardNoise": ("nlpaug.augmenter.char", "KeyboardAug"),
    "OCRNoise": ("nlpaug.augmenter.char", "OcrAug"),
    "RandomCharNoise": ("nlpaug.augmenter.char", "RandomCharAug"),
    "RandomWordNoise": ("nlpaug.augmenter.word", "RandomWordAug"),
    "SpellingNoise": ("nlpaug.augmenter.word", "SpellingAug"),
    "AntonymNoise": ("nlpaug.augmenter.word", "AntonymAug"),
    "BackTranslationNoise": ("nlpaug.augmenter.word", "BackTranslationAug"),
}
TEXT_AUGMENTERS = tuple(_NLPAUG_CLASSES)

# NLTK data that AntonymAug loads (WordNet lemmas, and the tagger that picks verbs, adjectives and adverbs):
# downloader id -> resource path. Checked up front because nlpaug would otherwise try to download WordNet itself.
_NLTK_DATA = {"wordnet": "corpora/wordnet", "averaged_perceptron_tagger_eng": "taggers/averaged_perceptron_tagger_eng/"}
_NLTK_MULTILINGUAL = {"omw-1.4": "corpora/omw-1.4"}  # WordNet in languages other than English

# Serialises use of the global random states: augmenting from several threads would otherwise interleave seeds.
_GLOBAL_RANDOM_LOCK = threading.Lock()


def make_text_augmenter(name: str, **kwargs) -> object:
    """The nlpaug augmenter for `name` (one of TEXT_AUGMENTERS), built with `kwargs` after checking them."""
    if name not in _NLPAUG_CLASSES:
        raise ValueError(f"unknown text augmenter {name!r}; choose one of {TEXT_AUGMENTERS}")
    module, class_name = _NLPAUG_CLASSES[name]
    augmenter_class = getattr(importlib.import_module(module), class_name)
    arguments = _checked_arguments(name, augmenter_class, kwargs)
    if name == "SpellingNoise" and arguments["dict_path"] is not None and not os.path.isfile(arguments["dict_path"]):
        raise ValueError(
            f"SpellingNoise: dict_path {arguments['dict_path']!r} is not a file (one line per word: the word, "
            "then its misspellings, separated by spaces); leave it out for the English dictionary nlpaug ships"
        )
    if name == "AntonymNoise":
        _require_nltk_data(arguments["lang"])
    if name == "BackTranslationNoise":
        kwargs = {**kwargs, **_local_translation_models(arguments)}
    augmenter = augmenter_class(**kwargs)
    if name == "SpellingNoise":
        _own_spelling_model(augmenter)
    return augmenter


def augment_text(text: str, augmenter, rng: np.random.Generator) -> str:
    """`text` with noise from `augmenter`; the same (text, augmenter, rng state) always gives the same string."""
    if not text.strip():
        return text
    python_seed, numpy_seed = (int(seed) for seed in rng.integers(0, 2**32, size=2))
    with _GLOBAL_RANDOM_LOCK:
        saved_python, saved_numpy = random.getstate(), np.random.get_state()
        try:
            random.seed(python_seed)
            np.random.seed(numpy_seed)
            augmented = augmenter.augment(text)
        finally:
            random.setstate(saved_python)
            np.random.set_state(saved_numpy)
    # nlpaug returns a list of outputs, or an empty one when it finds nothing to augment.
    return augmented[0] if augmented else text


def _checked_arguments(name: str, augmenter_class: type, kwargs: dict) -> dict:
    """Every constructor argument with its value (given or default), after rejecting unknown or invalid ones."""
    parameters = inspect.signature(augmenter_class).parameters
    unknown = sorted(set(kwargs) - set(parameters))
    if unknown:
        raise ValueError(f"{name}: unknown argument(s) {unknown}; accepted: {sorted(parameters)}")
    arguments = {key: parameter.default for key, parameter in parameters.items()} | kwargs
    for key, value in arguments.items():
        if key.endswith("_p") and value is not None and not (isinstance(value, Real) and 0 <= value <= 1):
            raise ValueError(f"{name}: {key} must be a probability in [0, 1], got {value!r}")
    for prefix in ("aug_", "aug_char_", "aug_word_"):
        low, high = arguments.get(f"{prefix}min"), arguments.get(f"{prefix}max")
        if low is None or high is None:
            continue
        if not (isinstance(low, int) and isinstance(high, int) and 0 <= low <= high):
            raise ValueError(
                f"{name}: {prefix}min and {prefix}max must be integers with 0 <= min <= max, got {low!r}, {high!r}"
            )
    return arguments


def _own_spelling_model(augmenter) -> None:
    # nlpaug keeps one spelling model per process and hands it to every later SpellingAug, whatever its dict_path.
    model = augmenter.model
    if (model.dict_path, model.include_reverse) != (augmenter.dict_path, augmenter.include_reverse):
        augmenter.model = augmenter.get_model(force_reload=True)
    # nlpaug dedups misspellings through a set, whose order follows the per-process string hash seed: sort them so
    # a seed picks the same misspelling in every process.
    for misspellings in augmenter.model.dict.values():
        misspellings.sort()


def _require_nltk_data(lang: str) -> None:
    wanted = _NLTK_DATA | (_NLTK_MULTILINGUAL if lang != "eng" else {})
    download = f"python -m nltk.downloader {' '.join(wanted)}"
    if importlib.util.find_spec("nltk") is None:
        raise ValueError(
            f"AntonymNoise needs NLTK and its WordNet data: run `pip install nltk`, then `{download}` "
            "(needs network; or copy the data into a folder named by the NLTK_DATA environment variable)"
        )
    import nltk

    missing = []
    for data_id, resource in wanted.items():
        try:
            nltk.data.find(resource)
        except LookupError:
            missing.append(data_id)
    if missing:
        raise ValueError(
            f"AntonymNoise needs the NLTK data {missing}, which is not installed: run "
            f"`python -m nltk.downloader {' '.join(missing)}` (needs network; or copy the data into a folder named "
            "by the NLTK_DATA environment variable)"
        )


def _local_translation_models(arguments: dict) -> dict[str, str]:
    """from_model_name / to_model_name as local folders, so that loading them never touches the network."""
    folders, missing = {}, []
    for key in ("from_model_name", "to_model_name"):
        folder = _local_model_folder(arguments[key])
        if folder is None:
            missing.append(arguments[key])
        else:
            folders[key] = folder
    problems = []
    if importlib.util.find_spec("transformers") is None:
        problems.append("the `transformers` package (`pip install transformers sacremoses sentencepiece`)")
    if missing:
        problems.append(
            f"the translation models {missing}, which are neither model folders (with a config.json) nor in the "
            "Hugging Face cache: download Hub models while online (`hf download <model id>`) or pass "
            "from_model_name= and to_model_name= as local model folders"
        )
    if problems:
        raise ValueError("BackTranslationNoise needs " + " and ".join(problems))
    return folders


def _local_model_folder(model: str) -> str | None:
    if os.path.isfile(os.path.join(model, "config.json")):
        return model
    from huggingface_hub import try_to_load_from_cache

    try:
        config_file = try_to_load_from_cache(model, "config.json")  # reads the local cache only
    except ValueError:  # not a valid Hub model id either
        return None
    return os.path.dirname(config_file) if isinstance(config_file, str) else None
