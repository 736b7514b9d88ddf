"""The baselines: networks, losses, the training loop, the three methods, and encoding real LUMA records."""

import io
import math
import subprocess
from itertools import islice

import datasets
import numpy as np
import pytest
import soundfile
import torch
import torch.nn.functional as F
from scipy.signal import resample_poly
from scipy.special import digamma, gammaln
from torch.utils.data import DataLoader

from baselines.data import (
    IMAGE_MEAN,
    IMAGE_STD,
    LOG_MEL,
    LumaCollator,
    TextEmbedder,
    add_log_mels,
    clip_at_16k,
    encode_records,
    log_mel_128,
    log_mels,
)
from baselines.losses import conflict_degree, rcml_loss, sampling_softmax_nll
from baselines.methods import DeepEnsemble, MCDropout, make_method
from baselines.models import AudioNet, EvidentialFusion, ImageNet, LateFusion, TextNet, build_model, fuse_evidence
from baselines.train import TrainConfig, evaluate_loss, train
from luma import Luma
from luma_builders.classes import NUM_ID_CLASSES
from luma_builders.codecs import decode_wav
from luma_builders.features import mel_filterbank
from luma_builders.mini.source import write_mini_source
from luma_builders.sources.transfer import luma_home

SHAPES = {"image": (3, 32, 32), "audio": (1, 128, 128), "text": (384,)}


def synthetic(n: int, num_classes: int, seed: int, modalities=("image", "text"), noise: float = 1.0) -> dict:
    """Random inputs around a class-dependent mean per modality (the means fixed, the noise drawn from `seed`)."""
    labels = torch.arange(n) % num_classes
    noise_generator = torch.Generator().manual_seed(seed)
    data = {"label": labels, "is_ood": torch.zeros(n, dtype=torch.bool)}
    for i, modality in enumerate(modalities):
        means = torch.randn(num_classes, *SHAPES[modality], generator=torch.Generator().manual_seed(100 + i))
        data[modality] = means[labels] + noise * torch.randn(n, *SHAPES[modality], generator=noise_generator)
    return data


def quiet(**changes) -> TrainConfig:
    return TrainConfig(progress=False, device="cpu", **changes)


# --------------------------------------------------------------------------- networks


def test_every_net_has_two_heads_of_the_right_shape():
    torch.manual_seed(0)
    batch = {m: torch.randn(2, *shape) for m, shape in SHAPES.items()}
    for net, modality in ((ImageNet(), "image"), (AudioNet(), "audio"), (TextNet(), "text")):
        logits, sigma = net(batch[modality])
        assert logits.shape == sigma.shape == (2, 42)
        assert (sigma > 0).all()
        assert any(isinstance(m, torch.nn.Dropout) and m.p == 0.3 for m in net.modules())

    fusion = LateFusion(num_classes=5).eval()
    outputs = fusion.forward_modalities(batch)
    assert set(outputs) == set(SHAPES)
    logits, sigma = fusion(batch)
    assert logits.shape == sigma.shape == (2, 5)
    torch.testing.assert_close(logits, torch.stack([mu for mu, _ in outputs.values()]).mean(0))

    fused, alphas = EvidentialFusion(("text", "image"), num_classes=5)(batch)
    assert fused.shape == (2, 5) and set(alphas) == {"text", "image"}
    assert (fused > 1).all() and all((a > 1).all() for a in alphas.values())
    assert isinstance(build_model("de", ("audio",)), LateFusion)
    with pytest.raises(ValueError, match="modalities"):
        build_model("mcd", ("video",))


def test_rcml_fusion_is_a_running_average_that_favours_later_views():
    a, b, c = torch.full((1, 3), 4.0), torch.full((1, 3), 8.0), torch.full((1, 3), 16.0)
    torch.testing.assert_close(fuse_evidence([a, b, c]), a / 4 + b / 4 + c / 2)
    assert not torch.equal(fuse_evidence([c, b, a]), fuse_evidence([a, b, c]))


# --------------------------------------------------------------------------- losses


