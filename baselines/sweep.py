"""`luma sweep PARAM=v1,v2,...`: dose-response curves. The chosen methods train on one variant at every level of an
injection parameter (several parameters given together move in step: `audio_snr_min=0,10 audio_snr_max=0,10`), and
accuracy, aleatoric and epistemic uncertainty are plotted against the level with Spearman's rho per method and
modality: does each uncertainty grow with what was injected?
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402

from baselines.benchmark import BenchmarkConfig, benchmark_jobs, run_jobs, write_outputs  # noqa: E402
from baselines.figures import METHOD_COLOURS, METHOD_NAMES, VARIANT_STYLES, save  # noqa: E402

MEASURES = (("accuracy", "accuracy"), ("mean_aleatoric", "aleatoric"), ("mean_epistemic", "epistemic"))
UNITS = {"mean_aleatoric": " (nats)", "mean_epistemic": " (nats; K/α₀ for Dirichlet methods)"}


def sweep_levels(parameters: dict[str, list]) -> tuple[tuple[tuple[str, object], ...], ...]:
    """{name: values} -> one level per position, each a tuple of (name, value); every list must be equally long."""
    lengths = {name: len(values) for name, values in parameters.items()}
    if not parameters or len(set(lengths.values())) != 1 or min(lengths.values()) < 2:
        raise ValueError(f"a sweep needs parameters with the same number (>= 2) of levels, got {lengths}")
    count = next(iter(lengths.values()))
    return tuple(tuple((name, values[i]) for name, values in parameters.items()) for i in range(count))


def run_sweep(config: BenchmarkConfig, parameters: dict[str, list]) -> Path:
    """Train and evaluate at every level of `parameters` on `config.variants[0]`; write the report with the sweep."""
    levels = sweep_levels(parameters)
    config = replace(config, variants=config.variants[:1])
    results = run_jobs(benchmark_jobs(config, levels), config)
    return write_outputs(
        results, config, sweep={"parameter": next(iter(parameters)), "levels": [list(level) for level in levels]}
    )


def dose_response(cells, parameter: str) -> dict[tuple[str, str], dict]:
    """Per (method, modality): the levels, each measure's per-run values, and Spearman's rho (with its p-value)
    between the level and the measure over all runs."""
    curves: dict[tuple[str, str], dict] = {}
    for (_, parameters, method, modality), cell in cells.items():
        level = dict(parameters)[parameter]
        curve = curves.setdefault((method, modality), {"level": [], **{key: [] for key, _ in MEASURES}})
        for run in cell.runs:
            curve["level"].append(float(level))
            for key, _ in MEASURES:
                curve[key].append(run.metrics[key])
    for curve in curves.values():
        curve["rho"] = {key: _spearman(curve["level"], curve[key]) for key, _ in MEASURES}
    return curves


def _spearman(levels, values) -> tuple[float, float]:
    if len(set(levels)) < 2 or len(set(values)) < 2:
        return float("nan"), float("nan")
    result = spearmanr(levels, values)
    return float(result.statistic), float(result.pvalue)


def plot_dose_response(curves: dict, parameter: str, variant: str, out: Path) -> list[str]:
    """One panel per measure: its mean over runs (+- std) against the level; a colour per method, a line style per
    modality."""
    fig, axes = plt.subplots(1, len(MEASURES), figsize=(4.5 * len(MEASURES), 4), squeeze=False)
    modalities = sorted({modality for _, modality in curves})
    for ax, (key, title) in zip(axes[0], MEASURES, strict=True):
        for (method, modality), curve in sorted(curves.items()):
            levels, values = np.array(curve["level"]), np.array(curve[key])
            xs = np.unique(levels)
            means = [values[levels == x].mean() for x in xs]
            stds = [values[levels == x].std() for x in xs]
            style = VARIANT_STYLES[modalities.index(modality) % len(VARIANT_STYLES)]
            label = f"{METHOD_NAMES[method]}, {modality} (ρ {curve['rho'][key][0]:+.2f})"
            ax.errorbar(
                xs, means, yerr=stds, marker="o", capsize=3, color=METHOD_COLOURS[method], linestyle=style, label=label
            )
        unit = (
            "" if key == "accuracy" else " (nats; K/α₀ for Dirichlet methods)" if key == "mean_epistemic" else " (nats)"
        )
        ax.set(title=f"{title} vs {parameter}", xlabel=parameter, ylabel=f"mean {title} on test{unit}")
        ax.yaxis.label.set_fontsize(8)
        ax.legend(fontsize=6)
    fig.suptitle(f"Dose-response on {variant}: mean ± std over runs per level", fontsize=10)
    return save(fig, out, f"sweep_{parameter}")


def sweep_section(cells, sweep: dict, out: Path) -> list[str]:
    """The report's sweep section: Spearman's rho table and the dose-response figure."""
    parameter = sweep["parameter"]
    curves = dose_response(cells, parameter)
    variant = next(iter(cells))[0]
    figure = plot_dose_response(curves, parameter, variant, out)[0]
    rows = [
        [method, modality, *(f"{curve['rho'][key][0]:+.2f} (p {curve['rho'][key][1]:.2g})" for key, _ in MEASURES)]
        for (method, modality), curve in sorted(curves.items())
    ]
    from baselines.report import markdown_table

    header = ["method", "modality", *(f"ρ {title}" for _, title in MEASURES)]
    levels = "; ".join(", ".join(f"{k}={v}" for k, v in level) for level in sweep["levels"])
    return [
        f"## Dose-response sweep over `{parameter}`",
        f"Levels: {levels}. Spearman's ρ between the level and each measure over every run (levels x seeds); a "
        "positive ρ for an uncertainty means it grows with what was injected.",
        markdown_table(header, rows),
        f"![dose response]({figure})",
    ]
