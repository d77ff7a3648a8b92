"""The load probe (`python -m bench.load`), small: a launched app, 3 clients × 6 requests covering every kind
of request (generate, compare, cancel, bad input)."""

from __future__ import annotations

import json

import pytest

from bench.load import BAD_INPUTS, main, percentile

pytestmark = pytest.mark.slow  # `pytest -m "not slow"` skips these for a quick loop


def test_percentile():
    assert percentile([], 50) is None and percentile([2.0], 95) == 2.0
    assert percentile([float(i) for i in range(1, 101)], 50) == 50.5


def test_a_small_load_run_serves_or_refuses_everything_and_leaves_no_orphans(capsys):
    code = main(["--clients", "3", "--requests", "6", "--model", "random-tiny", "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert summary["failed"] == 0, summary["failures"]
    assert summary["orphans"] == 0 and code == 0
    assert summary["requests"] == 18
    assert summary["completed"] + summary["refused"] + summary["cancelled"] == 18
    assert summary["refused"] >= 3  # the bad inputs: one per client
    assert summary["completed"] >= 9 and summary["latency_p95_s"] >= summary["latency_p50_s"] > 0
    assert summary["rss_before_mb"] > 0 and summary["rss_after_mb"] > 0
    assert len(BAD_INPUTS) >= 5
