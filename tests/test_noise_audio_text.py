"""Background noise (audio) and nlpaug text noise: exact SNRs, spectra, ESC-50 from every kind of root, determinism."""

import io
import json
import os
import random
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import soundfile
from http_server import serve
from scipy.signal import welch

from luma_builders.codecs import SAMPLING_RATE, decode_wav
from luma_builders.noise.audio import add_background_noise, coloured_noise, mix_at_snr
from luma_builders.noise.banks import ESC50_COLUMNS, ESC50_ZIP_PREFIX, NoiseBank
from luma_builders.noise.text import TEXT_AUGMENTERS, augment_text, make_text_augmenter
from luma_builders.sources.readers import SourceError

ESC50_RATE = 44_100
# (filename, category): a tone, a chirp, broadband noise, and one clip of digital silence as ESC-50 pads with.
ESC50_CLIPS = [
    ("1-100032-A-0.wav", "dog"),
    ("1-115545-A-48.wav", "fireworks"),
    ("2-109505-A-21.wav", "sneezing"),
    ("3-157615-A-10.wav", "rain"),
]


def realised_snr(clip: np.ndarray, noisy: np.ndarray) -> float:
    clip = clip.astype(np.float64)
    noise = noisy.astype(np.float64) - clip
    return 10 * np.log10(np.mean(clip**2) / np.mean(noise**2))


def quiet_clip(rng: np.random.Generator, seconds: float = 1.0) -> np.ndarray:
    """A speech-level stand-in far enough below full scale that noise at >= 0 dB SNR never clips."""
    t = np.arange(int(seconds * SAMPLING_RATE)) / SAMPLING_RATE
    return (0.01 * np.sin(2 * np.pi * 220 * t) + 0.003 * rng.standard_normal(t.size)).astype(np.float32)


def esc50_wav(index: int) -> bytes:
    """A 5 s, 44.1 kHz mono clip, different for every index; index 3 is digital silence."""
    rng = np.random.default_rng(index)
    t = np.arange(5 * ESC50_RATE) / ESC50_RATE
    samples = [
        0.5 * np.sin(2 * np.pi * 440 * t),
        0.4 * np.sin(2 * np.pi * (200 + 300 * t) * t),
        0.3 * rng.standard_normal(t.size).clip(-3, 3),
        np.zeros(t.size),
    ][index]
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, ESC50_RATE, subtype="PCM_16", format="WAV")
    return buffer.getvalue()


def esc50_members() -> dict[str, bytes]:
    rows = [",".join(ESC50_COLUMNS)]
    rows += [
        f"{name},{name[0]},{name.split('-')[-1][:-4]},{category},False,{name.split('-')[1]},A"
        for name, category in ESC50_CLIPS
    ]
    members = {"meta/esc50.csv": ("\n".join(rows) + "\n").encode()}
    members |= {f"audio/{name}": esc50_wav(index) for index, (name, _) in enumerate(ESC50_CLIPS)}
    return members


@pytest.fixture(scope="module")
def esc50_site(tmp_path_factory):
    """An ESC-50 folder (`esc50/`) and GitHub's zip of it (`esc50.zip`) side by side in one served directory."""
    site = tmp_path_factory.mktemp("site")
    with zipfile.ZipFile(site / "esc50.zip", "w") as archive:
        for relpath, data in esc50_members().items():
            (site / "esc50" / relpath).parent.mkdir(parents=True, exist_ok=True)
            (site / "esc50" / relpath).write_bytes(data)
            archive.writestr(ESC50_ZIP_PREFIX + relpath, data)
    return site


@pytest.fixture(scope="module")
def esc50_url(esc50_site):
    with serve(esc50_site) as url:
        yield url


# --------------------------------------------------------------------------- mixing


