"""Label switching's nearest-class distances, cached on disk beside the features.

At full scale these distances cost more than anything else a build with its features cached does. A cached row must
be the row a fresh computation gives, bit for bit, or a build's bytes would depend on what was built before it. The
products behind the distances (BLAS) round a row differently with the rows computed with it and their order, and
this rounding decides exact ties between classes (texts whose nearest neighbours sit at the same distances: a record
of the full-scale label_noise_0.3 changed when the rows were computed in another order). So the rows are computed as
they always were, over the records in their order, and a file holds the rows of one exact set of inputs: a rebuild
with the same parameters reads them, another seed computes its own.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np

from luma_builders.features import RowCache
from luma_builders.plan.selection import nearest_class_distances

logger = logging.getLogger(__name__)

# Bump whenever the rows' values change (nearest_class_distances or what it is given): the version keys the files.
DISTANCES_VERSION = 2  # 2: computed on one BLAS thread (luma_builders.blas)


def cached_class_distances(
    features: Callable[[np.ndarray], np.ndarray],
    ids: np.ndarray,
    labels: np.ndarray,
    queries: np.ndarray,
    num_classes: int,
    k: int,
    cache_file: Callable[[str], Path],
) -> np.ndarray:
    """nearest_class_distances(features(ids), labels, queries, num_classes, k): the records' items `ids` (of one
    modality and pool, in the records' order) with their `labels`, the records `queries` (sorted, unique). The rows
    are cached in `cache_file(name)`, a name that digests every input but the features (which the file's folder
    keys: the source and the extractor)."""
    ids, labels, queries = (np.asarray(a, dtype=np.int64) for a in (ids, labels, queries))
    digest = hashlib.sha256(b"".join(a.tobytes() + b"|" for a in (ids, labels, queries)) + str(num_classes).encode())
    path = cache_file(f"distances-k{k}-v{DISTANCES_VERSION}-{digest.hexdigest()[:16]}")

    def compute(missing: np.ndarray, _at: np.ndarray) -> np.ndarray:
        # all rows at once even when some were cached: only then are they the rows of a fresh computation
        logger.info("%d of %d distance rows computed, the others read from %s", len(missing), len(queries), path)
        rows = nearest_class_distances(features(ids), labels, queries, num_classes, k)
        return rows[np.searchsorted(queries, missing)]

    if len(queries) == 0:
        return np.empty((0, num_classes))
    return RowCache(path, "distances", np.float64, "distance cache").rows(queries, compute)
