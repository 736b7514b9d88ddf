"""How hard is the mini source? A linear probe per modality on the baselines' encodings of `clean`.

Writes a fresh mini source (default sizes: `luma_builders.cli.MINI_DEFAULTS`), builds `clean` from it, encodes
train, test and ood with `baselines.data.encode_records` (text: the offline MiniLM `TextEmbedder`), fits a
scikit-learn LogisticRegression per modality on train and prints its test accuracy and the AUROC of its max-softmax
probability at telling test (ID) from ood records, plus the fraction of texts that name their class. The last row
probes the texts with every class word masked, as the baselines see them (`TextEmbedder`'s default).

    python -m bench.mini_difficulty [--seed 0]   (from the repository root)
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from pathlib import Path

import datasets
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from baselines.data import MODALITIES, TextEmbedder, encode_records
from luma import Luma
from luma_builders.cli import MINI_DEFAULTS
from luma_builders.mini.source import write_mini_source
from luma_builders.sources.readers import METADATA_FILES

SPLITS = ("train", "test", "ood")
MASKED = "text, class words masked"


def encoded_clean(workdir: Path, seed: int) -> dict[str, dict[str, np.ndarray]]:
    """Split -> {modality or MASKED: (N, features), "label": (N,)} for `clean` built from a fresh mini source."""
    start = time.perf_counter()
    source = write_mini_source(workdir / "source", **{**MINI_DEFAULTS, "seed": seed})
    print(f"wrote the mini source in {time.perf_counter() - start:.1f} s; {text_naming_fraction(source):.2f} of its "
          "texts name their class")  # fmt: skip
    builder = Luma("clean", data_dir=str(source), cache_dir=str(workdir / "cache"))
    builder.download_and_prepare()
    embedder = TextEmbedder(cache_dir=workdir / "text_embeddings", mask_class_words=False)
    masking = TextEmbedder(cache_dir=workdir / "text_embeddings")  # every class word masked, as the baselines see it
    data = {}
    for split in SPLITS:
        records = builder.as_dataset(split)
        tensors = encode_records(records, embedder)
        data[split] = {m: tensors[m].flatten(1).numpy() for m in MODALITIES} | {"label": tensors["label"].numpy()}
        data[split][MASKED] = masking(records["text"])
    return data


def text_naming_fraction(source: Path) -> float:
    """Fraction of the rows of text_data.tsv whose text contains their class word (a whole word, any case)."""
    table = pd.read_csv(source / METADATA_FILES["texts"], sep="\t", keep_default_na=False)
    pairs = zip(table["text"], table["label"], strict=True)
    return float(np.mean([re.search(rf"\b{re.escape(w)}\b", t, re.IGNORECASE) is not None for t, w in pairs]))


def probe(data: dict[str, dict[str, np.ndarray]], modality: str, seed: int) -> tuple[float, float]:
    """(test accuracy, max-softmax OOD AUROC of test vs ood) of a linear probe trained on train."""
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=seed))
    model.fit(data["train"][modality], data["train"]["label"])
    test, ood = (model.predict_proba(data[split][modality]) for split in ("test", "ood"))
    accuracy = float(np.mean(model.classes_[test.argmax(1)] == data["test"]["label"]))
    confidence = np.concatenate([test.max(1), ood.max(1)])
    is_ood = np.concatenate([np.zeros(len(test)), np.ones(len(ood))])
    return accuracy, float(roc_auc_score(is_ood, -confidence))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=MINI_DEFAULTS["seed"], help="the mini source's seed")
    args = parser.parse_args()
    datasets.disable_progress_bars()  # a table, not progress bars
    with tempfile.TemporaryDirectory(prefix="mini-difficulty-") as workdir:
        data = encoded_clean(Path(workdir), args.seed)
    sizes = ", ".join(f"{split} {len(data[split]['label'])}" for split in SPLITS)
    print(f"records: {sizes}\n{'modality':<{len(MASKED)}} {'accuracy':>9} {'OOD AUROC':>10}")
    for modality in (*MODALITIES, MASKED):
        accuracy, auroc = probe(data, modality, args.seed)
        print(f"{modality:<{len(MASKED)}} {accuracy:>9.3f} {auroc:>10.3f}")


if __name__ == "__main__":
    main()
