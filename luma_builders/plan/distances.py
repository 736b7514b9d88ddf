"""Label switching's nearest-class distances, cached on disk beside the features, one row per item.

At full scale these distances cost more than anything else a build with features cached does. A row depends on its
item, on the split's items of that modality (with their labels) and on k, and on nothing a seed changes when the split
is the published one: another seed of the same split reuses the rows of every item it picks again.

A cached row must be the row a fresh computation gives, bit for bit, or a build's bytes would depend on what was
built before it. The products behind the distances (BLAS) round a row differently with the number of rows computed
with it and its place among them, so rows are computed in canonical blocks: the items sorted by id, cut into blocks of
`BLOCK`, each block whole. With p = 0.3 every block holds a picked record, so the first build computes every row of a
split and any later seed or p finds them all cached.
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

# Bump whenever the rows' values change (nearest_class_distances or the order it sees): the version keys the files.
DISTANCES_VERSION = 1
# Rows computed together: 2048 x the dimensions of the queries and 2048 x a class's size of distances at a time.
BLOCK = 2048


def cached_class_distances(
    features: Callable[[np.ndarray], np.ndarray],
    ids: np.ndarray,
    labels: np.ndarray,
    queries: np.ndarray,
    num_classes: int,
    k: int,
    cache_file: Callable[[str], Path],
    block: int = BLOCK,
) -> np.ndarray:
    """nearest_class_distances of the records `queries`, whose items (of one modality and pool) are `ids[queries]`,
    among all records' items `ids` with their `labels`; `features(sorted ids)` gives the items' features and
    `cache_file(name)` the cache file of a name.

    Computed over the items sorted by id in whole blocks of `block`, so that a row depends neither on the order of
    the records nor on which rows are asked for: a cached row is the row a fresh computation gives, bit for bit. An
    item that appears more than once gets the row of its first copy (the other copies count as its neighbours).
    """
    ids, labels = np.asarray(ids), np.asarray(labels)
    if len(queries) == 0:
        return np.empty((0, num_classes))
    order = np.argsort(ids, kind="stable")
    items, item_labels = ids[order], labels[order].astype(np.int64)
    digest = hashlib.sha256(items.astype(np.int64).tobytes() + item_labels.tobytes() + str(num_classes).encode())
    path = cache_file(f"distances-k{k}-b{block}-v{DISTANCES_VERSION}-{digest.hexdigest()[:16]}")

    def whole_blocks(positions: np.ndarray) -> np.ndarray:
        """The positions (in `items`) of every block that holds one of `positions`."""
        starts = np.unique(positions // block) * block
        return np.concatenate([np.arange(start, min(start + block, len(items))) for start in starts])

    def compute(missing: np.ndarray, _at: np.ndarray) -> np.ndarray:
        positions = np.searchsorted(items, missing)
        computed = whole_blocks(positions)  # all rows of a block are there when one is: it is all missing
        logger.info("%d of %d distance rows computed, the others read from %s", len(computed), len(wanted), path)
        rows = nearest_class_distances(features(items), item_labels, computed, num_classes, k, block_size=block)
        return rows[np.searchsorted(computed, positions)]

    queried = ids[queries]
    wanted = np.unique(items[whole_blocks(np.searchsorted(items, queried))])  # every row of the blocks touched
    rows = RowCache(path, "distances", np.float64, "distance cache").rows(wanted, compute)
    return rows[np.searchsorted(wanted, queried)]
