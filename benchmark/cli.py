"""``trajbench`` command line: one subcommand per stage, each a thin shell over a function."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _cmd_methods(args: argparse.Namespace) -> int:
    from methods import REGISTRY, get_method_class

    if args.name:
        cls = get_method_class(args.name)
        print(f"{args.name}: {REGISTRY[args.name]}")
        print((cls.__doc__ or "").strip() or (sys.modules[cls.__module__].__doc__ or ""))
        for key, value in cls.default_conf.items():
            print(f"  {key} = {value!r}")
        return 0
    for name in sorted(REGISTRY):
        print(f"{name:16s} {REGISTRY[name]}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trajbench",
        description="Reproducibility benchmark for camera-controlled video generation.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("methods", help="list registered methods (or describe one)")
    p.add_argument("name", nargs="?", help="a method name to describe")
    p.set_defaults(func=_cmd_methods)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``trajbench`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyError as exc:  # UnknownMethodError and friends carry a helpful message
        print(f"trajbench: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