@pytest.mark.parametrize("snr_db", [-10.0, 0.0, 7.5, 30.0])
@pytest.mark.parametrize("noise_length", [4_000, 16_000, 50_000])
def test_mix_at_snr_hits_the_snr_exactly(snr_db, noise_length):
    rng = np.random.default_rng(noise_length)
    clip = (0.05 * rng.standard_normal(16_000)).astype(np.float32)
    noise = rng.standard_normal(noise_length).astype(np.float32)
    noisy = mix_at_snr(clip, noise, snr_db)
    assert noisy.dtype == np.float32 and noisy.shape == clip.shape
    assert realised_snr(clip, noisy) == pytest.approx(snr_db, abs=1e-3)
    # The noise is tiled or cropped from its first sample, never stretched.
    added = noisy.astype(np.float64) - clip
    tiled = np.resize(noise.astype(np.float64), clip.shape)
    assert np.allclose(added / np.linalg.norm(added), tiled / np.linalg.norm(tiled), atol=1e-5)


def test_mix_at_snr_clips_to_full_scale():
    rng = np.random.default_rng(1)
    loud = (0.9 * np.sign(rng.standard_normal(16_000))).astype(np.float32)
    noisy = mix_at_snr(loud, rng.standard_normal(16_000), snr_db=-10.0)
    assert noisy.min() == -1.0 and noisy.max() == 1.0


def test_mix_at_snr_rejects_silent_noise_and_empty_clips():
    with pytest.raises(ValueError, match="silent"):
        mix_at_snr(np.ones(100, np.float32) * 0.1, np.zeros(50), 10.0)
    with pytest.raises(ValueError, match="no samples"):
        mix_at_snr(np.zeros(0, np.float32), np.ones(50), 10.0)


def test_add_background_noise_draws_snrs_inside_the_range(esc50_site):
    rng = np.random.default_rng(2)
    clip = quiet_clip(rng)
    for bank in (NoiseBank.synthetic(), NoiseBank.esc50(str(esc50_site / "esc50"))):
        drawn = []
        for _ in range(100):
            noisy, snr_db, noise_id = add_background_noise(clip, bank, (0.0, 20.0), rng)
            assert np.abs(noisy).max() < 1.0  # a quiet clip: the SNR is measured before clipping matters
            assert realised_snr(clip, noisy) == pytest.approx(snr_db, abs=1e-3)
            assert 0.0 <= realised_snr(clip, noisy) <= 20.0 + 1e-3
            assert noise_id in bank.sources
            drawn.append(snr_db)
        assert min(drawn) < 3 and max(drawn) > 17  # uniform over the range, not stuck at one end


@pytest.mark.parametrize("snr_range", [(20.0, 0.0), (0.0, float("nan")), (5.0,), "loud"])
def test_add_background_noise_validates_snr_range(snr_range):
    with pytest.raises(ValueError, match="snr_range"):
        add_background_noise(np.ones(100, np.float32), NoiseBank.synthetic(), snr_range, np.random.default_rng(0))


# --------------------------------------------------------------------------- coloured noise


@pytest.mark.parametrize(("colour", "slope"), [("white", 0.0), ("pink", -1.0), ("brown", -2.0)])
def test_coloured_noise_has_the_spectral_slope_of_its_colour(colour, slope):
    noise = coloured_noise(2**18, colour, np.random.default_rng(3))
    assert noise.dtype == np.float32
    assert np.sqrt(np.mean(noise.astype(np.float64) ** 2)) == pytest.approx(1.0, abs=1e-5)
    frequencies, power = welch(noise, nperseg=4096)
    band = (frequencies > 1e-3) & (frequencies < 0.25)
    fitted = np.polyfit(np.log10(frequencies[band]), np.log10(power[band]), 1)[0]
    assert fitted == pytest.approx(slope, abs=0.15)


def test_coloured_noise_is_deterministic_per_generator():
    first = coloured_noise(10_000, "pink", np.random.default_rng(4))
    assert np.array_equal(first, coloured_noise(10_000, "pink", np.random.default_rng(4)))
    assert not np.array_equal(first, coloured_noise(10_000, "pink", np.random.default_rng(5)))
    with pytest.raises(ValueError, match="purple"):
        coloured_noise(100, "purple", np.random.default_rng(0))


