"""Rule summarize_config: the validated configuration as YAML and as an escaped HTML page."""

import html
from pathlib import Path

import _bootstrap  # noqa: F401  (puts the workflow's gapscope first on sys.path)
import yaml

from gapscope import __version__
from gapscope.stages import common

common.start_log(snakemake.log[0])
config = dict(snakemake.config)
text = yaml.safe_dump(config, sort_keys=False, allow_unicode=True)
Path(snakemake.output.yaml).write_text(text, encoding="utf-8")
page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>Configuration</title>
<style>body {{ font-family: system-ui, sans-serif; font-size: 13px; margin: 1em; }}
pre {{ background: #f6f6f6; padding: 1em; border: 1px solid #ddd; }}</style></head><body>
<h1>Configuration of this run</h1>
<p>The configuration after schema validation (defaults filled in), gapscope
{html.escape(__version__)}, digest {html.escape(snakemake.params.digest)}.</p>
<pre>{html.escape(text)}</pre>
</body></html>
"""
Path(snakemake.output.html).write_text(page, encoding="utf-8")
