"""`luma export` and `luma push`: Parquet shards + card that `datasets` loads back into the builder's records.

Real builds of the mini source; the only stand-in is `FakeHubApi` (the Hub's upload API cannot exist here). The
Hub's refusals come from a loopback server answering as the Hub does; offline is a closed loopback port.
"""

import hashlib
import http.server
import io
import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import datasets
import mlcroissant
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import soundfile
import yaml
from datasets.info import DatasetInfosDict
from datasets.utils.metadata import MetadataConfigs
from huggingface_hub import CommitInfo, DatasetCard, DatasetCardData, RepoUrl
from PIL import Image
from test_builder import build, rows, undecoded

from luma import export
from luma_builders.cli import main
from luma_builders.mini.source import MINI_MARKER
from luma_builders.parameters import PARAMETER_SPECS, RECORD_GROUPS, SOURCE_PARAMETERS, parameters_table
from luma_builders.publish.croissant import LICENCE_URLS
from luma_builders.publish.hub import PushError, push
from luma_builders.schema import FEATURES, FIELDS
from luma_builders.sources.readers import SourceError

SPLITS = ("train", "test", "ood")
ROW_GROUP_SIZE = 40
VIEWER_LIMIT = 286 * 2**20  # bytes the dataset viewer reads per request
ROOT = Path(__file__).resolve().parents[1]


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
    assert "README.md" in files and "croissant.json" in files
    shards = [f for f in files if f not in ("README.md", "croissant.json")]
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
    front_matter = (exported / "README.md").read_text(encoding="utf-8").split("---\n")[1]
    assert yaml.safe_load(front_matter) == data.to_dict()  # the YAML as written is what huggingface_hub parses
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


def croissant_row(record: dict, config: str) -> dict:
    """A record as mlcroissant yields it, keyed and typed as `rows` gives the builder's (media aside)."""
    row = {}
    for key, value in record.items():
        if isinstance(value, dict):  # a struct: its members keyed by their full field names
            value = {member.rsplit("/", 1)[1]: inner for member, inner in value.items()}
        elif isinstance(value, bytes) and key != f"{config}/audio":
            value = value.decode()  # mlcroissant gives sc:Text as bytes
        row[key.removeprefix(f"{config}/")] = value
    return row


def test_croissant_describes_the_export_and_mlcroissant_reads_its_records(exported, builders):
    path = exported / "croissant.json"
    dataset = mlcroissant.Dataset(jsonld=str(path))
    issues = dataset.metadata.issues
    assert not issues.errors
    # The one warning: no date, as an export is byte-reproducible and does not know when it will be published.
    assert [w for w in issues.warnings if "datePublished" not in str(w)] == []
    document = json.loads(path.read_text(encoding="utf-8"))
    card = DatasetCard.load(exported / "README.md").data
    assert document["license"] == [LICENCE_URLS.get(name, card.license_link) for name in card.license]
    assert document["citeAs"] == builders["clean"].info.citation.strip()
    assert document["url"] == "https://huggingface.co/datasets/someone/luma"
    card_object, *file_sets = document["distribution"]
    assert card_object["sha256"] == hashlib.sha256((exported / "README.md").read_bytes()).hexdigest()
    assert {f["@id"]: f["includes"] for f in file_sets} == {
        f"parquet-{config}": [f"data/{config}/{split}-*.parquet" for split in SPLITS] for config in builders
    }
    assert all(f["encodingFormat"] == "application/x-parquet" for f in file_sets)
    record_sets = {r["@id"]: r for r in document["recordSet"]}
    assert list(record_sets) == ["classes", "splits", "clean", "label_noise_0.3"]
    assert "Alias: label_noise." in record_sets["label_noise_0.3"]["description"]
    for config, builder in builders.items():
        fields = record_sets[config]["field"]
        assert [f["@id"] for f in fields] == [f"{config}/{f.name}" for f in FIELDS] + [f"{config}/split"]
        described = [f for field in fields for f in field.get("subField", [field])]
        assert all(f["description"] and f["dataType"] for f in described)
        by_split = {split: [] for split in SPLITS}
        for record in dataset.records(record_set=config):
            row = croissant_row(record, config)
            by_split[row.pop("split")].append(row)
        for split in SPLITS:
            expected = rows(builder, split)
            got = sorted(by_split[split], key=lambda r: r["id"])
            assert [r["id"] for r in got] == [r["id"] for r in expected]
            for record, row in zip(got, expected, strict=True):
                image = np.asarray(Image.open(io.BytesIO(row.pop("image")["bytes"])))
                assert np.array_equal(np.asarray(record.pop("image")), image)
                assert record.pop("audio") == row.pop("audio")["bytes"]
                # Croissant has no null struct: mlcroissant gives a struct's members, each null.
                structs = {f.name: dict.fromkeys(f.feature) for f in FIELDS if isinstance(f.feature, dict)}
                assert record == {
                    name: structs[name] if name in structs and value is None else value for name, value in row.items()
                }


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

    def __init__(self, token=None):
        self.token = token
        self.calls = []

    def create_repo(self, repo_id, **kwargs):
        self.calls.append(("create_repo", repo_id, kwargs))
        return RepoUrl(f"https://huggingface.co/datasets/{repo_id}")

    def upload_folder(self, **kwargs):
        self.calls.append(("upload_folder", kwargs))
        pr = "https://huggingface.co/datasets/someone/luma/discussions/1" if kwargs["create_pr"] else None
        return CommitInfo(
            commit_url="https://huggingface.co/datasets/someone/luma/commit/abc",
            commit_message=kwargs["commit_message"],
            commit_description="",
            oid="abc",
            pr_url=pr,
        )


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
                "revision": None,
                "create_pr": False,
                "commit_message": "Upload LUMA variants (luma export)",
                "delete_patterns": ["data/**"],
            },
        ),
    ]


