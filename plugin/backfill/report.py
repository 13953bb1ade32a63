"""What ``milestones backfill`` prints: a progress line while importing, a report at the end."""

from __future__ import annotations

import sys
from collections import defaultdict
from decimal import Decimal
from typing import TextIO

from plugin.backfill.runner import Result


class ProgressLine:
    """One line rewritten in place on a terminal; one line per ``every`` pages otherwise."""

    def __init__(self, stream: TextIO | None = None, every: int = 20) -> None:
        self.stream = stream or sys.stderr
        self.every = every
        self.tty = self.stream.isatty()
        self.shown = False

    def __call__(self, result: Result) -> None:
        if not self.tty and result.pages % self.every:
            return
        line = (f"importing {result.stage}: page {result.pages:,} · {result.customers:,} customers · "
                f"{result.orders:,} orders")
        self.stream.write(f"\r{line}\x1b[K" if self.tty else line + "\n")
        self.stream.flush()
        self.shown = True

    def close(self) -> None:
        if self.tty and self.shown:
            self.stream.write("\n")
            self.stream.flush()


def money(amounts: dict[str, Decimal]) -> str:
    return ", ".join(f"{currency} {amount:,.2f}" for currency, amount in sorted(amounts.items())) or "—"


def report(result: Result) -> list[str]:
    head = "DRY RUN — nothing was changed" if result.dry_run else (
        f"run {result.run_id}" + (" (resumed)" if result.resumed else ""))
    lines = [
        f"backfill from {result.source}: {head}",
        f"imported {result.pages:,} pages: {result.customers:,} customer records ({result.new_customers:,} new "
        f"customers), {result.orders:,} orders ({result.known_orders:,} already in the ledger, merged)",
    ]
    if result.skipped:
        lines.append(f"skipped {result.skipped:,} records that could not be read, e.g.:")
        lines += [f"  {problem}" for problem in result.problems[:5]]
    lines.append(f"counters recomputed from the ledger for {result.reached_customers:,} customers")
    verb = ("would be " if result.dry_run else "")
    lines.append(f"{'definition':<22}{verb + 'recorded':>20}{verb + 'celebrated':>22}{'already':>10}  credit liability")
    total: dict[str, Decimal] = defaultdict(Decimal)
    skipped = []
    for outcome in result.outcomes:
        if outcome.note:
            skipped.append(outcome.key)
            continue
        lines.append(f"{outcome.key:<22}{outcome.recorded:>20,}{outcome.celebrated:>22,}{outcome.already:>10,}  "
                     f"{money(outcome.liability)}")
        for currency, amount in outcome.liability.items():
            total[currency] += amount
    if skipped:
        lines.append(f"not backfilled (the store's history does not say when they were reached): {', '.join(skipped)}")
    lines.append(f"store credit for the celebrated milestones: {money(dict(total))}")
    if result.timings:
        lines.append("timings: " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in result.timings.items()))
    return lines