def test_sampling_softmax_reduces_to_cross_entropy_as_sigma_vanishes():
    torch.manual_seed(0)
    logits, labels = torch.randn(16, 7), torch.randint(0, 7, (16,))
    cross_entropy = F.cross_entropy(logits, labels)
    torch.testing.assert_close(sampling_softmax_nll(logits, torch.zeros_like(logits), labels), cross_entropy)
    small = sampling_softmax_nll(logits, torch.full_like(logits, 1e-4), labels, num_samples=50)
    assert abs(small.item() - cross_entropy.item()) < 1e-3
    # a large scale on a confident, correct prediction costs likelihood; on a wrong one it helps
    confident = torch.nn.functional.one_hot(labels, 7).float() * 10
    sure, unsure = (sampling_softmax_nll(confident, torch.full_like(confident, s), labels, 200) for s in (0.0, 8.0))
    assert unsure > sure
    wrong = torch.nn.functional.one_hot((labels + 1) % 7, 7).float() * 10
    sure, unsure = (sampling_softmax_nll(wrong, torch.full_like(wrong, s), labels, 200) for s in (0.0, 8.0))
    assert unsure < sure


def reference_evidential(alpha: np.ndarray, label: int, kl_weight: float) -> float:
    """E[-log p_y] under Dir(alpha) plus the weighted KL(Dir(alpha with alpha_y = 1) || Dir(1)), with scipy."""
    ce = digamma(alpha.sum()) - digamma(alpha[label])
    a = alpha.copy()
    a[label] = 1.0
    s = a.sum()
    kl = gammaln(s) - gammaln(a).sum() - gammaln(len(a)) + ((a - 1) * (digamma(a) - digamma(s))).sum()
    return ce + kl_weight * kl


def reference_conflict(alphas: list[np.ndarray]) -> float:
    k = alphas[0].shape[-1]
    total = 0.0
    for i, a_i in enumerate(alphas):
        for j, a_j in enumerate(alphas):
            if i != j:
                distance = np.abs(a_i / a_i.sum(-1, keepdims=True) - a_j / a_j.sum(-1, keepdims=True)).sum(-1) / 2
                total = total + distance * (1 - k / a_i.sum(-1)) * (1 - k / a_j.sum(-1))
    return float(np.mean(total) / (len(alphas) - 1))


def test_rcml_loss_matches_its_definition_and_uses_the_fused_alpha():
    rng = np.random.default_rng(0)
    fused, image, audio = (1 + rng.gamma(2.0, 2.0, size=(4, 5)) for _ in range(3))
    labels = np.array([0, 3, 1, 4])
    views = {"image": torch.tensor(image), "audio": torch.tensor(audio)}
    for epoch, weight in ((2, 0.2), (10, 1.0), (25, 1.0), (None, 1.0)):
        loss = rcml_loss(torch.tensor(fused), views, torch.tensor(labels), epoch, anneal_epochs=10, gamma=0.5)
        terms = [
            np.mean([reference_evidential(a[i], labels[i], weight) for i in range(4)]) for a in (fused, image, audio)
        ]
        expected = np.mean(terms) + 0.5 * reference_conflict([image, audio])
        assert loss.item() == pytest.approx(expected, rel=1e-9)

    # Only the fused term sees fused_alpha: changing it moves the loss by exactly a third of the change of its own
    # term, which a loss that computed that term on a view's alpha (the original's defect) would not do.
    other = fused * 3
    change = rcml_loss(torch.tensor(other), views, torch.tensor(labels), 10) - rcml_loss(
        torch.tensor(fused), views, torch.tensor(labels), 10
    )
    own = [reference_evidential(a[i], labels[i], 1.0) for a in (other, fused) for i in range(4)]
    assert change.item() == pytest.approx((np.mean(own[:4]) - np.mean(own[4:])) / 3, rel=1e-9)
    assert abs(change.item()) > 1e-3
    assert conflict_degree([torch.tensor(image)]).item() == 0.0


