"""The ``hyperkit`` command line (also ``python -m hyperkit``)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

import torch

from hyperkit.engine.trainer import NonFiniteLoss

if TYPE_CHECKING:
    import numpy as np


def cmd_targets(args: argparse.Namespace) -> int:
    """List registered targets with their parameter counts."""
    import hyperkit

    names = hyperkit.list_targets(args.pattern)
    if not names:
        print(f"no registered target matches {args.pattern!r}", file=sys.stderr)
        return 1
    width = max(len(n) for n in names)
    print(f"{'target':{width}s}  {'parameters':>12s}  {'layers':>6s}  class")
    for name in names:
        spec = hyperkit.describe(hyperkit.create_target(name))
        print(f"{name:{width}s}  {spec.num_weights:12,d}  {len(spec.layers):6d}  {spec.module_class}")
    return 0


def cmd_describe(args: argparse.Namespace) -> int:
    """Print the descriptor table of one registered target."""
    import hyperkit
    from hyperkit.config import parse_overrides

    kwargs = parse_overrides(args.kwargs)
    print(hyperkit.describe(hyperkit.create_target(args.target, **kwargs)).summary())
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """MotherNet on scikit-learn's tables next to two baselines (or: `demo uhn`, a generator vs direct training)."""
    from hyperkit.recipes.demo import main as demo

    demo(args.which, steps=args.steps, seed=args.seed)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """Train a recipe from a YAML config (a path or a packaged name such as uhn/digits_mlp)."""
    from hyperkit.engine.trainer import train
    from hyperkit.recipes import load_recipe

    recipe = load_recipe(args.config, args.overrides)
    result = train(recipe, resume=args.resume)
    if int(os.environ.get("RANK", "0")) == 0:
        metrics = ", ".join(f"{k} {v:.4f}" for k, v in result.items() if k.startswith("eval/"))
        print(f"{recipe.name}: step {result['step']}, {metrics}, {result['train_seconds']:.1f} s; "
              f"run folder {recipe.config.out}")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    """Check a config without training: keys, types, data, target, output folder."""
    from hyperkit.config import to_yaml
    from hyperkit.engine.checkpoint import ensure_writable
    from hyperkit.recipes import load_recipe

    recipe = load_recipe(args.config, args.overrides)
    module = recipe.setup(torch.device("cpu"))
    ensure_writable(recipe.config.out)
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    print(to_yaml(recipe.config), end="")
    print(f"# ok: recipe {recipe.name}, {trainable:,} trainable parameters, "
          f"{recipe.task.kind} data with {recipe.task.num_train} training items" if hasattr(recipe, "task")
          else f"# ok: recipe {recipe.name}, {trainable:,} trainable parameters")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Export a trained run for use outside training (mothernet: classifier weights)."""
    from hyperkit.config import read_yaml
    from hyperkit.recipes import RECIPES

    name = read_yaml(os.path.join(args.run, "config.yaml")).get("recipe")
    recipe = RECIPES.get(str(name))
    if not hasattr(recipe, "export"):
        raise ValueError(f"recipe {name!r} has nothing to export; `hyperkit export` serves: "
                         + ", ".join(n for n in RECIPES.names() if hasattr(RECIPES.get(n), "export")))
    print(f"wrote {recipe.export(args.run, args.out)}")
    return 0


def cmd_ls(args: argparse.Namespace) -> int:
    """List recipes and their packaged configs."""
    from hyperkit.recipes import RECIPES, list_configs

    for name in RECIPES.names():
        doc = (sys.modules[RECIPES.get(name).__module__].__doc__ or "").strip().split("\n")[0].split(": ", 1)[-1]
        print(f"{name}: {doc}")
        for config in list_configs(name):
            print(f"  {config}")
    return 0


def _read_table(path: str, target: str | None) -> tuple[list[str], "np.ndarray", list[str] | None]:
    """Read a CSV with a header: numeric feature columns (empty cells are missing) and, when
    ``target`` is given, that column as labels (kept as strings)."""
    import csv

    import numpy as np

    with open(path, newline="", encoding="utf-8") as file:
        rows = list(csv.reader(file))
    if not rows:
        raise ValueError(f"{path} is empty; expected a header row and data rows")
    header, body = rows[0], [r for r in rows[1:] if r]
    if target is not None and target not in header:
        raise ValueError(f"{path} has no column {target!r}; its columns: {', '.join(header)}")
    labels = [r[header.index(target)] for r in body] if target is not None else None
    names = [h for h in header if h != target]
    columns = [header.index(h) for h in names]
    values = np.full((len(body), len(names)), np.nan)
    for i, row in enumerate(body):
        for j, c in enumerate(columns):
            cell = row[c].strip() if c < len(row) else ""
            if cell in ("", "NA", "NaN", "nan"):
                continue
            try:
                values[i, j] = float(cell)
            except ValueError:
                raise ValueError(f"{path}, row {i + 2}, column {names[j]!r}: {cell!r} is not a number; "
                                 "encode categorical columns as numbers first") from None
    return names, values, labels


def cmd_predict(args: argparse.Namespace) -> int:
    """Fit MotherNet on a training CSV and predict the rows of a test CSV."""
    import csv

    from hyperkit.tabular.classifier import MotherNetClassifier

    train_names, x_train, y_train = _read_table(args.train, args.target)
    test_names, x_test, _ = _read_table(args.test, args.target if args.target in _header(args.test) else None)
    if test_names != train_names:
        raise ValueError(f"{args.test} has feature columns {test_names}, but {args.train} has {train_names}")
    clf = MotherNetClassifier(model=args.model, n_estimators=args.estimators,
                              fine_tune=args.fine_tune).fit(x_train, y_train)
    proba = clf.predict_proba(x_test)
    out = open(args.out, "w", newline="", encoding="utf-8") if args.out else sys.stdout
    writer = csv.writer(out)
    writer.writerow([args.target] + [f"probability_{c}" for c in clf.classes_])
    for label, row in zip(clf.classes_[proba.argmax(1)], proba):
        writer.writerow([label] + [f"{p:.6f}" for p in row])
    if args.out:
        out.close()
        print(f"wrote {len(proba)} predictions to {args.out}", file=sys.stderr)
    return 0


def _header(path: str) -> list[str]:
    import csv

    with open(path, newline="", encoding="utf-8") as file:
        return next(csv.reader(file), [])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hyperkit", description="hypernetworks for any PyTorch target")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("targets", help=cmd_targets.__doc__)
    p.add_argument("pattern", nargs="?", default=None, help="glob, e.g. 'gcn*'")
    p.set_defaults(fn=cmd_targets)
    p = sub.add_parser("describe", help=cmd_describe.__doc__)
    p.add_argument("target")
    p.add_argument("kwargs", nargs="*", help="builder arguments as key=value")
    p.set_defaults(fn=cmd_describe)
    p = sub.add_parser("run", help=cmd_run.__doc__)
    p.add_argument("config", help="YAML file or packaged config name (see `hyperkit ls`)")
    p.add_argument("overrides", nargs="*", help="key=value overrides, e.g. train.lr=3e-4")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in the run folder")
    p.set_defaults(fn=cmd_run)
    p = sub.add_parser("validate", help=cmd_validate.__doc__)
    p.add_argument("config")
    p.add_argument("overrides", nargs="*")
    p.set_defaults(fn=cmd_validate)
    p = sub.add_parser("predict", help=cmd_predict.__doc__)
    p.add_argument("--train", required=True, help="CSV with a header row, including the target column")
    p.add_argument("--test", required=True, help="CSV with the same feature columns (target column optional)")
    p.add_argument("--target", required=True, help="name of the label column")
    p.add_argument("--out", default=None, help="output CSV (default: standard output)")
    p.add_argument("--model", default=None, help="MotherNet weights (default: the shipped model)")
    p.add_argument("--estimators", type=int, default=1, help="ensemble size (MotherNetClassifier's n_estimators)")
    p.add_argument("--fine-tune", type=int, default=30, metavar="STEPS",
                   help="gradient steps that refine the generated child on the training rows (default 30, "
                        "the classifier's default; 0: one forward pass)")
    p.set_defaults(fn=cmd_predict)
    p = sub.add_parser("export", help=cmd_export.__doc__)
    p.add_argument("run", help="run folder (holds config.yaml and checkpoints/)")
    p.add_argument("out", help="file to write")
    p.set_defaults(fn=cmd_export)
    p = sub.add_parser("ls", help=cmd_ls.__doc__)
    p.set_defaults(fn=cmd_ls)
    p = sub.add_parser("demo", help=cmd_demo.__doc__)
    p.add_argument("which", nargs="?", choices=["tabular", "uhn"], default="tabular")
    p.add_argument("--steps", type=int, default=500, help="training steps of the uhn demo")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(fn=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except (KeyError, ValueError, TypeError, FileNotFoundError, PermissionError, NonFiniteLoss) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"hyperkit {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
