"""Diversity sampling's cached picks (FeatureLookup.diversity_samples): a rebuild reads the picks it drew, another
seed draws its own, a damaged file is drawn again, and every build gives the bytes of a build from nothing."""

import logging
import re
from pathlib import Path

from test_builder import build, rows

from luma_builders.sources.transfer import luma_home

DRAWN = re.compile(r"diversity picks of (\w+) drawn and kept in (\S+)")


def drawn(caplog) -> dict[str, str]:
    """Cache file -> modality of every diversity sampling drawn (not read) since the last clear."""
    return {path: modality for modality, path in DRAWN.findall(caplog.text)}


def test_a_rebuild_reads_the_picks_and_damage_is_drawn_again(mini_source, tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.INFO, "luma_builders.plan.planning")
    first = build(mini_source, tmp_path / "first", "low_diversity")
    picks = drawn(caplog)
    assert sorted(picks.values()) == ["audio", "image", "text"]  # low_diversity samples the train split of each
    assert all(Path(path).is_relative_to(luma_home()) for path in picks)
    caplog.clear()
    rebuilt = build(mini_source, tmp_path / "rebuilt", "low_diversity")
    assert not drawn(caplog)
    caplog.clear()
    other_seed = build(mini_source, tmp_path / "seed1", "low_diversity", seed=1)
    assert len(drawn(caplog)) == 3 and not set(drawn(caplog)) & set(picks)  # its own picks, in files of their own

    monkeypatch.setenv("LUMA_HOME", str(tmp_path / "fresh"))  # nothing cached: every pick drawn afresh
    caplog.clear()
    fresh = build(mini_source, tmp_path / "fresh_build", "low_diversity")
    assert len(drawn(caplog)) == 3
    assert rows(fresh, "train") == rows(first, "train") == rows(rebuilt, "train") != rows(other_seed, "train")

    damaged = Path(next(iter(drawn(caplog))))
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2] ^= 0xFF  # in the picks: the zip's checksum no longer matches
    damaged.write_bytes(bytes(data))
    caplog.clear()
    repaired = build(mini_source, tmp_path / "repaired", "low_diversity")
    assert "ignoring unreadable diversity picks" in caplog.text and list(drawn(caplog)) == [str(damaged)]
    assert rows(repaired, "train") == rows(fresh, "train")