def test_rcml_loss_decreases_on_a_toy_problem():
    torch.manual_seed(0)
    labels = torch.randint(0, 4, (32,))
    logits = {m: torch.randn(32, 4, requires_grad=True) for m in ("image", "audio", "text")}
    optimizer = torch.optim.Adam(logits.values(), lr=0.1)
    losses = []
    for _ in range(30):
        alphas = {m: F.softplus(x) + 1 for m, x in logits.items()}
        fused = fuse_evidence([a - 1 for a in alphas.values()]) + 1
        loss = rcml_loss(fused, alphas, labels, epoch=5, anneal_epochs=10)
        assert torch.isfinite(loss)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


# --------------------------------------------------------------------------- training


def accuracy(model, data) -> float:
    model.eval()
    with torch.no_grad():
        logits, _ = model(data)
    return (logits.argmax(-1) == data["label"]).float().mean().item()


def test_train_learns_a_learnable_problem():
    train_data, test_data = synthetic(150, 6, seed=0, noise=2.0), synthetic(60, 6, seed=1, noise=2.0)
    torch.manual_seed(0)
    model = build_model("mcd", ("image", "text"), num_classes=6)
    before = accuracy(model, test_data)
    history = train(model, lambda m, b, e: sampling_softmax_nll(*m(b), b["label"]), train_data, quiet(epochs=3))
    assert len(history["train_loss"]) == len(history["val_loss"]) == 3
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert before < 0.4 and accuracy(model, test_data) > 0.8  # chance: 1/6


def nll(model, batch, epoch):
    return sampling_softmax_nll(*model(batch), batch["label"])


def test_train_restores_the_best_weights_not_the_last():
    # Random labels: the validation loss can only get worse once the network starts memorising, so early stopping
    # ends the run some epochs after the best one.
    data = synthetic(200, 10, seed=0, modalities=("text",))
    data["label"] = torch.randint(0, 10, (200,), generator=torch.Generator().manual_seed(3))
    torch.manual_seed(0)
    model = build_model("mcd", ("text",), num_classes=10)
    config = quiet(epochs=40, lr=1e-2, patience=3, val_fraction=0.25)
    history = train(model, nll, data, config)
    assert history["best_epoch"] < len(history["val_loss"])  # stopped early, after the best epoch
    assert history["best_val_loss"] == min(history["val_loss"])
    restored = evaluate_loss(model, nll, data, history["val_indices"], 64, "cpu", config.seed)
    assert restored == pytest.approx(history["best_val_loss"], rel=1e-6)
    assert restored != pytest.approx(history["val_loss"][-1], rel=1e-3)
    assert history["lr"][-1] < config.lr  # the plateau schedule reduced the learning rate on the way


def test_train_does_not_stop_before_min_epochs():
    # The same run as above, which stops early; with min_epochs it runs at least that long and still restores the best.
    data = synthetic(200, 10, seed=0, modalities=("text",))
    data["label"] = torch.randint(0, 10, (200,), generator=torch.Generator().manual_seed(3))

    def run(min_epochs):
        torch.manual_seed(0)
        model = build_model("mcd", ("text",), num_classes=10)
        return train(model, nll, data, quiet(epochs=40, lr=1e-2, patience=3, val_fraction=0.25, min_epochs=min_epochs))

    stopped = len(run(0)["val_loss"])
    held = run(stopped + 5)
    assert len(held["val_loss"]) == stopped + 5
    assert held["best_val_loss"] == min(held["val_loss"])


def test_train_is_seeded():
    data = synthetic(120, 4, seed=0, modalities=("text",))

    def run(seed):
        torch.manual_seed(0)
        model = build_model("mcd", ("text",), num_classes=4)
        history = train(model, nll, data, quiet(epochs=2, seed=seed))
        return history, model.state_dict()

    (first, weights), (second, again) = run(0), run(0)
    assert first["train_loss"] == second["train_loss"] and first["val_loss"] == second["val_loss"]
    assert torch.equal(first["val_indices"], second["val_indices"])
    assert all(torch.equal(weights[k], again[k]) for k in weights)
    assert run(1)[0]["train_loss"] != first["train_loss"]


