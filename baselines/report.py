"""The benchmark report: report.md (every cell mean +- std over its runs with a bootstrap 95% interval, paired tests
between methods, convergence) and the figures of `baselines.figures`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from baselines.aggregate import SIGNIFICANCE, aggregate, compare
from baselines.figures import METHOD_NAMES, write_figures
from luma_builders.mini.source import MINI_MARKER

# Paper, Table 2: OOD AUROC from epistemic uncertainty (RCML was reported multimodal only).
PAPER_OOD_AUROC = {
    "mcd": {"image": 0.54, "audio": 0.47, "text": 0.53, "multimodal": 0.50},
    "de": {"image": 0.54, "audio": 0.49, "text": 0.54, "multimodal": 0.50},
    "rcml": {"multimodal": 0.91},
}
HEADLINE = (("accuracy", "accuracy"), ("ece", "ECE"), ("ood_auroc_epistemic", "OOD AUROC (epistemic)"))
SCORES = ("aleatoric", "epistemic", "total", "max_softmax", "energy", "max_logit")
DETECTION_SCORES = (*SCORES, "one_minus_p_label")
QUALITY = ("accuracy", "accuracy_clean_label", "nll", "brier", "ece")
POSTHOC = ("ece", "ece_temperature_scaled", "temperature", "conformal_coverage", "conformal_set_size")


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


def _cell_text(stat, digits: int = 3) -> str:
    """mean +- std [low, high] (the interval only where the metric was resampled)."""
    if stat is None or not np.isfinite(stat.mean):
        return "-"
    text = f"{stat.mean:.{digits}f} ± {stat.std:.{digits}f}"
    if np.isfinite(stat.low):
        text += f" [{stat.low:.{digits - 1}f}, {stat.high:.{digits - 1}f}]"
    return text


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def _variant_name(variant: str, parameters: tuple) -> str:
    return variant + "".join(f" {k}={v}" for k, v in parameters)


def _stat(cells, key, metric):
    cell = cells.get(key)
    return cell.stats.get(metric) if cell else None


def headline_tables(cells, methods, modalities) -> list[str]:
    """Per variant and headline metric: methods x modalities."""
    sections = []
    for variant, parameters in dict.fromkeys(key[:2] for key in cells):
        for metric, title in HEADLINE:
            rows = [
                [
                    METHOD_NAMES[m],
                    *(_cell_text(_stat(cells, (variant, parameters, m, mod), metric)) for mod in modalities),
                ]
                for m in methods
                if any((variant, parameters, m, mod) in cells for mod in modalities)
            ]
            sections += [
                f"### {_variant_name(variant, parameters)}: {title}",
                markdown_table(["method", *modalities], rows),
            ]
    return sections


def table1(cells, variants, methods, modality: str) -> str:
    """Paper Table 1 (means): clean accuracy and mean uncertainties absolute, other variants as % change."""
    header = ["method", "clean acc", "clean ale", "clean epi"]
    for variant in variants[1:]:
        header += [f"{variant} acc", f"{variant} ale", f"{variant} epi"]
    rows = []
    for method in methods:
        clean = cells.get(("clean", (), method, modality))
        if clean is None:
            continue
        keys = ("accuracy", "mean_aleatoric", "mean_epistemic")
        row = [METHOD_NAMES[method], *(_fmt(clean.stats[k].mean) for k in keys)]
        for variant in variants[1:]:
            other = cells.get((variant, (), method, modality))
            for k in keys:
                base = clean.stats[k].mean
                change = 100 * (other.stats[k].mean - base) / abs(base) if other and base else float("nan")
                row.append("-" if not np.isfinite(change) else f"{change:+.0f}%")
        rows.append(row)
    return markdown_table(header, rows)


def table2(cells, methods, modalities) -> str:
    """Paper Table 2: OOD AUROC from epistemic uncertainty on clean, ours (paper)."""
    rows = []
    for method in methods:
        row = [METHOD_NAMES[method]]
        for modality in modalities:
            ours = _stat(cells, ("clean", (), method, modality), "ood_auroc_epistemic")
            paper = PAPER_OOD_AUROC.get(method, {}).get(modality)
            row.append(f"{_cell_text(ours, 2)} ({_fmt(paper, 2)})")
        rows.append(row)
    return markdown_table(["method", *modalities], rows)


def _per_run_table(cells, columns: list[tuple[str, str]], digits: int = 3) -> str:
    """One row per cell, one column per (metric, title); cells lacking every metric are left out."""
    rows = []
    for (variant, parameters, method, modality), cell in cells.items():
        if any(metric in cell.stats for metric, _ in columns):
            texts = [_cell_text(cell.stats.get(metric), digits) for metric, _ in columns]
            rows.append([_variant_name(variant, parameters), METHOD_NAMES[method], modality, *texts])
    return markdown_table(["variant", "method", "modality", *(title for _, title in columns)], rows) if rows else ""


def detection_tables(cells) -> list[str]:
    flags = sorted({k.split("_", 1)[1] for c in cells.values() for k in c.stats if k.startswith("detect_")})
    sections = []
    for flag in sorted({f for f in (_flag_of(k, cells) for k in flags) if f}):
        columns = [(f"detect_{flag}_{score}", score) for score in DETECTION_SCORES]
        sections += [f"### {flag}", _per_run_table(cells, columns)]
    return sections or ["No variant flags some but not all of its test records: nothing to detect."]


def _flag_of(rest: str, cells) -> str | None:
    """The flag of a detection metric's name after `detect_` (flags and scores both contain underscores)."""
    for score in DETECTION_SCORES:
        if rest.endswith("_" + score):
            return rest.removesuffix("_" + score)
    return None