# --------------------------------------------------------------------------- noise banks


def draws(bank: NoiseBank, seed: int, count: int = 12, num_samples: int = 16_000) -> list[tuple[np.ndarray, str]]:
    rng = np.random.default_rng(seed)
    return [bank.sample(num_samples, rng) for _ in range(count)]


def test_esc50_segments_are_windows_of_the_decoded_clips(esc50_site):
    bank = NoiseBank.esc50(str(esc50_site / "esc50"))
    assert list(bank.sources) == [f"esc50:{name}" for name, _ in ESC50_CLIPS]
    decoded = {f"esc50:{name}": decode_wav(esc50_wav(i), name) for i, (name, _) in enumerate(ESC50_CLIPS)}
    seen = set()
    for segment, noise_id in draws(bank, seed=6, count=40):
        assert noise_id != "esc50:3-157615-A-10.wav"  # digital silence is redrawn
        assert segment.dtype == np.float32 and segment.shape == (16_000,)
        clip = decoded[noise_id]
        assert len(clip) == 5 * SAMPLING_RATE
        starts = [s for s in np.flatnonzero(clip == segment[0]) if s + 16_000 <= len(clip)]
        assert any(np.array_equal(clip[s : s + 16_000], segment) for s in starts)
        seen.add(noise_id)
    assert len(seen) == 3


def test_esc50_from_folder_url_and_zips_gives_identical_noise(esc50_site, esc50_url):
    zip_root = f"zip://{ESC50_ZIP_PREFIX}::"
    roots = [
        str(esc50_site / "esc50"),
        f"{esc50_url}/esc50",
        zip_root + str(esc50_site / "esc50.zip"),
        zip_root + f"{esc50_url}/esc50.zip",
    ]
    results = [draws(NoiseBank.esc50(root), seed=7) for root in roots]
    for result in results[1:]:
        assert [noise_id for _, noise_id in result] == [noise_id for _, noise_id in results[0]]
        assert all(np.array_equal(a, b) for (a, _), (b, _) in zip(result, results[0], strict=True))


def test_esc50_categories_select_clips_and_unknown_ones_are_named(esc50_site):
    bank = NoiseBank.esc50(str(esc50_site / "esc50"), categories=["dog", "sneezing"])
    assert list(bank.sources) == ["esc50:1-100032-A-0.wav", "esc50:2-109505-A-21.wav"]
    with pytest.raises(ValueError, match="'unicorn'"):
        NoiseBank.esc50(str(esc50_site / "esc50"), categories=["dog", "unicorn"])
    with pytest.raises(ValueError, match="silent"):
        draws(NoiseBank.esc50(str(esc50_site / "esc50"), categories=["rain"]), seed=0)


def test_esc50_missing_or_malformed_sources_are_source_errors(tmp_path, esc50_url):
    with pytest.raises(SourceError, match="esc50.csv"):
        NoiseBank.esc50(str(tmp_path))
    with pytest.raises(SourceError, match="esc50.csv"):
        NoiseBank.esc50(f"{esc50_url}/not-there")
    (tmp_path / "meta").mkdir()
    (tmp_path / "meta" / "esc50.csv").write_text("filename,fold,category_name\nx.wav,1,dog\n")
    with pytest.raises(SourceError, match="target"):
        NoiseBank.esc50(str(tmp_path))


def test_folder_bank_reads_every_wav_below_the_folder(esc50_site, tmp_path):
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "hiss.wav").write_bytes(esc50_wav(2))
    (tmp_path / "tone.WAV").write_bytes(esc50_wav(0))
    (tmp_path / "notes.txt").write_text("not audio")
    bank = NoiseBank.folder(str(tmp_path))
    assert sorted(bank.sources) == ["folder:nested/hiss.wav", "folder:tone.WAV"]
    assert {noise_id for _, noise_id in draws(bank, seed=8)} == set(bank.sources)
    with pytest.raises(ValueError, match="no .wav"):
        NoiseBank.folder(str(tmp_path / "nested" / "empty"))


