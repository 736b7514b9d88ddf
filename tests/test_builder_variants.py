"""Every LUMA variant built for real from the mini source: what each injects, exactly and statistically."""

import io
import re
from collections import Counter

import numpy as np
import pytest
import soundfile
from conftest import SMALL, png_pixels, read_source_tables, serve
from scipy.signal import fftconvolve
from scipy.spatial.distance import pdist
from scipy.stats import binom
from test_builder import build, rows, streamed_rows

import luma
from luma import CONFIGS, Luma
from luma_builders.classes import NUM_ID_CLASSES
from luma_builders.codecs import decode_wav, read_wav
from luma_builders.features import ModelFreeExtractor
from luma_builders.mini.source import write_mini_source
from luma_builders.sources.readers import MODALITIES
from luma_builders.sources.transfer import luma_home

SPLITS = ("train", "test", "ood")
PROVENANCE_NULLS = (
    "modality_targets",
    "image_noise",
    "image_severity",
    "audio_noise",
    "audio_snr_db",
    "text_noise",
    "conflict_modality",
    "conflict_label",
    "diversity_weight",
)


@pytest.fixture(scope="module")
def variants(mini_source, tmp_path_factory):
    cache = tmp_path_factory.mktemp("variants")
    return {config.name: build(mini_source, cache, config.name) for config in CONFIGS}


@pytest.fixture(scope="module")
def tables(mini_source):
    return read_source_tables(mini_source)


def test_every_variant_builds_with_the_published_sizes(variants):
    for name, builder in variants.items():
        sizes = {split: info.num_examples for split, info in builder.info.splits.items()}
        assert sizes["train"] == NUM_ID_CLASSES * SMALL["train_per_class"], name
        expected_test = NUM_ID_CLASSES * SMALL["test_per_class"] + (sizes["ood"] if name == "ood" else 0)
        assert sizes["test"] == expected_test, name


def test_clean_has_no_injected_uncertainty_at_all(variants, mini_source, tables):
    clean = variants["clean"]
    for split in SPLITS:
        for row in rows(clean, split):
            assert row["label"] == row["clean_label"] and not row["label_switched"]
            assert all(row[field] is None for field in PROVENANCE_NULLS), row
            clip = decode_wav((mini_source / "audio" / tables["audio_paths"][row["audio_id"]]).read_bytes(), "clip")
            decoded, _ = soundfile.read(io.BytesIO(row["audio"]["bytes"]), dtype="float32")
            np.testing.assert_allclose(decoded, clip, atol=1 / 32767)  # the clip itself, only PCM16-rounded


def test_label_switching_moves_whole_records_at_the_configured_rate(variants):
    clean, switched = variants["clean"], variants["label_noise_0.3"]
    for split in ("train", "test"):
        before, after = rows(clean, split), rows(switched, split)
        flags = np.array([row["label_switched"] for row in after])
        low, high = binom.interval(0.99, len(after), 0.3)
        assert low <= flags.sum() <= high, (split, flags.sum())
        for a, b in zip(before, after, strict=True):
            # pairing survives: the same three items, all of the original class; only the target changes
            assert {k: a[k] for k in ("image_id", "audio_id", "text_id", "text")} == {
                k: b[k] for k in ("image_id", "audio_id", "text_id", "text")
            }
            assert b["clean_label"] == a["label"]
            assert (b["label"] != b["clean_label"]) == b["label_switched"]
            assert b["label"] < NUM_ID_CLASSES
            if b["modality_targets"] is not None:
                assert b["label_switched"] and len(set(b["modality_targets"].values()) | {b["label"]}) > 1
    assert not any(row["label_switched"] for row in rows(switched, "ood"))


