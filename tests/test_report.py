"""The HTML report: real Snakemake on the small demo, `--report`, opened in headless Chromium.

Checks that every summary table, page and figure is produced and non-empty, that the
self-contained report embeds every figure and table with its caption and the config, that
strings from the config reach it only escaped, and that Chromium renders it (DOM + a
non-blank screenshot). The screenshots stay under the test's tmp dir and are also copied to
/tmp/gapscope_report.png (landing page) and /tmp/gapscope_report_figure.png (a figure open).
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml

from .conftest import REPO, run_snakemake

LANGUAGES = ["eng_Latn", "deu_Latn", "zho_Hans"]
N_SENTENCES = 16
MODEL = "seamless_v2_tiny"
# corpus.path is ignored by the demo corpus, so this string only travels into the config page
PAYLOAD = (
    '</script><script>document.title="PWNED"</script><img src=x onerror="document.title=\'PWNED\'">'
)
TABLES = [
    "gaps", "cross_modal", "cross_lingual", "modality_vs_language",
    "modality_vs_language_groups", "length_adaptation", "length_adaptation_groups",
    "lengths", "length_ratios", "length_ratios_groups",
]  # fmt: skip
PAGES = ["gaps", "cross_modal", "cross_lingual", "modality_vs_language", "length_adaptation",
         "lengths", "config"]  # fmt: skip
FIGURES = ["layer_curves", "cross_lingual_curves", "models_cross_modal", "modality_vs_language",
           "length_adaptation", f"heatmaps/{MODEL}"]  # fmt: skip
CAPTIONS = [  # one phrase of each caption file
    "Gap table", "Cross-modal similarity per language", "Cross-lingual similarity of text and",
    "Modality gap vs language gap.", "Length adaptation.", "Sequence lengths",
    "Layer-wise similarity per model", "Cross-lingual similarity, text vs speech, by layer",
    "Cross-modal similarity, all models on one axis.", "Modality gap vs language gap per model.",
    "Length adaptation by resource group.", "cross-lingual similarity</strong> of model",
    "Configuration",
]  # fmt: skip
FIGURE_LABELS = [  # the "figure" labels of the report entries
    "layer curves", "cross-lingual text vs speech", "cross-modal, models compared",
    "language heatmaps", "length adaptation by resource group", "modality gap vs language gap",
]  # fmt: skip
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
    "--window-size=1400,1000", "--virtual-time-budget=15000",
]  # fmt: skip

pytestmark = pytest.mark.workflow


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    return run_snakemake(workdir, "--cores", "2", *args, timeout=1500)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The small demo run plus its report; returns the workflow folder."""
    workdir = tmp_path_factory.mktemp("report")
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    cfg["languages"] = LANGUAGES
    cfg["corpus"]["max_sentences"] = N_SENTENCES
    cfg["corpus"]["path"] = PAYLOAD
    cfg["similarity"].update(metrics=["svcca", "cka"], null_permutations=4)
    cfg["summarize"] = {"language_order": "family"}
    (workdir / "config.yaml").write_text(yaml.safe_dump(cfg, allow_unicode=True))
    result = snakemake(workdir)
    assert result.returncode == 0, result.stderr[-5000:]
    report = snakemake(workdir, "--report", str(workdir / "results/report.html"))
    assert report.returncode == 0, report.stderr[-5000:]
    return workdir


def test_every_summary_output_is_written(run):
    summary, figures = run / "results/summary", run / "results/figures"
    for name in TABLES:
        lines = (summary / f"{name}.csv").read_text().splitlines()
        assert len(lines) > 1, f"{name}.csv has no rows"
    for name in PAGES:
        assert (summary / f"{name}.html").stat().st_size > 500
    for name in FIGURES:
        for ext in ("svg", "png"):
            assert (figures / f"{name}.{ext}").stat().st_size > 5000, f"{name}.{ext}"
    # real figures, not placeholders
    assert "Nothing to plot" not in (figures / "length_adaptation.svg").read_text()
    assert "Nothing to plot" not in (figures / f"heatmaps/{MODEL}.svg").read_text()
    assert "layer04" in (figures / f"heatmaps/{MODEL}.svg").read_text()  # last layer