def test_synthetic_bank_and_short_noise_clips(tmp_path):
    bank = NoiseBank.synthetic(("pink", "brown"))
    assert {noise_id for _, noise_id in draws(bank, seed=9)} == {"synthetic:pink", "synthetic:brown"}
    first, second = draws(bank, seed=9), draws(bank, seed=9)
    assert all(np.array_equal(a, b) and i == j for (a, i), (b, j) in zip(first, second, strict=True))
    # A noise clip shorter than the segment is tiled.
    soundfile.write(tmp_path / "short.wav", np.linspace(-0.5, 0.5, 1_000), SAMPLING_RATE)
    segment, _ = NoiseBank.folder(str(tmp_path)).sample(5_500, np.random.default_rng(0))
    assert np.array_equal(segment[:4_500], segment[1_000:5_500])
    with pytest.raises(ValueError, match="purple"):
        NoiseBank.synthetic(("pink", "purple"))


def test_bank_pickles_without_its_decoded_clips(esc50_site):
    import pickle

    bank = NoiseBank.esc50(str(esc50_site / "esc50"))
    draws(bank, seed=10)
    assert bank._cache
    copy = pickle.loads(pickle.dumps(bank))
    assert copy == bank and not copy._cache
    assert all(np.array_equal(a, b) for (a, _), (b, _) in zip(draws(copy, seed=11), draws(bank, seed=11), strict=True))


# --------------------------------------------------------------------------- text

OFFLINE_AUGMENTERS = {
    "KeyboardNoise": {"aug_char_min": 1, "aug_char_max": 5, "aug_word_min": 3, "aug_word_max": 8},
    "OCRNoise": {"aug_word_p": 0.5},
    "RandomCharNoise": {},
    "RandomWordNoise": {},
    "SpellingNoise": {"aug_p": 0.4},
}
TEXTS = [
    "A small airplane flies above the old lighthouse near the quiet harbour.",
    "The brown dog is running through the tall grass after a red ball.",
    "This photograph shows a large truck parked beside the wooden barn.",
]


@pytest.fixture(scope="module")
def augmenters():
    return {name: make_text_augmenter(name, **kwargs) for name, kwargs in OFFLINE_AUGMENTERS.items()}


def test_augmenter_names():
    assert set(OFFLINE_AUGMENTERS) | {"AntonymNoise", "BackTranslationNoise"} == set(TEXT_AUGMENTERS)


@pytest.mark.parametrize("name", OFFLINE_AUGMENTERS)
def test_offline_augmenters_change_text_and_return_a_string(augmenters, name):
    rng = np.random.default_rng(12)
    outputs = [augment_text(text, augmenters[name], rng) for text in TEXTS]
    assert all(isinstance(output, str) and not output.startswith("[") for output in outputs)
    assert any(output != text for output, text in zip(outputs, TEXTS, strict=True))
    assert augment_text("", augmenters[name], rng) == ""


@pytest.mark.parametrize("name", OFFLINE_AUGMENTERS)
def test_augment_text_depends_only_on_text_augmenter_and_generator(augmenters, name):
    augmenter = augmenters[name]
    first = [augment_text(text, augmenter, np.random.default_rng(13)) for text in TEXTS]
    # Unrelated use of the global states, and other augmentations, in between.
    random.seed(99)
    np.random.seed(99)
    random.random(), np.random.rand(7)
    augment_text(TEXTS[0], augmenter, np.random.default_rng(14))
    second = [augment_text(text, augmenter, np.random.default_rng(13)) for text in TEXTS]
    assert first == second
    others = {augment_text(TEXTS[0], augmenter, np.random.default_rng(seed)) for seed in range(8)}
    assert len(others) > 1


