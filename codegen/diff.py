"""``gokogeri schema diff``: is a schema change safe for jobs in flight and for rolling deploys?

A job contract is read at two times by two parties: a producer encodes the
args array, a consumer decodes it later, possibly after a deploy. Each change
is judged in both directions:

- old payloads -> new consumers: jobs already enqueued (and scheduled, and in
  the retry set), and producers not yet deployed. If these break, the change
  is BREAKING whatever the deploy order.
- new payloads -> old consumers: producers deployed before the consumers. If
  only these break, the change is safe only when consumers deploy first.

Types are compared as sets of accepted JSON values (``_Cmp.accepts``): a
change is safe in a direction when the reader accepts every value the writer
could have written.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from .model import (
    ArrayType,
    DefRef,
    FloatType,
    FormatType,
    IntType,
    JobDef,
    LiteralType,
    MapType,
    NamedDef,
    NullableType,
    NullType,
    Package,
    Param,
    ParamKind,
    StrType,
    TypeNode,
    UnionType,
)
from .render import py_lit, py_type


class Verdict(enum.Enum):
    SAFE = "safe"
    CONSUMERS_FIRST = "deploy consumers first"
    BREAKING = "breaking"


@dataclass(frozen=True)
class Change:
    job: str  # the job class (the new one when it changed)
    where: str  # "args[1] (amount).currency", "queue", "job"
    what: str  # what changed and what it does
    old_payloads_ok: bool  # enqueued jobs / old producers -> new consumers
    new_payloads_ok: bool  # new producers -> old consumers

    @property
    def verdict(self) -> Verdict:
        if not self.old_payloads_ok:
            return Verdict.BREAKING
        if not self.new_payloads_ok:
            return Verdict.CONSUMERS_FIRST
        return Verdict.SAFE


@dataclass(frozen=True)
class Report:
    changes: tuple[Change, ...]

    def worst(self, consumers_first: bool = False) -> Verdict:
        """The verdict of the whole diff; with ``consumers_first`` that order is taken as given."""
        verdicts = {c.verdict for c in self.changes}
        if Verdict.BREAKING in verdicts:
            return Verdict.BREAKING
        if Verdict.CONSUMERS_FIRST in verdicts and not consumers_first:
            return Verdict.CONSUMERS_FIRST
        return Verdict.SAFE

    def exit_code(self, consumers_first: bool = False) -> int:
        """0 when safe (for the declared deploy order), 1 otherwise."""
        return 0 if self.worst(consumers_first) is Verdict.SAFE else 1

    def text(self, consumers_first: bool = False) -> str:
        if not self.changes:
            return "no contract changes\n"
        lines: list[str] = []
        width = max(len(v.value) for v in Verdict)
        job = None
        for c in self.changes:
            if c.job != job:
                job = c.job
                lines.append(f"{job}")
            lines.append(f"  {c.verdict.value.upper():<{width}}  {c.where}: {c.what}")
        counts = {v: sum(1 for c in self.changes if c.verdict is v) for v in Verdict}
        worst = self.worst(consumers_first)
        summary = ", ".join(f"{n} {v.value}" for v, n in counts.items() if n)
        note = ""
        if worst is Verdict.CONSUMERS_FIRST:
            note = " (pass --consumers-first if workers are always deployed before producers)"
        lines.append(f"verdict: {worst.value} ({summary}){note}")
        return "\n".join(lines) + "\n"


def _arg_label(p: Param) -> str:
    return f"args[{p.index}] ({p.name})"


class _Cmp:
    """Type comparison between an old and a new job's models."""

    def __init__(self, old: JobDef, new: JobDef) -> None:
        self.defs = {
            "old": {d.name: d for d in old.defs},
            "new": {d.name: d for d in new.defs},
        }

    def resolve(self, t: TypeNode, side: str) -> TypeNode | NamedDef:
        while isinstance(t, DefRef):
            d = self.defs[side][t.name]
            if d.properties is not None:
                return d
            assert d.alias is not None
            t = d.alias
        return t

    def accepts(
        self, reader: TypeNode, rside: str, writer: TypeNode, wside: str, path: str
    ) -> list[str]:
        """Why ``reader`` would refuse some value ``writer`` accepts ([] when it never would)."""
        r = self.resolve(reader, rside)
        w = self.resolve(writer, wside)
        if isinstance(w, NullableType):
            if not isinstance(r, (NullableType, NullType)) and not _union_has_null(r):
                return [f"{path}: null is no longer accepted"]
            return self.accepts(_strip_null(r), rside, w.inner, wside, path)
        if isinstance(r, NullableType):
            r = self.resolve(r.inner, rside)
        if isinstance(w, NullType):
            return [] if isinstance(r, NullType) else [f"{path}: null is no longer accepted"]
        if isinstance(w, UnionType):
            return [x for o in w.options for x in self.accepts(_node(r), rside, o, wside, path)]
        if isinstance(r, UnionType):
            for o in r.options:
                if not self.accepts(o, rside, _node(w), wside, path):
                    return []
            return [
                f"{path}: {self.show(w, wside)} is no longer accepted (now {self.show(r, rside)})"
            ]
        if isinstance(w, LiteralType):
            return self.literal(r, rside, w, path)
        if isinstance(w, NamedDef) or isinstance(r, NamedDef):
            if isinstance(w, NamedDef) and isinstance(r, NamedDef):
                return self.objects(r, rside, w, wside, path)
            return [f"{path}: type changed from {self.show(w, wside)} to {self.show(r, rside)}"]
        if type(r) is not type(w) and not (isinstance(r, FloatType) and isinstance(w, IntType)):
            if isinstance(r, StrType) and isinstance(w, FormatType) and _plain_str(r):
                return []
            return [f"{path}: type changed from {self.show(w, wside)} to {self.show(r, rside)}"]
        if isinstance(r, (IntType, FloatType)):
            assert isinstance(w, (IntType, FloatType))
            return _numbers(r, w, path)
        if isinstance(r, StrType):
            assert isinstance(w, StrType)
            return _strings(r, w, path)
        if isinstance(r, FormatType):
            assert isinstance(w, FormatType)
            return (
                []
                if r.format == w.format
                else [f"{path}: format changed from {w.format} to {r.format}"]
            )
        if isinstance(r, ArrayType):
            assert isinstance(w, ArrayType)
            out = _range(r.min_items, r.max_items, w.min_items, w.max_items, path, "items")
            return out + self.accepts(r.item, rside, w.item, wside, path + "[]")
        if isinstance(r, MapType):
            assert isinstance(w, MapType)
            return self.accepts(r.value, rside, w.value, wside, path + "[*]")
        return []  # bool, null

    def literal(self, r: TypeNode | NamedDef, rside: str, w: LiteralType, path: str) -> list[str]:
        if isinstance(r, LiteralType):
            gone = [v for v in w.values if not any(v == x and type(v) is type(x) for x in r.values)]
            if gone:
                shown = ", ".join(py_lit(v) for v in gone)
                return [f"{path}: enum value(s) {shown} removed"]
            return []
        # A wider type accepts the literal values that pass its own checks.
        from .loader import build_spec

        if isinstance(r, NamedDef):
            return [f"{path}: type changed from an enum to {r.name}"]
        specs: dict[str, Any] = {}
        try:
            spec = build_spec(r, specs)
        except KeyError:
            return [f"{path}: type changed from an enum to {self.show(r, rside)}"]
        refused = []
        for v in w.values:
            try:
                spec.decode(v, "")
            except Exception:
                refused.append(py_lit(v))
        return [f"{path}: enum value(s) {', '.join(refused)} no longer accepted"] if refused else []

    def objects(self, r: NamedDef, rside: str, w: NamedDef, wside: str, path: str) -> list[str]:
        assert r.properties is not None and w.properties is not None
        out: list[str] = []
        rprops = {p.key: p for p in r.properties}
        wprops = {p.key: p for p in w.properties}
        for key, wp in wprops.items():
            rp = rprops.get(key)
            where = f"{path}.{key}"
            if rp is None:
                if not r.open:
                    out.append(f"{where}: property removed (additionalProperties is false)")
                continue
            out += self.accepts(rp.type, rside, wp.type, wside, where)
            if rp.required and not wp.required and not rp.has_default:
                out.append(f"{where}: property became required")
            if rp.has_default and wp.has_default and rp.default != wp.default:
                out.append(f"{where}: default changed from {wp.default!r} to {rp.default!r}")
        for key, rp in rprops.items():
            if key in wprops:
                continue
            where = f"{path}.{key}"
            if rp.required:
                out.append(f"{where}: new required property")
            elif w.open:
                out.append(f"{where}: new property, where unknown keys were allowed before")
        if w.open and not r.open:
            out.append(f"{path}: unknown keys are no longer allowed (additionalProperties: false)")
        return out

    def show(self, t: TypeNode | NamedDef, side: str) -> str:
        if isinstance(t, NamedDef):
            return t.name
        return py_type(t)


