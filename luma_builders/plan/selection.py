"""Which samples LUMA keeps and alters: diversity sampling, label switching to the nearest class, modality conflicts.

Pure functions: arrays and a numpy Generator in, arrays out. Nothing here reads files or keeps state, so the builder
can call them per class, modality and split with its own seeded streams.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from scipy.spatial.distance import pdist

from luma_builders.blas import one_blas_thread

# Keeps 1 / d**k finite for a sample that sits exactly on the mean.
_EPSILON = 1e-6
# Label switching measures a sample's distance to a class as the mean distance to its this many nearest members.
NEIGHBOURS = 5


def diversity_weights(features: np.ndarray, compactness: float, normalize: bool = False) -> np.ndarray:
    """Sampling weights w_i = 1 + 1 / (d_i**k + 1e-6), d_i = ||f_i - mean||, k = compactness (k = 0: all equal).

    With raw distances above 1, d**k is large, so every weight sits just above 1 and the sampling stays nearly uniform
    whatever the compactness. ``normalize=True`` divides the distances by their mean first, so that k acts on a scale
    where the typical sample lies at distance 1 and a larger k really favours samples near the mean.
    """
    features = _as_matrix(features, "features")
    if not compactness >= 0:
        raise ValueError(f"compactness must be >= 0, got {compactness}")
    distances = np.linalg.norm(features - features.mean(axis=0, dtype=np.float64), axis=1)
    if normalize:
        scale = distances.mean()
        if scale > 0:  # all samples identical: every distance is 0 and stays so
            distances = distances / scale
    return 1.0 + 1.0 / (distances**compactness + _EPSILON)


def diversity_sample(
    features: np.ndarray,
    size: int,
    compactness: float,
    num_sampling: int,
    rng: np.random.Generator,
    normalize: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``size`` samples ``num_sampling`` times with probabilities from :func:`diversity_weights`; keep the draw
    whose members are furthest apart on average (the first on ties).

    Returns the chosen indices, sorted, and their weights.
    """
    features = _as_matrix(features, "features")
    if not 0 <= size <= len(features):
        raise ValueError(f"size must be in [0, {len(features)}] (the number of samples), got {size}")
    if num_sampling < 1:
        raise ValueError(f"num_sampling must be >= 1, got {num_sampling}")
    weights = diversity_weights(features, compactness, normalize)
    probabilities = weights / weights.sum()
    draws = [rng.choice(len(features), size=size, replace=False, p=probabilities) for _ in range(num_sampling)]
    chosen = np.sort(draws[_most_spread(features, draws)])
    return chosen, weights[chosen]


# Spreads within this relative distance of the largest are compared again by pdist, whose summation order decided
# before the Gram matrices came in: their rounding (far below this) must never change which draw wins.
_NEAR_TIE = 1e-6


def _most_spread(features: np.ndarray, draws: list[np.ndarray]) -> int:
    """The index of the draw (rows of `features`) whose members are furthest apart on average; the first on ties."""
    if len(draws[0]) < 2:
        return 0
    spreads = mean_distances(features, draws)
    near = np.flatnonzero(spreads >= spreads.max() * (1 - _NEAR_TIE))
    if len(near) == 1:
        return int(near[0])
    return int(near[np.argmax([pdist(features[draws[i]]).mean() for i in near])])


def mean_distances(features: np.ndarray, draws: list[np.ndarray]) -> np.ndarray:
    """The mean Euclidean distance between the members of each draw (an array of at least two row indices), through
    Gram matrices (BLAS): ||a - b||^2 = ||a||^2 + ||b||^2 - 2ab, on features centred first so that it cancels little.
    One product over every row any draw uses, or one per draw when that costs less."""
    centred = np.asarray(features, dtype=np.float64) - features.mean(axis=0, dtype=np.float64)
    rows = np.unique(np.concatenate(draws))
    if len(rows) ** 2 > sum(len(draw) ** 2 for draw in draws):
        return np.array([_mean_distance(_squared_distances(centred[draw])) for draw in draws])
    squared = _squared_distances(centred[rows])
    return np.array([_mean_distance(squared[np.ix_(at, at)]) for at in (np.searchsorted(rows, d) for d in draws)])


