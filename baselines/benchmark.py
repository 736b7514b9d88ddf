"""`luma benchmark`: train MC Dropout, Deep Ensemble and RCML (on request also EDL and TMC) on LUMA variants,
evaluate, and write a report in the form of the paper's Tables 1-2, with calibration, OOD and injected-noise
detection metrics and PNG plots.

The paper trained 10-member ensembles on the full data with a GPU; the defaults here are sized for a CPU and the
mini source (`ensemble_size` 3, `epochs` 10, batches of 128). Pass the paper's sizes for a faithful run.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from baselines import metrics
from baselines.data import FLAGS, MODALITIES, TextEmbedder, encode_records, text_embedding_dir
from baselines.methods import METHODS, Prediction, make_method
from baselines.train import TrainConfig
from baselines.uncertainty import dirichlet_uncertainty, entropy_decomposition, sampled_softmax
from luma import Luma

DEFAULT_VARIANTS = ("clean", "low_diversity", "label_noise_0.3", "sample_noise")
DEFAULT_METHODS = ("mcd", "de", "rcml")
METHOD_CHOICES = tuple(METHODS)  # --methods may also name edl and tmc
DEFAULT_MODALITIES = ("image", "audio", "text", "multimodal")
SOFTMAX_SAMPLES = 20  # draws of the sigma head per pass/member when turning (mu, sigma) into probabilities


@dataclass
class BenchmarkConfig:
    out: Path
    data_dir: str | None = None
    variants: tuple[str, ...] = DEFAULT_VARIANTS
    methods: tuple[str, ...] = DEFAULT_METHODS
    modalities: tuple[str, ...] = DEFAULT_MODALITIES
    epochs: int = 10
    batch_size: int = 128  # larger batches: fewer, cheaper steps on a CPU
    lr: float = 2e-3
    ensemble_size: int = 3
    mc_passes: int = 20
    seed: int = 0
    cache_dir: str | None = None
    progress: bool = False


@dataclass
class Run:
    """One trained method on one variant and modality set, evaluated."""

    variant: str
    method: str
    modality: str
    metrics: dict[str, float] = field(default_factory=dict)
    uncertainty: dict[str, dict[str, list[float]]] = field(default_factory=dict)  # split -> measure -> values
    reliability: dict[str, list[float]] = field(default_factory=dict)
    ood_scores: dict[str, list[float]] = field(default_factory=dict)  # epistemic on test (ID) and ood


def predictive(prediction: Prediction, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(N, K) predictive probabilities and the uncertainty measures of one prediction."""
    if prediction.alpha is not None:
        return prediction.probs(), dirichlet_uncertainty(prediction.alpha)
    member_probs = sampled_softmax(prediction.mu, prediction.sigma, SOFTMAX_SAMPLES, rng)
    return member_probs.mean(axis=0), entropy_decomposition(member_probs)


def evaluate_run(run: Run, test: Prediction, ood: Prediction, clean_test: dict | None, seed: int) -> Run:
    """Fill `run` from its test and OOD predictions. `clean_test` (flags all false) supplies negatives for flags that
    every test record of the variant carries (sample noise at ratio 1), so detection stays measurable."""
    probs, measures = predictive(test, np.random.default_rng([seed, 1]))
    _, ood_measures = predictive(ood, np.random.default_rng([seed, 2]))
    labels = test.labels
    run.metrics = {
        "accuracy": metrics.accuracy(probs, labels),
        "nll": metrics.nll(np.clip(probs, 1e-12, 1), labels),
        "brier": metrics.brier(probs, labels),
        "ece": metrics.ece(probs, labels),
        "aurc": metrics.aurc(probs, labels),
        **{f"mean_{name}": float(values.mean()) for name, values in measures.items()},
    }
    is_ood = np.r_[np.zeros(len(labels), bool), np.ones(len(ood.labels), bool)]
    epistemic = np.r_[measures["epistemic"], ood_measures["epistemic"]]
    run.metrics.update(
        ood_auroc=metrics.auroc(epistemic, is_ood),
        ood_aupr=metrics.aupr(epistemic, is_ood),
        ood_fpr95=metrics.fpr95(epistemic, is_ood),
    )
    flags = {name: test.flags[name] for name in FLAGS if name in test.flags and test.flags[name].any()}
    for flag, values in flags.items():
        scores = {name: measures[name] for name in ("aleatoric", "epistemic", "total") if name in measures}
        positives = values
        if values.all() and clean_test is not None:
            scores = {name: np.r_[s, clean_test[name]] for name, s in scores.items()}
            positives = np.r_[values, np.zeros(len(clean_test["epistemic"]), bool)]
        for (uncertainty, _), auroc in metrics.detection_aurocs(scores, {flag: positives}).items():
            run.metrics[f"detect_{flag}_{uncertainty}"] = auroc
    run.uncertainty = {
        "test": {k: v.tolist() for k, v in measures.items()},
        "ood": {k: v.tolist() for k, v in ood_measures.items()},
    }
    bins = metrics.reliability_bins(probs, labels)
    run.reliability = {k: np.asarray(v, dtype=float).tolist() for k, v in bins.items()}
    run.ood_scores = {"id": measures["epistemic"].tolist(), "ood": ood_measures["epistemic"].tolist()}
    return run


