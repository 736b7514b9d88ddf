"""The `luma` command: configs, mini, build (in-process, on real data)."""

import logging
import os
import re
from pathlib import Path

import pytest
from conftest import SMALL

from luma import CONFIG_ALIASES, CONFIGS
from luma_builders.cli import LOGGERS, main
from luma_builders.parameters import PARAMETER_SPECS


def test_configs_lists_every_variant_and_parameter(capsys):
    main(["configs"])
    out = capsys.readouterr().out
    for name in [c.name for c in CONFIGS] + list(CONFIG_ALIASES):
        assert name in out
    assert "seed=0" in out and "ood_in_test=True" in out
    for spec in PARAMETER_SPECS.values():
        assert f"  {spec.name}={spec.text(spec.default)}\n      {spec.help} ({spec.accepts()})" in out


@pytest.mark.parametrize("command", ["build", "export"])
def test_help_lists_every_parameter_with_default_and_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    out = capsys.readouterr().out
    assert exit_.value.code == 0
    for spec in PARAMETER_SPECS.values():
        assert f"  {spec.name}={spec.text(spec.default)}\n      {spec.help} ({spec.accepts()})" in out


def test_mini_then_build_prints_a_per_split_summary(tmp_path, capsys):
    sizes = [f"--{key.replace('_', '-')}={value}" for key, value in SMALL.items() if key != "spare_per_class"]
    main(["mini", str(tmp_path / "src"), *sizes])
    assert (tmp_path / "src" / "SHA256SUMS").exists()
    main(["build", "ood", "--source", str(tmp_path / "src"), "--out", str(tmp_path / "cache"), "seed=2"])
    summary = summary_table(capsys.readouterr().out)
    assert summary["train"][:3] == [str(42 * SMALL["train_per_class"]), "42", str(SMALL["train_per_class"])]
    assert summary["test"][1] == "50" and int(summary["test"][3]) == int(summary["ood"][0]) > 0


def summary_table(out: str) -> dict[str, list[str]]:
    """`luma build`'s table by split: records, classes, per class, ood, MB, distinct image, audio and text ids."""
    rows = [line.split() for line in out.splitlines()]
    return {row[0]: row[1:] for row in rows if len(row) == 9 and row[0] in ("train", "test", "ood")}


def test_build_summary_counts_what_was_injected(mini_source, tmp_path, capsys):
    from luma import Luma

    cache, parameters = str(tmp_path / "cache"), ["label_switch_prob=0.3", "conflict_ratio=0.5"]
    main(["build", "clean", "--source", str(mini_source), "--out", cache])
    clean = capsys.readouterr().out
    main(["build", "sample_noise_0.5", "--source", str(mini_source), "--out", cache, *parameters])
    noisy = capsys.readouterr().out
    assert "injected: nothing" in clean and "injected (records):" in noisy
    assert summary_table(clean)["train"][5:] == [str(42 * SMALL["train_per_class"])] * 3  # every item drawn once
    built = Luma(
        "sample_noise_0.5", data_dir=str(mini_source), cache_dir=cache, label_switch_prob=0.3, conflict_ratio=0.5
    )
    for split in ("train", "test"):
        records = (
            built.as_dataset(split)
            .select_columns(["label_switched", "image_noise", "audio_noise", "text_noise", "conflict_modality"])
            .to_pandas()
        )
        audio_banks = records["audio_noise"].dropna().str.partition(":")[0]
        expected = [
            f"{split:<6} label_switched {records['label_switched'].sum()}",
            kinds_line(split, "image_noise", records["image_noise"].dropna()),
            kinds_line(split, "audio_noise", audio_banks),
            kinds_line(split, "text_noise", records["text_noise"].dropna()),
        ] + ([kinds_line(split, "conflict", records["conflict_modality"].dropna())] if split == "test" else [])
        assert all(f"  {line}\n" in noisy for line in expected), (expected, noisy)
    assert "train  conflict" not in noisy  # conflicts are test-only


def kinds_line(split: str, flag: str, values) -> str:
    counts = values.value_counts().sort_index()
    return f"{split:<6} {flag} {counts.sum()}: " + ", ".join(f"{kind} {n}" for kind, n in counts.items())


def test_build_summary_of_low_diversity_shows_the_diversity_weights(mini_source, tmp_path, capsys):
    main(["build", "low_diversity", "--source", str(mini_source), "--out", str(tmp_path / "cache")])
    out = capsys.readouterr().out
    match = re.search(r"^  train  diversity_weight (\d+): image (\d+) \(median weight ([\d.]+)\)", out, re.MULTILINE)
    assert match and int(match[1]) == int(match[2]) == 42 * SMALL["train_per_class"] and float(match[3]) > 1
    assert "test   diversity_weight" not in out  # only train is resampled


def test_a_local_source_shows_no_download_bar(mini_source, tmp_path, capsys):
    main(["build", "sample_noise", "--source", str(mini_source), "--out", str(tmp_path / "cache")])
    err = capsys.readouterr().err
    assert f"building sample_noise from {mini_source}" in err and "Generating train split" in err  # bars are on
    assert "Download" not in err and "download" not in err  # nothing is downloaded: files are read in place


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["build", "clean", "sed=1"], "unknown parameter 'sed'"),
        (["build", "clean", "seed=abc"], "parameter seed='abc'"),
        (["build", "clean", "ood_in_test=maybe"], "expected true or false"),
        (["build", "clean", "image_corruptions=fog,smog"], r"image_corruptions='fog,smog'.*unknown \['smog'\]"),
        (["build", "clean", "noise_splits="], "parameter noise_splits=''.*unknown"),
        (["build", "clean", "text_augmenters=KeyboardNoise("], "parameter text_augmenters=.*cannot read"),
        (["build", "clean", "text_augmenters=[[1]]"], "parameter text_augmenters=.*expected a name"),
        (["build", "cleen", "--source", "/nonexistent"], "unknown LUMA config 'cleen'"),
    ],
)
def test_bad_arguments_name_the_problem(argv, message):
    with pytest.raises(SystemExit, match=message):
        main(argv)


