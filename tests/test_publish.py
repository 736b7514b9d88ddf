"""`luma export` and `luma push`: Parquet shards + card that `datasets` loads back into the builder's records.

Real builds of the mini source; the only stand-in is `FakeHubApi` (the Hub's upload API cannot exist here).
"""

import hashlib
import io
from pathlib import Path

import datasets
import pandas as pd
import pyarrow.parquet as pq
import pytest
import soundfile
from datasets.info import DatasetInfosDict
from datasets.utils.metadata import MetadataConfigs
from huggingface_hub import DatasetCard, DatasetCardData, RepoUrl
from test_builder import build, rows, undecoded

from luma import export
from luma_builders.mini.source import MINI_MARKER
from luma_builders.parameters import PARAMETER_SPECS, RECORD_GROUPS, SOURCE_PARAMETERS, parameters_table
from luma_builders.publish.hub import push
from luma_builders.schema import FEATURES
from luma_builders.sources.readers import SourceError

SPLITS = ("train", "test", "ood")
ROW_GROUP_SIZE = 40
VIEWER_LIMIT = 286 * 2**20  # bytes the dataset viewer reads per request


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def exported(mini_source, cache, tmp_path_factory) -> Path:
    # `label_noise` is the alias of label_noise_0.3; "1MB" shards split the 3 MB train split into several files.
    out = tmp_path_factory.mktemp("export") / "luma"
    export(
        ["clean", "label_noise"],
        out,
        data_dir=str(mini_source),
        cache_dir=str(cache),
        max_shard_size="1MB",
        row_group_size=ROW_GROUP_SIZE,
        repo_id="someone/luma",
    )
    return out


@pytest.fixture(scope="module")
def builders(exported, mini_source, cache) -> dict:
    return {name: build(mini_source, cache, name) for name in ("clean", "label_noise_0.3")}


def load(out: Path, config: str | None, tmp_path: Path, **kwargs):
    return datasets.load_dataset(str(out), config, cache_dir=str(tmp_path / "hf"), **kwargs)


def test_load_dataset_gives_the_builders_records_and_features(exported, builders, tmp_path):
    for name, builder in builders.items():
        loaded = load(exported, name, tmp_path)
        assert list(loaded) == list(SPLITS)
        for split in SPLITS:
            assert loaded[split].features == FEATURES and loaded[split].column_names == list(FEATURES)
            assert loaded[split]["id"] == [f"{split}-{i:05d}" for i in range(len(loaded[split]))]
            assert undecoded(loaded[split]).to_list() == rows(builder, split)
    assert any(row["label_switched"] for row in rows(builders["label_noise_0.3"], "train"))


def test_streaming_gives_the_same_records(exported, builders, tmp_path):
    for split in SPLITS:
        stream = load(exported, "label_noise_0.3", tmp_path, split=split, streaming=True)
        assert stream.features == FEATURES
        assert list(undecoded(stream)) == rows(builders["label_noise_0.3"], split)


def test_config_names_default_and_alias(exported, builders, tmp_path):
    assert sorted(datasets.get_dataset_config_names(str(exported))) == ["clean", "label_noise", "label_noise_0.3"]
    assert datasets.get_dataset_default_config_name(str(exported)) == "clean"
    default = load(exported, None, tmp_path, split="test")
    assert undecoded(default).to_list() == rows(builders["clean"], "test")
    alias = load(exported, "label_noise", tmp_path, split="train")
    assert undecoded(alias).to_list() == rows(builders["label_noise_0.3"], "train")


