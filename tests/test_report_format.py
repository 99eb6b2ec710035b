import pandas as pd
import pytest

from enginebench.report import delta_text, fmt_number, markdown_table, summary_cell
from enginebench.stats import summarize


@pytest.mark.parametrize("value, baseline, text", [
    (251.2, 153.7, "+63 % (1.63×)"),   # FP8 vs FP16 tokens/s in the experiment this grew from
    (8.2, 15.0, "−45 % (1.83×)"),      # engine size 15 GB -> 8.2 GB
    (10.0, 10.0, "+0 % (1.00×)"),
    (None, 10.0, "—"),
    (5.0, None, "—"),
])
def test_delta_text(value, baseline, text):
    assert delta_text(value, baseline) == text


def test_summary_cell_shows_median_range_and_n():
    cell = summarize([10.0, 12.0, 11.0], "tokens/s")
    assert summary_cell(cell).text == "11.0 (10.0–12.0, n=3)"
    assert summary_cell(cell).value == 11.0
    assert summary_cell(summarize([0.5], "s")).text == "0.50 (n=1)"


def test_fmt_number():
    assert [fmt_number(x) for x in (1234.5, 56.78, 0.1234)] == ["1,234", "56.8", "0.12"]


def test_markdown_table_escapes_pipes_and_newlines():
    table = markdown_table(pd.DataFrame([{"A": "x|y", "B": "line1\nline2"}]))
    assert table.splitlines() == ["| A | B |", "|---|---|", "| x\\|y | line1<br>line2 |"]
