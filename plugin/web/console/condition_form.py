"""The condition editor of the definition form: a form for the common cases, JSON for the rest.

The common cases are one metric compared with a number (``order_count ≥ 10``, repeating every N),
an anniversary (at N years, then every M), and all/any of several metric comparisons — what
PRD-114 and RHF's catalogue use. Everything else the engine accepts (groups inside groups,
anniversaries inside a group) is edited as JSON. :func:`switch` moves between the two without
losing what the condition says; the engine's parser, not this module, decides what is valid.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

from werkzeug.datastructures import MultiDict

from plugin.admin import definitions as service
from plugin.admin.errors import Invalid

FORM_MODES = ("metric", "tenure", "all", "any")
MODES = (*FORM_MODES, "json")
MODE_LABELS = {"metric": "A number reached", "tenure": "Anniversary", "all": "All of", "any": "Any of", "json": "JSON"}
OPS = (("gte", "≥ at least"), ("gt", "> more than"), ("eq", "= exactly"), ("true", "is true"), ("false", "is false"))
UNITS = ("years", "months", "days")

@dataclass
class Row:
    """One metric comparison: ``order_count ≥ 10``, ``feature.reports is true``."""

    metric: str = "order_count"
    op: str = "gte"
    value: str = ""

    def condition(self) -> dict[str, Any]:
        if self.op in ("true", "false"):
            return {"metric": self.metric, "eq": self.op == "true"}
        return {"metric": self.metric, self.op: self.value}


@dataclass
class ConditionState:
    mode: str = "metric"
    row: Row = field(default_factory=Row)
    every: str = ""
    amount: str = "1"
    unit: str = "years"
    tenure_every: str = ""
    rows: list[Row] = field(default_factory=lambda: [Row(), Row()])
    json_text: str = ""
    note: str | None = None  # why the JSON editor is shown, or what went wrong switching

    def raw(self) -> Any:
        """The condition as written, for the engine to judge; :class:`Invalid` for broken JSON."""
        if self.mode == "json":
            try:
                return json.loads(self.json_text)
            except ValueError as exc:
                raise Invalid(f"not valid JSON: {exc}", {"condition": {"message": f"not valid JSON: {exc}",
                                                                       "path": ""}}) from exc
        if self.mode == "tenure":
            data: dict[str, Any] = {"tenure": {self.unit: whole(self.amount)}}
            if self.tenure_every.strip():
                data["every"] = {self.unit: whole(self.tenure_every)}
            return data
        if self.mode in ("all", "any"):
            return {self.mode: [r.condition() for r in self.rows]}
        data = self.row.condition()
        if self.every.strip() and self.row.op in ("gte", "gt"):
            data["every"] = self.every.strip()
        return data


def whole(text: str) -> int | str:
    text = text.strip()
    return int(text) if text.isdigit() else text


def text(value: Any) -> str:
    return "" if value is None else str(value)


def condition_state(condition: Any) -> ConditionState:
    """The form that shows ``condition``, or the JSON editor when no form can."""
    pretty = json.dumps(condition, indent=2, ensure_ascii=False)
    parsed = service.canonical(condition)
    if parsed is None:
        return ConditionState(mode="json", json_text=pretty, note="This condition does not parse; fix it as JSON.")
    state = ConditionState(json_text=json.dumps(parsed, indent=2, ensure_ascii=False))
    if "tenure" in parsed:
        ((unit, amount),) = parsed["tenure"].items()
        every = text((parsed.get("every") or {}).get(unit))
        return replace(state, mode="tenure", unit=unit, amount=str(amount), tenure_every=every)
    if "metric" in parsed:
        return replace(state, mode="metric", row=_row(parsed), every=text(parsed.get("every")))
    key = "all" if "all" in parsed else "any"
    children = parsed[key]
    if all("metric" in c and "every" not in c for c in children):
        return replace(state, mode=key, rows=[_row(c) for c in children])
    return replace(state, mode="json", note="Groups inside groups and anniversaries inside a group are edited as JSON.")


def _row(data: dict[str, Any]) -> Row:
    op = next(k for k in ("gte", "gt", "eq") if k in data)
    value = data[op]
    if isinstance(value, bool):
        return Row(data["metric"], "true" if value else "false", "")
    return Row(data["metric"], op, text(value))


def switch(state: ConditionState, target: str) -> ConditionState:
    """``state`` shown in mode ``target``, keeping what it says where the target can say it."""
    if target not in MODES or target == state.mode:
        return state
    if target == "json":
        try:
            raw = state.raw()
        except Invalid:
            raw = None
        parsed = service.canonical(raw)
        return replace(state, mode="json", note=None,
                       json_text=json.dumps(parsed if parsed is not None else raw, indent=2, ensure_ascii=False))
    if state.mode == "json":
        try:
            state = condition_state(state.raw())
        except Invalid as exc:
            return replace(state, note=f"Fix the JSON before switching: {exc.message}")
        if state.mode == "json":
            return state
    if target in ("all", "any"):
        rows = state.rows if state.mode in ("all", "any") else [state.row] if state.mode == "metric" else [Row()]
        return replace(state, mode=target, rows=rows or [Row()], note=None)
    if target == "metric":
        row = state.rows[0] if state.mode in ("all", "any") and state.rows else state.row
        return replace(state, mode="metric", row=row, note=None)
    return replace(state, mode="tenure", note=None)


def condition_from_form(form: MultiDict[str, str]) -> ConditionState:
    """The condition editor's fields as posted (``cond_*``, ``cond_rows-N-*``, ``condition``)."""
    mode = form.get("cond_mode", "metric")
    indexes = sorted({int(k.split("-")[1]) for k in form if k.startswith("cond_rows-") and k.split("-")[1].isdigit()})
    return ConditionState(
        mode=mode if mode in MODES else "metric",
        row=Row(form.get("cond_metric", "").strip(), form.get("cond_op", "gte"), form.get("cond_value", "").strip()),
        every=form.get("cond_every", ""),
        amount=form.get("cond_amount", ""), unit=form.get("cond_unit", "years"),
        tenure_every=form.get("cond_tenure_every", ""),
        rows=[Row(form.get(f"cond_rows-{i}-metric", "").strip(), form.get(f"cond_rows-{i}-op", "gte"),
                  form.get(f"cond_rows-{i}-value", "").strip()) for i in indexes],
        json_text=form.get("condition", ""),
    )
