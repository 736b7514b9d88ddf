"""Label switching's cached nearest-class distances (luma_builders/plan/distances.py): cached rows are the rows a fresh
computation gives, bit for bit, whatever else was computed with them; another seed reuses them; damage is recomputed."""

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
    """n items of 42 classes with ids that are neither sorted nor contiguous, in a shuffled record order."""
    rng = np.random.default_rng(seed)
    ids = rng.choice(10 * n, size=n, replace=False)
    labels = rng.integers(NUM_CLASSES, size=n)
    features = (rng.normal(size=(n, dims)) + labels[:, None] * 0.05).astype(np.float32)
    return ids, labels, dict(zip(ids.tolist(), features, strict=True))


def distances(table, ids, labels, queries, folder, block=256):
    def features(items):
        return np.stack([table[i] for i in items.tolist()])

    cache_file = lambda name: Path(folder, name)  # noqa: E731
    return cached_class_distances(features, ids, labels, queries, NUM_CLASSES, 5, cache_file, block)


def test_cached_rows_equal_fresh_rows_whatever_was_asked_before(tmp_path, caplog):
    caplog.set_level(logging.INFO, "luma_builders.plan.distances")
    ids, labels, table = audio_like(0)
    every = np.arange(len(ids))
    fresh = distances(table, ids, labels, every, tmp_path / "all")
    in_record_order = nearest_class_distances(np.stack(list(table.values())), labels, every, 42)
    np.testing.assert_allclose(fresh, in_record_order, rtol=1e-5)

    rng = np.random.default_rng(1)
    shared = tmp_path / "shared"
    position = np.argsort(np.argsort(ids))  # of each record's item in id order: blocks of 256 positions
    few = np.flatnonzero((position == 10) | (position == 280))  # in blocks 0 and 1
    caplog.clear()
    for queries in (few, rng.permutation(len(ids))[:1], rng.permutation(len(ids))[:700], every):
        # each call computes the blocks its predecessors left out, as they were computed in one go
        assert np.array_equal(distances(table, ids, labels, queries, shared), fresh[queries])
    done = [int(m.group(1)) for m in COMPUTED.finditer(caplog.text)]
    assert done[0] == 512 and sum(done) == len(ids)  # each row once, in whole blocks
    shuffled = rng.permutation(len(ids))  # the same items as other records: the same rows
    assert np.array_equal(distances(table, ids[shuffled], labels[shuffled], every, tmp_path / "o"), fresh[shuffled])


def test_no_record_to_switch_reads_nothing(tmp_path):
    ids, labels, table = audio_like(2, n=30)
    assert distances(table, ids, labels, np.array([], dtype=np.int64), tmp_path).shape == (0, NUM_CLASSES)
    assert not list(tmp_path.iterdir())


def computed_rows(caplog) -> dict[str, tuple[int, int]]:
    """Cache file -> (rows computed, rows asked for) of every distance lookup logged since the last clear."""
    return {path: (int(done), int(asked)) for done, asked, path in COMPUTED.findall(caplog.text)}


def cached(path) -> dict[int, np.ndarray]:
    with np.load(path) as cache:
        return dict(zip(cache["ids"].tolist(), cache["distances"], strict=True))


def test_builds_share_rows_bit_for_bit_and_recompute_damage(mini_source, tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.INFO, "luma_builders.plan.distances")
    build(mini_source, tmp_path / "seed0", "label_noise_0.3")
    first = computed_rows(caplog)
    assert len(first) == 6 and all(done == asked > 0 for done, asked in first.values())  # 3 modalities x 2 splits
    assert all(len(cached(path)) == done for path, (done, _) in first.items())
    caplog.clear()
    # a mini split is one block: the first seed computed every row, so another seed computes none
    other_seed = build(mini_source, tmp_path / "seed1", "label_noise_0.3", seed=1)
    assert computed_rows(caplog) == {}

    shared_home = str(luma_home())
    monkeypatch.setenv("LUMA_HOME", str(tmp_path / "fresh"))  # seed 1 alone: every row of its own
    caplog.clear()
    alone = build(mini_source, tmp_path / "alone", "label_noise_0.3", seed=1)
    for split in ("train", "test"):
        assert rows(alone, split) == rows(other_seed, split)
    for path, (done, asked) in computed_rows(caplog).items():
        assert done == asked
        fresh, shared = cached(path), cached(path.replace(str(luma_home()), shared_home))
        assert fresh.keys() == shared.keys()
        assert all(np.array_equal(row, shared[i]) for i, row in fresh.items())  # bit for bit

    damaged = Path(next(iter(computed_rows(caplog))))
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2] ^= 0xFF  # in the distances: the zip's checksum no longer matches
    damaged.write_bytes(bytes(data))
    caplog.clear()
    rebuilt = build(mini_source, tmp_path / "rebuilt", "label_noise_0.3", seed=1)
    assert "unreadable distance cache" in caplog.text
    assert {p: done == asked for p, (done, asked) in computed_rows(caplog).items()} == {str(damaged): True}
    assert rows(rebuilt, "train") == rows(alone, "train") and rows(rebuilt, "test") == rows(alone, "test")
