"""MC Dropout as a transformers model: the Trainer on a streamed LUMA split with compute_metrics on the evaluate
modules, save/load/push_to_hub round trips (only the Hub's upload API is faked), a plain PyTorch DataLoader loop, and
streams split across ranks."""

import json
import math
import shutil
from itertools import islice
from pathlib import Path
from types import SimpleNamespace

import datasets
import huggingface_hub
import numpy as np
import pytest
import torch
from datasets.distributed import split_dataset_by_node
from test_builder import build
from torch.utils.data import DataLoader
from transformers import AutoModel, EvalPrediction, Trainer, TrainingArguments

from baselines import metrics
from baselines.data import LumaCollator, TextEmbedder, encode_records
from baselines.methods import predictive
from baselines.trainer import (
    MODEL_TYPE,
    PREDICTION_FIELDS,
    LumaMCDropoutConfig,
    LumaMCDropoutModel,
    compute_metrics,
    in_distribution_names,
)
from luma import Luma
from luma_builders.classes import CLASS_NAMES, NUM_ID_CLASSES
from luma_builders.rng import generator


@pytest.fixture(scope="module")
def embedder(tmp_path_factory):
    return TextEmbedder(cache_dir=str(tmp_path_factory.mktemp("embeddings")))


@pytest.fixture(scope="module")
def clean(mini_source, tmp_path_factory):
    return build(mini_source, tmp_path_factory.mktemp("cache"))


def test_the_outputs_are_the_in_distribution_classes_of_the_label_classlabel(clean):
    label = clean.info.features["label"]
    config = LumaMCDropoutConfig.from_features(clean.info.features)
    assert len(label.names) == len(CLASS_NAMES) and config.num_labels == NUM_ID_CLASSES
    assert [config.id2label[k] for k in range(config.num_labels)] == label.names[:NUM_ID_CLASSES]
    assert config.label2id == {name: k for k, name in enumerate(label.names[:NUM_ID_CLASSES])}
    assert {net.logits.out_features for net in LumaMCDropoutModel(config).net.nets.values()} == {NUM_ID_CLASSES}
    with pytest.raises(ValueError, match="in-distribution classes before the OOD ones"):
        in_distribution_names(datasets.ClassLabel(names=["bee", *CLASS_NAMES[:NUM_ID_CLASSES]]))


