"""`luma`: list, build, export, push and benchmark the LUMA variants; write the mini source; score predictions."""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import importlib.metadata
import inspect
import logging
import shutil
import sys
import tempfile
from pathlib import Path

from luma_builders.mini.source import write_mini_source
from luma_builders.parameters import (
    CONFIG_ALIASES,
    CONFIGS,
    PARAMETER_SPECS,
    did_you_mean,
    parameters_help,
    resolve_config,
)
from luma_builders.publish.export import MAX_SHARD_SIZE, ROW_GROUP_SIZE
from luma_builders.publish.hub import COMMIT_MESSAGE
from luma_builders.sources.transfer import atomic_write, luma_home
from luma_builders.summary import SUMMARY_FIELDS, build_summary

MINI_OPTIONS = ("seed", "train_per_class", "test_per_class", "ood_per_class")  # spare_per_class stays internal
MINI_DEFAULTS = {name: inspect.signature(write_mini_source).parameters[name].default for name in MINI_OPTIONS}
PARAMETERS_EPILOG = "parameters (key=value), by group, with their defaults:\n" + parameters_help()
DISTRIBUTION = "luma-for-datasets"
LOGGERS = ("datasets", "huggingface_hub", "luma_builders")  # what --quiet and --verbose set


def positive_int(text: str) -> int:
    """argparse type of a count that must be >= 1 (argparse names the option in its error)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def mini_source(**options) -> Path:
    """The embedded mini source for `options`, written once into the cache (atomically) and reused."""
    from luma_builders.mini import source, text

    options = {**MINI_DEFAULTS, **options}
    # The generator's own code is part of the key, so a changed generator never reuses an old tree.
    code = hashlib.sha256(b"".join(Path(m.__file__).read_bytes() for m in (source, text))).hexdigest()[:12]
    target = luma_home() / ("mini-" + "-".join(f"{k}{v}" for k, v in sorted(options.items())) + f"-{code}")
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".partial-"))
        try:
            write_mini_source(staging, **options)
            staging.rename(target)
        except OSError:
            if not target.exists():  # else another process wrote the same tree first: theirs is as good
                raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target


def parse_parameters(pairs: list[str]) -> dict:
    """`key=value` strings -> keyword arguments of `Luma(...)`, read as each parameter declares."""
    parameters = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep:
            raise SystemExit(f"error: expected key=value, got {pair!r}")
        if key not in PARAMETER_SPECS:
            hint = did_you_mean(key, PARAMETER_SPECS)
            raise SystemExit(f"error: unknown parameter {key!r}; {hint}known: {', '.join(PARAMETER_SPECS)}")
        try:
            parameters[key] = PARAMETER_SPECS[key].from_text(text)
        except ValueError as err:
            raise SystemExit(f"error: parameter {key}={text!r}: {err}") from None
    return parameters


def _configs(_args) -> None:
    for config in CONFIGS:
        changed = " ".join(f"{p}={PARAMETER_SPECS[p].text(value)}" for p, value in config.changes().items())
        print(f"{config.name:<16} {config.description}  {changed}".rstrip())
    for alias, target in CONFIG_ALIASES.items():
        print(f"{alias:<16} alias of {target}")
    print(f"\n{PARAMETERS_EPILOG}")


def _mini(args) -> None:
    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        raise SystemExit(f"error: {out} exists and is not empty")
    write_mini_source(
        out,
        seed=args.seed,
        train_per_class=args.train_per_class,
        test_per_class=args.test_per_class,
        ood_per_class=args.ood_per_class,
    )
    print(f"mini LUMA source written to {out}")


def _resolve_source(source: str) -> str | None:
    if source == "mini":
        return str(mini_source())
    if source == "real":
        return None
    return source


def _prepared(config: str, source: str, parameters: dict, cache_dir: str | None, num_proc: int | None = None):
    """The `Luma` builder of `config` from `source` ('mini', 'real' or a folder/URL), built into `cache_dir`."""
    from luma import Luma

    resolve_config(config)  # a misspelt config fails before the mini source is written
    data_dir = _resolve_source(source)
    _note(f"building {config} from {data_dir or 'the published LUMA sources'}")
    builder = Luma(config_name=config, data_dir=data_dir, cache_dir=cache_dir, **parameters)
    builder.download_and_prepare(num_proc=num_proc)
    return builder


def _build(args) -> None:
    builder = _prepared(args.config, args.source, parse_parameters(args.parameters), args.out, args.num_proc)
    splits = {
        split: (builder.as_dataset(split).select_columns(list(SUMMARY_FIELDS)).to_list(), info.num_bytes)
        for split, info in builder.info.splits.items()
    }
    print(f"\n{builder.config.name}: {builder.cache_dir}\n{build_summary(splits)}")


def _evaluate(args) -> None:
    import json

    import datasets

    from baselines.evaluation import EVALUATED_SPLITS, evaluate_predictions, format_report, read_predictions

    predictions = read_predictions(args.predictions)  # a file that cannot be read fails before the build
    parameters = parse_parameters(args.parameters)
    builder = _prepared(args.config, args.source, parameters, args.cache_dir)
    records = datasets.concatenate_datasets([builder.as_dataset(split) for split in EVALUATED_SPLITS])
    report = {
        "config": builder.config.name,
        "source": _resolve_source(args.source) or "the published LUMA sources",
        "parameters": {key: PARAMETER_SPECS[key].text(value) for key, value in parameters.items()},
        "predictions": str(args.predictions),
        **evaluate_predictions(predictions, records, name=str(args.predictions)),
    }
    print(f"{builder.config.name}, {args.predictions}\n{format_report(report)}")
    if args.out:
        atomic_write(Path(args.out), (json.dumps(report, indent=2) + "\n").encode())  # never half-written
        print(f"report: {args.out}")


def _export(args) -> None:
    from luma import config_names, export

    parameters = parse_parameters(args.parameters)
    config_names(args.configs)  # a misspelt config fails before the mini source is written
    data_dir = _resolve_source(args.source)
    _note(f"exporting {args.configs} from {data_dir or 'the published LUMA sources'}")
    out = export(
        args.configs.split(","),
        args.out,
        data_dir=data_dir,
        parameters=parameters,
        num_proc=args.num_proc,
        cache_dir=args.cache_dir,
        max_shard_size=args.max_shard_size,
        row_group_size=args.row_group_size,
        overwrite=args.overwrite,
        repo_id=args.repo_id,
    )
    print(f"exported to {out}; upload it with: luma push --repo-id {args.repo_id or 'ID'} {out}")


def _download(args) -> None:
    from datasets.utils import tqdm  # datasets' tqdm: off under --quiet, like its own bars

    from luma_builders.sources.download import download
    from luma_builders.sources.locations import Source

    source = Source.open(None, args.hub_revision, args.cifar_dir, args.split_dir)
    _note(f"downloading from {source.location('audio/datalist.csv').rsplit('/', 2)[0]}")
    summary = download(source, everything=args.all, progress_factory=tqdm)
    print(
        f"{summary.metadata_files} metadata files and {summary.clips} clips verified and cached; "
        "builds of the published variants now run with HF_HUB_OFFLINE=1"
    )


def _push(args) -> None:
    from luma_builders.publish.hub import PushError, push

    try:
        url = push(
            args.folder,
            args.repo_id,
            private=args.private,
            token=args.token,
            revision=args.revision,
            create_pr=args.create_pr,
            commit_message=args.commit_message,
        )
    except PushError as err:
        raise SystemExit(f"error: {err}") from None
    print(url)


def _benchmark_config(args):
    """A BenchmarkConfig from the options given; options not given keep its defaults, written in one place."""
    from baselines.benchmark import DEFAULT_MODALITIES, METHOD_CHOICES, BenchmarkConfig

    def names(text: str, allowed: tuple[str, ...], option: str) -> tuple[str, ...]:
        chosen = tuple(n.strip() for n in text.split(",") if n.strip())
        unknown = [n for n in chosen if n not in allowed]
        if unknown or not chosen:
            hint = did_you_mean(unknown[0], allowed) if unknown else ""
            raise SystemExit(f"error: {option}: unknown {unknown or text!r}; {hint}choose from {', '.join(allowed)}")
        return chosen

    allowed = {
        "variants": tuple(c.name for c in CONFIGS) + tuple(CONFIG_ALIASES),
        "methods": METHOD_CHOICES,
        "modalities": DEFAULT_MODALITIES,
    }
    numbers = ("epochs", "patience", "ensemble_size", "mc_passes", "seeds", "data_seeds", "first_seed", "bootstrap")
    given = {
        key: names(value, allowed[key], f"--{key}") if key in allowed else value
        for key in (*allowed, *numbers)
        if (value := getattr(args, key, None)) is not None
    }
    if args.keep_class_words:
        given["mask_class_words"] = False
    return BenchmarkConfig(
        out=Path(args.out),
        data_dir=_resolve_source(args.source),
        cache_dir=str(luma_home() / "datasets"),
        executor=_executor_config(args),
        **given,
    )


def _executor_config(args):
    """An ExecutorConfig from the executor options given (their dests are its field names; `--executor` is its kind)."""
    from baselines.executors import ExecutorConfig

    names = [f.name for f in dataclasses.fields(ExecutorConfig) if f.name != "kind"]
    given = {name: value for name in names if (value := getattr(args, name)) is not None}
    if args.executor is not None:
        given["kind"] = args.executor
    return ExecutorConfig(**given)


def _benchmark(args) -> None:
    from baselines.benchmark import run_benchmark

    print(f"report: {run_benchmark(_benchmark_config(args))}")


def _sweep(args) -> None:
    from baselines.sweep import run_sweep

    levels = {}
    for pair in args.levels:
        key, sep, text = pair.partition("=")
        values = [parse_parameters([f"{key}={value}"])[key] for value in text.split(",")] if sep else []
        if len(values) < 2:
            raise SystemExit(f"error: expected PARAM=v1,v2,... with at least two levels, got {pair!r}")
        levels[key] = values
    args.variants = args.variant
    config = _benchmark_config(args)
    try:
        print(f"report: {run_sweep(config, levels)}")
    except ValueError as err:
        raise SystemExit(f"error: {err}") from None


def _add_variant_commands(commands) -> None:
    """configs, mini, build, evaluate, export: the commands that read the parameters."""
    commands.add_parser("configs", help="list the named variants and their parameters").set_defaults(run=_configs)

    mini = commands.add_parser("mini", help="write the embedded mini source (offline, deterministic)")
    mini.add_argument("out")
    for option, default in MINI_DEFAULTS.items():
        mini.add_argument("--" + option.replace("_", "-"), type=int, default=default)
    mini.set_defaults(run=_mini)

    build = _parser_with_parameters(commands, "build", "build a variant into the datasets cache")
    build.add_argument("config")
    build.add_argument("--source", default="mini", help="a folder, a base URL, 'mini' (default) or 'real'")
    build.add_argument("--out", default=None, help="datasets cache folder (default: the HF datasets cache)")
    build.add_argument("--num-proc", type=positive_int, default=None)
    build.add_argument("parameters", nargs="*", default=[], metavar="key=value")
    build.set_defaults(run=_build)

    evaluate = _parser_with_parameters(
        commands, "evaluate", "score a model's predictions (Parquet/CSV: id, p_0..p_41, u_<name>) on a variant"
    )
    evaluate.add_argument("predictions", help="a .parquet or .csv file with one row per test and ood record")
    evaluate.add_argument("--config", required=True, help="the variant the predictions were made on")
    evaluate.add_argument("--source", default="mini", help="a folder, a base URL, 'mini' (default) or 'real'")
    evaluate.add_argument("--cache-dir", default=None, help="datasets cache for the build (default: the HF cache)")
    evaluate.add_argument("--out", default=None, help="write the report as JSON here")
    evaluate.add_argument("parameters", nargs="*", default=[], metavar="key=value")
    evaluate.set_defaults(run=_evaluate)

    export = _parser_with_parameters(commands, "export", "write variants as Parquet shards + dataset card, for the Hub")
    export.add_argument("--configs", required=True, help="comma-separated configs or aliases: clean,label_noise_0.3")
    export.add_argument("--source", default="real", help="a folder, a base URL, 'mini' or 'real' (default)")
    export.add_argument("--out", required=True, help="the folder to write (must not exist or be empty)")
    export.add_argument("--overwrite", action="store_true", help="replace --out once the new export is complete")
    export.add_argument("--num-proc", type=positive_int, default=None)
    export.add_argument("--cache-dir", default=None, help="datasets cache for the builds (default: the HF cache)")
    export.add_argument("--max-shard-size", default=MAX_SHARD_SIZE, help="Arrow size of a split per Parquet file")
    export.add_argument("--row-group-size", type=int, default=ROW_GROUP_SIZE, help="records per Parquet row group")
    export.add_argument("--repo-id", default=None, help="the Hub repo named in the card's examples")
    export.add_argument("parameters", nargs="*", default=[], metavar="key=value")
    export.set_defaults(run=_export)


def _add_hub_and_benchmark_commands(commands) -> None:
    """download, push, benchmark."""
    download = commands.add_parser(
        "download", help="fetch the published sources into the caches, so that builds can run offline"
    )
    download.add_argument("--hub-revision", default=None, help="branch, tag or commit of the Hub repo (default: main)")
    download.add_argument("--cifar-dir", default=None, help="CIFAR you already have (tarballs or extracted folders)")
    download.add_argument("--split-dir", default=None, help="the six split files, if you have them")
    download.add_argument(
        "--all", action="store_true", help="every clip, not only those of the splits and OOD (for low_diversity)"
    )
    download.set_defaults(run=_download)

    push = commands.add_parser("push", help="upload an exported folder to a Hub dataset repo")
    push.add_argument("folder", help="the folder `luma export` wrote")
    push.add_argument("--repo-id", required=True, help="USER/NAME of the dataset repo (created if missing)")
    push.add_argument("--private", action="store_true", help="create the repo private")
    push.add_argument("--token", help="a Hub token with write access (default: HF_TOKEN or `hf auth login`'s)")
    push.add_argument("--revision", help="the branch to commit to; it must exist (default: main)")
    push.add_argument("--create-pr", action="store_true", help="open a pull request instead of committing")
    push.add_argument("--commit-message", default=COMMIT_MESSAGE, help=f"default: {COMMIT_MESSAGE!r}")
    push.set_defaults(run=_push)

    bench = commands.add_parser("benchmark", help="train and evaluate the uncertainty baselines; write report.md")
    bench.add_argument("--variants", help="default: clean,label_noise_0.3,sample_noise_0.5")
    _add_training_options(bench)
    bench.set_defaults(run=_benchmark)

    sweep = commands.add_parser("sweep", help="dose-response: train at every level of a parameter; plot and Spearman")
    sweep.add_argument("levels", nargs="+", metavar="PARAM=v1,v2,...", help="e.g. label_switch_prob=0,0.1,0.3,0.5")
    sweep.add_argument("--variant", default="clean", help="the variant the levels change (default: clean)")
    _add_training_options(sweep)
    sweep.set_defaults(run=_sweep)


def _add_training_options(parser: argparse.ArgumentParser) -> None:
    """The options `benchmark` and `sweep` share; their defaults are BenchmarkConfig's."""
    parser.add_argument("--source", default="mini", help="a folder, a base URL, 'mini' (default) or 'real'")
    parser.add_argument("--methods", help="default: mcd,de,rcml; also edl, tmc, mcd_posthoc, de_posthoc")
    parser.add_argument("--modalities", help="default: image,audio,text,multimodal")
    parser.add_argument("--out", required=True)
    parser.add_argument("--epochs", type=positive_int, help="the epoch budget (default: 18; early stopping)")
    parser.add_argument("--patience", type=positive_int, help="epochs without a lower validation loss (default: 4)")
    parser.add_argument("--ensemble-size", type=positive_int, help="default: 3 (the paper used 10)")
    parser.add_argument("--mc-passes", type=positive_int, help="default: 20")
    parser.add_argument("--seeds", type=positive_int, help="training seeds per cell (default: 3)")
    parser.add_argument("--data-seeds", type=positive_int, help="variant seeds per cell (default: 1)")
    parser.add_argument("--first-seed", type=int, help="seeds count up from here (default: 0)")
    parser.add_argument("--bootstrap", type=positive_int, help="resamplings for intervals and tests (default: 1000)")
    parser.add_argument("--keep-class-words", action="store_true", help="do not mask class words in texts")
    _add_executor_options(parser)