def _squared_distances(rows: np.ndarray) -> np.ndarray:
    norms = np.einsum("ij,ij->i", rows, rows)
    squared = norms[:, None] + norms[None, :] - 2.0 * (rows @ rows.T)
    np.fill_diagonal(squared, 0.0)  # exactly: the rounding of a point's distance to itself is not small after sqrt
    return np.maximum(squared, 0.0, out=squared)  # near-duplicates can round to tiny negative values


def _mean_distance(squared: np.ndarray) -> float:
    """Mean over the pairs i < j of a symmetric matrix of squared distances with a zero diagonal."""
    n = len(squared)
    return float(np.sqrt(squared).sum() / (n * (n - 1)))


def nearest_class_distances(
    features: np.ndarray,
    labels: np.ndarray,
    queries: np.ndarray,
    num_classes: int,
    k: int = NEIGHBOURS,
    block_size: int = 1024,
) -> np.ndarray:
    """For each query index q and class c: the mean distance from features[q] to its k nearest samples of class c.

    The query itself is left out; a class with fewer than k samples uses all it has, an empty class gives +inf.
    Returns an array of shape (len(queries), num_classes), float64. Float32 features are computed in float32 (others
    in float64), with a relative error near float32's own even for tight classes far from the origin. Memory beyond one
    copy of the features: a few (block_size x dimensions) and (block_size x class size) arrays per thread.
    """
    features = _as_matrix(features, "features")
    labels = _as_labels(labels, num_classes, len(features))
    queries = _as_indices(queries, len(features))
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if block_size < 1:
        raise ValueError(f"block_size must be >= 1, got {block_size}")

    classes = _ClassBlocks.of(features, labels, num_classes)
    result = np.empty((len(queries), num_classes))

    def fill_block(start: int) -> None:
        block_queries = queries[start : start + block_size]
        query_features = features[block_queries].astype(classes.dtype)
        for c in range(num_classes):
            result[start : start + len(block_queries), c] = classes.mean_nearest(
                c, query_features, block_queries, labels, k
            )

    # Each product runs on one BLAS thread, so that its rounding, which decides ties between classes, is the same on
    # every machine; the blocks share the cores instead (numpy releases the GIL in the products), a few at a time,
    # since each thread holds its own block's arrays.
    with one_blas_thread(), ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        list(pool.map(fill_block, range(0, len(queries), block_size)))
    return result


@dataclass(frozen=True)
class _ClassBlocks:
    """Samples grouped by class (each class one contiguous row range), centred on their class mean."""

    members: np.ndarray
    member_norms: np.ndarray
    means: np.ndarray
    bounds: np.ndarray
    position: np.ndarray  # row of each sample in `members`
    dtype: type

    @classmethod
    def of(cls, features: np.ndarray, labels: np.ndarray, num_classes: int) -> _ClassBlocks:
        order = np.argsort(labels, kind="stable")
        bounds = np.concatenate(([0], np.cumsum(np.bincount(labels, minlength=num_classes))))
        position = np.empty(len(order), dtype=np.int64)
        position[order] = np.arange(len(order))
        # Float32 stays float32: the products run twice as fast as in float64, in half the memory.
        dtype = np.float32 if features.dtype.itemsize <= 4 else np.float64
        # ||a - b||^2 = ||a - m||^2 + ||b - m||^2 - 2 (a - m)(b - m) cancels badly when the norms dwarf the distance.
        # With m the mean of b's class, ||b - m|| is the class's own spread, and ||a - m|| is either small too (a near
        # the class) or close to the distance itself (a far from it): the error stays relative to the distance even for
        # tight clusters far from the origin. Centring in float32 only loses the rounding of m, a shift a and b share.
        members = features[order].astype(dtype, copy=False)
        means = np.zeros((num_classes, features.shape[1]), dtype=dtype)
        for c in range(num_classes):
            if bounds[c] < bounds[c + 1]:
                means[c] = members[bounds[c] : bounds[c + 1]].mean(axis=0, dtype=np.float64)
                members[bounds[c] : bounds[c + 1]] -= means[c]
        member_norms = np.einsum("ij,ij->i", members, members, dtype=np.float64).astype(dtype)
        return cls(members, member_norms, means, bounds, position, dtype)

    def mean_nearest(self, c: int, query_features, block_queries, labels, k: int) -> np.ndarray:
        """Mean distance from each query to its k nearest samples of class c (the query itself left out)."""
        lo, hi = self.bounds[c], self.bounds[c + 1]
        if lo == hi:
            return np.full(len(block_queries), np.inf)
        shifted = query_features - self.means[c]
        # Summed in the product's own precision: the product's rounding error is of the same size.
        query_norms = np.einsum("ij,ij->i", shifted, shifted)
        shifted *= -2.0
        # ||b - m||^2 - 2 (a - m)(b - m); ||a - m||^2 is the same along a row, so it is added after the partition.
        squared = shifted @ self.members[lo:hi].T
        squared += self.member_norms[lo:hi]
        mine = np.flatnonzero(labels[block_queries] == c)
        squared[mine, self.position[block_queries[mine]] - lo] = np.inf  # the query itself
        if hi - lo > k:
            squared = np.partition(squared, k - 1, axis=1)[:, :k]
        # Only the query's own inf can be among the k smallest, and only when its class has no more than k samples.
        distances = np.sqrt(np.maximum(squared + query_norms[:, None].astype(np.float64), 0.0))
        finite = np.isfinite(distances)
        count = finite.sum(axis=1)
        total = np.where(finite, distances, 0.0).sum(axis=1)
        return np.divide(total, count, out=np.full(len(block_queries), np.inf), where=count > 0)


