"""What a build holds, per split: records, classes, OOD records, distinct items, and what each step injected, as
the records' provenance fields tell it (`schema.PROVENANCE_FLAGS`). `luma build` prints it."""

from __future__ import annotations

from collections import Counter

import numpy as np

from luma_builders.schema import DIVERSITY_FIELDS, ITEM_ID_FIELDS, PROVENANCE_FLAGS, provenance_flags

HEADER = ("split", "records", "classes", "per class", "ood", "MB", *ITEM_ID_FIELDS.values())
WIDTHS = (6, 8, 8, 10, 6, 8, 9, 9, 9)
LEGEND = f"{', '.join(ITEM_ID_FIELDS.values())}: distinct items (fewer than records: items drawn more than once)"
SUMMARY_FIELDS = ("label", "is_ood", *ITEM_ID_FIELDS.values(), *PROVENANCE_FLAGS.values(), *DIVERSITY_FIELDS)


def injected_counts(rows: list[dict]) -> dict[str, Counter]:
    """Per provenance flag, the records that set it, by kind: the value of the flag's field where it names one (a
    corruption, a noise bank, an augmenter, a modality); None for a flag that is only true or false."""
    counts = {flag: Counter() for flag in PROVENANCE_FLAGS}
    for row in rows:
        for flag, is_set in provenance_flags(row).items():
            if is_set:
                counts[flag][kind_of(row[PROVENANCE_FLAGS[flag]])] += 1
    return counts


def kind_of(value) -> str | None:
    """A field value's kind: the name it holds, up to a ':' (an audio noise id `esc50:<file>` is of kind `esc50`)."""
    return value.partition(":")[0] if isinstance(value, str) else None


def split_row(split: str, rows: list[dict], num_bytes: int) -> tuple:
    """The summary table's row of a split."""
    labels = np.array([row["label"] for row in rows], dtype=np.int64)
    counts = np.bincount(labels)[np.unique(labels)] if len(labels) else np.zeros(1, int)
    per_class = f"{counts.min()}-{counts.max()}" if counts.min() != counts.max() else str(counts.min())
    ood = sum(row["is_ood"] for row in rows)
    distinct = [len({row[field] for row in rows}) for field in ITEM_ID_FIELDS.values()]
    return (split, len(rows), len(counts), per_class, ood, f"{num_bytes / 1e6:.1f}", *distinct)


def injected_lines(split: str, counts: dict[str, Counter]) -> list[str]:
    """`<split>  <flag> <records>: <kind> <records>, ...` for each flag some record of the split sets."""
    lines = []
    for flag, kinds in counts.items():
        if kinds:
            named = ", ".join(f"{kind} {n}" for kind, n in sorted(kinds.items()) if kind is not None)
            lines.append(f"{split:<6} {flag} {kinds.total()}" + (f": {named}" if named else ""))
    return lines


def diversity_lines(split: str, rows: list[dict]) -> list[str]:
    """`<split>  <field> <records>: <modality> <records> (median weight w), ...` for the items diversity sampling
    drew: a median weight far above 1 says the draw favoured items near their class mean (weights are
    1 + 1 / (distance**k + 1e-6))."""
    lines = []
    for field in DIVERSITY_FIELDS:
        weights = {m: [w for row in rows if (w := (row[field] or {}).get(m)) is not None] for m in ITEM_ID_FIELDS}
        drawn = sum(any((row[field] or {}).get(m) is not None for m in ITEM_ID_FIELDS) for row in rows)
        if drawn:
            named = ", ".join(f"{m} {len(w)} (median weight {np.median(w):.3g})" for m, w in weights.items() if w)
            lines.append(f"{split:<6} {field} {drawn}: {named}")
    return lines


def build_summary(splits: dict[str, tuple[list[dict], int]]) -> str:
    """The table of every split (records, classes, records per class, OOD, MB, distinct images, clips and texts)
    and what was injected, from {split: (rows of SUMMARY_FIELDS, Arrow bytes)}."""
    table = [HEADER] + [split_row(split, rows, num_bytes) for split, (rows, num_bytes) in splits.items()]
    lines = [
        " ".join([f"{row[0]:<{WIDTHS[0]}}", *(f"{c:>{w}}" for c, w in zip(row[1:], WIDTHS[1:], strict=True))])
        for row in table
    ]
    injected = [
        line
        for split, (rows, _) in splits.items()
        for line in injected_lines(split, injected_counts(rows)) + diversity_lines(split, rows)
    ]
    lines.append(LEGEND)
    lines.append(
        "injected (records):"
        if injected
        else "injected: nothing (no diversity sampling, label switching, sample noise or conflict)"
    )
    return "\n".join(lines + [f"  {line}" for line in injected])