def convergence_table(cells) -> tuple[str, list[str]]:
    rows, warnings = [], []
    for (variant, parameters, method, modality), cell in cells.items():
        s = cell.stats
        at_budget = int(round(s["at_budget"].mean * s["at_budget"].runs))
        rows.append(
            [
                _variant_name(variant, parameters),
                METHOD_NAMES[method],
                modality,
                f"{s['best_epoch'].mean:.1f} / {s['budget'].mean:.0f}",
                f"{s['epochs_run'].mean:.1f}",
                f"{at_budget} of {s['at_budget'].runs}",
            ]
        )
        if at_budget:
            warnings.append(
                f"- **{METHOD_NAMES[method]} {modality} on {_variant_name(variant, parameters)}**: the best epoch was "
                f"the last of the budget in {at_budget} of {s['at_budget'].runs} runs; it may not have converged "
                "(raise --epochs)."
            )
    header = ["variant", "method", "modality", "best epoch / budget", "epochs run", "runs best at budget"]
    return markdown_table(header, rows), warnings


def comparison_section(comparisons) -> list[str]:
    if not comparisons:
        return ["A single method per cell: nothing to compare."]
    significant = [c for c in comparisons if c.p_holm < SIGNIFICANCE]
    rows = [
        [
            _variant_name(c.variant, c.parameters),
            c.modality,
            c.metric,
            f"{METHOD_NAMES[c.first]} − {METHOD_NAMES[c.second]}",
            f"{c.difference:+.3f} [{c.low:+.3f}, {c.high:+.3f}]",
            f"{c.p_holm:.3g}",
        ]
        for c in significant
    ]
    text = (
        f"{len(comparisons)} paired comparisons (every pair of methods, per variant and modality, on "
        f"{', '.join(sorted({c.metric for c in comparisons}))}); paired bootstrap over the same resampled records, "
        f"p-values Holm-adjusted over all of them. {len(significant)} differ at the {SIGNIFICANCE:g} level; "
        "any difference not listed here is not claimed."
    )
    header = ["variant", "modality", "metric", "difference", "mean [95% interval]", "p (Holm)"]
    return [text, markdown_table(header, rows) if rows else ""]


def source_line(config) -> str:
    """The report's first line: what data the numbers come from."""
    if config.data_dir is None:
        return "**Source: the published LUMA** (Hugging Face Hub `bezirganyan/LUMA`, CIFAR-10/100)."
    folder = Path(config.data_dir)
    if (folder / MINI_MARKER).exists():
        return (
            "**Source: the embedded synthetic mini source (`luma mini`), not the published LUMA.** These numbers test "
            "the pipeline; they say nothing about the methods on LUMA and are not comparable with the paper."
        )
    return f"**Source: `{folder.name}`, not the published LUMA**: not comparable with the paper's numbers."


