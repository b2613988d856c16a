"""The ``hyperkit`` command line (also ``python -m hyperkit``).

Each command imports what it needs when it runs, so ``hyperkit --help``, ``hyperkit ls`` and
``hyperkit cp`` start without loading torch.

This is the application layer, above the library, the targets and the recipes: it is the one
module of the ``hyperkit`` package that imports ``hyperkit.recipes`` (inside its command
functions); the rest of the library imports neither ``hyperkit.recipes`` nor ``hyperkit.targets``.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

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
    import torch

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
    """Save a trained run's module, config and generated networks to one weights-only file
    (mothernet: the classifier file); load it with hyperkit.load_exported (docs/results.md)."""
    from hyperkit.recipes.runs import export_run

    path = export_run(args.run, args.out, args.checkpoint)
    print(f"wrote {path} and {path.with_suffix('.yaml')}")
    return 0


def cmd_ls(args: argparse.Namespace) -> int:
    """List recipes and their packaged configs."""
    from hyperkit.recipes import list_configs, recipe_summaries

    for name, summary in recipe_summaries().items():
        print(f"{name}: {summary}")
        for config in list_configs(name):
            print(f"  {config}")
    return 0


def cmd_cp(args: argparse.Namespace) -> int:
    """Copy a config (packaged or a file) to edit: one self-contained YAML file, its base: chain resolved."""
    from hyperkit.config import copy_config
    from hyperkit.recipes import config_path

    source = config_path(args.config)
    destination = copy_config(source, args.dest, name=args.config, force=args.force)
    print(f"wrote {destination}; run it with: hyperkit run {destination}")
    return 0


def _read_table(path: str, text_columns: list[str]):
    """A CSV with a header row as a pandas DataFrame: empty cells (and NA, NaN, null, …) are
    missing; the ``text_columns`` it has (the labels, the ids) are read as text, as written."""
    import pandas as pd

    header = _header(path)
    if not header:
        raise ValueError(f"{path} is empty; expected a header row and data rows")
    # round_trip: numbers are read exactly as Python's float() reads them (pandas' default parser
    # may differ in the last digit)
    return pd.read_csv(path, dtype={c: str for c in text_columns if c in header}, skipinitialspace=True,
                       float_precision="round_trip", encoding="utf-8-sig", low_memory=False)


def _fine_tune_steps(text: str) -> int | str:
    from hyperkit.tabular.classifier import FINE_TUNE_CHOICES

    if text in FINE_TUNE_CHOICES:
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not 'blend', 'auto' or a number of steps") from None


def cmd_predict(args: argparse.Namespace) -> int:
    """Fit MotherNet on a training CSV and predict the rows of a test CSV."""
    from hyperkit.tabular.classifier import MotherNetClassifier

    text = [args.target] + ([args.id] if args.id else [])
    train, test = _read_table(args.train, text), _read_table(args.test, text)
    encoder, x_train, labels = _training_features(args, train, test)
    x_test = _test_features(args, encoder, test)
    clf = MotherNetClassifier(model=args.model, n_estimators=args.estimators,
                              fine_tune=args.fine_tune).fit(x_train, labels)
    proba = clf.predict_proba(x_test)
    ids = test[args.id].fillna("").tolist() if args.id else None
    written = _write_predictions(args, clf.classes_, proba, ids)
    if args.target in test.columns:
        print(_scores(args.test, clf.classes_, proba, test[args.target]), file=sys.stderr)
    return 0 if written else 1  # 1 where the reader closed the pipe, as Python itself exits


def _drop_list(args: argparse.Namespace) -> list[str]:
    """The columns --drop names (comma-separated, the option repeatable)."""
    return [name.strip() for value in args.drop for name in value.split(",") if name.strip()]


def _not_features(args: argparse.Namespace) -> list[str]:
    """The target, the ids and the --drop columns."""
    return [args.target] + ([args.id] if args.id else []) + _drop_list(args)


def _training_features(args: argparse.Namespace, train, test) -> tuple:
    """The column encoder fitted on the labelled training rows, their encoded features and their
    labels. Every problem with the training table (and with --drop) is reported at once."""
    from hyperkit.tabular.columns import ColumnEncoder, ColumnError

    problems = [f"--drop: no column {name!r} in either file" for name in _drop_list(args)
                if name not in train.columns and name not in test.columns]
    if args.target in train.columns:
        labelled = train[train[args.target].notna()]
        if len(labelled) < len(train):
            print(f"{args.train}: {_rows(len(train) - len(labelled))} without a label ({args.target!r}) left out",
                  file=sys.stderr)
    else:
        labelled = train
        problems.append(f"no column {args.target!r} (the --target); its columns: "
                        + ", ".join(map(str, train.columns)))
    features = labelled.drop(columns=[name for name in _not_features(args) if name in labelled.columns])
    encoder = ColumnEncoder()
    try:
        encoder.fit(features)
    except ColumnError as err:
        problems += err.problems
    if problems:
        raise ColumnError(problems, args.train)
    for notice in encoder.notices_.values():
        print(f"{args.train}: {notice}", file=sys.stderr)
    return encoder, encoder.transform(features), labelled[args.target].to_numpy()


def _test_features(args: argparse.Namespace, encoder, test) -> np.ndarray:
    """The test table's features, its columns matched to the training ones by name; columns
    training did not have are ignored with a notice. Every problem is reported at once."""
    from hyperkit.tabular.columns import ColumnError

    problems = []
    if args.id and args.id not in test.columns:
        problems.append(f"no column {args.id!r} (the --id) to pass through")
    features = test.drop(columns=[name for name in _not_features(args) if name in test.columns])
    known = set(encoder.feature_names_in_)
    extra = [name for name in features.columns if name not in known]
    if extra and all(name in features.columns for name in known):  # else the encoder names them with the missing
        print(f"{args.test}: not in {args.train}, ignored: {', '.join(map(repr, extra))}", file=sys.stderr)
        features = features.drop(columns=extra)
    try:
        x_test = encoder.transform(features)
    except ColumnError as err:
        problems += err.problems
    if problems:
        raise ColumnError(problems, args.test)
    return x_test


def _write_predictions(args: argparse.Namespace, classes, proba, ids: list | None) -> bool:
    """Write the predicted label and the class probabilities of each row (after its id), to
    --out or standard output; ``False`` where the reader closed standard output first."""
    import csv

    out = open(args.out, "w", newline="", encoding="utf-8") if args.out else sys.stdout
    try:
        writer = csv.writer(out)
        first = [args.id] if ids is not None else []
        writer.writerow(first + [args.target] + [f"probability_{c}" for c in classes])
        for i, (label, row) in enumerate(zip(classes[proba.argmax(1)], proba)):
            writer.writerow(([ids[i]] if ids is not None else []) + [label] + [f"{p:.6f}" for p in row])
        out.flush()
    except BrokenPipeError:
        if args.out:
            raise
        # The reader stopped early (`| head`). Python's advice (docs of the signal module, "Note on
        # SIGPIPE"): point standard output at devnull, so the interpreter's last flush cannot fail too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return False
    finally:
        if args.out:
            out.close()
    if args.out:
        print(f"wrote {len(proba)} predictions to {args.out}", file=sys.stderr)
    return True


def _scores(path: str, classes, proba, truth) -> str:
    """Accuracy and ROC AUC (one class against the rest, averaged over the classes present) on
    the rows of the test table that have a label."""
    import numpy as np
    from sklearn.metrics import roc_auc_score

    labelled = truth.notna().to_numpy()
    truth, proba = truth[labelled].to_numpy(dtype=object), proba[labelled]
    if not len(truth):
        return f"{path}: no labels to score against"
    accuracy = (classes[proba.argmax(1)] == truth).mean()
    aucs = [roc_auc_score(truth == c, proba[:, k]) for k, c in enumerate(classes)
            if 0 < (truth == c).sum() < len(truth)]  # defined where the class is present, and not alone
    auc = f"ROC AUC {np.mean(aucs):.4f}" if aucs else "ROC AUC undefined (one class among the labels)"
    notes = [f"{_rows((~labelled).sum())} without a label left out"] if not labelled.all() else []
    unseen = ~np.isin(truth, classes)
    if unseen.any():
        notes.append(f"{_rows(unseen.sum())} with labels not seen in training, counted as errors")
    return f"{path}: {len(truth)} labelled rows: accuracy {accuracy:.4f}, {auc}" + "".join(f"; {n}" for n in notes)


def _rows(count: int) -> str:
    return f"{count} row{'' if count == 1 else 's'}"


def _header(path: str) -> list[str]:
    import csv

    with open(path, newline="", encoding="utf-8-sig") as file:
        return next(csv.reader(file), [])


PREDICT_DESCRIPTION = """Fit MotherNet on the --train CSV and write, for each row of the --test CSV,
the predicted label and the probability of each class. Columns are encoded by one rule, fitted on
the training rows (hyperkit.tabular.columns): numbers as they are (an empty cell is missing),
True/False as 1/0, ISO dates (2024-05-31) as days since 1970-01-01, text one-hot (a level unseen in
training: all zeros; more than 20 levels: a frequency rank, or dropped when most rows have their
own). A notice on standard error names each converted or dropped column; all problems with a
file's columns are reported together."""