# --------------------------------------------------------------------------- methods


@pytest.fixture(scope="module")
def tiny_multimodal():
    return synthetic(24, 3, seed=0, modalities=("image", "audio", "text")), synthetic(
        9, 3, seed=1, modalities=("image", "audio", "text")
    )


def test_mc_dropout_keeps_dropout_on_at_test_time(tiny_multimodal):
    train_data, test_data = tiny_multimodal
    method = make_method("mcd", train_config=quiet(epochs=1), num_classes=3, passes=3)
    assert isinstance(method, MCDropout)
    method.fit(train_data)
    prediction = method.predict(test_data)
    assert prediction.mu.shape == prediction.sigma.shape == (3, 9, 3)
    assert not np.allclose(prediction.mu[0], prediction.mu[1])  # every pass draws its own dropout masks
    np.testing.assert_array_equal(method.predict(test_data).mu, prediction.mu)  # seeded: repeatable
    assert not method.model.training and not any(m.training for m in method.model.modules())
    np.testing.assert_array_equal(prediction.labels, test_data["label"].numpy())
    assert prediction.probs().shape == (9, 3)


def test_deep_ensemble_and_rcml_predict_deterministically(tiny_multimodal):
    train_data, test_data = tiny_multimodal
    ensemble = make_method("de", ("image", "text"), quiet(epochs=1), num_classes=3, members=2)
    assert isinstance(ensemble, DeepEnsemble)
    ensemble.fit(train_data)
    first, second = ensemble.predict(test_data), ensemble.predict(test_data)
    assert first.mu.shape == first.sigma.shape == (2, 9, 3)
    np.testing.assert_array_equal(first.mu, second.mu)
    np.testing.assert_array_equal(first.sigma, second.sigma)
    assert not np.allclose(first.mu[0], first.mu[1])  # the members differ

    rcml = make_method("rcml", train_config=quiet(epochs=2), num_classes=3)
    history = rcml.fit(train_data)
    assert all(math.isfinite(v) for v in history["val_loss"])
    first, second = rcml.predict(test_data), rcml.predict(test_data)
    assert first.alpha.shape == (9, 3) and first.mu is None
    assert set(first.alphas) == {"image", "audio", "text"}
    np.testing.assert_array_equal(first.alpha, second.alpha)
    evidence = [first.alphas[m] - 1 for m in ("image", "audio", "text")]
    np.testing.assert_allclose(first.alpha - 1, evidence[0] / 4 + evidence[1] / 4 + evidence[2] / 2, rtol=1e-5)
    np.testing.assert_allclose(first.probs().sum(-1), 1.0, rtol=1e-6)


# --------------------------------------------------------------------------- data


def spoken(word: str) -> tuple[np.ndarray, int]:
    wav = subprocess.run(["espeak-ng", "--stdout", word], capture_output=True, check=True).stdout
    samples, rate = soundfile.read(io.BytesIO(wav), dtype="float32")
    return samples, rate


def test_log_mel_of_a_spoken_word():
    samples, rate = spoken("elephant")
    at_16k = resample_poly(samples, 320, 441).astype(np.float32) if rate == 22050 else samples
    mel = log_mel_128(at_16k)
    assert mel.shape == (128, 128) and mel.dtype == np.float32 and np.isfinite(mel).all()
    np.testing.assert_array_equal(mel, log_mel_128(at_16k))  # deterministic
    np.testing.assert_allclose(log_mel_128(samples, rate), mel, atol=1e-3)  # resampled internally alike
    voiced = mel.max(axis=0) > -60
    assert 0.2 < voiced.mean() < 0.95  # the word, then the padding's silence
    assert mel.min() == -100.0
    assert not np.array_equal(mel, log_mel_128(resample_poly(spoken("tiger")[0], 320, 441)))


@pytest.fixture(scope="module")
def embedder(tmp_path_factory):
    return TextEmbedder(cache_dir=str(tmp_path_factory.mktemp("text_cache")), mask_class_words=False)


