"""Real `datasets` builds of the mini source: sizes, fields, pairing, determinism, streaming, num_proc."""

import io
import pickle
from collections import Counter

import datasets
import dill
import numpy as np
import pytest
import soundfile
from conftest import SMALL, png_pixels, read_source_tables

from luma import Luma
from luma_builders.classes import NUM_ID_CLASSES, OOD_CLASSES
from luma_builders.plan.planning import Selection, Shard, plan_records
from luma_builders.plan.source_cache import cached_source


def build(data_dir, cache_dir, config="clean", num_proc=None, **parameters) -> Luma:
    builder = Luma(config_name=config, data_dir=str(data_dir), cache_dir=str(cache_dir), **parameters)
    builder.download_and_prepare(num_proc=num_proc)
    return builder


def undecoded(dataset):
    return dataset.cast_column("image", datasets.Image(decode=False)).cast_column("audio", datasets.Audio(decode=False))


def rows(builder, split) -> list[dict]:
    return undecoded(builder.as_dataset(split)).to_list()


def streamed_rows(builder, split) -> list[dict]:
    return list(undecoded(builder.as_streaming_dataset(split)))


@pytest.fixture(scope="module")
def clean(mini_source, tmp_path_factory):
    return build(mini_source, tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def tables(mini_source):
    return read_source_tables(mini_source)


def expected_ood_size(tables) -> int:
    per_modality = [
        Counter(int(x) for x in tables["audio_labels"]),
        Counter(int(x) for x in tables["text_labels"]),
        Counter(label for _, label, _ in tables["pools"]["train"]),
    ]
    return sum(min(counts[c] for counts in per_modality) for c in OOD_CLASSES)


def test_split_sizes_and_per_class_counts(clean, tables):
    sizes = {split: info.num_examples for split, info in clean.info.splits.items()}
    assert sizes == {
        "train": NUM_ID_CLASSES * SMALL["train_per_class"],
        "test": NUM_ID_CLASSES * SMALL["test_per_class"],
        "ood": expected_ood_size(tables),
    }
    for split, per_class in (("train", SMALL["train_per_class"]), ("test", SMALL["test_per_class"])):
        labels = clean.as_dataset(split)["label"]
        assert Counter(labels) == {c: per_class for c in range(NUM_ID_CLASSES)}


def test_records_follow_the_split_files(clean, tables):
    for split, file_split in (("train", "train_clean"), ("test", "test")):
        dataset = clean.as_dataset(split)
        for modality in ("audio", "text", "image"):
            assert sorted(dataset[f"{modality}_id"]) == sorted(tables["splits"][f"{modality}_{file_split}"])


def test_every_modality_of_a_record_is_its_class_and_matches_the_source(clean, tables):
    for split in ("train", "test", "ood"):
        pool = tables["pools"]["test" if split == "test" else "train"]
        for row in rows(clean, split):
            label = row["label"]
            assert row["clean_label"] == label
            assert row["is_ood"] == (split == "ood") == (label >= NUM_ID_CLASSES)
            assert tables["audio_labels"][row["audio_id"]] == label
            assert tables["text_labels"][row["text_id"]] == label
            assert row["text"] == tables["texts"][row["text_id"]]
            pixels, image_label, image_source = pool[row["image_id"]]
            assert image_label == label and row["image_source"] == image_source
            np.testing.assert_array_equal(png_pixels(row["image"]["bytes"]), pixels)


def test_audio_is_16khz_mono_and_keeps_the_clip_length(clean, mini_source, tables):
    for row in rows(clean, "test")[:20]:
        samples, rate = soundfile.read(io.BytesIO(row["audio"]["bytes"]))
        assert rate == 16_000 and samples.ndim == 1
        info = soundfile.info(mini_source / "audio" / tables["audio_paths"][row["audio_id"]])
        assert abs(len(samples) - info.duration * 16_000) <= 2
        assert np.abs(samples).max() > 0.01
    decoded = clean.as_dataset("test")[0]["audio"]  # the Audio feature decodes it (torchcodec)
    assert decoded.metadata.sample_rate == 16_000


def test_pairing_mixes_sources_and_order_mixes_classes(clean):
    train = clean.as_dataset("train")
    assert len(set(train["image_source"])) >= 2
    assert train["label"][:NUM_ID_CLASSES] != sorted(train["label"][:NUM_ID_CLASSES])


def test_ood_config_injects_flagged_ood_records_into_test(clean, mini_source, tmp_path):
    ood = build(mini_source, tmp_path, "ood")
    test = rows(ood, "test")
    clean_test, clean_ood = rows(clean, "test"), rows(clean, "ood")
    assert len(test) == len(clean_test) + len(clean_ood)
    flagged = [row for row in test if row["is_ood"]]
    assert sorted(r["audio_id"] for r in flagged) == sorted(r["audio_id"] for r in clean_ood)
    assert {r["label"] for r in flagged} == set(OOD_CLASSES)
    assert rows(ood, "train") == rows(clean, "train")


def test_same_seed_same_bytes_and_another_seed_another_pairing(clean, mini_source, tmp_path):
    again = build(mini_source, tmp_path / "again")
    for split in ("train", "test", "ood"):
        assert again.as_dataset(split).data.table.equals(clean.as_dataset(split).data.table)
    other = build(mini_source, tmp_path / "other", seed=1)
    assert other.as_dataset("train")["audio_id"] != clean.as_dataset("train")["audio_id"]
    assert Counter(other.as_dataset("train")["label"]) == Counter(clean.as_dataset("train")["label"])


def test_num_proc_changes_nothing(clean, mini_source, tmp_path):
    parallel = build(mini_source, tmp_path, num_proc=2)
    for split in ("train", "test", "ood"):
        assert rows(parallel, split) == rows(clean, split)


def test_workers_get_their_source_and_shards_whole_through_dill(clean):
    # datasets pickles num_proc jobs' arguments with dill; ours pickle in one piece with the C pickler
    data, _ = cached_source(clean.source, clean.hash)
    shard = Shard(plan_records(data, Selection())["train"][:64])
    for copy in (dill.loads(dill.dumps(shard)), pickle.loads(pickle.dumps(shard))):
        assert type(copy) is Shard and copy == shard and len(copy) == 64
    source = dill.loads(dill.dumps(clean.source))
    assert source == clean.source and source.checksums and source.identity() == clean.hash


def test_http_source_streaming_and_not_give_the_local_records(clean, http_source, tmp_path):
    over_http = build(http_source, tmp_path)
    streaming = Luma(config_name="clean", data_dir=http_source, cache_dir=str(tmp_path / "stream"))
    for split in ("train", "test", "ood"):
        expected = rows(clean, split)
        assert rows(over_http, split) == expected
        assert streamed_rows(streaming, split) == expected


def test_local_streaming_decodes_like_the_built_dataset(clean, mini_source):
    stream = Luma(config_name="clean", data_dir=str(mini_source)).as_streaming_dataset("test")
    first = next(iter(stream))
    built = clean.as_dataset("test")[0]
    np.testing.assert_array_equal(np.asarray(first["image"]), np.asarray(built["image"]))
    assert first["text"] == built["text"] and first["label"] == built["label"]


def test_a_decoded_stream_in_dataloader_workers_gives_every_record_once(clean, mini_source):
    # The README's way to stream decoded records faster than one process decodes them.
    import torch
    from torch.utils.data import DataLoader

    def samples(rows):
        return [(row["id"], np.asarray(row["image"]), torch.from_numpy(row["audio"]["array"])) for row in rows]

    stream = Luma(config_name="clean", data_dir=str(mini_source)).as_streaming_dataset("test")
    assert stream.num_shards >= 2  # so that each worker gets shards of its own
    streamed = [s for batch in DataLoader(stream, batch_size=16, collate_fn=samples, num_workers=2) for s in batch]
    built = clean.as_dataset("test")
    assert sorted(i for i, _, _ in streamed) == sorted(built["id"])
    by_id = {i: (image, audio) for i, image, audio in streamed}
    for row in built.select(range(0, len(built), 50)):
        np.testing.assert_array_equal(by_id[row["id"]][0], np.asarray(row["image"]))
        np.testing.assert_array_equal(by_id[row["id"]][1].numpy(), row["audio"]["array"])


def test_the_alias_names_the_same_variant(mini_source, tmp_path):
    alias = Luma(config_name="label_noise", data_dir=str(mini_source), cache_dir=str(tmp_path))
    assert alias.config.name == "label_noise_0.3" and alias.config.label_switch_prob == 0.3