def _add_executor_options(parser: argparse.ArgumentParser) -> None:
    """Where the jobs run (baselines.executors); defaults are ExecutorConfig's."""
    from baselines.executors import EXECUTORS, SUBMITIT_CLUSTERS

    group = parser.add_argument_group("executor", "finished jobs are kept in OUT/runs; a re-run only runs the rest")
    group.add_argument("--executor", choices=EXECUTORS, help="default: sequential; ray and slurm run jobs side by side")
    group.add_argument("--workers", type=positive_int, help="ray: jobs at once on a local Ray instance (default: 2)")
    group.add_argument("--address", help="ray: an existing cluster ('auto', 'ray://host:10001') instead of a local one")
    group.add_argument(
        "--threads-per-job",
        type=positive_int,
        help="CPU threads per job (default: cores / workers; sequential: torch's default)",
    )
    group.add_argument("--slurm-partition", help="slurm: the partition (default: the cluster's)")
    group.add_argument("--slurm-time", type=positive_int, help="slurm: minutes a job may run (default: 120)")
    group.add_argument("--slurm-mem-gb", type=float, help="slurm: memory per job (default: 8)")
    group.add_argument("--slurm-parallelism", type=positive_int, help="slurm: array jobs at once (default: 64)")
    group.add_argument("--submitit-cluster", choices=SUBMITIT_CLUSTERS, help="slurm (default), or local to test")