def test_conflicts_replace_one_modality_with_the_next_class_exactly(variants, tables):
    conflict = rows(variants["conflict_0.4"], "test")
    per_class = Counter(row["clean_label"] for row in conflict if row["conflict_modality"])
    assert per_class == {c: round(0.4 * SMALL["test_per_class"]) for c in range(NUM_ID_CLASSES)}
    pools = tables["pools"]["test"]
    for row in conflict:
        c = row["clean_label"]
        assert row["label"] == c
        labels = {
            "image": pools[row["image_id"]][1],
            "audio": tables["audio_labels"][row["audio_id"]],
            "text": tables["text_labels"][row["text_id"]],
        }
        if row["conflict_modality"] is None:
            assert set(labels.values()) == {c}
            continue
        donor = (c + 1) % NUM_ID_CLASSES
        assert row["conflict_label"] == donor and labels[row["conflict_modality"]] == donor
        assert {labels[m] for m in labels if m != row["conflict_modality"]} == {c}
    assert {row["conflict_modality"] for row in conflict} == {None, "image", "audio", "text"}
    assert all(row["conflict_modality"] is None for row in rows(variants["conflict_0.4"], "train"))


def test_sample_noise_noises_every_modality_of_every_split(variants, mini_source, tables):
    noisy = variants["sample_noise"]
    for split in SPLITS:
        pool = tables["pools"]["test" if split == "test" else "train"]
        for row in rows(noisy, split):
            assert row["image_severity"] == 4 and row["image_noise"] is not None
            assert not np.array_equal(png_pixels(row["image"]["bytes"]), pool[row["image_id"]][0])
            assert row["text_noise"] in {"KeyboardNoise", "SpellingNoise", "OCRNoise"}
            assert row["text"] != tables["texts"][row["text_id"]] and not row["text"].startswith("[")
            assert row["audio_noise"].startswith("esc50:") and 3.0 <= row["audio_snr_db"] <= 5.0
            clip = decode_wav((mini_source / "audio" / tables["audio_paths"][row["audio_id"]]).read_bytes(), "clip")
            decoded, rate = soundfile.read(io.BytesIO(row["audio"]["bytes"]), dtype="float64")
            assert rate == 16_000 and len(decoded) == len(clip)
            if np.abs(decoded).max() < 0.99:  # not clipped: the measured SNR is the recorded one
                noise = decoded - clip
                measured = 10 * np.log10(np.mean(clip.astype(float) ** 2) / np.mean(noise**2))
                assert abs(measured - row["audio_snr_db"]) < 0.05, (measured, row["audio_snr_db"])
    corruptions = Counter(row["image_noise"] for row in rows(noisy, "train"))
    assert len(corruptions) >= 12  # a uniform choice among 15 over 168 records


def test_native_sampling_rate_keeps_each_clips_own_rate_and_mixes_noise_at_it(mini_source, tmp_path):
    native = build(mini_source, tmp_path, "sample_noise", sampling_rate="native")
    assert native.config.sampling_rate == 0 and native.info.features["audio"].sampling_rate is None
    at_16k = rows(build(mini_source, tmp_path, "sample_noise"), "test")
    rates = Counter()
    for row, default in zip(rows(native, "test"), at_16k, strict=True):
        # the same record, the same draws: only the audio's bytes (and the noise segment's start) differ
        assert {k: v for k, v in row.items() if k != "audio"} == {k: v for k, v in default.items() if k != "audio"}
        # the clip's path in the Hub repo is a field: the source file, at its own rate
        clip, source_rate = soundfile.read(mini_source / row["audio_path"], dtype="float64")
        clip = clip.mean(axis=1) if clip.ndim == 2 else clip  # some clips are stereo: records are mono
        decoded, rate = soundfile.read(io.BytesIO(row["audio"]["bytes"]), dtype="float64")
        assert rate == source_rate and len(decoded) == len(clip)
        assert row["audio_noise"].startswith("esc50:")
        if np.abs(decoded).max() < 0.99:  # not clipped: noise of the clip's length at the recorded SNR
            noise = decoded - clip
            measured = 10 * np.log10(np.mean(clip**2) / np.mean(noise**2))
            assert abs(measured - row["audio_snr_db"]) < 0.05, (measured, row["audio_snr_db"])
            assert best_match(noise, esc50_clip_at(mini_source, row["audio_noise"], rate)) > 0.99
        rates[rate] += 1
    assert len(rates) >= 3, rates  # the mini source's clips come at several rates


