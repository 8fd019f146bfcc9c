"""Command line: ``minitransformer demo | bench | info``.

Each sub-command lives in the module that owns its work; this file only parses arguments.
"""

from __future__ import annotations

import argparse
import sys


def _demo(args) -> int:
    from .demo import run

    return run(out=args.out)


def _bench(args) -> int:
    from . import bench

    return bench.main(args)


def _info(args) -> int:
    from . import info

    print(info.report())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="minitransformer", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="a tour of the engine and the formulas, on NumPy, with data that ships")
    demo.add_argument("--out", default="demo-output", help="folder for the pictures (default: demo-output)")
    demo.set_defaults(run=_demo)

    bench = sub.add_parser("bench", help="benchmarks, printed beside a reference measured in the same run")
    bench.add_argument("what", nargs="?", default="autograd", choices=["autograd"], help="what to time")
    bench.add_argument("--repeat", type=int, default=7, help="timed repetitions (the median is reported)")
    bench.add_argument("--chain", type=int, default=200, help="length of the chain of small operations")
    bench.add_argument("--size", type=int, default=16, help="elements per tensor in the chain")
    bench.add_argument("--json", default=None, help="also write the figures to this JSON file")
    bench.set_defaults(run=_bench)

    info = sub.add_parser("info", help="backends available, devices, versions")
    info.set_defaults(run=_info)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args) or 0


if __name__ == "__main__":
    sys.exit(main())