def _parser_with_parameters(commands, name: str, help: str) -> argparse.ArgumentParser:
    """A command that takes `key=value` parameters: its help lists them all."""
    return commands.add_parser(
        name, help=help, epilog=PARAMETERS_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )


def _note(message: str) -> None:
    """A status line on stderr, unless --quiet."""
    if logging.getLogger("luma_builders").getEffectiveLevel() <= logging.WARNING:
        print(message, file=sys.stderr)


def _add_global_options(parser: argparse.ArgumentParser) -> None:
    version = importlib.metadata.version(DISTRIBUTION)
    parser.add_argument("--version", action="version", version=f"{DISTRIBUTION} {version}")
    chatter = parser.add_mutually_exclusive_group()
    chatter.add_argument("-q", "--quiet", action="store_true", help="errors only; no progress bars")
    chatter.add_argument("-v", "--verbose", action="store_true", help="also the info messages of datasets and the hub")


def _set_verbosity(quiet: bool, verbose: bool) -> None:
    """The level of LOGGERS: errors only (--quiet), info (--verbose), else as the libraries set it."""
    import datasets

    if not (quiet or verbose):
        return
    for name in LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR if quiet else logging.INFO)
    if quiet:
        datasets.disable_progress_bars()
    elif not logging.getLogger("luma_builders").handlers:  # datasets and huggingface_hub bring their own
        logging.getLogger("luma_builders").addHandler(logging.StreamHandler())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="luma", description=__doc__)
    _add_global_options(parser)
    commands = parser.add_subparsers(dest="command", required=True)
    _add_variant_commands(commands)
    _add_hub_and_benchmark_commands(commands)

    # key=value pairs may follow options (`build clean --out X seed=1`), which argparse cannot parse positionally.
    args, extra = parser.parse_known_args(argv)
    if extra and (args.command not in ("build", "export", "evaluate") or not all("=" in item for item in extra)):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if extra:
        args.parameters += extra
    _set_verbosity(args.quiet, args.verbose)
    try:
        args.run(args)
    except (ValueError, FileExistsError, FileNotFoundError) as err:
        raise SystemExit(f"error: {err}") from None


if __name__ == "__main__":
    main()
