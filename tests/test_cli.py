"""The `luma` command: configs, mini, build (in-process, on real data)."""

import pytest
from conftest import SMALL

from luma import CONFIG_ALIASES, CONFIGS
from luma_builders.cli import main
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
    lines = capsys.readouterr().out.splitlines()
    summary = {line.split()[0]: line.split()[1:] for line in lines[-3:]}
    assert summary["train"][:3] == [str(42 * SMALL["train_per_class"]), "42", str(SMALL["train_per_class"])]
    assert summary["test"][1] == "50" and int(summary["test"][3]) == int(summary["ood"][0]) > 0


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


def test_benchmark_writes_the_report_and_plots(mini_source, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LUMA_HOME", str(tmp_path / "home"))
    out = tmp_path / "report"
    argv = ["benchmark", "--source", str(mini_source), "--variants", "clean,label_noise", "--methods", "mcd,rcml"]
    main([*argv, "--modalities", "text,multimodal", "--epochs", "2", "--mc-passes", "3", "--out", str(out)])
    report = (out / "report.md").read_text()
    assert "Table 1 (multimodal)" in report and "Table 2" in report and "label_switched" in report
    assert all((out / name).stat().st_size > 1000 for name in ("reliability.png", "ood_roc.png"))
    assert "uncertainty_distributions.png" in report


def test_benchmark_rejects_unknown_names(tmp_path):
    with pytest.raises(SystemExit, match="--methods: unknown"):
        main(["benchmark", "--methods", "mcd,svm", "--out", str(tmp_path)])
