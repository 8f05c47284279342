"""Every UI text has its Chinese; charts are SVG with their text escaped; the histogram's quantiles."""

from __future__ import annotations

import re
from importlib import resources

from dncgate.console.casework import ASKED
from dncgate.console.charts import stacked_bars
from dncgate.console.health import quantile
from dncgate.console.i18n import ZH
from dncgate.enforcement.complaints import Step
from dncgate.operators import Role

TEXT = re.compile(r"""_\("((?:[^"\\]|\\.)*)"\)""")


def test_every_text_of_the_templates_has_its_chinese() -> None:
    templates = resources.files("dncgate.console") / "templates"
    used = {m for t in templates.iterdir() if t.name.endswith(".html") for m in TEXT.findall(t.read_text("utf-8"))}
    assert len(used) > 100
    named = {a.value for a in ASKED} | {s.value for s in Step} | {r.value for r in Role}
    assert sorted((used | named) - set(ZH)) == []


def test_a_chart_is_svg_with_escaped_text() -> None:
    svg = stacked_bars("<calls>", ["10:00", "10:01"], {"reject": [3, 0], "allow": [1, 2]})
    assert svg.startswith('<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="&lt;calls&gt;"')
    assert svg.count("<rect") == 3 + 2  # three bars with a value, two legend keys
    assert "<calls>" not in svg


def test_quantiles_from_cumulative_buckets() -> None:
    buckets = {0.001: 50.0, 0.005: 98.0, 0.01: 100.0, float("inf"): 100.0}
    assert quantile(buckets, 0.5) == 1.0
    assert quantile(buckets, 0.99) == 10.0
    assert quantile({float("inf"): 0.0}, 0.5) is None


def test_search_times_are_read_as_utc() -> None:
    from dncgate.console.pages import _utc

    assert _utc("2026-12-02T10:00", "since") == "2026-12-02T10:00:00"
    assert _utc("2026-12-02T18:00+08:00", "since") == "2026-12-02T10:00:00"
    assert _utc("", "since") == ""
