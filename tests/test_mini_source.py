"""The mini source: byte-for-byte deterministic, complete, in the published layout, splits as documented.

Everything is read back with pandas, pickle, tarfile and soundfile only, and the image pools are rebuilt
here from the archives, independently of the generator and of the builder's readers.
"""

import gzip
import hashlib
import pickle
import pickletools
import re
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile
from conftest import cifar_archive, read_source_tables

from luma_builders.classes import CLASS_ID, CLASS_NAMES, NUM_ID_CLASSES, luma_word
from luma_builders.mini.source import MINI_MARKER, source_counts, write_mini_source

SIZES = {"train_per_class": 4, "test_per_class": 2, "ood_per_class": 3, "spare_per_class": 2}
CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
CIFAR100_FINE = [
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle",
    "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle",
    "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch", "crab", "crocodile", "cup",
    "dinosaur", "dolphin", "elephant", "flatfish", "forest", "fox", "girl", "hamster", "house",
    "kangaroo", "keyboard", "lamp", "lawn_mower", "leopard", "lion", "lizard", "lobster", "man",
    "maple_tree", "motorcycle", "mountain", "mouse", "mushroom", "oak_tree", "orange", "orchid", "otter",
    "palm_tree", "pear", "pickup_truck", "pine_tree", "plain", "plate", "poppy", "porcupine", "possum",
    "rabbit", "raccoon", "ray", "road", "rocket", "rose", "sea", "seal", "shark", "shrew", "skunk",
    "skyscraper", "snail", "snake", "spider", "squirrel", "streetcar", "sunflower", "sweet_pepper",
    "table", "tank", "telephone", "television", "tiger", "tractor", "train", "trout", "tulip", "turtle",
    "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm",
]  # fmt: skip
CIFAR100_COARSE = [
    "aquatic_mammals", "fish", "flowers", "food_containers", "fruit_and_vegetables",
    "household_electrical_devices", "household_furniture", "insects", "large_carnivores",
    "large_man-made_outdoor_things", "large_natural_outdoor_scenes", "large_omnivores_and_herbivores",
    "medium_mammals", "non-insect_invertebrates", "people", "reptiles", "small_mammals", "trees",
    "vehicles_1", "vehicles_2",
]  # fmt: skip
SPLIT_NAMES = [f"{m}_{s}" for m in ("audio", "text", "image") for s in ("train_clean", "test")]


@pytest.fixture(scope="session")
def small(tmp_path_factory) -> Path:
    return write_mini_source(tmp_path_factory.mktemp("mini_small"), seed=0, **SIZES)


@pytest.fixture(scope="session")
def default(tmp_path_factory) -> Path:
    return write_mini_source(tmp_path_factory.mktemp("mini_default"))


def files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def split_lines(root: Path) -> dict[str, list[str]]:
    return {name: (root / "split_indices" / f"{name}.txt").read_text().splitlines() for name in SPLIT_NAMES}


# --------------------------------------------------------------------------- determinism


def test_same_seed_gives_the_same_bytes_and_another_seed_other_bytes(small, tmp_path):
    again = write_mini_source(tmp_path / "again", seed=0, **SIZES)
    assert files(again) == files(small)
    assert (again / "SHA256SUMS").read_bytes() == (small / "SHA256SUMS").read_bytes()

    other = write_mini_source(tmp_path / "other", seed=1, **SIZES)
    sums = dict(reversed(line.split("  ")) for line in (small / "SHA256SUMS").read_text().splitlines())
    other_sums = dict(reversed(line.split("  ")) for line in (other / "SHA256SUMS").read_text().splitlines())
    for relpath in ("text_data.tsv", "audio/datalist.csv", "cifar-10-python.tar.gz", "edm_images.pickle"):
        assert other_sums[relpath] != sums[relpath], relpath