def _node(t: TypeNode | NamedDef) -> TypeNode:
    return DefRef(t.name) if isinstance(t, NamedDef) else t


def _union_has_null(t: TypeNode | NamedDef) -> bool:
    return isinstance(t, UnionType) and any(isinstance(o, NullType) for o in t.options)


def _strip_null(t: TypeNode | NamedDef) -> TypeNode:
    if isinstance(t, NullableType):
        return t.inner
    return _node(t)


def _plain_str(t: StrType) -> bool:
    return t.min_length is None and t.max_length is None and t.pattern is None and t.format is None


def _lower(t: IntType | FloatType) -> tuple[float, bool] | None:
    if t.minimum is None and t.exclusive_minimum is None:
        return None
    cands = []
    if t.minimum is not None:
        cands.append((t.minimum, False))
    if t.exclusive_minimum is not None:
        cands.append((t.exclusive_minimum, True))
    return max(cands)


def _upper(t: IntType | FloatType) -> tuple[float, bool] | None:
    if t.maximum is None and t.exclusive_maximum is None:
        return None
    cands = []
    if t.maximum is not None:
        cands.append((t.maximum, False))
    if t.exclusive_maximum is not None:
        cands.append((t.exclusive_maximum, True))
    return min(cands, key=lambda c: (c[0], not c[1]))