def test_layout_shards_and_small_row_groups(exported):
    assert not list(exported.parent.glob(".*partial*"))  # the staging folder was renamed, nothing left over
    files = sorted(p.relative_to(exported).as_posix() for p in exported.rglob("*") if p.is_file())
    assert "README.md" in files
    shards = [f for f in files if f != "README.md"]
    assert {f.split("/")[1] for f in shards} == {"clean", "label_noise_0.3"}  # the alias has no copy of its own
    for config in ("clean", "label_noise_0.3"):
        for split in SPLITS:
            names = sorted(Path(f).name for f in shards if f.startswith(f"data/{config}/{split}-"))
            count = len(names)
            assert names == [f"{split}-{i:05d}-of-{count:05d}.parquet" for i in range(count)]
    assert len([f for f in shards if f.startswith("data/clean/train-")]) > 1
    for shard in shards:
        parquet = pq.ParquetFile(exported / shard)
        meta = parquet.metadata
        for i in range(meta.num_row_groups):
            assert meta.row_group(i).num_rows <= ROW_GROUP_SIZE
            assert meta.row_group(i).total_byte_size < VIEWER_LIMIT / 50
        media = parquet.read(columns=["image", "audio"]).to_pylist()
        assert all(r[m]["bytes"] and r[m]["path"] is None for r in media for m in ("image", "audio"))


def test_card_metadata_round_trips_through_huggingface_hub(exported, builders, mini_source):
    card = DatasetCard.load(exported / "README.md")
    data = card.data
    assert data.license == ["cc-by-sa-4.0", "cc0-1.0", "cc-by-4.0", "apache-2.0", "other"]  # no ESC-50 noise in it
    assert data.license_name == "cifar-no-stated-licence" and "arxiv.org/abs/2406.09864" in card.text
    assert data.source_datasets == ["original", "extended|cifar10", "extended|cifar100"]
    assert data.pretty_name == "LUMA" and data.language == ["en"]
    # what the build read, by location; a local folder shows as its name, never as a path of this machine
    assert f"| `{mini_source.name}/audio/datalist.csv` |" in card.text and str(mini_source.parent) not in card.text
    assert set(data.task_categories) == {"image-classification", "audio-classification", "text-classification"}
    assert data.size_categories == ["n<1K"]
    configs = MetadataConfigs.from_dataset_card_data(data)
    assert configs.get_default_config_name() == "clean"
    assert configs["label_noise"]["data_files"] == configs["label_noise_0.3"]["data_files"]
    assert {f["split"]: f["path"] for f in configs["clean"]["data_files"]} == {
        split: f"data/clean/{split}-*" for split in SPLITS
    }
    infos = DatasetInfosDict.from_dataset_card_data(data)
    assert set(infos) == {"clean", "label_noise", "label_noise_0.3"}
    for name, info in infos.items():
        assert info.features == FEATURES
        built = builders["clean" if name == "clean" else "label_noise_0.3"].info.splits
        assert {s: info.splits[s].num_examples for s in SPLITS} == {s: built[s].num_examples for s in SPLITS}
    again = DatasetCardData(**data.to_dict())  # the card classes re-emit the same metadata
    assert again.to_yaml() == data.to_yaml()
    assert DatasetCard(str(card)).data.to_dict() == data.to_dict()
    text = card.text
    headings = ["Configs", "Classes", "Record fields", "Sources and licences", "Differences from the authors' tool"]
    assert all(f"\n## {h}\n" in text for h in [*headings, "Bias, risks and limitations", "Citation"])
    assert "| `label_noise_0.3`, alias `label_noise` |" in text and "`label_switch_prob=0.3`" in text
    assert "| `clean` (default) |" in text
    assert "from the embedded synthetic mini source (generated offline by `luma mini`), **not the LUMA data**" in text
    assert "CC BY-NC 3.0" in text and "no licence stated" in text and "Gemma-7B" in text
    assert "@inproceedings{bezirganyan2025luma" in text and 'load_dataset("someone/luma"' in text
    assert all(f"| `{field}` |" in text for field in FEATURES)
    assert parameters_table(RECORD_GROUPS) in text  # the card's parameter table, from the declarations
    assert all(f"| `{p}` |" in text for p, spec in PARAMETER_SPECS.items() if spec.group in RECORD_GROUPS)
    assert not any(f"| `{p}` |" in text for p in SOURCE_PARAMETERS)


def test_card_names_structured_overrides_as_written_on_the_command_line(mini_source, cache, tmp_path):
    parameters = {"image_corruptions": "fog, frost", "noise_splits": ["test"], "image_noise_ratio": 0.5}
    out = export(["clean"], tmp_path / "out", data_dir=str(mini_source), cache_dir=str(cache), parameters=parameters)
    text = DatasetCard.load(out / "README.md").text
    assert (
        "changed for every config: `image_corruptions=fog,frost`, `image_noise_ratio=0.5`, `noise_splits=test`." in text
    )