def test_refuses_a_folder_that_is_not_empty(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        write_mini_source(tmp_path)


def test_archives_record_no_time_or_owner(small):
    for name in ("cifar-10-python.tar.gz", "cifar-100-python.tar.gz"):
        header = (small / name).read_bytes()[:10]
        assert header[4:8] == b"\0\0\0\0", "gzip mtime"
        with tarfile.open(small / name) as tar:
            for member in tar:
                assert (member.mtime, member.uid, member.gid, member.uname, member.gname) == (0, 0, 0, "", "")
        assert gzip.decompress((small / name).read_bytes())  # a single valid gzip stream


# --------------------------------------------------------------------------- layout


def test_every_published_file_is_there_and_sha256sums_vouches_for_each(small):
    expected = {
        "audio/datalist.csv",
        "text_data.tsv",
        "edm_images.pickle",
        "cifar-10-python.tar.gz",
        "cifar-100-python.tar.gz",
        *(f"split_indices/{name}.txt" for name in SPLIT_NAMES),
        "esc50/meta/esc50.csv",
    }
    present = set(files(small))
    assert expected <= present
    assert {p for p in present if not p.startswith(("audio/", "esc50/audio/"))} == expected - {"audio/datalist.csv"} | {
        "SHA256SUMS",
        MINI_MARKER,
    }
    esc50 = pd.read_csv(small / "esc50" / "meta" / "esc50.csv")
    assert list(esc50.columns) == ["filename", "fold", "target", "category", "esc10", "src_file", "take"]
    assert {f"esc50/audio/{name}" for name in esc50["filename"]} == {p for p in present if p.startswith("esc50/audio/")}
    for name in esc50["filename"]:
        info = soundfile.info(small / "esc50" / "audio" / name)
        assert (info.samplerate, info.channels, info.duration) == (44_100, 1, 5.0)

    lines = (small / "SHA256SUMS").read_text().splitlines()
    assert all(re.fullmatch(r"[0-9a-f]{64}  \S+", line) for line in lines)
    listed = [line.split("  ")[1] for line in lines]
    assert listed == sorted(present - {"SHA256SUMS"})
    for line in lines:
        digest, relpath = line.split("  ")
        assert hashlib.sha256((small / relpath).read_bytes()).hexdigest() == digest, relpath


def test_cifar_archives_hold_python2_style_pickles_with_the_real_names(small):
    c10 = cifar_archive(small / "cifar-10-python.tar.gz")
    batches = [f"data_batch_{b}" for b in range(1, 6)] + ["test_batch"]
    assert set(c10) == {f"cifar-10-batches-py/{m}" for m in [*batches, "batches.meta"]}
    meta = c10["cifar-10-batches-py/batches.meta"]
    assert meta["label_names"] == CIFAR10_NAMES and meta["num_vis"] == 3072
    for name in batches:
        batch = c10[f"cifar-10-batches-py/{name}"]
        assert list(batch) == ["batch_label", "labels", "data", "filenames"]
        assert batch["data"].dtype == np.uint8 and batch["data"].shape == (len(batch["labels"]), 3072)
        assert len(batch["filenames"]) == len(batch["labels"]) and all(0 <= x < 10 for x in batch["labels"])
    train10 = {CIFAR10_NAMES[x] for b in batches[:5] for x in c10[f"cifar-10-batches-py/{b}"]["labels"]}
    assert {"airplane", "deer", "bird", "cat", "dog", "frog", "horse", "ship", "truck"} <= train10

    c100 = cifar_archive(small / "cifar-100-python.tar.gz")
    assert set(c100) == {f"cifar-100-python/{m}" for m in ("train", "test", "meta")}
    assert c100["cifar-100-python/meta"]["fine_label_names"] == CIFAR100_FINE
    assert c100["cifar-100-python/meta"]["coarse_label_names"] == CIFAR100_COARSE
    coarse_of = {}
    for name in ("train", "test"):
        batch = c100[f"cifar-100-python/{name}"]
        assert list(batch) == ["filenames", "batch_label", "fine_labels", "coarse_labels", "data"]
        assert batch["data"].dtype == np.uint8 and batch["data"].shape == (len(batch["fine_labels"]), 3072)
        for fine, coarse in zip(batch["fine_labels"], batch["coarse_labels"], strict=True):
            assert coarse_of.setdefault(fine, coarse) == coarse
    fine = {CIFAR100_FINE[x] for x in coarse_of}
    assert {"man", "pickup_truck", "oak_tree", "rose"} <= fine
    assert fine - {w for w in CIFAR100_FINE if luma_word(w) in CLASS_ID}, "no non-LUMA CIFAR-100 class"
    assert CIFAR100_COARSE[coarse_of[CIFAR100_FINE.index("whale")]] == "aquatic_mammals"

    # Like the published files (written by Python 2), they need no global beyond numpy's array helpers.
    with tarfile.open(small / "cifar-10-python.tar.gz") as tar:
        data = tar.extractfile("cifar-10-batches-py/data_batch_1").read()
    globals_used = {arg for op, arg, _ in pickletools.genops(data) if op.name == "GLOBAL"}
    assert globals_used <= {"numpy._core.multiarray _reconstruct", "numpy.core.multiarray _reconstruct",
                            "numpy ndarray", "numpy dtype"}  # fmt: skip
    assert set(pickle.loads(data, encoding="bytes")) == {b"batch_label", b"labels", b"data", b"filenames"}


def test_edm_pickle_is_a_dataframe_of_luma_labelled_images(small):
    edm = pd.read_pickle(small / "edm_images.pickle")
    assert list(edm.columns) == ["image", "label"] and len(edm) > 0
    assert all(img.shape == (32, 32, 3) and img.dtype == np.uint8 for img in edm["image"])
    labels = set(edm["label"])
    assert labels <= set(CLASS_NAMES)
    assert {CLASS_ID[w] < NUM_ID_CLASSES for w in labels} == {True, False}, "EDM has ID and OOD classes"


def test_tables_cover_all_50_classes_with_the_documented_counts_in_mixed_order(small):
    counts = source_counts(**SIZES)
    datalist = pd.read_csv(small / "audio" / "datalist.csv", keep_default_na=False)
    assert list(datalist.columns) == ["path", "label", "tts_label"]
    texts = pd.read_csv(small / "text_data.tsv", sep="\t", keep_default_na=False)
    assert list(texts.columns) == ["Unnamed: 0", "text", "label"]
    assert texts["Unnamed: 0"].tolist() == list(range(len(texts)))
    for name, table in (("audio", datalist), ("text", texts)):
        per_class = table["label"].map(CLASS_ID).value_counts().reindex(range(50), fill_value=0)
        assert per_class.tolist() == counts[name].tolist(), name
        assert (table["label"] != table["label"].shift()).mean() > 0.8, f"{name} rows are grouped by class"

    paths = datalist["path"]
    assert paths.is_unique and paths.str.match(r"(cv|sw|ls|re)_audio/[^/]+\.wav$").all()
    assert paths.str.split("/").str[0].nunique() == 4
    assert all((small / "audio" / p).is_file() for p in paths)
    assert set(files(small / "audio")) == {"datalist.csv", *paths}

    assert not texts["text"].str.contains("[\t\n]").any()
    sentences = texts["text"].str.count(r"[.!?](?:\"|$| )")
    assert sentences.between(1, 4).mean() > 0.95

    # Records take the smallest modality of each OOD class: one must be short for that to matter.
    ood = np.stack([counts["audio"], counts["text"], counts["image_train"]], axis=1)[NUM_ID_CLASSES:]
    assert all((row == row.min()).sum() == 1 for row in ood)


def test_a_minority_of_texts_name_their_class_and_some_name_another(small):
    texts = pd.read_csv(small / "text_data.tsv", sep="\t", keep_default_na=False)

    def names(word, text):
        return re.search(rf"\b{word}\b", text, re.IGNORECASE) is not None

    pairs = list(zip(texts["text"], texts["label"], strict=True))
    assert 0.15 < np.mean([names(label, text) for text, label in pairs]) < 0.5
    other = [any(names(w, text) for w in CLASS_NAMES if w != label) for text, label in pairs]
    assert 0.2 < np.mean(other) < 0.9


def test_split_files_select_exact_per_class_counts_through_the_pools(small):
    lines = split_lines(small)
    assert all(any("." in line for line in lines[name]) for name in SPLIT_NAMES), "no float-formatted line"
    assert all(float(line).is_integer() for name in SPLIT_NAMES for line in lines[name])
    ids = {name: [int(float(line)) for line in lines[name]] for name in SPLIT_NAMES}
    assert all(len(set(v)) == len(v) for v in ids.values())

    image_pools = read_source_tables(small)["pools"]
    counts = source_counts(**SIZES)
    pool_counts = {p: np.bincount([c for _, c, _ in image_pools[p]], minlength=50) for p in image_pools}
    assert pool_counts["train"].tolist() == counts["image_train"].tolist()
    assert pool_counts["test"].tolist() == counts["image_test"].tolist()
    labels = {
        "audio": pd.read_csv(small / "audio" / "datalist.csv")["label"].map(CLASS_ID).to_numpy(),
        "text": pd.read_csv(small / "text_data.tsv", sep="\t")["label"].map(CLASS_ID).to_numpy(),
    }
    wanted = {"train_clean": SIZES["train_per_class"], "test": SIZES["test_per_class"]}
    for modality in ("audio", "text", "image"):
        for split, per_class in wanted.items():
            selected = ids[f"{modality}_{split}"]
            if modality == "image":
                pool = image_pools["train" if split == "train_clean" else "test"]
                classes = [pool[i][1] for i in selected]
            else:
                classes = labels[modality][selected].tolist()
            expected = [per_class] * NUM_ID_CLASSES + [0] * (50 - NUM_ID_CLASSES)
            assert np.bincount(classes, minlength=50).tolist() == expected, (modality, split)
        if modality != "image":
            train, test = set(ids[f"{modality}_train_clean"]), set(ids[f"{modality}_test"])
            assert not train & test
            spare = np.bincount(np.delete(labels[modality], list(train | test)), minlength=50)
            assert (spare[:NUM_ID_CLASSES] == SIZES["spare_per_class"]).all()

    train_pool = image_pools["train"]
    assert {train_pool[i][2] for i in ids["image_train_clean"]} == {"cifar10", "cifar100", "edm"}
    assert {c for _, c, _ in train_pool} == set(range(50))


# --------------------------------------------------------------------------- content


def test_default_audio_is_real_pcm16_speech_at_several_rates(default):
    datalist = pd.read_csv(default / "audio" / "datalist.csv")
    rates, channels, digests = set(), set(), set()
    for path in datalist["path"]:
        info = soundfile.info(default / "audio" / path)
        assert info.subtype == "PCM_16" and 0.2 <= info.duration <= 0.9, path
        samples, rate = soundfile.read(default / "audio" / path)
        assert np.abs(samples).max() > 0.1, f"{path} is silent"
        rates.add(rate)
        channels.add(info.channels)
        digests.add(hashlib.sha256(samples.tobytes()).hexdigest())
    assert len(rates) >= 3 and channels == {1, 2}
    assert len(digests) == len(datalist), "two clips are identical"


def test_images_and_texts_are_class_specific_but_not_trivial(default):
    """A nearest-centroid classifier on crude features beats chance (1/42) by far, yet stays far from 100%."""
    lines = split_lines(default)
    ids = {name: [int(float(line)) for line in lines[name]] for name in SPLIT_NAMES}

    images = read_source_tables(default)["pools"]

    def features(items):
        x = np.stack([image for image, _, _ in items]).astype(float)
        return np.concatenate([x.mean((1, 2)), x.std((1, 2)), x[:, 8:24, 8:24].mean((1, 2))], axis=1)

    def centroid_accuracy(train_x, train_y, test_x, test_y, similarity):
        centroids = np.stack([train_x[train_y == c].mean(0) for c in range(NUM_ID_CLASSES)])
        return np.mean(np.argmax(similarity(test_x, centroids), axis=1) == test_y)

    train = [images["train"][i] for i in ids["image_train_clean"]]
    test = [images["test"][i] for i in ids["image_test"]]
    accuracy = centroid_accuracy(
        features(train), np.array([c for _, c, _ in train]), features(test), np.array([c for _, c, _ in test]),
        lambda x, c: -((x[:, None] - c[None]) ** 2).sum(-1),
    )  # fmt: skip
    assert 0.15 < accuracy < 0.9, accuracy

    table = pd.read_csv(default / "text_data.tsv", sep="\t")
    labels = table["label"].map(CLASS_ID).to_numpy()
    train, test = ids["text_train_clean"], ids["text_test"]
    # Without their class word (the generator writes no other form of it), texts still carry their class.
    pairs = zip(table["text"], table["label"], strict=True)
    masked = [re.sub(rf"\b{word}\b", "", text, flags=re.IGNORECASE) for text, word in pairs]
    for texts in (table["text"], masked):
        vocabulary = {w: i for i, w in enumerate(sorted(set(re.findall("[a-z]+", " ".join(texts).lower()))))}
        bags = np.zeros((len(table), len(vocabulary)))
        for row, text in enumerate(texts):
            bags[row, [vocabulary[w] for w in re.findall("[a-z]+", text.lower())]] = 1
        bags /= np.linalg.norm(bags, axis=1, keepdims=True)
        accuracy = centroid_accuracy(bags[train], labels[train], bags[test], labels[test], lambda x, c: x @ c.T)
        assert 0.3 < accuracy < 0.95, accuracy
