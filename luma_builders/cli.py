"""`luma`: list the variants, write the embedded mini source, build a variant."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

MINI_DEFAULTS = {"seed": 0, "train_per_class": 20, "test_per_class": 6, "ood_per_class": 12}
TRUE_WORDS, FALSE_WORDS = {"true", "yes", "1"}, {"false", "no", "0"}


def _cache_home() -> Path:
    return Path(os.environ.get("LUMA_HOME", Path.home() / ".cache" / "luma"))


def mini_source(**options) -> Path:
    """The embedded mini source for `options`, written once into the cache (atomically) and reused."""
    from .mini import write_mini_source

    options = {**MINI_DEFAULTS, **options}
    target = _cache_home() / ("mini-" + "-".join(f"{k}{v}" for k, v in sorted(options.items())))
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".partial-"))
        try:
            write_mini_source(staging, **options)
            staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target


def parse_parameters(pairs: list[str]) -> dict:
    """`key=value` strings -> LumaConfig keyword arguments, typed by the field's annotation."""
    from luma import PARAMETER_TYPES, PARAMETERS

    parameters = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep:
            raise SystemExit(f"error: expected key=value, got {pair!r}")
        if key not in PARAMETERS:
            raise SystemExit(f"error: unknown parameter {key!r}; known: {', '.join(PARAMETERS)}")
        kind = PARAMETER_TYPES.get(key, str)
        try:
            if kind is bool:
                if text.lower() not in TRUE_WORDS | FALSE_WORDS:
                    raise ValueError("expected true or false")
                parameters[key] = text.lower() in TRUE_WORDS
            else:
                parameters[key] = kind(text)
        except ValueError as err:
            raise SystemExit(f"error: parameter {key}={text!r}: {err}") from None
    return parameters


def _configs(_args) -> None:
    from luma import CONFIG_ALIASES, CONFIGS, PARAMETERS, LumaConfig

    defaults = LumaConfig()
    for config in CONFIGS:
        changed = [f"{p}={getattr(config, p)}" for p in PARAMETERS if getattr(config, p) != getattr(defaults, p)]
        print(f"{config.name:<16} {config.description}  {' '.join(changed)}".rstrip())
    for alias, target in CONFIG_ALIASES.items():
        print(f"{alias:<16} alias of {target}")
    print("\nparameters (key=value; defaults shown):")
    for p in PARAMETERS:
        print(f"  {p}={getattr(defaults, p)}")


def _mini(args) -> None:
    from .mini import write_mini_source

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


def _build(args) -> None:
    from luma import Luma

    parameters = parse_parameters(args.parameters)
    data_dir = _resolve_source(args.source)
    print(f"building {args.config} from {data_dir or 'the published LUMA sources'}", file=sys.stderr)
    builder = Luma(config_name=args.config, data_dir=data_dir, cache_dir=args.out, **parameters)
    builder.download_and_prepare(num_proc=args.num_proc)
    print(f"\n{builder.config.name}: {builder.cache_dir}")
    print(f"{'split':<6} {'records':>8} {'classes':>8} {'per class':>10} {'ood':>6} {'MB':>8}")
    for split, info in builder.info.splits.items():
        dataset = builder.as_dataset(split)
        labels = np.asarray(dataset["label"])
        counts = np.bincount(labels)[np.unique(labels)] if len(labels) else np.zeros(1, int)
        per_class = f"{counts.min()}-{counts.max()}" if counts.min() != counts.max() else str(counts.min())
        ood = int(np.sum(dataset["is_ood"]))
        print(
            f"{split:<6} {info.num_examples:>8} {len(counts):>8} {per_class:>10} {ood:>6} {info.num_bytes / 1e6:>8.1f}"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="luma", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    commands.add_parser("configs", help="list the named variants and their parameters").set_defaults(run=_configs)

    mini = commands.add_parser("mini", help="write the embedded mini source (offline, deterministic)")
    mini.add_argument("out")
    for option, default in MINI_DEFAULTS.items():
        mini.add_argument("--" + option.replace("_", "-"), type=int, default=default)
    mini.set_defaults(run=_mini)

    build = commands.add_parser("build", help="build a variant into the datasets cache")
    build.add_argument("config")
    build.add_argument("--source", default="mini", help="a folder, a base URL, 'mini' (default) or 'real'")
    build.add_argument("--out", default=None, help="datasets cache folder (default: the HF datasets cache)")
    build.add_argument("--num-proc", type=int, default=None)
    build.add_argument("parameters", nargs="*", metavar="key=value")
    build.set_defaults(run=_build)

    # key=value pairs may follow options (`build clean --out X seed=1`), which argparse cannot parse positionally.
    args, extra = parser.parse_known_args(argv)
    if extra and (args.command != "build" or not all("=" in item for item in extra)):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if extra:
        args.parameters += extra
    try:
        args.run(args)
    except (ValueError, NotImplementedError) as err:
        raise SystemExit(f"error: {err}") from None


if __name__ == "__main__":
    main()
