"""The README table from bench/results: latest.json, and latest-5M.json beside it.

    .venv/bin/python bench/table.py [--main latest.json] [--second latest-5M.json]
    make bench-table

Prints one Markdown table: every row of the main run (median, p95, baseline,
ratio, goal, status) and, for each row the second run also measured (the
dashboard group against the 5,000,000-order database), that run's median and
ratio in two more columns. Figures are printed as measured; nothing is filled
in for a row a run did not measure ("—").
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
DASH = "—"


def figure(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    places = 2 if unit == "×" else 1
    return f"{value:,.{places}f} {unit}".strip()


def ratio(row: dict) -> str:
    if row.get("ratio") is None:
        return DASH
    return f"{row['ratio']:,.2f} {row.get('ratio_label', '')}".strip()


def status(row: dict) -> str:
    return {True: "met", False: "missed", None: ""}[row.get("met")]


def load(name: str) -> dict | None:
    path = RESULTS / name
    if not path.exists():
        return None
    return json.loads(path.read_text())


def table(main: dict, second: dict | None) -> str:
    label = (second or {}).get("orders_label") or "second run"
    by_name = {row["name"]: row for row in (second or {}).get("rows", [])}
    head = ["measurement", "median", "p95", "baseline (same run)", "ratio", "goal", ""]
    if second is not None:
        head += [f"median at {label}", f"ratio at {label}", f"{label} status"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in main["rows"]:
        baseline = row.get("baseline") or DASH
        cells = [
            row["name"],
            figure(row.get("median"), row["unit"]),
            figure(row["p95"], row["unit"]) if row.get("p95") is not None else "",
            baseline,
            ratio(row),
            row.get("goal") or DASH,
            status(row) + (f" ({row['note']})" if row.get("note") else ""),
        ]
        if second is not None:
            other = by_name.get(row["name"])
            cells += (
                [figure(other.get("median"), other["unit"]), ratio(other), status(other)]
                if other
                else [DASH, DASH, ""]
            )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--main", default="latest.json", help="in bench/results")
    parser.add_argument("--second", default="latest-5M.json", help="in bench/results")
    args = parser.parse_args()
    main_run = load(args.main)
    if main_run is None:
        sys.exit(f"no bench/results/{args.main}: run make bench first")
    second = load(args.second)
    print(
        f"{main_run['orders']:,} orders, measured {main_run['measured_at']}, "
        f"load average {', '.join(f'{x:.1f}' for x in main_run['load_average'])}"
        + (
            f"; {second['orders']:,} orders, measured {second['measured_at']}"
            if second is not None
            else ""
        )
        + "\n"
    )
    print(table(main_run, second))


if __name__ == "__main__":
    main()
