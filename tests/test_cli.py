"""The `luma` command: configs, mini, build (in-process, on real data)."""

import pytest
from conftest import SMALL

from luma import CONFIG_ALIASES, CONFIGS
from luma_builders.cli import main


def test_configs_lists_every_variant_and_parameter(capsys):
    main(["configs"])
    out = capsys.readouterr().out
    for name in [c.name for c in CONFIGS] + list(CONFIG_ALIASES):
        assert name in out
    assert "seed=0" in out and "ood_in_test=True" in out


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
