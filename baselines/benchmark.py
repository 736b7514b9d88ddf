"""`luma benchmark`: train the uncertainty baselines on LUMA variants over several training and data seeds, evaluate
each run on its own variant, and write a report with intervals (`baselines.report`).

A run is a `Job`: one method on one modality set of one variant (one data seed, optional parameter overrides),
trained with one seed. Every run is evaluated by `baselines.evaluation.evaluate_predictions`, the evaluator of
`luma evaluate`, on its own test and OOD records: noise detection compares the flagged and unflagged records of that
variant within that run's predictions, so detection needs variants with injection ratios below 1 (`sample_noise_0.5`).

Protocol: every network trains to convergence within an epoch budget (early stopping on a validation split, best
weights restored; the evidential losses anneal their KL term over the whole budget, see ANNEAL_SHARE);
MC Dropout and Deep Ensemble "multimodal" are the multimodal network trained end to end, and `mcd_posthoc` /
`de_posthoc` average separately trained unimodal models instead; ensemble members share one training set; texts have
their class words masked (switchable). Temperature scaling and split conformal prediction are fitted on the
validation split; energy and max-logit OOD scores come from every method's logits.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from baselines import conformal, metrics
from baselines.data import MODALITIES, TextEmbedder, encode_records, text_embedding_dir
from baselines.evaluation import RECORD_FIELDS, evaluate_predictions
from baselines.executors import ExecutorConfig, execute
from baselines.methods import METHODS, Prediction, make_method, predictive
from baselines.ood_scores import energy, negative_max_logit
from baselines.temperature_scaling import fit_temperature, temperature_probs
from baselines.train import TrainConfig
from luma import Luma
from luma_builders.features import read_npz_checked, write_npz_atomic
from luma_builders.rng import generator
from luma_builders.schema import provenance_flags

DEFAULT_VARIANTS = ("clean", "label_noise_0.3", "sample_noise_0.5")
DEFAULT_METHODS = ("mcd", "de", "rcml")
POSTHOC_FUSION = {"mcd_posthoc": "mcd", "de_posthoc": "de"}  # multimodal only: unimodal models averaged after training
METHOD_CHOICES = (*METHODS, *POSTHOC_FUSION)
DEFAULT_MODALITIES = ("image", "audio", "text", "multimodal")
# Evidential KL annealing over this share of the epoch budget. The reference RCML anneals over 50 of its 500 epochs,
# but a short budget ends before its networks have learned much: on the mini source, with 20 epochs, annealing over
# the first tenth left RCML at 0.04 multimodal accuracy, over the first half its audio network at chance (0.03),
# over the whole budget 0.59. Evidential runs are not stopped early before the annealing ends (see _train).
ANNEAL_SHARE = 1.0
CONFORMAL_ALPHA = 0.1  # split conformal (APS) at 90% coverage
SPLITS = ("val", "test", "ood")
# The settings a run's numbers depend on besides its Job: a result file is keyed by both, so changing one of them never
# reuses a file. (bootstrap only enters the aggregation; cache_dir, progress and the executor change no number.)
RESULT_SETTINGS = ("epochs", "patience", "batch_size", "lr", "ensemble_size", "mc_passes", "mask_class_words")
RESULT_SETTINGS += ("data_dir",)  # the source: a folder or URL (the mini source's folder names its generator's code)
RESULT_FORMAT = 2  # raised when what a result file holds, or the networks and losses behind it, change
RUN_KEY = "__run__"  # the result file's entry holding the job, metrics and reliability as JSON

log = logging.getLogger(__name__)


@dataclass
class BenchmarkConfig:
    out: Path
    data_dir: str | None = None  # None: the published LUMA
    variants: tuple[str, ...] = DEFAULT_VARIANTS
    methods: tuple[str, ...] = DEFAULT_METHODS
    modalities: tuple[str, ...] = DEFAULT_MODALITIES
    epochs: int = 18  # the budget; early stopping may end a run sooner
    patience: int = 4
    batch_size: int = 64
    lr: float = 3e-3
    ensemble_size: int = 3
    mc_passes: int = 20
    seeds: int = 3  # training seeds per cell
    data_seeds: int = 1  # variant seeds (the injection draws) per cell
    first_seed: int = 0
    mask_class_words: bool = True
    bootstrap: int = 1000  # replicates for the 95% intervals and paired tests
    cache_dir: str | None = None
    progress: bool = False
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)


@dataclass(frozen=True)
class Job:
    """One training and evaluation: `method` on `modality` of `variant` built with `data_seed` and `parameters`
    (overrides of the variant's parameters, as in a sweep), trained with `seed`."""

    variant: str
    method: str
    modality: str
    seed: int = 0
    data_seed: int = 0
    parameters: tuple[tuple[str, object], ...] = ()

    @property
    def cell(self) -> tuple:
        """What the seeds are aggregated over: everything but the two seeds."""
        return self.variant, self.parameters, self.method, self.modality

    def label(self) -> str:
        levels = "".join(f" {k}={v}" for k, v in self.parameters)
        return f"{self.variant}{levels} {self.method} {self.modality} seed {self.seed} data seed {self.data_seed}"


@dataclass
class RunResult:
    job: Job
    metrics: dict[str, float] = field(default_factory=dict)
    records: dict[str, np.ndarray] = field(default_factory=dict)  # per-record values behind the intervals
    reliability: dict[str, list[float]] = field(default_factory=dict)


def benchmark_jobs(config: BenchmarkConfig, levels: tuple[tuple[tuple[str, object], ...], ...] = ((),)) -> list[Job]:
    """Every job of the grid, those sharing a built variant next to each other. Post-hoc fusion is multimodal only."""
    jobs = []
    for variant in config.variants:
        for parameters in levels:
            for data_seed in range(config.first_seed, config.first_seed + config.data_seeds):
                for seed in range(config.first_seed, config.first_seed + config.seeds):
                    jobs += [
                        Job(variant, method, modality, seed, data_seed, parameters)
                        for method in config.methods
                        for modality in config.modalities
                        if modality == "multimodal" or method not in POSTHOC_FUSION
                    ]
    return jobs


class Runner:
    """Runs jobs one after another, keeping the current variant's encoded data and the predictions that post-hoc
    fusion reuses."""

    def __init__(self, config: BenchmarkConfig):
        self.config = config
        self.embedder = TextEmbedder(
            cache_dir=config.cache_dir and text_embedding_dir(config.cache_dir),
            mask_class_words=config.mask_class_words,
        )
        self._data_key, self._data, self._predictions = None, None, {}

    def run(self, job: Job) -> RunResult:
        data = self._variant_data(job)
        predictions, histories = self._predict(job, data)
        return evaluate_run(job, predictions, histories, data, self.config.epochs)

    def prepare(self, job: Job) -> None:
        """Build `job`'s variant into the datasets cache and embed its texts into the text cache, so that the workers
        running its jobs side by side only read both."""
        for rows in self._splits(job).values():
            self.embedder(list(rows["text"]))

    def _splits(self, job: Job) -> dict:
        builder = Luma(
            job.variant,
            data_dir=self.config.data_dir,
            cache_dir=self.config.cache_dir,
            seed=job.data_seed,
            **dict(job.parameters),
        )
        builder.download_and_prepare()
        return {split: builder.as_dataset(split) for split in ("train", "test", "ood")}

    def _variant_data(self, job: Job) -> dict:
        key = (job.variant, job.parameters, job.data_seed)
        if key != self._data_key:
            splits = self._splits(job)
            self._data = {split: encode_records(rows, self.embedder) for split, rows in splits.items()}
            fields = [f for f in RECORD_FIELDS if f in splits["test"].column_names]
            self._data["records"] = [row for s in ("test", "ood") for row in splits[s].select_columns(fields).to_list()]
            self._data_key, self._predictions = key, {}
        return self._data

    def _predict(self, job: Job, data: dict) -> tuple[dict[str, Prediction], list[dict]]:
        """Predictions on the validation split, test and ood, and the training histories behind them."""
        if job in self._predictions:
            return self._predictions[job]
        if job.method in POSTHOC_FUSION:
            parts = [
                self._predict(replace(job, method=POSTHOC_FUSION[job.method], modality=m), data) for m in MODALITIES
            ]
            fused = {split: _late_fusion([p[split] for p, _ in parts]) for split in SPLITS}
            result = fused, [h for _, histories in parts for h in histories]
        else:
            result = self._train(job, data)
        self._predictions[job] = result
        return result

    def _train(self, job: Job, data: dict) -> tuple[dict[str, Prediction], list[dict]]:
        config = self.config
        anneal_epochs = max(1, round(ANNEAL_SHARE * config.epochs))
        sizes = {
            "mcd": {"passes": config.mc_passes},
            "de": {"members": config.ensemble_size},
        }.get(job.method, {"anneal_epochs": anneal_epochs})
        train_config = TrainConfig(
            epochs=config.epochs,
            batch_size=config.batch_size,
            lr=config.lr,
            patience=config.patience,
            # the fully annealed validation loss can rise while the KL weight grows: RCML's audio network stopped at
            # epoch 6 of 20 with chance accuracy when early stopping could end the annealing
            min_epochs=anneal_epochs if "anneal_epochs" in sizes else 0,
            seed=job.seed,
            progress=config.progress,
        )
        modalities = MODALITIES if job.modality == "multimodal" else (job.modality,)
        model = make_method(job.method, modalities, train_config, **sizes)
        history = model.fit(data["train"])
        histories = history if isinstance(history, list) else [history]
        val = {key: values[histories[0]["val_indices"]] for key, values in data["train"].items()}
        predictions = {
            "val": model.predict(val),
            "test": model.predict(data["test"]),
            "ood": model.predict(data["ood"]),
        }
        return predictions, histories


def _late_fusion(predictions: list[Prediction]) -> Prediction:
    """Logits and sigmas of separately trained models averaged, pass by pass or member by member."""
    return replace(
        predictions[0],
        mu=np.mean([p.mu for p in predictions], axis=0),
        sigma=np.mean([p.sigma for p in predictions], axis=0),
    )


def _scores(prediction: Prediction, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Probabilities and every uncertainty score of one split: the method's own measures, energy and max-logit."""
    probs, measures = predictive(prediction, rng)
    logits = prediction.logits()
    measures["energy"] = energy(logits).mean(axis=0)
    measures["max_logit"] = negative_max_logit(logits).mean(axis=0)
    return probs, measures


def evaluate_run(job: Job, predictions: dict[str, Prediction], histories: list[dict], data: dict, budget: int):
    """The metrics of one run (`evaluate_predictions`' report flattened, plus convergence, temperature scaling and
    conformal sets fitted on the validation split) and the per-record values that its intervals resample."""
    rng = generator(job.seed, "benchmark", job.variant, job.method, job.modality, job.data_seed)
    outputs = {split: _scores(predictions[split], rng) for split in SPLITS}
    probs = np.concatenate([outputs[s][0] for s in ("test", "ood")])
    scores = {name: np.r_[outputs["test"][1][name], outputs["ood"][1][name]] for name in outputs["test"][1]}
    records = data["records"]
    table = pd.DataFrame({"id": [row["id"] for row in records], "probs": list(probs)})
    for name, values in scores.items():
        table[f"u_{name}"] = values
    report = evaluate_predictions(table, records, name=job.label())
    result = RunResult(job, metrics=_flatten(report))
    known = ~np.array([bool(row["is_ood"]) for row in records])
    val_labels = predictions["val"].labels
    result.metrics.update(
        **{f"mean_{name}": float(values[known].mean()) for name, values in scores.items()},
        **_posthoc(predictions, outputs["val"][0], val_labels, probs[known], records, known, rng),
        **_convergence(histories, budget),
    )
    result.records = _record_values(probs, scores, records, known)
    bins = metrics.reliability_bins(probs[known], result.records["label"][known])
    result.reliability = {k: np.asarray(v, dtype=float).tolist() for k, v in bins.items()}
    return result


def _flatten(report: dict) -> dict[str, float]:
    flat = dict(report["classification"])
    for score, values in report["selective"].items():
        flat.update({f"{name}_{score}": value for name, value in values.items()})
    for score, values in report["ood_detection"].items():
        flat.update({f"ood_{name}_{score}": value for name, value in values.items()})
    for flag, by_score in report["noise_detection"].items():
        flat.update({f"detect_{flag}_{score}": value for score, value in by_score.items()})
    return flat


def _posthoc(predictions, val_probs, val_labels, test_probs, records, known, rng) -> dict[str, float]:
    """Temperature scaling and split conformal (APS) fitted on the validation split, scored on the test records."""
    labels = np.array([row["label"] for row in records])[known]
    temperature = fit_temperature(predictions["val"].logits(), val_labels)
    logits = np.concatenate([predictions[s].logits() for s in ("test", "ood")], axis=-2)[:, known]
    scaled = temperature_probs(logits, temperature)
    sets = conformal.calibrate(val_probs, val_labels, CONFORMAL_ALPHA, rng).predict(test_probs, rng)
    return {
        "temperature": temperature,
        "ece_temperature_scaled": metrics.ece(scaled, labels),
        "nll_temperature_scaled": metrics.nll(np.clip(scaled, 1e-12, 1.0), labels),
        "conformal_coverage": conformal.coverage(sets, labels),
        "conformal_set_size": conformal.mean_set_size(sets),
    }


def _convergence(histories: list[dict], budget: int) -> dict[str, float]:
    """Best and last epoch over the networks of a run (the latest member's); `at_budget` 1 when a network's best
    epoch was the budget's last (it may still have been improving)."""
    best = max(h["best_epoch"] for h in histories)
    return {
        "best_epoch": float(best),
        "epochs_run": float(max(len(h["val_loss"]) for h in histories)),
        "budget": float(budget),
        "at_budget": float(best >= budget),
    }


def _record_values(probs, scores, records, known) -> dict[str, np.ndarray]:
    """Per record (test then ood): the values that the bootstrap resamples."""
    labels = np.array([row["label"] for row in records])
    clean = np.array([row["clean_label"] for row in records])
    predicted = probs.argmax(axis=1)
    values = {
        "label": labels,
        "is_ood": ~known,
        "tested": known & np.array([row["id"].startswith("test-") for row in records]),
        "correct": predicted == labels,
        "correct_clean_label": predicted == clean,
        "confidence": probs.max(axis=1),
        "nll": -np.log(np.clip(probs[np.arange(len(labels)), np.where(known, labels, 0)], 1e-12, 1.0)),
        "score:one_minus_p_label": 1.0 - probs[np.arange(len(labels)), np.where(known, labels, 0)],
        **{f"score:{name}": values for name, values in scores.items()},
        "score:max_softmax": 1.0 - probs.max(axis=1),
    }
    for flag in provenance_flags(records[0]):
        values[f"flag:{flag}"] = np.array([provenance_flags(row)[flag] for row in records])
    return values


def run_benchmark(config: BenchmarkConfig) -> Path:
    """Run the grid, write results.json (every run's metrics), report.md and the figures into `config.out`."""
    results = run_jobs(benchmark_jobs(config), config)
    return write_outputs(results, config)


def run_jobs(jobs: list[Job], config: BenchmarkConfig) -> list[RunResult]:
    """Every job's result, in the order of `jobs`: read from its result file when a complete one exists for the same
    settings, else run by `config.executor` and saved. One line per job run, with the time so far and an estimate of
    the time left."""
    results = {job: result for job in jobs if (result := load_result(job, config)) is not None}
    pending = [job for job in jobs if job not in results]
    if results:
        print(f"{len(results)} of {len(jobs)} jobs already done (read from {Path(config.out) / 'runs'})", flush=True)
    if pending and config.executor.kind != "sequential":
        runner = Runner(config)  # the workers then find every variant built and every text embedded
        for job in {(j.variant, j.parameters, j.data_seed): j for j in pending}.values():
            runner.prepare(job)
    start = time.perf_counter()
    tasks = [(group, config) for group in job_groups(pending)]
    finished = (
        result
        for group in execute(run_group, tasks, config.executor, Path(config.out) / "submitit")
        for result in group
    )
    for number, result in enumerate(finished, 1):
        results[result.job] = result
        _print_progress(number, len(pending), start, result)
    return [results[job] for job in jobs]


def _print_progress(number: int, total: int, start: float, result: RunResult) -> None:
    elapsed = time.perf_counter() - start
    left = elapsed / number * (total - number)
    print(
        f"[{number}/{total} {_minutes(elapsed)} elapsed, ~{_minutes(left)} left] {result.job.label()}: "
        f"accuracy {result.metrics['accuracy']:.3f}",
        flush=True,
    )


def job_groups(jobs: list[Job]) -> list[list[Job]]:
    """`jobs` as independent executor tasks: a post-hoc fusion job together with the unimodal jobs of the same base
    method, seed and variant among `jobs` (it averages their models, which its task then trains once), every other job
    alone. Tasks keep the order of their first job."""
    fusions = {_fusion_key(job) for job in jobs if job.method in POSTHOC_FUSION}
    groups: dict = {}
    for job in jobs:
        key = _fusion_key(job)
        groups.setdefault(key if key in fusions else job, []).append(job)
    return list(groups.values())


def _fusion_key(job: Job) -> tuple | None:
    """The post-hoc fusion that `job` is (or whose unimodal part it is), or None."""
    base = POSTHOC_FUSION.get(job.method)
    if base is None and (job.modality == "multimodal" or job.method not in POSTHOC_FUSION.values()):
        return None
    return job.variant, job.parameters, job.data_seed, job.seed, base or job.method


# One Runner per process and config: a process that runs several tasks (the sequential driver, a Ray worker) encodes
# a variant once for all of them and reuses the unimodal predictions that post-hoc fusion averages.
_PROCESS_RUNNER: dict[str, Runner] = {}


def run_group(jobs: list[Job], config: BenchmarkConfig) -> list[RunResult]:
    """One executor task: run `jobs` in order and save each result file as soon as that job is done."""
    key = repr(config)
    if key not in _PROCESS_RUNNER:
        _PROCESS_RUNNER.clear()
        _PROCESS_RUNNER[key] = Runner(config)
    results = []
    for job in jobs:
        results.append(_PROCESS_RUNNER[key].run(job))
        save_result(results[-1], config)
    return results


def _identity(job: Job, config: BenchmarkConfig) -> str:
    """What a run's numbers depend on, as canonical JSON."""
    settings = {name: getattr(config, name) for name in RESULT_SETTINGS}
    return json.dumps({"format": RESULT_FORMAT, "job": asdict(job), **settings}, sort_keys=True, default=str)


def result_path(job: Job, config: BenchmarkConfig) -> Path:
    """`<out>/runs/<variant>-<method>-<modality>-s<seed>-d<data seed>-<hash of the job and RESULT_SETTINGS>.npz`."""
    digest = hashlib.sha256(_identity(job, config).encode()).hexdigest()[:16]
    name = f"{job.variant}-{job.method}-{job.modality}-s{job.seed}-d{job.data_seed}-{digest}.npz"
    return Path(config.out) / "runs" / name


def save_result(result: RunResult, config: BenchmarkConfig) -> Path:
    """Write `result` into its result file (per-record arrays, plus the identity, metrics and reliability as JSON),
    replacing it whole: the file is either absent or complete."""
    path = result_path(result.job, config)
    run = {"identity": _identity(result.job, config), "metrics": result.metrics, "reliability": result.reliability}
    write_npz_atomic(path, **result.records, **{RUN_KEY: np.array(json.dumps(run, default=float))})
    return path


def load_result(job: Job, config: BenchmarkConfig) -> RunResult | None:
    """The saved result of `job` under `config`'s settings; None when there is no file, or it is damaged or holds
    another job or settings (the job then runs again and replaces it)."""
    path = result_path(job, config)
    stored = read_npz_checked(path, "result file", _run_and_records)
    if stored is None:
        return None
    run, records = stored
    if run["identity"] != _identity(job, config):
        log.warning("%s: holds another job or settings; running %s again", path, job.label())
        return None
    return RunResult(job, run["metrics"], records, run["reliability"])


def _run_and_records(arrays: dict[str, np.ndarray]) -> tuple[dict, dict[str, np.ndarray]]:
    """What `save_result` writes: the run's JSON under RUN_KEY, and the per-record arrays."""
    records = dict(arrays)
    run = json.loads(str(records.pop(RUN_KEY)))
    if not isinstance(run, dict) or not {"identity", "metrics", "reliability"} <= run.keys():
        raise ValueError(f"{RUN_KEY} holds no run")
    return run, records


def _minutes(seconds: float) -> str:
    return f"{int(seconds // 60)}:{int(seconds % 60):02d}"


def write_outputs(results: list[RunResult], config: BenchmarkConfig, sweep: dict | None = None) -> Path:
    from baselines.report import write_report  # matplotlib is only needed here

    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    runs = [{"job": asdict(r.job), "metrics": r.metrics} for r in results]
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()}
    (out / "results.json").write_text(json.dumps({"config": settings, "sweep": sweep, "runs": runs}, default=str))
    return write_report(results, config, out, sweep)