def test_augment_text_restores_the_global_random_states(augmenters):
    random.seed(15)
    np.random.seed(15)
    python_state, numpy_state = random.getstate(), np.random.get_state()
    for augmenter in augmenters.values():
        augment_text(TEXTS[1], augmenter, np.random.default_rng(16))
    assert random.getstate() == python_state
    restored = np.random.get_state()
    assert all(np.array_equal(a, b) for a, b in zip(restored, numpy_state, strict=True))


def test_text_noise_is_the_same_in_every_process():
    # Python salts str hashes per process; nlpaug's spelling dictionary orders candidates by them.
    script = (
        "import json, numpy as np\n"
        "from luma_builders.noise.text import make_text_augmenter, augment_text\n"
        f"texts, augmenters = {TEXTS!r}, {OFFLINE_AUGMENTERS!r}\n"
        "print(json.dumps({name: [augment_text(t, make_text_augmenter(name, **kw), np.random.default_rng(17))"
        " for t in texts] for name, kw in augmenters.items()}))\n"
    )
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", script],
            env={**os.environ, "PYTHONHASHSEED": seed},
            stdout=subprocess.PIPE,
            text=True,
        )
        for seed in ("1", "2")
    ]
    outputs = [process.communicate(timeout=300)[0] for process in processes]
    assert [process.returncode for process in processes] == [0, 0]
    assert json.loads(outputs[0]) == json.loads(outputs[1])


@pytest.mark.parametrize(
    ("name", "kwargs", "named"),
    [
        ("LeetNoise", {}, "LeetNoise"),
        ("KeyboardNoise", {"aug_char_mni": 1}, "aug_char_mni"),
        ("OCRNoise", {"aug_word_p": 1.5}, "aug_word_p"),
        ("RandomWordNoise", {"aug_min": 5, "aug_max": 2}, "aug_min"),
        ("SpellingNoise", {"dict_path": "/no/such/spelling.txt"}, "/no/such/spelling.txt"),
    ],
)
def test_bad_names_and_arguments_are_named(name, kwargs, named):
    with pytest.raises(ValueError, match=named):
        make_text_augmenter(name, **kwargs)


def test_spelling_noise_uses_its_own_dictionary(tmp_path):
    make_text_augmenter("SpellingNoise")  # nlpaug caches this model process-wide
    (tmp_path / "spelling.txt").write_text("harbour harbr\nlighthouse lihgthouse\n")
    augmenter = make_text_augmenter("SpellingNoise", dict_path=str(tmp_path / "spelling.txt"), aug_p=1.0)
    output = augment_text(TEXTS[0], augmenter, np.random.default_rng(18))
    assert output == TEXTS[0].replace("harbour", "harbr").replace("lighthouse", "lihgthouse")


def test_antonym_noise_names_the_missing_nltk_data():
    with pytest.raises(ValueError) as error:
        make_text_augmenter("AntonymNoise")
    message = str(error.value)
    assert "nltk" in message.lower() and "python -m nltk.downloader wordnet" in message


def test_back_translation_names_the_missing_models(tmp_path):
    with pytest.raises(ValueError) as error:
        make_text_augmenter("BackTranslationNoise")
    assert "'facebook/wmt19-en-de'" in str(error.value) and "'facebook/wmt19-de-en'" in str(error.value)
    assert "online" in str(error.value) and "local model folders" in str(error.value)
    # A local model folder counts as present; only the other model is reported.
    (tmp_path / "opus-mt-en-de").mkdir()
    (tmp_path / "opus-mt-en-de" / "config.json").write_text("{}")
    with pytest.raises(ValueError) as error:
        make_text_augmenter(
            "BackTranslationNoise", from_model_name=str(tmp_path / "opus-mt-en-de"), to_model_name="Helsinki-NLP/nope"
        )
    assert "'Helsinki-NLP/nope'" in str(error.value) and "opus-mt-en-de" not in str(error.value)
