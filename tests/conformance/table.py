"""Run the conformance suite and print docs/providers.md's table from its results.

.venv/bin/python -m tests.conformance.table > /tmp/table.md
"""

from __future__ import annotations

import re
import sys
from typing import Any

import pytest

# test_<scenario>[<vendor>] or, for a scenario with cases, test_<scenario>[<vendor>-<case>]:
# a scenario passes for a vendor when every case does.
NODE = re.compile(r"::test_(?P<scenario>\w+)\[(?P<vendor>\w+)(?:-[\w-]+)?\]$")
MARKS = {"passed": "pass", "failed": "FAIL", "skipped": "n/a"}


class Collector:
    def __init__(self) -> None:
        self.results: dict[tuple[str, str], str] = {}
        self.scenarios: list[str] = []

    def pytest_runtest_logreport(self, report: Any) -> None:
        match = NODE.search(report.nodeid)
        if not match or (report.when != "call" and report.outcome == "passed"):
            return
        scenario, vendor = match["scenario"], match["vendor"]
        if scenario not in self.scenarios:
            self.scenarios.append(scenario)
        if report.outcome != "passed" or (scenario, vendor) not in self.results:
            self.results[(scenario, vendor)] = MARKS[report.outcome]


def main() -> int:
    collector = Collector()
    code = pytest.main(["-q", "-p", "no:cacheprovider", "tests/conformance"], plugins=[collector])
    # Imported after the run: importing test modules first defeats pytest's assert rewriting.
    from tests.conformance.conftest import ALL_VENDORS

    lines = [
        "| scenario | " + " | ".join(ALL_VENDORS) + " |",
        "|---" * (len(ALL_VENDORS) + 1) + "|",
    ]
    for scenario in collector.scenarios:
        cells = [collector.results.get((scenario, v), "?") for v in ALL_VENDORS]
        lines.append(f"| {scenario.replace('_', ' ')} | " + " | ".join(cells) + " |")
    sys.stdout.write("\n".join(lines) + "\n")
    return int(code)


if __name__ == "__main__":
    raise SystemExit(main())