def test_report_embeds_figures_tables_captions_and_config(run):
    html = (run / "results/report.html").read_text(encoding="utf-8")
    assert len(html) > 200_000  # self-contained: figures are embedded as data URIs
    for name in FIGURES:
        assert f"results/figures/{name}.svg" in html
    for name in TABLES:
        assert f"results/summary/{name}.csv" in html
    for name in PAGES:
        assert f"results/summary/{name}.html" in html
    for phrase in CAPTIONS:
        assert phrase in html, phrase
    assert "4 shuffled sentence pairings" in html  # calibration in the captions
    assert re.search(r"Metric: <(tt|code|span)[^>]*>svcca</", html)  # metric as a literal
    # the config page is embedded and escaped; the payload is nowhere raw
    assert PAYLOAD not in html and "PWNED" not in html
    config_page = (run / "results/summary/config.html").read_text()
    assert "document.title=&quot;PWNED&quot;" in config_page
    assert "<script>" not in config_page and "<img" not in config_page
    prefix = r'"data_uri": "data:text/html;charset=utf8;filename=config.html;base64,'
    uris = re.findall(prefix + r'([^"]+)"', html)
    assert uris and base64.b64decode(uris[0]).decode() == config_page


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def chromium(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180)


def visible_text(dom: str) -> str:
    return re.sub(r"<script\b.*?</script>", "", dom, flags=re.S)


def assert_not_blank(png: Path) -> None:
    from matplotlib.image import imread

    assert png.read_bytes().startswith(b"\x89PNG")
    pixels = imread(png)[..., :3]
    assert pixels.shape[0] >= 900 and pixels.shape[1] >= 1300
    assert pixels.std() > 0.05, "screenshot is (almost) one colour"
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50


SHOW_FIGURE = """
<script>
window.addEventListener("load", () => setTimeout(() => {
  const key = Object.keys(results).find((k) => k.endsWith("layer_curves.svg"));
  app.setView({content: "img", contentPath: results[key].data_uri, resultPath: key});
  setTimeout(() => app.showCategory("Figures"), 200);
}, 300));
</script>
"""


def test_report_renders_in_chromium(run, tmp_path):
    binary = find_chromium()
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is required in CI (.ci/run installs it)")
        pytest.skip("chromium not installed (apt-get install chromium); the report test needs it")
    report = run / "results/report.html"
    shots = run / "screenshots"
    shots.mkdir(exist_ok=True)

    dom = chromium(binary, tmp_path / "profile-dom", "--dump-dom", report.as_uri())
    assert dom.returncode == 0, dom.stderr[-3000:]
    assert "<title>Snakemake Report</title>" in dom.stdout  # the payload did not retitle it
    assert "PWNED" not in dom.stdout
    text = visible_text(dom.stdout)
    assert 'id="app"' in text and "Loading Snakemake Report" in text
    assert "gapscope compared the representations" in text  # workflow description rendered

    landing = shots / "report.png"
    shot = chromium(binary, tmp_path / "profile-shot", f"--screenshot={landing}", report.as_uri())
    assert shot.returncode == 0 and landing.exists(), shot.stderr[-3000:]
    assert_not_blank(landing)
    shutil.copyfile(landing, "/tmp/gapscope_report.png")

    # the same report with the Figures category and one figure opened by a tiny script
    opened = tmp_path / "report_figure.html"
    head, body_end, tail = report.read_text(encoding="utf-8").rpartition("</body>")
    opened.write_text(head + SHOW_FIGURE + body_end + tail, encoding="utf-8")
    dom = chromium(binary, tmp_path / "profile-dom2", "--dump-dom", opened.as_uri())
    text = visible_text(dom.stdout)
    for label in FIGURE_LABELS:
        assert label in text, label
    assert re.search(r'<img[^>]+src="data:image/svg\+xml', text)
    figure = shots / "report_figure.png"
    shot = chromium(binary, tmp_path / "profile-shot2", f"--screenshot={figure}", opened.as_uri())
    assert shot.returncode == 0 and figure.exists(), shot.stderr[-3000:]
    assert_not_blank(figure)
    shutil.copyfile(figure, "/tmp/gapscope_report_figure.png")
