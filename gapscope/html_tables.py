"""HTML rendering of summary tables for the Snakemake report: one self-contained,
script-free page per table family, with a glossary of the columns shown."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

COLUMN_NOTES: dict[str, str] = {
    "tap": "where the comparison was taken; 'a~b' = text tap a against speech tap b",
    "score": "similarity of the two views (metric column)",
    "null_mean": "mean similarity over shuffled sentence pairings (null baseline)",
    "null": "mean null baseline (shuffled sentence pairings)",
    "calibrated": "score minus its null baseline",
    "heldout": "split-half held-out score (projections fit on one half, scored on the other)",
    "n": "sentences compared",
    "n_sentences": "sentences compared (smallest over the averaged pairs)",
    "group": "resource group of the language (language table); 'all' = every language",
    "modality_gap": "cross-lingual text minus cross-modal: > 0 when the modality gap "
    "exceeds the language gap",
    "text_minus_speech": "cross-lingual text minus cross-lingual speech: > 0 when speech "
    "differs more across languages than text",
    "delta": "after minus before length adaptation (cross-modal score)",
    "ratio_before": "speech frames before length adaptation per text token (per sentence)",
    "ratio_after": "speech frames after length adaptation per text token (per sentence)",
    "reduction": "speech frames before / after length adaptation (per sentence)",
    "_std": "sample standard deviation (over pairs, languages or sentences: see title)",
    "_calibrated": "the same value computed from score minus null baseline",
    "_mean": "mean over the languages of the group",
}

_HTML_STYLE = """
body { font-family: system-ui, sans-serif; font-size: 13px; margin: 1em; color: #111; }
h1 { font-size: 18px; } h2 { font-size: 15px; margin-top: 1.5em; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { border: 1px solid #ccc; padding: 2px 6px; text-align: right; white-space: nowrap; }
th { background: #f0f0f0; position: sticky; top: 0; }
tr:nth-child(even) td { background: #fafafa; }
td:first-child, th:first-child { text-align: left; }
p.note { max-width: 60em; } dl { font-size: 12px; } dt { font-weight: 600; }
"""


def _glossary(columns: Sequence[str]) -> list[tuple[str, str]]:
    seen: dict[str, str] = {}
    for col in columns:
        if col in COLUMN_NOTES:
            seen[col] = COLUMN_NOTES[col]
            continue
        for suffix in ("_calibrated", "_std", "_mean"):
            if col.endswith(suffix):
                seen[f"*{suffix}"] = COLUMN_NOTES[suffix]
    return list(seen.items())


def html_page(
    title: str,
    sections: Sequence[tuple[str, pd.DataFrame, str]],
    *,
    intro: str = "",
    digits: int = 4,
) -> str:
    """A self-contained, script-free HTML page with one table per section.

    ``sections`` are (heading, table, note). Every string from titles, notes, column names
    and cells is HTML-escaped; the page forbids scripts with a Content-Security-Policy.
    """
    import html

    esc = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        f"<title>{esc(title)}</title><style>{_HTML_STYLE}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
    ]
    if intro:
        parts.append(f'<p class="note">{esc(intro)}</p>')
    for heading, table, note in sections:
        parts.append(f"<h2>{esc(heading)}</h2>")
        if note:
            parts.append(f'<p class="note">{esc(note)}</p>')
        if table.empty:
            parts.append("<p><em>no rows</em></p>")
            continue
        parts.append(
            table.to_html(
                index=False,
                escape=True,
                na_rep="–",
                float_format=lambda x: f"{x:.{digits}f}",
                border=0,
            )
        )
        glossary = _glossary(list(table.columns))
        if glossary:
            parts.append("<dl>")
            parts += [f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in glossary]
            parts.append("</dl>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
