"""Label switching's cached nearest-class distances (luma_builders/plan/distances.py): cached rows are the rows a fresh
computation gives, bit for bit; a rebuild reads them; damage is recomputed."""

import logging
import re
from pathlib import Path

import numpy as np
from test_builder import build, rows

from luma_builders.plan.distances import cached_class_distances
from luma_builders.plan.selection import nearest_class_distances
from luma_builders.sources.transfer import luma_home

COMPUTED = re.compile(r"(\d+) of (\d+) distance rows computed, the others read from (\S+)")
NUM_CLASSES = 42


def audio_like(seed, n=2600, dims=129):
    """The features of n items of 42 classes by id, and records of them in a shuffled order with their labels."""
    rng = np.random.default_rng(seed)
    ids = rng.choice(10 * n, size=n, replace=False)
    labels = rng.integers(NUM_CLASSES, size=n)
    features = (rng.normal(size=(n, dims)) + labels[:, None] * 0.05).astype(np.float32)
    return ids, labels, dict(zip(ids.tolist(), features, strict=True))


def distances(table, ids, labels, queries, folder):
    def features(items):
        return np.stack([table[i] for i in items.tolist()])

    cache_file = lambda name: Path(folder, f"{name}.npz")  # noqa: E731
    return cached_class_distances(features, ids, labels, queries, NUM_CLASSES, 5, cache_file)


def computed_rows(caplog) -> dict[str, tuple[int, int]]:
    """Cache file -> (rows computed, rows asked for) of every distance lookup logged since the last clear."""
    return {path: (int(done), int(asked)) for done, asked, path in COMPUTED.findall(caplog.text)}


def test_cached_rows_are_the_rows_of_a_fresh_computation(tmp_path, caplog):
    caplog.set_level(logging.INFO, "luma_builders.plan.distances")
    ids, labels, table = audio_like(0)
    queries = np.sort(np.random.default_rng(1).permutation(len(ids))[:1500])  # more than one query block
    expected = nearest_class_distances(np.stack([table[i] for i in ids.tolist()]), labels, queries, NUM_CLASSES)
    first = distances(table, ids, labels, queries, tmp_path)
    assert np.array_equal(first, expected) and list(computed_rows(caplog).values()) == [(1500, 1500)]
    caplog.clear()
    assert np.array_equal(distances(table, ids, labels, queries, tmp_path), expected) and not computed_rows(caplog)

    (path,) = tmp_path.iterdir()
    with np.load(path) as cache:  # a file that lost rows: they are computed with all the others, as fresh
        np.savez(path, ids=cache["ids"][::3], distances=cache["distances"][::3])
    assert np.array_equal(distances(table, ids, labels, queries, tmp_path), expected)
    assert list(computed_rows(caplog).values()) == [(1000, 1500)]

    caplog.clear()  # other records picked, or the same items in another order: other rows, another file
    distances(table, ids, labels, queries[1:], tmp_path)
    distances(table, ids[::-1], labels[::-1], queries, tmp_path)
    assert list(computed_rows(caplog).values()) == [(1499, 1499), (1500, 1500)] and len(list(tmp_path.iterdir())) == 3


def test_no_record_to_switch_reads_and_writes_nothing(tmp_path):
    ids, labels, table = audio_like(2, n=30)
    assert distances(table, ids, labels, np.array([], dtype=np.int64), tmp_path).shape == (0, NUM_CLASSES)
    assert not list(tmp_path.iterdir())


def test_a_rebuild_reads_the_rows_and_damage_is_recomputed(mini_source, tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.INFO, "luma_builders.plan.distances")
    first = build(mini_source, tmp_path / "first", "label_noise_0.3")
    computed = computed_rows(caplog)
    assert len(computed) == 6 and all(done == asked > 0 for done, asked in computed.values())  # 3 modalities x 2 splits
    caplog.clear()
    rebuilt = build(mini_source, tmp_path / "rebuilt", "label_noise_0.3")
    assert not computed_rows(caplog)
    caplog.clear()
    other_seed = build(mini_source, tmp_path / "seed1", "label_noise_0.3", seed=1)
    assert len(computed_rows(caplog)) == 6 and not set(computed_rows(caplog)) & set(computed)  # its own rows

    monkeypatch.setenv("LUMA_HOME", str(tmp_path / "fresh"))  # nothing cached: every row computed afresh
    caplog.clear()
    fresh = build(mini_source, tmp_path / "fresh_build", "label_noise_0.3")
    assert len(computed_rows(caplog)) == 6
    for split in ("train", "test"):
        assert rows(fresh, split) == rows(first, split) == rows(rebuilt, split) != rows(other_seed, split)

    damaged = Path(next(iter(computed_rows(caplog))))
    assert damaged.is_relative_to(luma_home())
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2] ^= 0xFF  # in the distances: the zip's checksum no longer matches
    damaged.write_bytes(bytes(data))
    caplog.clear()
    repaired = build(mini_source, tmp_path / "repaired", "label_noise_0.3")
    assert "unreadable distance cache" in caplog.text
    assert {p: done == asked for p, (done, asked) in computed_rows(caplog).items()} == {str(damaged): True}
    assert rows(repaired, "train") == rows(fresh, "train") and rows(repaired, "test") == rows(fresh, "test")
