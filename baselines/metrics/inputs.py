"""Input checks shared by the metrics: numpy arrays in, clear ValueErrors out."""

import numpy as np

# A row rounded to float32 sums to 1 within ~1e-6, to bfloat16 within 2^-9 (each p_k is off by at most 2^-9 p_k);
# logits, or a softmax taken over the wrong axis, miss by far more.
_SUM_TOLERANCE = 1e-2


def to_numpy(x, name: str) -> np.ndarray:
    """`x` as a numpy array; torch tensors are detached and moved to the CPU (floats as float64)."""
    if hasattr(x, "detach"):
        x = x.detach().cpu()
        # bfloat16 and half tensors have no numpy equivalent (or a lossy one); the metrics work in float64 anyway.
        x = x.double().numpy() if x.is_floating_point() else x.numpy()
    try:
        return np.asarray(x)
    except ValueError as error:  # ragged lists
        raise ValueError(f"{name} must be a rectangular array: {error}") from None


def probabilities(probs, name: str = "probs", ndim: int = 2) -> np.ndarray:
    """float64 probability rows, classes on the last of `ndim` axes, that sum to 1 over the class axis."""
    probs = to_numpy(probs, name)
    if probs.ndim != ndim or probs.size == 0 or probs.shape[-1] < 2:
        shape = "(N, K)" if ndim == 2 else "(S, N, K) (members, records, classes)"
        raise ValueError(f"{name} must have shape {shape} with K >= 2 classes and no empty axis, got {probs.shape}")
    if probs.dtype.kind not in "iuf":
        raise ValueError(f"{name} must hold numbers, got dtype {probs.dtype}")
    probs = probs.astype(np.float64)
    if not np.isfinite(probs).all() or (probs < 0).any():
        raise ValueError(f"{name} must be finite and non-negative (probabilities, not logits)")
    sums = probs.sum(axis=-1)
    if not np.allclose(sums, 1.0, rtol=0.0, atol=_SUM_TOLERANCE):
        worst = np.unravel_index(np.argmax(np.abs(sums - 1.0)), sums.shape)
        raise ValueError(f"{name} rows must sum to 1 over the class axis (the last); row {worst} sums to {sums[worst]}")
    return probs


def labels_for(labels, num_samples: int, num_classes: int, name: str = "labels") -> np.ndarray:
    """(N,) integer class indices in [0, num_classes)."""
    labels = to_numpy(labels, name)
    if labels.shape != (num_samples,):
        raise ValueError(f"{name} must have shape ({num_samples},), got {labels.shape}")
    if labels.dtype.kind == "f" and np.isfinite(labels).all() and (labels == np.round(labels)).all():
        labels = labels.astype(np.int64)  # integer-valued floats, e.g. from a dataset column
    if labels.dtype.kind not in "iu":
        raise ValueError(f"{name} must be integer class indices, got dtype {labels.dtype}")
    if num_samples and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"{name} must lie in [0, {num_classes}), got values in [{labels.min()}, {labels.max()}]")
    return labels.astype(np.int64)


def scores_1d(scores, name: str, num_samples: int | None = None) -> np.ndarray:
    """(N,) finite float64 scores."""
    scores = to_numpy(scores, name)
    if scores.ndim != 1 or scores.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array, got shape {scores.shape}")
    if num_samples is not None and scores.shape[0] != num_samples:
        raise ValueError(f"{name} must have shape ({num_samples},), got {scores.shape}")
    if scores.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be numeric, got dtype {scores.dtype}")
    scores = scores.astype(np.float64)
    if not np.isfinite(scores).all():
        raise ValueError(f"{name} must be finite")
    return scores


def binary_flags(flags, name: str, num_samples: int) -> np.ndarray:
    """(N,) booleans from booleans or 0/1 values."""
    flags = to_numpy(flags, name)
    if flags.shape != (num_samples,):
        raise ValueError(f"{name} must have shape ({num_samples},), got {flags.shape}")
    if flags.dtype != bool and (flags.dtype.kind not in "iuf" or not np.isin(flags, (0, 1)).all()):
        raise ValueError(f"{name} must be booleans or 0/1 values")
    return flags.astype(bool)