def switch_labels(
    features: np.ndarray,
    labels: np.ndarray,
    p: float,
    rng: np.random.Generator,
    num_classes: int,
    k: int = NEIGHBOURS,
) -> tuple[np.ndarray, np.ndarray]:
    """Give each sample, with probability p, the label of its nearest other class (see nearest_class_distances).

    records_to_switch picks the samples; the rest is deterministic. A picked sample keeps its label, and is not marked
    switched, only when every other class is empty. Returns (new labels, switched mask).
    """
    features = _as_matrix(features, "features")
    labels = _as_labels(labels, num_classes, len(features), at_least_two=True)
    chosen = records_to_switch(len(labels), p, rng)
    distances = nearest_class_distances(features, labels, chosen, num_classes, k)
    return _apply_switch(labels, chosen, _without_own_class(distances, labels, chosen))


def switch_record_labels(
    features_by_modality: dict[str, np.ndarray],
    labels: np.ndarray,
    p: float,
    rng: np.random.Generator,
    num_classes: int,
    k: int = NEIGHBOURS,
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Label switching for aligned records: record i of every modality has labels[i] and keeps its pairing.

    Records are picked by records_to_switch and moved by switch_to_nearest, on each modality's
    nearest_class_distances. Returns (new labels, switched mask, {modality: each record's nearest other class in that
    modality alone, or its own label where not switched}).
    """
    if not features_by_modality:
        raise ValueError("features_by_modality must name at least one modality")
    labels = _as_labels(labels, num_classes, at_least_two=True)
    chosen = records_to_switch(len(labels), p, rng)
    distances = {}
    for name, features in features_by_modality.items():
        features = _as_matrix(features, f"features_by_modality[{name!r}]")
        if len(features) != len(labels):
            raise ValueError(f"features_by_modality[{name!r}] has {len(features)} rows, labels has {len(labels)}")
        distances[name] = nearest_class_distances(features, labels, chosen, num_classes, k)
    return switch_to_nearest(labels, chosen, distances, num_classes)


def records_to_switch(num_records: int, p: float, rng: np.random.Generator) -> np.ndarray:
    """The records label switching picks, each with probability p: one ``rng.random(num_records)`` draw."""
    _check_fraction(p, "p")
    return np.flatnonzero(rng.random(num_records) < p)


def switch_to_nearest(
    labels: np.ndarray, chosen: np.ndarray, distances_by_modality: dict[str, np.ndarray], num_classes: int
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Move each `chosen` record to the class with the smallest sum over modalities of its nearest_class_distances
    (one row per chosen record in each modality's array), its own class left out, each modality's distances divided
    by their median finite value over the chosen records and the classes other than their own, so that modalities
    with different feature scales weigh the same. A record keeps its label, and is not marked switched, only when
    every other class is empty. Returns what switch_record_labels returns.
    """
    if not distances_by_modality:
        raise ValueError("distances_by_modality must name at least one modality")
    labels = _as_labels(labels, num_classes, at_least_two=True)
    total = np.zeros((len(chosen), num_classes))
    per_modality = {}
    for name, distances in distances_by_modality.items():
        if np.shape(distances) != total.shape:
            raise ValueError(f"distances_by_modality[{name!r}] has shape {np.shape(distances)}, not {total.shape}")
        distances = _without_own_class(np.array(distances, dtype=np.float64), labels, chosen)
        per_modality[name] = distances
        finite = distances[np.isfinite(distances)]
        scale = np.median(finite) if finite.size else 0.0
        total += distances / scale if scale > 0 else distances
    new_labels, switched = _apply_switch(labels, chosen, total)
    nearest = {name: _apply_switch(labels, chosen, distances)[0] for name, distances in per_modality.items()}
    return new_labels, switched, nearest


def choose_conflicts(
    labels: np.ndarray,
    ratio: float,
    modalities: tuple[str, ...],
    rng: np.random.Generator,
    num_classes: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pick, in each class c, round(ratio * n_c) records (Python's round: halves go to even) whose data in one modality
    is taken from the record at the same position within class (c + 1) mod num_classes (position modulo that class's
    size). A record's position is its rank among its class's records in order of appearance.

    Returns (conflicted mask, index into ``modalities`` or -1, donor record index or -1), one entry per record.
    """
    labels = _as_labels(labels, num_classes, at_least_two=True)
    _check_fraction(ratio, "ratio")
    if len(modalities) == 0:
        raise ValueError("modalities must name at least one modality")
    order = np.argsort(labels, kind="stable")  # stable: within a class, records stay in order of appearance
    members = np.split(order, np.cumsum(np.bincount(labels, minlength=num_classes))[:-1])
    conflicted = np.zeros(len(labels), dtype=bool)
    modality = np.full(len(labels), -1, dtype=np.int64)
    donor = np.full(len(labels), -1, dtype=np.int64)
    for c, records in enumerate(members):
        count = round(ratio * len(records))
        if count == 0:
            continue
        donors = members[(c + 1) % num_classes]
        if len(donors) == 0:
            raise ValueError(f"labels: class {(c + 1) % num_classes} has no records to lend to class {c}")
        positions = rng.choice(len(records), size=count, replace=False)
        targets = records[positions]
        conflicted[targets] = True
        donor[targets] = donors[positions % len(donors)]
        modality[targets] = rng.integers(len(modalities), size=count)
    return conflicted, modality, donor


def _without_own_class(distances, labels, chosen):
    # A sample's own class is never a candidate.
    distances[np.arange(len(chosen)), labels[chosen]] = np.inf
    return distances


def _apply_switch(labels, chosen, distances):
    nearest = distances.argmin(axis=1)
    switchable = np.isfinite(distances[np.arange(len(chosen)), nearest])
    new_labels = labels.astype(np.int64)
    new_labels[chosen[switchable]] = nearest[switchable]
    switched = np.zeros(len(labels), dtype=bool)
    switched[chosen[switchable]] = True
    return new_labels, switched


def _as_matrix(array, name):
    array = np.asarray(array)
    if array.ndim != 2 or not np.issubdtype(array.dtype, np.number):
        raise ValueError(f"{name} must be a 2-D numeric array (samples x dimensions), got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} must be finite (no NaN or inf)")
    return array


def _as_labels(labels, num_classes, length=None, at_least_two=False):
    if num_classes < (2 if at_least_two else 1):
        raise ValueError(f"num_classes must be >= {2 if at_least_two else 1}, got {num_classes}")
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be a 1-D integer array, got shape {labels.shape} and dtype {labels.dtype}")
    if length is not None and len(labels) != length:
        raise ValueError(f"labels has {len(labels)} entries, features has {length} rows")
    if labels.size and not (labels.min() >= 0 and labels.max() < num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes}), got [{labels.min()}, {labels.max()}]")
    return labels


def _as_indices(indices, length):
    indices = np.asarray(indices)
    if indices.ndim != 1 or not (indices.size == 0 or np.issubdtype(indices.dtype, np.integer)):
        raise ValueError(f"queries must be a 1-D integer array, got shape {indices.shape} and dtype {indices.dtype}")
    if indices.size and not (indices.min() >= 0 and indices.max() < length):
        raise ValueError(f"queries must index features' {length} rows, got [{indices.min()}, {indices.max()}]")
    return indices.astype(np.int64)


def _check_fraction(value, name):
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value}")
