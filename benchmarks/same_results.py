"""Check: does a change leave every output byte-identical? (for refactors that must not move
a number).

Runs the workflow with the same config at two commits, each in a fresh ``git worktree``
(``--base``, default the previous commit; ``--head``, default HEAD), then compares the two
``results/`` and ``resources/`` trees file by file: the same file names, the same bytes. The
only exceptions are the wall-clock timings an extraction job writes into its stats JSON
(``*_seconds``, ``sentences_per_second``), compared without those keys. Prints the counts
and every difference; exits 1 when anything differs.

    python benchmarks/same_results.py --base 525fdb9            # the demo, ~2 x 2 minutes
    python benchmarks/same_results.py --base v1 --head v2 --cores 4 --configfile my.yaml
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TREES = ("results", "resources")


def run(rev: str, folder: Path, cores: int, configfile: Path | None) -> None:
    """The workflow of commit ``rev`` in a worktree at ``folder``."""
    subprocess.run(
        ["git", "-C", str(REPO), "worktree", "add", "--detach", str(folder), rev],
        check=True,
        capture_output=True,
    )
    cmd = [sys.executable, "-m", "snakemake", "--cores", str(cores), "--directory", str(folder)]
    if configfile is not None:
        cmd += ["--configfile", str(configfile.resolve())]
    result = subprocess.run(cmd, cwd=folder, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{rev}: snakemake failed\n{result.stderr[-3000:]}")


def is_timing(key: str) -> bool:
    return key.endswith("_seconds") or key == "sentences_per_second"


def same(a: Path, b: Path) -> bool:
    """Byte-identical, or (an extraction stats JSON) identical without its timings."""
    if a.read_bytes() == b.read_bytes():
        return True
    if a.suffix != ".json" or "activations" not in a.parts:
        return False
    try:
        left, right = json.loads(a.read_text()), json.loads(b.read_text())
    except ValueError:
        return False
    if not isinstance(left, dict) or not isinstance(right, dict):
        return False
    strip = lambda d: {k: v for k, v in d.items() if not is_timing(k)}  # noqa: E731
    return strip(left) == strip(right)


def files(root: Path) -> set[str]:
    return {
        str(p.relative_to(root))
        for tree in TREES
        if (root / tree).exists()
        for p in (root / tree).rglob("*")
        if p.is_file()
    }


def compare(base: Path, head: Path) -> list[str]:
    """Every difference between the two runs' trees, as lines of text."""
    left, right = files(base), files(head)
    problems = [f"only in base: {name}" for name in sorted(left - right)]
    problems += [f"only in head: {name}" for name in sorted(right - left)]
    problems += [
        f"differs: {name}" for name in sorted(left & right) if not same(base / name, head / name)
    ]
    print(f"# {len(left & right)} files in both runs, {len(problems)} differences")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", default="HEAD~1", help="commit of the reference run")
    parser.add_argument("--head", default="HEAD", help="commit of the run to check")
    parser.add_argument("--cores", type=int, default=2, help="snakemake --cores")
    parser.add_argument("--configfile", type=Path, help="config of both runs (default: each's)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="gapscope-same-") as tmp:
        runs = [(args.base, Path(tmp) / "base"), (args.head, Path(tmp) / "head")]
        try:
            for rev, folder in runs:
                run(rev, folder, args.cores, args.configfile)
            problems = compare(runs[0][1], runs[1][1])
        finally:
            for _, folder in runs:
                subprocess.run(
                    ["git", "-C", str(REPO), "worktree", "remove", "--force", str(folder)],
                    capture_output=True,
                )
    print("\n".join(problems) if problems else "# identical")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