def test_text_embedder_masks_every_class_word_by_default(embedder):
    masking = TextEmbedder(cache_dir=str(embedder.cache_file.parent.parent))
    np.testing.assert_array_equal(masking(["A dog chased two cats."]), embedder(["A [MASK] chased two [MASK]."]))
    np.testing.assert_array_equal(masking(["a dog"]), masking(["a lion"]))  # whatever the class, or its label


def test_text_embedder_mean_pools_and_caches(embedder):
    import transformers

    texts = ["A dog barks at the mailman.", "The tiger sleeps.", "A long sentence about a rocket " * 3]
    vectors = embedder(texts)
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    # reference: the model on each text alone (no padding), its last hidden state averaged over every token
    tokenizer = transformers.AutoTokenizer.from_pretrained(embedder.model)
    model = transformers.AutoModel.from_pretrained(embedder.model).eval()
    for text, vector in zip(texts, vectors, strict=True):
        with torch.no_grad():
            hidden = model(**tokenizer(text, return_tensors="pt")).last_hidden_state[0]
        np.testing.assert_allclose(vector, hidden.mean(0).numpy(), atol=1e-5)
    assert not np.allclose(embedder(["a dog"]), embedder(["a cat"]))  # class words are read, not masked

    calls = embedder.model_calls
    np.testing.assert_array_equal(embedder(texts[::-1]), vectors[::-1])
    assert embedder.model_calls == calls  # all cached
    fresh = TextEmbedder(cache_dir=str(embedder.cache_file.parent.parent), mask_class_words=False)
    np.testing.assert_array_equal(fresh(texts), vectors)
    assert fresh.model_calls == 0 and fresh._extractor is None  # read from the cache file, model never loaded
    assert embedder.cache_file.exists()


def test_text_embeddings_are_cached_under_luma_home():
    assert TextEmbedder().cache_file.is_relative_to(luma_home() / "text_embeddings")


@pytest.fixture(scope="module")
def luma_build(tmp_path_factory):
    source = write_mini_source(
        tmp_path_factory.mktemp("mini_baselines"),
        train_per_class=2,
        test_per_class=1,
        ood_per_class=2,
        spare_per_class=0,
    )
    builder = Luma("clean", data_dir=str(source), cache_dir=str(tmp_path_factory.mktemp("cache")))
    builder.download_and_prepare()
    return builder


def test_encode_records_of_a_real_build(luma_build, embedder):
    dataset = luma_build.as_dataset("test")
    encoded = encode_records(dataset, embedder)
    n = len(dataset)
    assert n == NUM_ID_CLASSES
    assert encoded["image"].shape == (n, 3, 32, 32) and encoded["audio"].shape == (n, 1, 128, 128)
    assert encoded["text"].shape == (n, 384) and encoded["label"].dtype == torch.long
    np.testing.assert_array_equal(encoded["label"].numpy(), dataset["label"])
    for flag in ("is_ood", "label_switched", "image_noise", "audio_noise", "text_noise", "conflict"):
        assert encoded[flag].dtype == torch.bool and not encoded[flag].any()

    pixels = encoded["image"] * torch.tensor(IMAGE_STD).view(3, 1, 1) + torch.tensor(IMAGE_MEAN).view(3, 1, 1)
    np.testing.assert_allclose(pixels[0].permute(1, 2, 0).numpy() * 255, np.asarray(dataset[0]["image"]), atol=1e-3)
    np.testing.assert_array_equal(encoded["text"].numpy(), embedder(dataset["text"]))

    # the same rows undecoded ({"bytes": ...}) and as arrays encode to the same tensors
    raw = dataset.cast_column("image", datasets.Image(decode=False)).cast_column("audio", datasets.Audio(decode=False))
    rows = raw.select(range(3)).to_list()
    again = encode_records(rows, embedder)
    for key in ("image", "audio", "text", "label"):
        torch.testing.assert_close(again[key], encoded[key][:3])
    for row in rows:
        samples, rate = soundfile.read(io.BytesIO(row["audio"]["bytes"]), dtype="float32")
        row["audio"] = {"array": samples, "sampling_rate": rate}
    torch.testing.assert_close(encode_records(rows, embedder)["audio"], encoded["audio"][:3])

    ood = encode_records(luma_build.as_dataset("ood"), embedder)
    assert ood["is_ood"].all() and (ood["label"] >= NUM_ID_CLASSES).all()


