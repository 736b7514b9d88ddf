"""transformers.Trainer on a streamed LUMA split, and streams split across ranks."""

import math
from itertools import islice

import numpy as np
import pytest
import torch
from datasets.distributed import split_dataset_by_node
from transformers import Trainer, TrainingArguments

from baselines.data import LumaCollator, TextEmbedder, encode_records
from baselines.trainer import LumaTrainerModel
from luma import Luma
from luma_builders.classes import NUM_ID_CLASSES


@pytest.fixture(scope="module")
def embedder(tmp_path_factory):
    return TextEmbedder(cache_dir=str(tmp_path_factory.mktemp("embeddings")))


def test_trainer_trains_and_evaluates_on_a_stream(mini_source, embedder, tmp_path):
    stream = Luma("clean", data_dir=str(mini_source)).as_streaming_dataset
    torch.manual_seed(0)
    model = LumaTrainerModel()
    before = [p.detach().clone() for p in model.parameters()]
    args = TrainingArguments(
        str(tmp_path / "out"),
        max_steps=4,
        per_device_train_batch_size=16,
        per_device_eval_batch_size=32,
        learning_rate=1e-3,
        remove_unused_columns=False,
        report_to=[],
        save_strategy="no",
        logging_steps=1,
        use_cpu=True,
        seed=0,
    )
    trainer = Trainer(model=model, args=args, train_dataset=stream("train"), data_collator=LumaCollator(embedder))
    result = trainer.train()
    assert result.global_step == 4 and math.isfinite(result.training_loss)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    metrics = trainer.evaluate(eval_dataset=stream("test"))
    assert math.isfinite(metrics["eval_loss"])

    # What the Trainer fitted is MC Dropout's own network and loss, so the benchmark's predict runs on it.
    rows = list(islice(stream("test"), 8))
    batch = LumaCollator(embedder)(rows)
    model.eval()
    torch.manual_seed(1)
    loss = model(**batch)["loss"]
    torch.manual_seed(1)
    assert torch.equal(loss, model.method.loss(model.net, {**batch, "label": batch["labels"]}, None))
    prediction = model.method.predict(encode_records(rows, embedder))
    assert prediction.mu.shape == (model.method.passes, 8, NUM_ID_CLASSES) and np.isfinite(prediction.mu).all()
    assert not np.array_equal(prediction.mu[0], prediction.mu[1])  # dropout on: the passes differ


def test_split_dataset_by_node_gives_disjoint_complete_shards(mini_source):
    stream = Luma("clean", data_dir=str(mini_source)).as_streaming_dataset("train").select_columns(["audio_id"])
    everything = [row["audio_id"] for row in stream]
    parts = [[row["audio_id"] for row in split_dataset_by_node(stream, rank=r, world_size=2)] for r in (0, 1)]
    assert not set(parts[0]) & set(parts[1])
    assert sorted(parts[0] + parts[1]) == sorted(everything)
    assert all(parts)