def build_parser() -> argparse.ArgumentParser:
    from hyperkit import __version__

    parser = argparse.ArgumentParser(prog="hyperkit", description="hypernetworks for any PyTorch target")
    parser.add_argument("--version", action="version", version=f"hyperkit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("targets", help=cmd_targets.__doc__)
    p.add_argument("pattern", nargs="?", default=None, help="glob, e.g. 'gcn*'")
    p.set_defaults(fn=cmd_targets)
    p = sub.add_parser("describe", help=cmd_describe.__doc__)
    p.add_argument("target", help="registered target name (see `hyperkit targets`) or import path my_module.builder")
    p.add_argument("kwargs", nargs="*", help="builder arguments as key=value")
    p.set_defaults(fn=cmd_describe)
    p = sub.add_parser("run", help=cmd_run.__doc__)
    p.add_argument("config", help="YAML file or packaged config name (see `hyperkit ls`)")
    p.add_argument("overrides", nargs="*", help="key=value overrides, e.g. train.lr=3e-4")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in the run folder")
    p.set_defaults(fn=cmd_run)
    p = sub.add_parser("validate", help=cmd_validate.__doc__)
    p.add_argument("config", help="YAML file or packaged config name (see `hyperkit ls`)")
    p.add_argument("overrides", nargs="*", help="key=value overrides, e.g. train.lr=3e-4")
    p.set_defaults(fn=cmd_validate)
    p = sub.add_parser("predict", help=cmd_predict.__doc__, description=PREDICT_DESCRIPTION)
    p.add_argument("--train", required=True, help="CSV with a header row, including the --target column")
    p.add_argument("--test", required=True,
                   help="CSV with the training file's feature columns, in any order; when it has the --target "
                        "column too, accuracy and ROC AUC go to standard error after the predictions")
    p.add_argument("--target", required=True, help="name of the label column")
    p.add_argument("--id", default=None, metavar="COLUMN",
                   help="column of row identifiers: not a feature; copied to the first output column "
                        "(the test file must have it)")
    p.add_argument("--drop", action="append", default=[], metavar="COLUMNS",
                   help="comma-separated columns not to use as features, e.g. --drop name,comment (repeatable)")
    p.add_argument("--out", default=None, help="output CSV (default: standard output)")
    p.add_argument("--model", default=None, help="MotherNet weights (default: the shipped model)")
    p.add_argument("--estimators", type=int, default=1, help="ensemble size (MotherNetClassifier's n_estimators)")
    p.add_argument("--fine-tune", type=_fine_tune_steps, default="blend", metavar="STEPS",
                   help="how the generated child is refined on the training rows (the classifier's "
                        "fine_tune): blend (the default): the length chosen by validation on folds of the "
                        "training rows, its weights averaged with those after 30 steps; auto: that length "
                        "alone; a number: that many gradient steps; 0: one forward pass")
    p.set_defaults(fn=cmd_predict)
    p = sub.add_parser("export", help=cmd_export.__doc__)
    p.add_argument("run", help="run folder (holds config.yaml and checkpoints/)")
    p.add_argument("out", help="file to write, e.g. model.pt (its record goes to model.yaml)")
    p.add_argument("--checkpoint", default=None, metavar="FILE",
                   help="a checkpoint file, or a name in RUN/checkpoints (default: the newest)")
    p.set_defaults(fn=cmd_export)
    p = sub.add_parser("ls", help=cmd_ls.__doc__)
    p.set_defaults(fn=cmd_ls)
    p = sub.add_parser("cp", help=cmd_cp.__doc__)
    p.add_argument("config", help="packaged config name (see `hyperkit ls`) or YAML file")
    p.add_argument("dest", help="file to write, or a folder (the file then takes the config's name)")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p.set_defaults(fn=cmd_cp)
    p = sub.add_parser("demo", help=cmd_demo.__doc__)
    p.add_argument("which", nargs="?", choices=["tabular", "uhn"], default="tabular",
                   help="tabular: MotherNet next to two baselines (default); uhn: a generator vs direct training")
    p.add_argument("--steps", type=int, default=500, help="training steps of the uhn demo")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(fn=cmd_demo)
    parser.commands = sub.choices  # name -> its parser (main parses a command's arguments again)
    return parser


def _user_error(err: Exception) -> bool:
    """An error a user can fix from its message (a traceback would only hide it)."""
    if isinstance(err, (KeyError, ValueError, TypeError, FileNotFoundError, FileExistsError, PermissionError)):
        return True
    trainer = sys.modules.get("hyperkit.engine.trainer")  # not imported: it cannot have raised
    return trainer is not None and isinstance(err, trainer.NonFiniteLoss)


def parse(argv: list[str]) -> argparse.Namespace:
    """The command line, with a command's options anywhere among its positionals
    (``run CONFIG --resume train.steps=80`` as well as ``run --resume CONFIG train.steps=80``)."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # argparse stops a nargs="*" positional at the first option; parse the command again
        command = parser.commands[args.command]
        args = command.parse_intermixed_args(argv[argv.index(args.command) + 1:],
                                             argparse.Namespace(command=args.command))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else list(argv))
    try:
        code = args.fn(args)
        sys.stdout.flush()  # a closed pipe shows here, inside the handler, not at the interpreter's exit
        return code
    except BrokenPipeError:  # the reader stopped early (`hyperkit ls | head`): end quietly, as Python's
        # docs advise (signal module, "Note on SIGPIPE"), so the interpreter's last flush cannot fail
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as err:
        if not _user_error(err):
            raise
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"hyperkit {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
