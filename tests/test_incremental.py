"""Incremental reruns with real Snakemake: growing a study redoes only what is new.

One workdir goes through four steps of the demo (8 sentences):

1. two languages, one model: the full run;
2. a third language: exactly its corpus, extraction and pair jobs run, plus aggregation;
3. a second model (a tiny SeamlessM4T v1 the workflow builds): exactly its model build,
   extraction and pair jobs run, plus aggregation;
4. a similarity option of the pairs changes (the null): every pair and the summary rerun,
   nothing upstream, not even the prepared views; one of the views (the SVCCA variance): the
   prepared views rerun too.

Steps 2 and 3 check the job list twice (dry run before, run log after) and that no existing
store, prepared view or pair file was rewritten (content hash and mtime of every file
unchanged). Step 4 checks the dry runs and ``--summary``.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
import yaml

from gapscope import languages
from gapscope.stages import common

from .conftest import REPO, run_snakemake

N_SENTENCES = 8
BASE = ["eng_Latn", "deu_Latn"]
ADDED = "fra_Latn"
V2 = "seamless_v2_tiny"
V1 = "seamless_m4t_tiny"
V1_SPEC = {
    "adapter": "seamless_m4t",
    "checkpoint": "resources/models/seamless_m4t_tiny",
    "revision": None,
    "init": "pretrained",
    "dtype": "float32",
}
JOB = re.compile(r"^\s*(?:local)?rule (\w+):\s*$")
FIELD = re.compile(r"^\s+(\w+): (.*)$")

pytestmark = pytest.mark.workflow


def snakemake(workdir: Path, *args: str) -> str:
    """Run Snakemake on the workdir; return its output (stdout + stderr)."""
    result = run_snakemake(
        workdir,
        "--cores",
        "2",
        "--set-threads",
        "extract_activations=1",  # two extractions side by side on 2 cores
        *args,
        timeout=1200,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]
    return result.stdout + result.stderr


def write_config(
    workdir: Path, langs, models: dict, null_permutations: int = 2, variance: float = 0.99
) -> dict:
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    cfg["languages"] = list(langs)
    cfg["models"] = models
    cfg["corpus"]["max_sentences"] = N_SENTENCES
    cfg["similarity"].update(metrics=["svcca", "cka"], null_permutations=null_permutations)
    cfg["similarity"]["svcca"]["variance"] = variance
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.yaml").write_text(yaml.safe_dump(cfg))
    return cfg


def jobs_in(output: str) -> set[tuple[str, frozenset]]:
    """(rule, wildcards) of every job that a dry run plans or a run log reports."""
    jobs, rule, wildcards = set(), None, {}
    for line in output.splitlines() + [""]:
        match = JOB.match(line)
        field = FIELD.match(line) if rule else None
        if field and field.group(1) == "wildcards":
            wildcards = dict(item.split("=", 1) for item in field.group(2).split(", "))
        elif not field and rule:
            jobs.add((rule, frozenset(wildcards.items())))
            rule, wildcards = None, {}
        if match:
            rule = match.group(1)
    return jobs


def is_work(rule: str) -> bool:
    """Per-view and per-pair jobs; everything else aggregates (tables, figures, coverage)."""
    work_rules = ("corpus_", "extract_", "similarity_view", "similarity_pair")
    return rule.startswith(work_rules) and rule != "corpus_coverage"


def work(jobs) -> set[tuple[str, frozenset]]:
    return {job for job in jobs if is_work(job[0])}


def job(rule: str, **wildcards) -> tuple[str, frozenset]:
    return rule, frozenset(wildcards.items())


def pair_jobs(pairs) -> set[tuple[str, frozenset]]:
    """The language-pair jobs that compute these comparisons."""
    return {job("similarity_pair", model=m, lang_a=la, lang_b=lb) for m, la, _, lb, _ in pairs}


def view_jobs(models, langs) -> set[tuple[str, frozenset]]:
    """Extraction jobs of every view, prepared-view jobs of every language."""
    return {
        job("extract_activations", model=m, language=lang, modality=modality)
        for m in models
        for lang in langs
        for modality in ("text", "speech")
    } | prepared_view_jobs(models, langs)


def prepared_view_jobs(models, langs) -> set[tuple[str, frozenset]]:
    return {job("similarity_view", model=m, language=lang) for m in models for lang in langs}


def plan(models, langs):
    return set(common.plan_pairs(models, langs, ["text", "speech"], "all"))


def summary_rows(output: str) -> dict[str, tuple[str, str]]:
    """``snakemake --summary``: output file -> (status, plan).

    (``--list-changes params`` is not used: Snakemake 9.27 lists every file with recorded
    params there, changed or not.)
    """
    rows = [line.split("\t") for line in output.splitlines() if line.count("\t") >= 5]
    return {row[0]: (row[4], row[5]) for row in rows[1:]}


def fingerprint(workdir: Path) -> dict[str, tuple[str, int]]:
    """Content hash and mtime of every file (and folder) of every store, prepared view and
    pair table."""
    prints = {}
    roots = [
        *(workdir / "results/activations").glob("*/*/*.zarr"),
        *(workdir / "results/similarity").glob("*/views/*.npz"),
        *(workdir / "results/similarity").glob("*/*.tsv"),
    ]
    for root in roots:
        paths = [root, *root.rglob("*")] if root.is_dir() else [root]
        for path in paths:
            digest = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
            prints[str(path.relative_to(workdir))] = (digest, path.stat().st_mtime_ns)
    return prints


def assert_untouched(before: dict, after: dict) -> None:
    changed = [path for path, value in before.items() if after.get(path) != value]
    assert not changed, f"{len(changed)} existing files rewritten, e.g. {changed[:5]}"


def assert_ran_only(step: dict, expected: set) -> None:
    """The step planned and ran exactly ``expected`` (plus the aggregate table), rewriting
    no existing file."""
    assert work(step["planned"]) == expected
    assert step["executed"] == step["planned"]
    assert ("similarity_table", frozenset()) in step["planned"]
    assert_untouched(step["before"], step["after"])


def describe(jobs) -> list[str]:
    return sorted(f"{rule} {','.join(v for _, v in sorted(wc))}" for rule, wc in jobs)


def demo_model_spec(name: str) -> dict:
    """A model entry of the shipped demo config."""
    return yaml.safe_load((REPO / "config.yaml").read_text())["models"][name]


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """Run the four steps; return each step's planned and executed jobs."""
    workdir = tmp_path_factory.mktemp("incremental")
    steps: dict = {}

    write_config(workdir, BASE, {V2: demo_model_spec(V2)})
    steps["base"] = jobs_in(snakemake(workdir))

    for name, langs, models in (
        ("add_language", [*BASE, ADDED], {V2: demo_model_spec(V2)}),
        ("add_model", [*BASE, ADDED], {V2: demo_model_spec(V2), V1: V1_SPEC}),
    ):
        write_config(workdir, langs, models)
        planned = jobs_in(snakemake(workdir, "--dry-run"))
        before = fingerprint(workdir)
        executed = jobs_in(snakemake(workdir))
        steps[name] = {
            "planned": planned,
            "executed": executed,
            "before": before,
            "after": fingerprint(workdir),
        }

    both = {V2: demo_model_spec(V2), V1: V1_SPEC}
    write_config(workdir, [*BASE, ADDED], both, null_permutations=3)
    steps["similarity_option"] = {
        "planned": jobs_in(snakemake(workdir, "--dry-run")),
        "summary": summary_rows(snakemake(workdir, "--summary")),
    }
    write_config(workdir, [*BASE, ADDED], both, variance=0.95)
    steps["view_option"] = {"planned": jobs_in(snakemake(workdir, "--dry-run"))}
    steps["workdir"] = workdir
    for name in ("add_language", "add_model", "similarity_option", "view_option"):
        print(f"\n{name}: {len(steps[name]['planned'])} jobs")
        print("  " + "\n  ".join(describe(steps[name]["planned"])))
    return steps