def settings_line(config) -> str:
    masked = "masked" if config.mask_class_words else "kept"
    return " ".join(
        [
            f"Each cell: mean ± standard deviation over {config.seeds} training seed(s) x {config.data_seeds} data",
            f"seed(s), and [a 95% bootstrap interval] from {config.bootstrap} resamplings of both the runs and the",
            "test records (stratified by in/out of distribution).",
            f"Training: at most {config.epochs} epochs, early stopping after {config.patience} epochs without a lower",
            f"validation loss (best weights restored), batches of {config.batch_size}, learning rate {config.lr};",
            f"Deep Ensemble of {config.ensemble_size} members on the same data; {config.mc_passes} MC Dropout passes;",
            f"class words in texts {masked}. MCD/DE: aleatoric = expected entropy, epistemic = mutual information;",
            "Dirichlet methods: aleatoric = expected entropy of the Dirichlet, epistemic = K / a0.",
        ]
    )


def write_report(results, config, out: Path, sweep: dict | None = None) -> Path:
    cells = aggregate(results, config.bootstrap, config.first_seed)
    methods, modalities = list(config.methods), list(config.modalities)
    figures = write_figures(cells, methods, modalities, out)
    convergence, warnings = convergence_table(cells)
    sections = [source_line(config), "# LUMA benchmark", settings_line(config)]
    if warnings:
        sections += ["## Convergence warnings", "\n".join(warnings)]
    if sweep is not None:
        from baselines.sweep import sweep_section

        sections += sweep_section(cells, sweep, out)
    sections += ["## Accuracy, calibration and OOD detection", *headline_tables(cells, methods, modalities)]
    sections += _paper_tables(cells, config, methods, modalities)
    sections += [
        "## Classification (accuracy against the observed label and against the clean label, before switching)",
        _per_run_table(cells, [(k, k) for k in QUALITY]),
        "## Injected-noise detection, within each run",
        "AUROC of each score for telling a variant's flagged test records from its unflagged ones, in the same "
        "model's predictions. `one_minus_p_label` = 1 − p(observed label | x) is the label-aware score: a label-free "
        "uncertainty cannot see a switched label.",
        *detection_tables(cells),
        "## Selective classification: AURC and AUGRC from each uncertainty (lower is better)",
        _per_run_table(cells, [(f"aurc_{s}", f"AURC {s}") for s in SCORES]),
        _per_run_table(cells, [(f"augrc_{s}", f"AUGRC {s}") for s in SCORES]),
        "## OOD detection from each score (AUROC)",
        _per_run_table(cells, [(f"ood_auroc_{s}", s) for s in SCORES]),
        "## Post-hoc: temperature scaling and split conformal prediction (APS, 90% target), fitted on validation",
        _per_run_table(cells, [(k, k) for k in POSTHOC]),
        "## Paired comparisons between methods",
        *comparison_section(compare(cells)),
        "## Convergence",
        convergence,
        "## Figures (PNG at 300 dpi, and PDF)",
        "\n".join(f"![{name.removesuffix('.png')}]({name})" for name in figures if name.endswith(".png")),
    ]
    path = out / "report.md"
    path.write_text("\n\n".join(s for s in sections if s) + "\n")
    return path


def _paper_tables(cells, config, methods, modalities) -> list[str]:
    """Tables 1 and 2 in the paper's form; Table 2 sets the paper's numbers beside ours for the published data only."""
    variants = list(dict.fromkeys(key[0] for key in cells if not key[1]))
    if "clean" not in variants:
        return []
    variants = ["clean", *(v for v in variants if v != "clean")]
    sections = []
    for modality in modalities:
        sections += [
            f"## Table 1 ({modality}): clean absolute, other variants as % change from clean (means)",
            table1(cells, variants, methods, modality),
        ]
    if config.data_dir is None:
        sections += [
            "## Table 2: OOD AUROC from epistemic uncertainty, ours (paper)",
            table2(cells, methods, modalities),
        ]
    return sections