def test_collator_on_streamed_rows(luma_build, embedder):
    rows = list(islice(luma_build.as_streaming_dataset("test"), 4))
    batch = LumaCollator(embedder)(rows)
    assert "label" not in batch and batch["labels"].tolist() == [row["label"] for row in rows]
    reference = encode_records(luma_build.as_dataset("test").select(range(4)), embedder)
    for key in ("image", "audio", "text"):
        torch.testing.assert_close(batch[key], reference[key])


def float64_log_mel(clip: np.ndarray) -> np.ndarray:
    """The log-mel of `log_mels`, written plainly for one clip in float64: its reference."""
    window = np.hanning(1024)
    padded = np.pad(np.asarray(clip, np.float64)[:16000], (512, 512 + max(0, 16000 - len(clip))))
    frames = np.lib.stride_tricks.sliding_window_view(padded, 1024)[::125][:128]
    power = (np.abs(np.fft.rfft(frames * window, axis=1)) * (2.0 / window.sum())) ** 2
    return np.maximum(10.0 * np.log10(np.maximum(power @ mel_filterbank(128, 1024), 1e-30)), -100.0).T


def test_batched_float32_log_mels_match_a_float64_reference(luma_build):
    audio = luma_build.as_dataset("train").cast_column("audio", datasets.Audio(decode=False))["audio"]
    clips = [decode_wav(item["bytes"], item["path"] or "clip") for item in audio]
    word = clip_at_16k(*spoken("elephant"))
    clips += [word, np.zeros(100, np.float32), np.tile(word, 3)]  # the last one cut to its first second
    mels = log_mels(clips)
    assert mels.shape == (len(clips), 128, 128) and mels.dtype == np.float32
    reference = np.stack([float64_log_mel(clip) for clip in clips])
    assert np.abs(mels - reference).max() < 2e-3  # dB (inputs are scaled by 1 / 25 dB): float32 is enough
    assert ((mels == -100.0) == (reference == -100.0)).mean() > 0.999
    for i in (0, len(clips) - 3):  # a clip's spectrogram does not depend on the clips beside it
        np.testing.assert_allclose(log_mels(clips[i : i + 1])[0], mels[i], atol=1e-4)


def test_add_log_mels_precomputes_what_the_collator_would(luma_build, embedder):
    split = luma_build.as_dataset("train")  # 84 records: encode_records transforms its clips 64 at a time
    with_mels = add_log_mels(split)
    assert "audio" not in with_mels.column_names and LOG_MEL in with_mels.column_names
    row = with_mels[0]
    assert isinstance(row[LOG_MEL], np.ndarray) and row[LOG_MEL].shape == (128, 128)
    assert row[LOG_MEL].dtype == np.float32 and row["text"] == split[0]["text"]
    assert add_log_mels(split).cache_files == with_mels.cache_files  # computed once, then read back

    reference = encode_records(split, embedder)
    for key, tensor in encode_records(with_mels, embedder).items():
        torch.testing.assert_close(tensor, reference[key], atol=1e-4, rtol=0)
    # as the README feeds it: DataLoader workers (forked, one thread each) collating the mapped split
    loader = DataLoader(with_mels, batch_size=16, collate_fn=LumaCollator(embedder), num_workers=2)
    batches = list(loader)
    assert [len(batch["labels"]) for batch in batches] == [16] * 5 + [4]
    for key in ("image", "audio", "text"):
        torch.testing.assert_close(torch.cat([b[key] for b in batches]), reference[key], atol=1e-4, rtol=0)
