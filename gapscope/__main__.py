"""Command line interface: ``gapscope summary results/`` (or ``python -m gapscope ...``).

``summary`` prints the headline gap table of a finished run again (the table the workflow
prints when it ends), read from ``<results>/summary/gaps.csv``; ``--all`` adds the
length-adaptation effect per resource group.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from gapscope import __version__

GAPS = Path("summary") / "gaps.csv"
LENGTH_ADAPTATION = Path("summary") / "length_adaptation_groups.csv"


def find_summary(target: Path) -> Path:
    """The summary folder of a results folder, a workflow folder or a gaps.csv path."""
    if target.is_file():
        return target.parent
    for root in (target, target / "results"):
        if (root / GAPS).is_file():
            return root / "summary"
    if (target / "gaps.csv").is_file():
        return target
    raise FileNotFoundError(
        f"no gap table under {target}: expected {target / GAPS} (run the workflow first)"
    )


def summary(target: Path, *, everything: bool = False) -> str:
    """The text ``gapscope summary`` prints."""
    import pandas as pd

    from gapscope.gaps import format_headline, format_length_adaptation

    folder = find_summary(target)
    gaps_csv = folder / "gaps.csv"
    table = pd.read_csv(gaps_csv)
    metric = ", ".join(sorted(set(table["metric"].astype(str)))) or "?"
    parts = [
        f"Headline gaps ({metric}; score and shuffled-pairing null; gap = cross-lingual text "
        f"- cross-modal) from {gaps_csv}",
        format_headline(table),
    ]
    if everything:
        per_group = folder / "length_adaptation_groups.csv"
        if per_group.is_file():
            parts += [
                "",
                "Length adaptation: cross-modal score before -> after, mean ± std over languages",
                format_length_adaptation(pd.read_csv(per_group)),
            ]
    return "\n".join(parts)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gapscope",
        description="Modality and language gaps in multimodal foundation models.",
    )
    parser.add_argument("--version", action="version", version=f"gapscope {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, title="commands")
    cmd = commands.add_parser(
        "summary",
        help="print the headline gap table of a finished run",
        description="Print the headline gap table per model (last layer and best tap).",
    )
    cmd.add_argument(
        "results",
        nargs="?",
        default="results",
        type=Path,
        help="results folder of a run (default: results), its workflow folder, or a gaps.csv",
    )
    cmd.add_argument(
        "--all",
        dest="everything",
        action="store_true",
        help="also print the length-adaptation effect per resource group",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``gapscope`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    if args.command == "summary":
        try:
            print(summary(args.results, everything=args.everything))
        except FileNotFoundError as err:
            print(f"gapscope summary: {err}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