def esc50_clip_at(source, noise_id: str, rate: int) -> np.ndarray:
    data = (source / "esc50" / "audio" / noise_id.removeprefix("esc50:")).read_bytes()
    return read_wav(data, noise_id, rate)[0].astype(np.float64)


def best_match(segment: np.ndarray, clip: np.ndarray) -> float:
    """The highest correlation of `segment` with a stretch of `clip` of its length: 1 where it is one, scaled."""
    dots = fftconvolve(clip, segment[::-1], mode="valid")
    cumulative = np.concatenate([[0.0], np.cumsum(clip**2)])
    energies = cumulative[len(segment) :] - cumulative[: -len(segment)]
    return float(np.max(dots / np.sqrt(np.maximum(energies, 1e-12) * np.sum(segment**2))))


def test_a_sampling_rate_resamples_every_clip_to_it(mini_source, tmp_path):
    built = build(mini_source, tmp_path, "clean", sampling_rate=8000)
    assert built.info.features["audio"].sampling_rate == 8000
    for row in rows(built, "ood"):
        clip, source_rate = soundfile.read(mini_source / row["audio_path"], dtype="float64")
        decoded, rate = soundfile.read(io.BytesIO(row["audio"]["bytes"]), dtype="float64")
        assert rate == 8000 and len(decoded) == -(-len(clip) * 8000 // source_rate)  # resample_poly's length


def test_ids_are_unique_per_split_and_shared_by_the_same_position_across_variants(variants):
    for name, builder in variants.items():
        ids = {split: [row["id"] for row in rows(builder, split)] for split in SPLITS}
        for split in SPLITS:
            assert ids[split] == [f"{split}-{i:05d}" for i in range(len(ids[split]))], name
        assert len({i for split_ids in ids.values() for i in split_ids}) == sum(map(len, ids.values())), name
    for split in SPLITS:  # the same position holds the same items, under the same id
        items = [
            [(r["id"], r["image_id"], r["audio_id"], r["text_id"]) for r in rows(variants[n], split)]
            for n in ("clean", "sample_noise")
        ]
        assert items[0] == items[1]
    ood_in_test = rows(variants["ood"], "test")
    assert sum(row["is_ood"] for row in ood_in_test) == len(rows(variants["ood"], "ood")) > 0
    assert len({row["id"] for row in ood_in_test}) == len(ood_in_test)  # moved OOD records are renumbered


def test_low_diversity_lowers_the_spread_of_train_features(mini_source, tmp_path_factory):
    # diversity needs more candidates than it keeps: a source with spare items per class
    source = write_mini_source(
        tmp_path_factory.mktemp("spares"), train_per_class=12, test_per_class=2, ood_per_class=3, spare_per_class=36
    )
    cache = tmp_path_factory.mktemp("diversity")
    tables = read_source_tables(source)
    extractor = ModelFreeExtractor()
    spread = {}
    for name in ("clean", "low_diversity"):
        train = rows(build(source, cache, name), "train")
        features = {
            "image": extractor.image(np.stack([tables["pools"]["train"][r["image_id"]][0] for r in train])),
            "text": extractor.text([r["text"] for r in train], np.array([r["label"] for r in train])),
        }
        labels = np.array([r["label"] for r in train])
        spread[name] = {
            m: np.mean([pdist(f[labels == c]).mean() for c in range(NUM_ID_CLASSES)]) for m, f in features.items()
        }
        weights = [r["diversity_weight"] for r in train]
        assert all(w is None for w in weights) if name == "clean" else all(w["image"] > 1 for w in weights)
    for modality in ("image", "text"):
        assert spread["low_diversity"][modality] < spread["clean"][modality], spread


@pytest.mark.parametrize("name", ["label_noise_0.3", "sample_noise", "conflict_0.4"])
def test_same_bytes_across_runs_streaming_and_num_proc(name, variants, mini_source, tmp_path):
    expected = {split: rows(variants[name], split) for split in SPLITS}
    parallel = build(mini_source, tmp_path / "parallel", name, num_proc=2)
    stream = Luma(name, data_dir=str(mini_source), cache_dir=str(tmp_path / "stream"))
    for split in SPLITS:
        assert rows(parallel, split) == expected[split]
        assert streamed_rows(stream, split) == expected[split]


def test_sample_noise_over_http_equals_local(variants, mini_source, tmp_path):
    with serve(mini_source) as url:
        remote = Luma("sample_noise", data_dir=url, cache_dir=str(tmp_path))
        assert streamed_rows(remote, "test") == rows(variants["sample_noise"], "test")


def test_the_feature_cache_is_shared_by_every_variant_and_cache_dir(mini_source, tmp_path, monkeypatch):
    calls = Counter()
    for modality in MODALITIES:  # the real extractor, counting the items it is given
        method = getattr(ModelFreeExtractor, modality)

        def counted(self, items, *rest, method=method, modality=modality):
            calls[modality] += len(items)
            return method(self, items, *rest)

        monkeypatch.setattr(ModelFreeExtractor, modality, counted)
    first = build(mini_source, tmp_path / "one", "label_noise_0.3")
    assert set(calls) == set(MODALITIES)
    stored = sorted((luma_home() / "features").rglob("*.npz"))
    caches = [p for p in stored if "-distances-" not in p.name]  # beside them: label switching's distances
    assert {p.name for p in caches} == {"image.npz", "audio.npz", "text.npz"} and len(stored) - len(caches) == 3 * 2
    assert not list(tmp_path.rglob("*.npz")) and not list(tmp_path.rglob(".luma-decoded-clips-*"))
    before = {p: p.stat().st_mtime_ns for p in caches}
    calls.clear()
    # another cache_dir and another plan of the same items: every feature comes from the cache
    other = build(mini_source, tmp_path / "two", "label_noise_0.3", seed=7)
    assert not calls and {p: p.stat().st_mtime_ns for p in caches} == before
    assert rows(first, "train") != rows(other, "train")


def test_each_clip_is_decoded_once_per_build(mini_source, tmp_path, monkeypatch):
    decoded = Counter()

    def counted(data, name, rate):
        decoded[int(re.search(r"\(audio_id (\d+)\)", name).group(1))] += 1
        return read_wav(data, name, rate)

    monkeypatch.setattr(luma, "read_wav", counted)
    built = build(mini_source, tmp_path, "label_noise_0.3")  # features decode the train and test clips first
    used = {row["audio_id"] for split in SPLITS for row in rows(built, split)}
    assert set(decoded) == used and set(decoded.values()) == {1}
    assert not list(tmp_path.glob(".luma-decoded-clips-*"))  # the kept clips go with the build


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"label_switch_prob": 1.5}, r"'label_switch_prob' must be in \[0.0, 1.0\]"),
        ({"image_severity": 6}, r"'image_severity' must be in \[1, 5\]"),
        ({"image_compactness": "high"}, "'image_compactness' must be of type float"),
        ({"num_sampling": 0}, "'num_sampling' must be >= 1"),
        ({"image_corruptions": "gaussian_noise,fog_of_war"}, r"'image_corruptions': unknown \['fog_of_war'\]"),
        ({"noise_splits": "train,dev"}, r"'noise_splits': unknown \['dev'\]"),
        ({"audio_snr_min": 9.0, "audio_snr_max": 3.0}, "audio_snr_min .* must not exceed audio_snr_max"),
        ({"feature_extractor": "vgg"}, "'feature_extractor' must be one of"),
        ({"text_noise_ratio": 0.5, "text_augmenters": "KeyboardNoise(aug_cahr_min=1)"}, "aug_cahr_min"),
        ({"text_noise_ratio": 0.5, "text_augmenters": "AntonymNoise"}, "nltk"),
        ({"text_noise_ratio": 0.5, "text_augmenters": "BackTranslationNoise"}, "facebook/wmt19-en-de"),
    ],
)
def test_bad_parameters_fail_at_config_time(parameters, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        Luma("clean", cache_dir=str(tmp_path), **parameters)
