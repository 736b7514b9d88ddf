"""The benchmark report: report.md in the form of the paper's Tables 1-2, the other metrics, and PNG plots."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from baselines.metrics import roc_curve  # noqa: E402

METHOD_NAMES = {"mcd": "MC Dropout", "de": "Deep Ensemble", "rcml": "RCML", "edl": "EDL", "tmc": "TMC"}
# Paper, Table 2: OOD AUROC from epistemic uncertainty (RCML was reported multimodal only).
PAPER_OOD_AUROC = {
    "mcd": {"image": 0.54, "audio": 0.47, "text": 0.53, "multimodal": 0.50},
    "de": {"image": 0.54, "audio": 0.49, "text": 0.54, "multimodal": 0.50},
    "rcml": {"multimodal": 0.91},
}
QUALITY = ("accuracy", "nll", "brier", "ece", "aurc", "ood_auroc", "ood_aupr", "ood_fpr95")


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


def _change(value: float, reference: float) -> str:
    return "-" if not reference else f"{100 * (value - reference) / abs(reference):+.0f}%"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def table1(runs, variants, methods, modality: str) -> str:
    """Paper Table 1: absolute accuracy and mean uncertainties on clean, % change on every other variant."""
    by_key = {(r.variant, r.method, r.modality): r.metrics for r in runs}
    header = ["method", "clean acc", "clean ale", "clean epi"]
    for variant in variants[1:]:
        header += [f"{variant} acc", f"{variant} ale", f"{variant} epi"]
    rows = []
    for method in methods:
        clean = by_key.get(("clean", method, modality))
        if clean is None:
            continue
        row = [
            METHOD_NAMES[method],
            _fmt(clean["accuracy"]),
            _fmt(clean["mean_aleatoric"]),
            _fmt(clean["mean_epistemic"]),
        ]
        for variant in variants[1:]:
            other = by_key.get((variant, method, modality))
            row += [
                _change(other[key], clean[key]) if other else "-"
                for key in ("accuracy", "mean_aleatoric", "mean_epistemic")
            ]
        rows.append(row)
    return _table(header, rows)


def table2(runs, methods, modalities) -> str:
    """Paper Table 2: OOD AUROC from epistemic uncertainty on clean, ours (paper)."""
    by_key = {(r.method, r.modality): r.metrics for r in runs if r.variant == "clean"}
    rows = []
    for method in methods:
        row = [METHOD_NAMES[method]]
        for modality in modalities:
            ours = by_key.get((method, modality), {}).get("ood_auroc")
            paper = PAPER_OOD_AUROC.get(method, {}).get(modality)
            row.append(f"{_fmt(ours, 2)} ({_fmt(paper, 2)})")
        rows.append(row)
    return _table(["method", *modalities], rows)


def quality_table(runs) -> str:
    rows = [[r.variant, METHOD_NAMES[r.method], r.modality, *(_fmt(r.metrics.get(k)) for k in QUALITY)] for r in runs]
    return _table(["variant", "method", "modality", *QUALITY], rows)


def detection_table(runs) -> str:
    keys = sorted({k for r in runs for k in r.metrics if k.startswith("detect_")})
    rows = [
        [r.variant, METHOD_NAMES[r.method], r.modality, *(_fmt(r.metrics.get(k)) for k in keys)]
        for r in runs
        if any(k in r.metrics for k in keys)
    ]
    names = [k.removeprefix("detect_") for k in keys]
    return _table(["variant", "method", "modality", *names], rows) if rows else "No variant injected flagged noise."


def _reference(modalities) -> str:
    """The modality the plots show: multimodal when it was run."""
    return "multimodal" if "multimodal" in modalities else modalities[0]


def plot_reliability(runs, methods, modality: str, path: Path) -> None:
    chosen = [r for r in runs if r.variant == "clean" and r.modality == modality and r.method in methods]
    fig, axes = plt.subplots(1, len(chosen), figsize=(4 * len(chosen), 4), squeeze=False)
    for ax, run in zip(axes[0], chosen, strict=True):
        bins = run.reliability
        edges = np.asarray(bins["edges"])
        ax.bar(edges[:-1], np.nan_to_num(bins["accuracy"]), width=np.diff(edges), align="edge", edgecolor="k")
        ax.plot([0, 1], [0, 1], "r--")
        ax.set(title=f"{METHOD_NAMES[run.method]} (ECE {run.metrics['ece']:.3f})", xlabel="confidence")
    axes[0][0].set_ylabel("accuracy")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_distributions(runs, methods, variants, modality: str, path: Path) -> None:
    fig, axes = plt.subplots(2, len(methods), figsize=(4 * len(methods), 6), squeeze=False)
    for column, method in enumerate(methods):
        for row, measure in enumerate(("aleatoric", "epistemic")):
            ax = axes[row][column]
            for run in runs:
                if run.method == method and run.modality == modality and run.variant in variants:
                    ax.hist(run.uncertainty["test"][measure], bins=30, alpha=0.5, label=run.variant, density=True)
            ax.set(title=f"{METHOD_NAMES[method]}: {measure}", xlabel="uncertainty on test")
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_ood_roc(runs, methods, modality: str, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(5, 5))
    for run in runs:
        if run.variant == "clean" and run.modality == modality and run.method in methods:
            scores = np.r_[run.ood_scores["id"], run.ood_scores["ood"]]
            positives = np.r_[np.zeros(len(run.ood_scores["id"]), bool), np.ones(len(run.ood_scores["ood"]), bool)]
            fpr, tpr = roc_curve(scores, positives)
            ax.plot(fpr, tpr, label=f"{METHOD_NAMES[run.method]} (AUROC {run.metrics['ood_auroc']:.2f})")
    ax.plot([0, 1], [0, 1], "k:")
    ax.set(title=f"OOD detection from epistemic uncertainty ({modality})", xlabel="FPR", ylabel="TPR")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_report(runs, config, out: Path) -> Path:
    variants, methods, modalities = list(config.variants), list(config.methods), list(config.modalities)
    shown = _reference(modalities)
    plot_reliability(runs, methods, shown, out / "reliability.png")
    plot_distributions(runs, methods, variants, shown, out / "uncertainty_distributions.png")
    plot_ood_roc(runs, methods, shown, out / "ood_roc.png")
    sections = [
        "# LUMA benchmark",
        f"Source: {config.data_dir or 'the published LUMA sources'}; seed {config.seed}; {config.epochs} epochs "
        f"at most (early stopping on a validation split, best weights restored); Deep Ensemble of "
        f"{config.ensemble_size}; {config.mc_passes} MC Dropout passes. Uncertainties are measured on `test`. "
        "MCD/DE: aleatoric = expected entropy, epistemic = mutual information; "
        "RCML: aleatoric = expected entropy of the Dirichlet, epistemic = K / a0.",
    ]
    if "clean" in variants:
        for modality in modalities:
            sections += [
                f"## Table 1 ({modality}): clean absolute, other variants as % change from clean",
                table1(runs, variants, methods, modality),
            ]
        sections += [
            "## Table 2: OOD AUROC from epistemic uncertainty, ours (paper)",
            table2(runs, methods, modalities),
        ]
    sections += [
        "## Accuracy, calibration, selective risk and OOD detection (test split)",
        quality_table(runs),
        "## Injected-noise detection: AUROC of each uncertainty for flagged vs clean records",
        "Where a variant flags every test record (sample noise at ratio 1), the clean test records are the negatives.",
        detection_table(runs),
        "## Plots",
        "![reliability](reliability.png)\n![distributions](uncertainty_distributions.png)\n![ood roc](ood_roc.png)",
    ]
    path = out / "report.md"
    path.write_text("\n\n".join(sections) + "\n")
    return path