def test_the_cards_datasets_snippets_decode_audio_or_give_the_wav_bytes(exported, tmp_path):
    text = DatasetCard.load(exported / "README.md").text
    assert "`pip install torch==2.13.0 torchcodec==0.13.0`" in text
    assert 'noisy.cast_column("audio", Audio(decode=False))' in text and "stream.decode(False)" in text
    train = load(exported, "label_noise_0.3", tmp_path, split="train")
    clip = train[0]["audio"].get_all_samples()  # torchcodec's AudioDecoder
    assert clip.sample_rate == 16_000 and clip.data.shape[0] == 1
    wav = train.cast_column("audio", datasets.Audio(decode=False))[0]["audio"]["bytes"]
    samples, rate = soundfile.read(io.BytesIO(wav))
    assert rate == 16_000 and len(samples) == clip.data.shape[1]
    first = next(iter(load(exported, "clean", tmp_path, split="train", streaming=True).decode(False)))
    assert first["audio"]["bytes"][:4] == b"RIFF" and first["image"]["bytes"][:4] == b"\x89PNG"


def test_pandas_reads_one_split_at_a_time_as_the_card_says(exported):
    card = DatasetCard.load(exported / "README.md")
    assert 'fs.glob("datasets/someone/luma/data/label_noise_0.3/train-*.parquet")' in card.text
    infos = DatasetInfosDict.from_dataset_card_data(card.data)
    for config in ("clean", "label_noise_0.3"):
        for split in SPLITS:
            frame = pd.read_parquet(sorted(exported.glob(f"data/{config}/{split}-*.parquet")))
            assert len(frame) == infos[config].splits[split].num_examples
            assert frame["id"].str.startswith(f"{split}-").all()
    mixed = pd.read_parquet(exported / "data" / "clean")  # the folder: what the card warns against
    assert len(mixed) == sum(infos["clean"].splits[split].num_examples for split in SPLITS)


def test_the_card_calls_only_the_mini_generators_output_synthetic(source_copy, tmp_path):
    (source_copy / MINI_MARKER).unlink()  # a local folder the mini generator did not write, as far as one can tell
    out = export(["clean"], tmp_path / "out", data_dir=str(source_copy), cache_dir=str(tmp_path / "cache"))
    text = DatasetCard.load(out / "README.md").text
    assert "from a local LUMA source folder (`source`), **not the published data**" in text
    assert "synthetic mini source" not in text


def test_same_export_same_bytes_and_overwrite(exported, mini_source, cache):
    def digests(root):
        return {p.relative_to(root): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()}

    before = digests(exported)
    with pytest.raises(FileExistsError, match="not empty"):
        export(["clean"], exported, data_dir=str(mini_source), cache_dir=str(cache))
    assert digests(exported) == before
    kwargs = {"data_dir": str(mini_source), "cache_dir": str(cache), "max_shard_size": "1MB", "repo_id": "someone/luma"}
    export(["label_noise_0.3", "clean"], exported, row_group_size=ROW_GROUP_SIZE, overwrite=True, **kwargs)
    assert digests(exported) == before


