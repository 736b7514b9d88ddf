"""The benchmark's figures, one per modality set: reliability diagrams with bin counts, uncertainty distributions, OOD
ROC curves. Each names its variant, modality and method, has units on its axes, keeps one colour per method across
figures, and is saved as a 300 dpi PNG and a PDF."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from baselines.metrics import roc_curve  # noqa: E402

METHOD_NAMES = {
    "mcd": "MC Dropout",
    "de": "Deep Ensemble",
    "rcml": "RCML",
    "edl": "EDL",
    "tmc": "TMC",
    "mcd_posthoc": "MC Dropout, post-hoc fusion",
    "de_posthoc": "Deep Ensemble, post-hoc fusion",
}
METHOD_COLOURS = dict(zip(METHOD_NAMES, plt.get_cmap("tab10").colors, strict=False))
VARIANT_STYLES = ("-", "--", ":", "-.")
MEASURE_LABELS = {
    "aleatoric": "aleatoric: expected entropy (nats)",
    "epistemic": "epistemic: mutual information (nats) or K/α₀ (Dirichlet)",
}
DPI = 300
FORMATS = ("png", "pdf")


def save(fig, out: Path, stem: str) -> list[str]:
    """`stem`.png at 300 dpi and `stem`.pdf in `out`; the file names written."""
    fig.tight_layout()
    names = [f"{stem}.{fmt}" for fmt in FORMATS]
    for name in names:
        fig.savefig(out / name, dpi=DPI)
    plt.close(fig)
    return names


def pooled_reliability(runs) -> dict[str, np.ndarray]:
    """Reliability bins summed over runs: counts added, accuracy and confidence weighted by count (NaN when empty)."""
    counts = np.sum([r.reliability["count"] for r in runs], axis=0)
    with np.errstate(invalid="ignore"):
        pooled = {
            key: np.nansum([np.nan_to_num(r.reliability[key]) * r.reliability["count"] for r in runs], axis=0) / counts
            for key in ("accuracy", "confidence")
        }
    return {"edges": np.asarray(runs[0].reliability["edges"]), "count": counts, **pooled}


def plot_reliability(cells, methods, variant: str, modality: str, out: Path) -> list[str]:
    """One column per method: accuracy per confidence bin above (empty bins left empty), record counts below."""
    chosen = [(m, cells[key]) for m in methods if (key := (variant, (), m, modality)) in cells]
    if not chosen:
        return []
    fig, axes = plt.subplots(
        2, len(chosen), figsize=(3.6 * len(chosen), 5), squeeze=False, gridspec_kw={"height_ratios": [3, 1]}
    )
    for column, (method, cell) in enumerate(chosen):
        bins = pooled_reliability(cell.runs)
        edges, filled = bins["edges"], bins["count"] > 0
        top, bottom = axes[0][column], axes[1][column]
        top.bar(
            edges[:-1][filled],
            bins["accuracy"][filled],
            width=np.diff(edges)[filled],
            align="edge",
            color=METHOD_COLOURS[method],
            edgecolor="black",
            linewidth=0.5,
        )
        top.plot([0, 1], [0, 1], "k--", linewidth=0.8, label="perfect calibration")
        ece = cell.stats["ece"]
        top.set(
            xlim=(0, 1),
            ylim=(0, 1),
            ylabel="accuracy",
            title=f"{METHOD_NAMES[method]}\nECE {ece.mean:.3f} ± {ece.std:.3f}",
        )
        top.legend(fontsize=7, loc="upper left")
        bottom.bar(
            edges[:-1],
            bins["count"],
            width=np.diff(edges),
            align="edge",
            color="grey",
            edgecolor="black",
            linewidth=0.5,
        )
        bottom.set(xlim=(0, 1), xlabel="confidence (max predicted probability)", ylabel="records")
    fig.suptitle(f"Reliability on {variant} test records, {modality} (all runs pooled)", fontsize=10)
    return save(fig, out, f"reliability_{variant}_{modality}")


def plot_distributions(cells, methods, modality: str, out: Path) -> list[str]:
    """Histograms of aleatoric and epistemic uncertainty on the test records, one panel per method and measure, one
    line style per variant (all runs pooled)."""
    chosen = [m for m in methods if any(key[2] == m and key[3] == modality for key in cells)]
    if not chosen:
        return []
    fig, axes = plt.subplots(2, len(chosen), figsize=(3.6 * len(chosen), 6), squeeze=False)
    variants = list(dict.fromkeys((key[0], key[1]) for key in cells))
    for column, method in enumerate(chosen):
        for row, measure in enumerate(MEASURE_LABELS):
            ax = axes[row][column]
            for index, (variant, parameters) in enumerate(variants):
                cell = cells.get((variant, parameters, method, modality))
                if cell is None:
                    continue
                values = np.concatenate([r.records[f"score:{measure}"][~r.records["is_ood"]] for r in cell.runs])
                ax.hist(
                    values,
                    bins=30,
                    density=True,
                    histtype="step",
                    linewidth=1.2,
                    color=METHOD_COLOURS[method],
                    linestyle=VARIANT_STYLES[index % len(VARIANT_STYLES)],
                    label=variant,
                )
            ax.set(title=f"{METHOD_NAMES[method]}", xlabel=MEASURE_LABELS[measure], ylabel="density")
            ax.xaxis.label.set_fontsize(8)
            if ax.has_data():
                ax.legend(fontsize=7)
    fig.suptitle(f"Uncertainty on the test records by variant, {modality}", fontsize=10)
    return save(fig, out, f"uncertainty_{modality}")


def plot_ood_roc(cells, methods, variant: str, modality: str, out: Path) -> list[str]:
    """ROC curves of epistemic uncertainty for test (negative) vs OOD (positive) records, first run of each method."""
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    for method in methods:
        cell = cells.get((variant, (), method, modality))
        if cell is None:
            continue
        records = cell.runs[0].records
        fpr, tpr = roc_curve(records["score:epistemic"], records["is_ood"])
        stat = cell.stats["ood_auroc_epistemic"]
        label = f"{METHOD_NAMES[method]} (AUROC {stat.mean:.2f} ± {stat.std:.2f})"
        ax.plot(fpr, tpr, color=METHOD_COLOURS[method], label=label)
    if not ax.has_data():
        plt.close(fig)
        return []
    ax.plot([0, 1], [0, 1], "k:", linewidth=0.8)
    ax.set(xlabel="false positive rate (test records)", ylabel="true positive rate (OOD records)")
    ax.set_title(f"OOD detection by epistemic uncertainty\n{variant}, {modality} (first seed)", fontsize=10)
    ax.legend(fontsize=7, loc="lower right")
    return save(fig, out, f"ood_roc_{variant}_{modality}")


def write_figures(cells, methods, modalities, out: Path) -> list[str]:
    """Every figure for every modality set: reliability and OOD ROC on clean (or the first variant), distributions."""
    variant = "clean" if any(key[0] == "clean" for key in cells) else next(iter(cells))[0]
    names = []
    for modality in modalities:
        names += plot_reliability(cells, methods, variant, modality, out)
        names += plot_ood_roc(cells, methods, variant, modality, out)
        names += plot_distributions(cells, methods, modality, out)
    return names
