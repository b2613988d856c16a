"""The ``hyperkit`` command line (also ``python -m hyperkit``)."""

from __future__ import annotations

import argparse
import sys


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
    """Train a generator for a digits MLP next to direct training and print both accuracies."""
    from hyperkit.recipes.demo import main as demo

    demo(steps=args.steps, seed=args.seed)
    return 0


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
    p = sub.add_parser("demo", help=cmd_demo.__doc__)
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(fn=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except (KeyError, ValueError, TypeError, FileNotFoundError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"hyperkit {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