def test_trainer_trains_on_a_stream_and_evaluates_with_the_evaluate_modules(mini_source, clean, embedder, tmp_path):
    stream = Luma("clean", data_dir=str(mini_source)).as_streaming_dataset
    eval_dataset = datasets.concatenate_datasets([clean.as_dataset("test"), clean.as_dataset("ood")])
    torch.manual_seed(0)
    model = LumaMCDropoutModel(LumaMCDropoutConfig.from_features(clean.info.features, mc_passes=5))
    before = [p.detach().clone() for p in model.parameters()]
    args = TrainingArguments(
        str(tmp_path / "out"),
        max_steps=4,
        per_device_train_batch_size=16,
        per_device_eval_batch_size=32,
        learning_rate=1e-3,
        remove_unused_columns=False,
        label_names=["labels", "is_ood"],
        report_to=[],
        save_strategy="no",
        logging_steps=1,
        use_cpu=True,
        seed=0,
    )
    collator = LumaCollator(embedder)
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=stream("train"),
        eval_dataset=eval_dataset,
        data_collator=collator,
        compute_metrics=compute_metrics,
    )
    result = trainer.train()
    assert result.global_step == 4 and math.isfinite(result.training_loss)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    scores = trainer.evaluate()

    # Trainer.predict gives the probabilities and uncertainties; the evaluate modules scored the same numbers.
    output = trainer.predict(eval_dataset)
    probs, aleatoric, epistemic, total = output.predictions
    labels, is_ood = output.label_ids
    assert probs.shape == (len(eval_dataset), NUM_ID_CLASSES) and is_ood.any() and not is_ood.all()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(total, aleatoric + epistemic, atol=1e-5)
    known = ~is_ood
    expected = {
        "accuracy": metrics.accuracy(probs[known], labels[known]),
        "nll": metrics.nll(probs[known], labels[known]),
        "brier": metrics.brier(probs[known], labels[known]),
        "ece": metrics.ece(probs[known], labels[known]),
        "aurc": metrics.aurc(probs[known], labels[known]),
        "aurc_epistemic": metrics.aurc(probs[known], labels[known], epistemic[known]),
        "ood_auroc_epistemic": metrics.auroc(epistemic, is_ood),
        "ood_auroc_total": metrics.auroc(total, is_ood),
    }
    for name, value in expected.items():
        assert scores[f"eval_{name}"] == pytest.approx(value, abs=1e-6), name
    assert math.isfinite(scores["eval_loss"])

    # What the Trainer fitted is MC Dropout's own network and loss; eval mode predicts as the benchmark does.
    rows = list(islice(stream("test"), 8))
    batch = collator(rows)
    model.eval()
    torch.manual_seed(1)
    loss = model(**batch).loss
    torch.manual_seed(1)
    assert torch.equal(loss, model.method.loss(model.net, {**batch, "label": batch["labels"]}, None))
    # OOD records have no target among the outputs: the loss leaves them out, NaN when nothing is left
    ood_rows = list(islice(stream("ood"), 4))
    assert torch.isnan(model(**collator(ood_rows)).loss)
    torch.manual_seed(1)
    assert torch.equal(model(**collator(rows + ood_rows)).loss, loss)
    prediction = model.method.predict(encode_records(rows, embedder))
    assert prediction.mu.shape == (model.config.mc_passes, 8, NUM_ID_CLASSES)
    assert not np.array_equal(prediction.mu[0], prediction.mu[1])  # dropout on: the passes differ
    benchmark_probs, _ = predictive(prediction, generator(model.config.seed, MODEL_TYPE, "softmax samples"))
    np.testing.assert_allclose(model(**batch).probabilities.numpy(), benchmark_probs, rtol=1e-5, atol=1e-7)


def test_compute_metrics_names_an_ood_label_it_was_not_told_about():
    probs = np.full((3, NUM_ID_CLASSES), 1.0 / NUM_ID_CLASSES, dtype=np.float32)
    uncertainties = (np.ones(3, dtype=np.float32),) * 3
    prediction = EvalPrediction(predictions=(probs, *uncertainties), label_ids=np.array([0, 45, 1]))
    with pytest.raises(ValueError, match=r"record 1: label 45 is not one of the model's 42 classes.*is_ood"):
        compute_metrics(prediction)
    scores = compute_metrics(EvalPrediction((probs, *uncertainties), (np.array([0, 45, 1]), np.array([0, 1, 0]))))
    assert scores["ood_auroc_total"] == 0.5 and scores["nll"] == pytest.approx(math.log(NUM_ID_CLASSES))


def _predict(model, batch) -> dict[str, torch.Tensor]:
    model.eval()
    output = model(**batch)
    return {name: output[name] for name in PREDICTION_FIELDS}


def _assert_same_model(loaded, model, batch) -> None:
    assert type(loaded) is LumaMCDropoutModel
    assert (loaded.config.modalities, loaded.config.mc_passes) == (model.config.modalities, model.config.mc_passes)
    assert loaded.config.id2label == model.config.id2label
    expected, state = _predict(model, batch), loaded.state_dict()
    assert all(torch.equal(state[name], value) for name, value in model.state_dict().items())
    got = _predict(loaded, batch)
    assert all(torch.equal(got[name], expected[name]) for name in PREDICTION_FIELDS)