def run_benchmark(config: BenchmarkConfig) -> Path:
    """Train and evaluate every (variant, method, modality); write results.json, report.md and plots into `out`."""
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    embedder = TextEmbedder(cache_dir=config.cache_dir and text_embedding_dir(config.cache_dir))
    train_config = TrainConfig(
        epochs=config.epochs, batch_size=config.batch_size, lr=config.lr, seed=config.seed, progress=config.progress
    )
    runs: list[Run] = []
    clean_measures: dict[tuple[str, str], dict] = {}
    for variant in config.variants:
        builder = Luma(variant, data_dir=config.data_dir, cache_dir=config.cache_dir, seed=config.seed)
        builder.download_and_prepare()
        data = {split: encode_records(builder.as_dataset(split), embedder) for split in ("train", "test", "ood")}
        for method in config.methods:
            predictions = _predictions(method, config, train_config, data)
            for modality in config.modalities:
                run = evaluate_run(
                    Run(variant, method, modality),
                    *predictions[modality],
                    clean_measures.get((method, modality)),
                    config.seed,
                )
                if variant == "clean":
                    clean_measures[method, modality] = {k: np.asarray(v) for k, v in run.uncertainty["test"].items()}
                runs.append(run)
                print(f"{variant:<16} {method:<5} {modality:<11} accuracy {run.metrics['accuracy']:.3f}", flush=True)
    (out / "results.json").write_text(json.dumps({"config": _jsonable(config), "runs": [asdict(r) for r in runs]}))
    from baselines.report import write_report  # matplotlib is only needed here

    return write_report(runs, config, out)


def _predictions(method: str, config: BenchmarkConfig, train_config: TrainConfig, data: dict) -> dict:
    """(test, ood) predictions per requested modality set. As in the paper, the MCD and DE multimodal model is the
    late fusion of the unimodal classifiers (their logits and sigmas averaged, pass by pass or member by member);
    RCML's, TMC's and EDL's multimodal models are trained jointly, their losses being defined over the views
    together."""
    fused_from_unimodal = "multimodal" in config.modalities and method in ("mcd", "de")
    unimodal = [m for m in MODALITIES if m in config.modalities or fused_from_unimodal]
    sizes = {"mcd": {"passes": config.mc_passes}, "de": {"members": config.ensemble_size}}.get(method, {})
    predictions = {}
    for modalities in [(m,) for m in unimodal] + ([MODALITIES] if "multimodal" in config.modalities else []):
        name = modalities[0] if len(modalities) == 1 else "multimodal"
        if name == "multimodal" and fused_from_unimodal:
            predictions[name] = tuple(_late_fusion([predictions[m][i] for m in MODALITIES]) for i in (0, 1))
            continue
        model = make_method(method, modalities, train_config, **sizes)
        model.fit(data["train"])
        predictions[name] = (model.predict(data["test"]), model.predict(data["ood"]))
    return predictions


def _late_fusion(predictions: list[Prediction]) -> Prediction:
    return replace(
        predictions[0],
        mu=np.mean([p.mu for p in predictions], axis=0),
        sigma=np.mean([p.sigma for p in predictions], axis=0),
    )


def _jsonable(config: BenchmarkConfig) -> dict:
    return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()}