def test_adding_a_language_runs_only_its_jobs(study):
    step = study["add_language"]
    fleurs = languages.get(ADDED).fleurs
    expected = {
        job("corpus_synthesize_speech", fleurs=fleurs, split="test"),
        job("corpus_manifest", language=ADDED),
        *view_jobs([V2], [ADDED]),
        *pair_jobs(plan([V2], [*BASE, ADDED]) - plan([V2], BASE)),
    }
    assert_ran_only(step, expected)


def test_adding_a_model_runs_only_its_jobs(study):
    step = study["add_model"]
    langs = [*BASE, ADDED]
    expected = {
        job("extract_demo_model", demo_model=V1),
        *view_jobs([V1], langs),
        *pair_jobs(plan([V2, V1], langs) - plan([V2], langs)),
    }
    assert_ran_only(step, expected)


def test_changing_a_similarity_option_reruns_similarity_and_summary_only(study):
    step = study["similarity_option"]
    all_pairs = pair_jobs(plan([V2, V1], [*BASE, ADDED]))
    assert work(step["planned"]) == all_pairs
    rules = {rule for rule, _ in step["planned"]}
    assert rules <= {"similarity_pair", "similarity_table", "all"} | {
        rule for rule in rules if rule.startswith("summarize_")
    }
    summary = step["summary"]
    changed = {path for path, (status, _) in summary.items() if status == "params changed"}
    pairs = {path for path in changed if path.startswith("results/similarity/")}
    assert len(pairs) == len(all_pairs)
    assert all(path.startswith("results/summary/") for path in changed - pairs), changed
    pending = {path for path, (_, plan) in summary.items() if plan == "update pending"}
    upstream = ("results/activations", "results/corpus", "resources/")
    assert not [path for path in pending if path.startswith(upstream)]
    assert not [path for path in changed if "/views/" in path]


def test_changing_a_view_option_reruns_the_prepared_views_and_pairs(study):
    langs = [*BASE, ADDED]
    planned = work(study["view_option"]["planned"])
    assert planned == pair_jobs(plan([V2, V1], langs)) | prepared_view_jobs([V2, V1], langs)