def _fake_upload_api(monkeypatch, folder: Path) -> list[dict]:
    """The Hub's upload API, replaced: create_repo answers, create_commit copies the committed files to `folder`."""
    commits = []

    def create_repo(self, repo_id, **kwargs):
        return SimpleNamespace(repo_id=repo_id)

    def create_commit(self, repo_id, operations, **kwargs):
        for operation in operations:
            target = folder / operation.path_in_repo
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(operation.path_or_fileobj, target)
        commits.append({"repo_id": repo_id, "files": sorted(op.path_in_repo for op in operations), **kwargs})

    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", create_repo)
    monkeypatch.setattr(huggingface_hub.HfApi, "create_commit", create_commit)
    # push_to_hub first looks for the repo's model card; offline it finds none and writes a new one
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    return commits


def test_save_pretrained_from_pretrained_and_push_to_hub_round_trip(clean, embedder, tmp_path, monkeypatch):
    torch.manual_seed(0)
    config = LumaMCDropoutConfig.from_features(clean.info.features, modalities=["image", "text"], mc_passes=5)
    model = LumaMCDropoutModel(config)
    batch = LumaCollator(embedder)(clean.as_dataset("test").select(range(8)).to_list())

    model.save_pretrained(tmp_path / "saved")
    _assert_same_model(AutoModel.from_pretrained(tmp_path / "saved"), model, batch)

    commits = _fake_upload_api(monkeypatch, tmp_path / "pushed")
    model.push_to_hub("someone/luma-mcd", commit_message="MC Dropout on LUMA")
    assert [(c["repo_id"], c["files"], c["commit_message"]) for c in commits] == [
        ("someone/luma-mcd", ["README.md", "config.json", "model.safetensors"], "MC Dropout on LUMA")
    ]
    pushed = json.loads((tmp_path / "pushed" / "config.json").read_text())
    assert (pushed["model_type"], pushed["architectures"]) == (MODEL_TYPE, ["LumaMCDropoutModel"])
    assert (pushed["modalities"], pushed["mc_passes"], len(pushed["id2label"])) == (["image", "text"], 5, 42)
    _assert_same_model(LumaMCDropoutModel.from_pretrained(tmp_path / "pushed"), model, batch)


def test_a_plain_pytorch_loop_trains_and_predicts(clean, embedder):
    train, test = clean.as_dataset("train"), clean.as_dataset("test")
    collator = LumaCollator(embedder)
    loader = DataLoader(
        train,
        batch_size=16,
        shuffle=True,
        collate_fn=collator,
        num_workers=2,
        generator=torch.Generator().manual_seed(0),
    )
    torch.manual_seed(0)
    model = LumaMCDropoutModel(LumaMCDropoutConfig.from_features(train.features, mc_passes=5))
    before = [p.detach().clone() for p in model.parameters()]
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    for batch in islice(loader, 3):
        loss = model(**batch).loss
        assert loss.shape == () and torch.isfinite(loss)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))

    model.eval()
    with torch.no_grad():
        outputs = [model(**batch) for batch in DataLoader(test, batch_size=32, collate_fn=collator)]
    probs = torch.cat([output.probabilities for output in outputs])
    assert probs.shape == (len(test), NUM_ID_CLASSES) and (probs >= 0).all()
    torch.testing.assert_close(probs.sum(dim=1), torch.ones(len(test)))
    for name in ("aleatoric", "epistemic", "total"):
        values = torch.cat([output[name] for output in outputs])
        assert values.shape == (len(test),) and torch.isfinite(values).all() and (values >= 0).all()


def test_split_dataset_by_node_gives_disjoint_complete_shards(mini_source):
    stream = Luma("clean", data_dir=str(mini_source)).as_streaming_dataset("train").select_columns(["audio_id"])
    everything = [row["audio_id"] for row in stream]
    parts = [[row["audio_id"] for row in split_dataset_by_node(stream, rank=r, world_size=2)] for r in (0, 1)]
    assert not set(parts[0]) & set(parts[1])
    assert sorted(parts[0] + parts[1]) == sorted(everything)
    assert all(parts)