@pytest.mark.parametrize(
    ("configs", "parameters", "error"),
    [
        (["clean", "no_such_config"], {}, "unknown LUMA config 'no_such_config'"),
        (["clean"], {"label_switch_prob": 2.0}, "label_switch_prob"),
        (["clean"], {"no_such_parameter": 1}, "no_such_parameter"),
    ],
)
def test_bad_configs_or_parameters_fail_before_building(configs, parameters, error, mini_source, tmp_path):
    with pytest.raises(ValueError, match=error):
        export(configs, tmp_path / "out", data_dir=str(mini_source), cache_dir=str(tmp_path), parameters=parameters)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_failed_build_leaves_nothing_and_keeps_the_previous_export(source_copy, tmp_path):
    (source_copy / "text_data.tsv").unlink()
    with pytest.raises(SourceError, match="text_data.tsv"):
        export(["clean"], tmp_path / "out", data_dir=str(source_copy), cache_dir=str(tmp_path / "cache"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "source"]
    previous = tmp_path / "previous"
    (previous / "data").mkdir(parents=True)
    (previous / "README.md").write_text("an earlier export")
    with pytest.raises(SourceError):
        export(["clean"], previous, data_dir=str(source_copy), cache_dir=str(tmp_path / "cache"), overwrite=True)
    assert (previous / "README.md").read_text() == "an earlier export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "previous", "source"]


class FakeHubApi:
    """An HfApi stand-in that records the calls `push` makes (the Hub cannot be reached from the tests)."""

    def __init__(self, remote_files=()):
        self.calls = []
        self.remote_files = list(remote_files)

    def create_repo(self, repo_id, **kwargs):
        self.calls.append(("create_repo", repo_id, kwargs))
        return RepoUrl(f"https://huggingface.co/datasets/{repo_id}")

    def upload_folder(self, **kwargs):
        self.calls.append(("upload_folder", kwargs))


class FakeHubApiWithLargeFolder(FakeHubApi):
    """huggingface_hub 1.x has `upload_large_folder` (resumable), which has no delete_patterns."""

    def upload_large_folder(self, **kwargs):
        self.calls.append(("upload_large_folder", kwargs))

    def list_repo_files(self, repo_id, **kwargs):
        self.calls.append(("list_repo_files", repo_id, kwargs))
        return self.remote_files

    def delete_files(self, **kwargs):
        self.calls.append(("delete_files", kwargs))


def test_push_creates_the_repo_and_uploads_the_folder(exported):
    api = FakeHubApi()
    url = push(exported, "someone/luma", private=True, api=api)
    assert url == "https://huggingface.co/datasets/someone/luma"
    assert api.calls == [
        ("create_repo", "someone/luma", {"repo_type": "dataset", "private": True, "exist_ok": True}),
        (
            "upload_folder",
            {
                "repo_id": "someone/luma",
                "folder_path": str(exported),
                "repo_type": "dataset",
                "commit_message": "Upload LUMA variants (luma export)",
                "delete_patterns": ["data/**"],
            },
        ),
    ]


def test_push_of_a_large_folder_is_resumable_and_removes_stale_shards(exported):
    kept = sorted(p.relative_to(exported).as_posix() for p in (exported / "data").rglob("*.parquet"))
    stale = "data/clean/test-00000-of-00009.parquet"
    api = FakeHubApiWithLargeFolder(["README.md", ".gitattributes", *kept, stale])
    push(exported, "someone/luma", api=api, large_folder_bytes=0)
    assert api.calls == [
        ("create_repo", "someone/luma", {"repo_type": "dataset", "private": False, "exist_ok": True}),
        (
            "upload_large_folder",
            {"repo_id": "someone/luma", "folder_path": str(exported), "repo_type": "dataset", "private": False},
        ),
        ("list_repo_files", "someone/luma", {"repo_type": "dataset"}),
        (
            "delete_files",
            {
                "repo_id": "someone/luma",
                "delete_patterns": [stale],
                "repo_type": "dataset",
                "commit_message": "Remove stale shards",
            },
        ),
    ]
    small = FakeHubApiWithLargeFolder()
    push(exported, "someone/luma", api=small)  # under the threshold: one upload_folder
    assert [call[0] for call in small.calls] == ["create_repo", "upload_folder"]


def test_push_refuses_what_is_not_an_export_before_any_call(exported, tmp_path):
    api = FakeHubApi()
    with pytest.raises(ValueError, match="not a LUMA export"):
        push(tmp_path, "someone/luma", api=api)
    with pytest.raises(ValueError, match="Repo id"):
        push(exported, "not a repo id", api=api)
    assert api.calls == []


def test_a_config_with_esc50_noise_adds_its_noncommercial_licence(mini_source, tmp_path):
    parameters = {"audio_noise_ratio": 0.5}  # the mini source ships a small ESC-50 folder
    out = export(["clean"], tmp_path / "out", data_dir=str(mini_source), cache_dir=str(tmp_path), parameters=parameters)
    data = DatasetCard.load(out / "README.md").data
    assert "cc-by-nc-3.0" in data.license and "extended|esc50" in data.source_datasets