def _numbers(r: IntType | FloatType, w: IntType | FloatType, path: str) -> list[str]:
    out = []
    rl, wl = _lower(r), _lower(w)
    if rl is not None and (wl is None or wl[0] < rl[0] or (wl[0] == rl[0] and rl[1] and not wl[1])):
        out.append(f"{path}: lower bound raised ({_bound(wl, '>')} -> {_bound(rl, '>')})")
    ru, wu = _upper(r), _upper(w)
    if ru is not None and (wu is None or wu[0] > ru[0] or (wu[0] == ru[0] and ru[1] and not wu[1])):
        out.append(f"{path}: upper bound lowered ({_bound(wu, '<')} -> {_bound(ru, '<')})")
    if r.multiple_of is not None:
        m = w.multiple_of
        if m is None or (m / r.multiple_of) != int(m / r.multiple_of):
            out.append(f"{path}: multipleOf {r.multiple_of} added or changed")
    return out


def _bound(b: tuple[float, bool] | None, op: str) -> str:
    if b is None:
        return "none"
    return f"{op}{'' if b[1] else '='} {b[0]}"


def _range(
    rmin: int | None, rmax: int | None, wmin: int | None, wmax: int | None, path: str, unit: str
) -> list[str]:
    out = []
    if rmin is not None and (wmin is None or wmin < rmin):
        out.append(f"{path}: minimum {unit} raised ({wmin or 0} -> {rmin})")
    if rmax is not None and (wmax is None or wmax > rmax):
        out.append(f"{path}: maximum {unit} lowered ({'none' if wmax is None else wmax} -> {rmax})")
    return out


def _strings(r: StrType, w: StrType, path: str) -> list[str]:
    out = _range(r.min_length, r.max_length, w.min_length, w.max_length, path, "length")
    if r.pattern is not None and r.pattern != w.pattern:
        out.append(f"{path}: pattern {r.pattern!r} added or changed")
    if r.format is not None and r.format != w.format:
        out.append(f"{path}: format {r.format} added or changed")
    return out