def test_mini_refuses_a_non_empty_folder(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(SystemExit, match="not empty"):
        main(["mini", str(tmp_path)])


def test_export_then_load_dataset(mini_source, tmp_path, capsys):
    import datasets

    out = tmp_path / "hub"
    main(["export", "--configs", "clean,label_noise", "--source", str(mini_source), "--out", str(out)])
    assert "luma push --repo-id" in capsys.readouterr().out
    assert sorted(datasets.get_dataset_config_names(str(out))) == ["clean", "label_noise", "label_noise_0.3"]
    test = datasets.load_dataset(str(out), "label_noise_0.3", split="test")
    assert len(test) == 42 * SMALL["test_per_class"] and "label_switched" in test.column_names


def test_benchmark_rejects_unknown_names(tmp_path):
    with pytest.raises(SystemExit, match="--methods: unknown"):
        main(["benchmark", "--methods", "mcd,svm", "--out", str(tmp_path)])


def test_version_names_the_installed_distribution(capsys):
    import importlib.metadata

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"luma-for-datasets {importlib.metadata.version('luma-for-datasets')}"


def test_top_level_help_lists_every_command_with_its_help(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("configs", "mini", "download", "build", "export", "push", "benchmark", "sweep", "evaluate"):
        assert re.search(rf"^    {command} +\S", out, re.MULTILINE), command
    assert "--quiet" in out and "--verbose" in out and "--version" in out


def test_quiet_silences_loggers_progress_bars_and_status_lines(mini_source, tmp_path, capsys, restored_verbosity):
    import datasets

    assert datasets.is_progress_bar_enabled()
    main(["--quiet", "build", "clean", "--source", str(mini_source), "--out", str(tmp_path / "cache")])
    assert all(logging.getLogger(name).level == logging.ERROR for name in LOGGERS)
    assert not datasets.is_progress_bar_enabled()
    captured = capsys.readouterr()
    assert captured.err == "" and "clean:" in captured.out  # the summary is the result, so it stays


@pytest.mark.parametrize("quiet", [False, True])
def test_export_shows_progress_with_totals_unless_quiet(quiet, mini_source, tmp_path, capsys, restored_verbosity):
    argv = ["export", "--configs", "clean", "--source", str(mini_source), "--out", str(tmp_path / "hub")]
    argv += ["--cache-dir", str(tmp_path)]  # a fresh build: its bars too
    main(["--quiet", *argv] if quiet else argv)
    err = capsys.readouterr().err
    if quiet:
        assert err == ""
        return
    records = 42 * (SMALL["train_per_class"] + SMALL["test_per_class"])
    for bar in ("Generating train split", "Generating test split", "Generating ood split", "Writing clean"):
        # a total, so tqdm shows the ETA (`<00:01`) and the rate
        assert re.search(rf"{bar}: 100%\|.*\| (\d+)/\1 \[\d\d:\d\d<\d\d:\d\d, +[\d.]+ (examples|records)/s\]", err), bar
    ood = int(re.search(r"ood split: 100%.*\| (\d+)/", err)[1])
    assert re.search(r"Writing clean: 100%.*\| (\d+)/\1 ", err)[1] == str(records + ood)


def test_verbose_shows_info_messages(restored_verbosity, capsys):
    import datasets

    main(["--verbose", "configs"])
    assert all(logging.getLogger(name).level == logging.INFO for name in LOGGERS)
    logging.getLogger("luma_builders.cli").info("an info line")
    assert "an info line" in capsys.readouterr().err
    assert datasets.is_progress_bar_enabled()


def test_quiet_and_verbose_exclude_each_other(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--quiet", "--verbose", "configs"])
    assert exit_.value.code == 2 and "not allowed with argument" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["build", "cleen"], "unknown LUMA config 'cleen'; did you mean 'clean'?"),
        (["build", "clean", "sead=1"], "unknown parameter 'sead'; did you mean 'seed'?"),
        (["build", "label_noise_03"], "did you mean 'label_noise_0.3'?"),
        (["export", "--configs", "clean,sampel_noise", "--out", "x"], "did you mean 'sample_noise'?"),
        (["benchmark", "--variants", "claen", "--out", "x"], "did you mean 'clean'?"),
    ],
)
def test_misspelt_names_get_a_suggestion(argv, message):
    with pytest.raises(SystemExit, match=re.escape(message)):
        main(argv)


def test_no_suggestion_for_a_name_close_to_nothing():
    with pytest.raises(SystemExit, match=r"unknown LUMA config 'zzzz'; known: \[") as exit_:
        main(["build", "zzzz"])
    assert "did you mean" not in str(exit_.value)


@pytest.mark.parametrize("command", ["build", "evaluate", "export"])
def test_missing_arguments_are_named_and_key_value_is_optional(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "the following arguments are required" in err
    assert "key=value" not in err.splitlines()[-1]


@pytest.mark.parametrize(
    "argv",
    [
        ["build", "cleen"],
        ["build", "clean", "sead=1"],
        ["export", "--configs", "clean,cleen", "--source", "mini", "--out"],
    ],
)
def test_nothing_is_written_before_the_arguments_are_checked(argv, tmp_path):
    home = Path(os.environ["LUMA_HOME"])
    argv = [*argv, str(tmp_path / "out")] if argv[-1] == "--out" else argv
    with pytest.raises(SystemExit, match="unknown"):
        main(argv)
    assert not any(home.iterdir()) and not (tmp_path / "out").exists()
