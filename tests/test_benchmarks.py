"""`make bench` runs every `tests/bench/[!_]*.py`: each must be a benchmark that runs on
its own. Helpers the benchmarks start or import (floors' contenders, shared fakes) are
named with a leading underscore, so the target skips them."""

from __future__ import annotations

import ast
from pathlib import Path

BENCH = Path(__file__).parent / "bench"


def _runs_as_a_script(source: str) -> bool:
    for node in ast.parse(source).body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Compare):
            left = node.test.left
            if isinstance(left, ast.Name) and left.id == "__name__":
                return True
    return False


def test_every_script_make_bench_runs_is_a_benchmark() -> None:
    scripts = sorted(p for p in BENCH.glob("*.py") if not p.name.startswith("_"))
    assert scripts, "no benchmarks found"
    helpers = [p.name for p in scripts if not _runs_as_a_script(p.read_text())]
    assert helpers == [], "name helpers with a leading underscore (make bench skips them)"