def compare_jobs(old: JobDef, new: JobDef) -> list[Change]:
    changes: list[Change] = []
    job = new.class_name

    def add(where: str, what: str, old_ok: bool, new_ok: bool) -> None:
        changes.append(Change(job, where, what, old_ok, new_ok))

    if old.class_name != new.class_name:
        add(
            "class",
            f"{old.class_name} -> {new.class_name}: jobs already enqueued name the old class, "
            "which no worker runs any more",
            False,
            False,
        )
    if old.queue != new.queue:
        add(
            "queue",
            f"{old.queue!r} -> {new.queue!r}: jobs already in {old.queue!r} are not fetched by "
            f"workers that only listen on {new.queue!r}",
            False,
            False,
        )
    if old.retry != new.retry:
        add("retry", f"{py_lit(old.retry)} -> {py_lit(new.retry)}", True, True)
    if old.activejob != new.activejob:
        add(
            "activejob",
            f"{py_lit(old.activejob)} -> {py_lit(new.activejob)}: the job changes wire form "
            "(a Sidekiq job vs an ActiveJob wrapper job); neither side reads the other's",
            False,
            False,
        )
    elif old.keywords != new.keywords:
        add(
            "keywords",
            f"the last argument {'became' if new.keywords else 'is no longer'} perform's "
            "keyword arguments: jobs already enqueued pass it the other way",
            False,
            False,
        )

    cmp = _Cmp(old, new)
    new_titles = {p.name: p.index for p in new.params}
    for i in range(max(len(old.params), len(new.params))):
        op = old.params[i] if i < len(old.params) else None
        np_ = new.params[i] if i < len(new.params) else None
        if op is not None and np_ is None:
            add(
                _arg_label(op),
                "argument removed: jobs already enqueued with it are refused "
                f"(the job now takes at most {len(new.params)} arguments)",
                False,
                op.index >= old.min_items,
            )
            continue
        if op is None and np_ is not None:
            if np_.index < new.min_items:
                add(
                    _arg_label(np_),
                    "new required argument: jobs already enqueued lack it",
                    False,
                    True,
                )
            else:
                add(
                    _arg_label(np_),
                    "new optional argument: old workers refuse payloads that carry it",
                    True,
                    False,
                )
            continue
        assert op is not None and np_ is not None
        label = _arg_label(np_)
        if op.name != np_.name:
            if op.name in new_titles:
                add(
                    label,
                    f"arguments reordered: {op.name!r} moved from args[{i}] to args[{new_titles[op.name]}]",
                    False,
                    False,
                )
                continue
            add(
                label,
                f"renamed from {op.name!r} (the wire form is positional; Python keyword callers change)",
                True,
                True,
            )
        widened = cmp.accepts(op.type, "old", np_.type, "new", label)
        narrowed = cmp.accepts(np_.type, "new", op.type, "old", label)
        for reason in narrowed:
            add(
                label,
                f"narrowed: {reason.removeprefix(label + ': ').removeprefix(label)}",
                False,
                True,
            )
        for reason in widened:
            if reason in narrowed:
                continue
            add(
                label,
                f"widened: {reason.removeprefix(label + ': ').removeprefix(label)}",
                True,
                False,
            )
        old_req, new_req = i < old.min_items, i < new.min_items
        if old_req and not new_req:
            add(
                label, "became optional: old workers refuse payloads that leave it out", True, False
            )
        if new_req and not old_req:
            add(label, "became required: jobs already enqueued may lack it", False, True)
        if (
            op.kind is ParamKind.OPTIONAL_DEFAULT
            and np_.kind is ParamKind.OPTIONAL_DEFAULT
            and (op.default != np_.default or type(op.default) is not type(np_.default))
        ):
            add(
                label,
                f"default changed from {py_lit(op.default)} to {py_lit(np_.default)}: "
                "jobs that left it out now run with a different value",
                False,
                False,
            )
        elif op.kind is not np_.kind and not old_req and not new_req:
            what = "default added" if np_.kind is ParamKind.OPTIONAL_DEFAULT else "default removed"
            add(
                label,
                f"{what}: workers see a different value for jobs that leave it out",
                True,
                True,
            )
    return changes


def compare(old: Package, new: Package) -> Report:
    """Every change between two loaded packages, jobs matched by class (then by schema file)."""
    changes: list[Change] = []
    new_by_class = {j.class_name: j for j in new.jobs}
    new_by_source = {j.source: j for j in new.jobs}
    matched: set[str] = set()
    for o in old.jobs:
        n = new_by_class.get(o.class_name)
        if n is None:
            candidate = new_by_source.get(o.source)
            if candidate is not None and candidate.class_name not in {
                j.class_name for j in old.jobs
            }:
                n = candidate
        if n is None:
            changes.append(
                Change(
                    o.class_name,
                    "job",
                    f"removed ({o.source}): jobs already enqueued have no worker",
                    False,
                    True,
                )
            )
            continue
        matched.add(n.class_name)
        changes.extend(compare_jobs(o, n))
    for n in new.jobs:
        if n.class_name not in matched:
            changes.append(Change(n.class_name, "job", f"new job ({n.source})", True, True))
    return Report(tuple(changes))
