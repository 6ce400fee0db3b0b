"""Ratios and targets from one bench/run.sh result file."""

from __future__ import annotations

import json
import sys


def main(path: str) -> None:
    rows = [json.loads(line) for line in open(path, encoding="utf-8") if line.startswith("{")]
    engines = [r for r in rows if r.get("bench") == "engine" and r["transport"].startswith("smtp")]
    null = next(r for r in rows if r.get("bench") == "engine" and r["transport"] == "null:")
    source = next(r for r in rows if r.get("bench") == "smtp-source")
    base = next(r for r in rows if r.get("bench") == "baseline")
    over = next((r for r in rows if r.get("bench") == "overshoot"), None)
    mem = next((r for r in rows if r.get("bench") == "memory"), None)
    budget = next((r for r in rows if r.get("bench") == "cpu-budget"), None)

    def check(ok: bool) -> str:
        return "met" if ok else "MISSED"

    lines = []
    for engine in engines:
        lines += [
            f"engine -> smtp-sink, {engine['engines']} process(es) x {engine['workers']} connections: {engine['rate']} msg/s",
            f"  vs naive baseline ({base['rate']} msg/s): {engine['rate'] / base['rate']:.1f}x (target >= 5x: {check(engine['rate'] >= 5 * base['rate'])})",
            f"  vs smtp-source ({source['rate']} msg/s): {engine['rate'] / source['rate']:.2f}x (target >= 1.0x: {check(engine['rate'] >= source['rate'])})",
        ]
    lines.append(f"engine -> null: {null['rate']} msg/s (target >= 20000: {check(null['rate'] >= 20000)})")
    if over:
        lines.append(
            f"stop overshoot: {over['overshoot_total']} in {over['runs']} runs (target 0: {check(over['overshoot_total'] == 0)}); "
            f"acknowledged median {over['ack_ms_median']} ms, max {over['ack_ms_max']} ms (target < 50 ms: {check(over['ack_ms_max'] < 50)})"
        )
    if mem:
        lines.append(f"peak memory with {mem['queued']} queued: {mem['peak_rss_mb']} MB (target < 150 MB: {check(mem['peak_rss_mb'] < 150)})")
    if budget:
        per = {r["sender"]: r for r in budget["rows"]}
        lines.append(
            f"CPU per message: smtp-source {per['smtp-source']['sender_us']} us (+ sink {per['smtp-source']['sink_us']} us), "
            f"engine smtp {per['engine smtp']['sender_us']} us (+ sink {per['engine smtp']['sink_us']} us), "
            f"engine null: {per['engine null']['sender_us']} us"
        )
        lines.append(
            f"  ceiling on {budget['cores']} cores: any engine <= {budget['engine_ceiling']} msg/s, "
            f"smtp-source <= {budget['smtp_source_ceiling']} msg/s: best possible ratio {budget['best_possible_ratio']}x"
        )
    print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1])
