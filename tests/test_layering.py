"""The library's layering: pure computation modules under a thin stage layer.

Reading order follows the DAG: ``rules/X.smk`` -> ``workflow_scripts/X_*.py`` ->
``gapscope.stages.X`` -> pure modules. A pure module (metric math, gap tables, HTML tables,
figures, taps, languages, corpus readers, models, the extraction loop) never imports the
stage layer, the activation store or Snakemake; a model module never imports the stage layer.
Imports under ``if TYPE_CHECKING:`` are annotations, not dependencies, and are not counted.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "gapscope"
STAGE_LAYER = ("gapscope.stages", "snakemake")
STORAGE = ("gapscope.store", "zarr")
RULE_FILES = ("common", "corpus", "extract", "similarity", "summarize")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_type_checking(test: ast.expr) -> bool:
    """``if TYPE_CHECKING:`` or ``if typing.TYPE_CHECKING:`` (not a negation of it)."""
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def runtime_imports(source: str, module: str, is_package: bool = False) -> set[str]:
    """Modules the source of ``module`` imports at run time (absolute names; the bodies of
    ``if TYPE_CHECKING:`` blocks skipped; ``importlib.import_module("x")`` with a literal
    name counted)."""
    tree = ast.parse(source)
    skipped = {
        id(child)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and is_type_checking(node.test)
        for stmt in node.body
        for child in ast.walk(stmt)
    }
    package = module.split(".") if is_package else module.split(".")[:-1]
    out = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against the package
                anchor = package[: len(package) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            out |= {base} | {f"{base}.{alias.name}" for alias in node.names}
        elif (
            isinstance(node, ast.Call)
            and ast.unparse(node.func) in ("importlib.import_module", "import_module")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            out.add(node.args[0].value)
    return out


def pure_modules() -> list[Path]:
    """Every module of the package but the stage layer, the store (the storage the stage
    layer reads and writes) and ``__main__`` (the command line, a caller like the rules)."""
    excluded = {PACKAGE / "store.py", PACKAGE / "__main__.py"}
    return sorted(
        p
        for p in PACKAGE.rglob("*.py")
        if PACKAGE / "stages" not in p.parents and p not in excluded
    )


def within(imports: set[str], prefixes: tuple[str, ...]) -> list[str]:
    """The imported modules that are one of ``prefixes`` or inside one, sorted."""
    return sorted(m for m in imports if any(m == p or m.startswith(p + ".") for p in prefixes))


def offending(path: Path, prefixes: tuple[str, ...]) -> list[str]:
    source = path.read_text(encoding="utf-8")
    return within(runtime_imports(source, module_name(path), path.name == "__init__.py"), prefixes)


@pytest.mark.parametrize("path", pure_modules(), ids=lambda p: module_name(p))
def test_pure_modules_import_no_stage_store_or_snakemake(path):
    assert offending(path, STAGE_LAYER + STORAGE) == []


def test_the_scan_sees_what_it_must():
    """The scanner catches plain, from-, relative and importlib imports, and skips only what
    ``if TYPE_CHECKING:`` guards."""
    source = (
        "import importlib\n"
        "from typing import TYPE_CHECKING\n"
        "import snakemake\n"
        "from ..stages import common\n"
        "if TYPE_CHECKING:\n"
        "    from gapscope.store import View\n"
        "if not TYPE_CHECKING:\n"
        "    import zarr\n"
        "def f():\n"
        "    from gapscope.store import open_view\n"
        "    return importlib.import_module('gapscope.stages.extract')\n"
    )
    found = runtime_imports(source, "gapscope.models.probe")
    assert within(found, STAGE_LAYER + STORAGE) == [
        "gapscope.stages", "gapscope.stages.common", "gapscope.stages.extract",
        "gapscope.store", "gapscope.store.open_view", "snakemake", "zarr",
    ]  # fmt: skip


def test_one_stage_module_per_rule_file():
    """Each rule file has its glue module of the same name, and there is no other."""
    rules = {p.stem for p in (ROOT / "rules").glob("*.smk")}
    stages = {p.stem for p in (PACKAGE / "stages").glob("*.py")} - {"__init__"}
    assert rules == stages == set(RULE_FILES)


def test_workflow_scripts_name_their_rule_file():
    """A rule script is named after its rule file (``X_*.py``) and is called from it."""
    for script in (ROOT / "workflow_scripts").glob("*.py"):
        if script.name.startswith("_"):
            continue
        stage = script.stem.split("_", 1)[0]
        assert stage in RULE_FILES, script.name
        text = (ROOT / "rules" / f"{stage}.smk").read_text(encoding="utf-8")
        assert f"workflow_scripts/{script.name}" in text, script.name


def test_parsing_the_workflow_imports_no_model_stack_or_store():
    """What the rule files import when Snakemake parses them stays light."""
    code = (
        "import sys; from gapscope.models.demo import DEMO_MODELS; "
        "from gapscope.stages import common, corpus, extract, similarity, summarize; "
        "print(sorted(m for m in ('torch', 'transformers', 'zarr') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.stdout.strip() == "[]", result.stdout + result.stderr