def test_luma_push_passes_token_revision_pull_request_and_message(exported, monkeypatch, capsys):
    import huggingface_hub

    apis = []
    monkeypatch.setattr(huggingface_hub, "HfApi", lambda token=None: apis.append(FakeHubApi(token)) or apis[-1])
    argv = ["push", "--repo-id", "someone/luma", "--token", "hf_secret", "--revision", "v2", "--create-pr"]
    main([*argv, "--commit-message", "LUMA v2", str(exported)])
    assert capsys.readouterr().out == "https://huggingface.co/datasets/someone/luma/discussions/1\n"
    [api] = apis
    assert api.token == "hf_secret"
    upload = api.calls[1][1]
    assert (upload["revision"], upload["create_pr"], upload["commit_message"]) == ("v2", True, "LUMA v2")


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # nothing listens once the socket is closed


@pytest.mark.parametrize("offline_mode", ["0", "1"])
def test_luma_push_offline_fails_in_one_line(exported, offline_mode):
    # A process of its own, as a user runs it: huggingface_hub reads HF_ENDPOINT and HF_HUB_OFFLINE at import.
    endpoint = f"http://127.0.0.1:{closed_port()}"
    env = {**os.environ, "HF_ENDPOINT": endpoint, "HF_HUB_OFFLINE": offline_mode, "HF_TOKEN": "hf_test"}
    command = [sys.executable, "-m", "luma_builders.cli", "push", "--repo-id", "someone/luma", str(exported)]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith(f"error: someone/luma: cannot reach the Hub at {endpoint}: ")
    assert ("offline mode" if offline_mode == "1" else "Connection refused") in line


class RefusingHub(http.server.BaseHTTPRequestHandler):
    """The Hub's answers to a push it refuses: `create` is the status of /api/repos/create (200: the repo exists),
    `refusal` the (status, X-Error-Code) of every other request."""

    create = 200
    refusal = (404, "RevisionNotFound")

    def log_message(self, *args):
        pass

    def _answer(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        creating = self.path.startswith("/api/repos/create")
        status, code = (self.create, None) if creating else self.refusal
        host = f"http://{self.headers['Host']}"
        body = json.dumps({"url": f"{host}/datasets/someone/luma"} if status == 200 else {"error": "refused"}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if code:
            self.send_header("X-Error-Code", code)
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_HEAD = _answer


@pytest.mark.parametrize(
    ("create", "refusal", "message"),
    [
        (401, (500, None), "not authorised to push (HTTP 401): log in with `hf auth login`"),
        (403, (500, None), "not authorised to push (HTTP 403)"),
        (200, (403, None), "not authorised to push (HTTP 403)"),
        (200, (404, "RevisionNotFound"), "no branch 'v2' on the Hub"),
        (200, (404, "RepoNotFound"), "no such dataset repo, or none this token can see (HTTP 404)"),
        (200, (400, None), "the Hub refused the push (HTTP 400)"),
    ],
)
def test_push_refused_by_the_hub_fails_with_one_line_naming_the_repo(exported, create, refusal, message):
    from huggingface_hub import HfApi

    handler = type("Hub", (RefusingHub,), {"create": create, "refusal": refusal})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        api = HfApi(endpoint=f"http://127.0.0.1:{server.server_port}", token="hf_test")
        with pytest.raises(PushError) as refused:
            push(exported, "someone/luma", api=api, revision="v2")
    finally:
        server.shutdown()
        server.server_close()
    assert str(refused.value).startswith("someone/luma: ") and message in str(refused.value)
    assert "\n" not in str(refused.value)


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


def test_an_export_at_native_rates_says_so_and_loads_each_clip_at_its_own_rate(mini_source, tmp_path):
    parameters = {"sampling_rate": "native"}
    out = export(["clean"], tmp_path / "out", data_dir=str(mini_source), cache_dir=str(tmp_path), parameters=parameters)
    card = DatasetCard.load(out / "README.md")
    assert "`sampling_rate=native`" in card.text and "a spoken class word (each clip at its own rate)" in card.text
    assert "| `audio` | Audio (WAV bytes, mono, each clip at its own rate) |" in card.text  # the fields' table
    ood = load(out, "clean", tmp_path, split="ood")
    assert ood.features["audio"].sampling_rate is None  # datasets decodes each clip at its own rate
    rates = set()
    for row in ood.cast_column("audio", datasets.Audio(decode=False)):
        rate = soundfile.info(io.BytesIO(row["audio"]["bytes"])).samplerate
        assert rate == soundfile.info(mini_source / row["audio_path"]).samplerate
        rates.add(rate)
    assert len(rates) >= 2
