"""Render the model into Ruby modules for Sidekiq (plus RBS signatures).

The Ruby side gets the same contract as the Python side from the same
schemas: ``GokogeriContracts::<Job>.perform_async(...)`` and friends check
their arguments against the schema before pushing, and
``include GokogeriContracts::<Job>::Job`` gives a Sidekiq job class whose
``perform`` receives decoded values with defaults filled in. The checks are
spec trees interpreted by a generated runtime file (``gokogeri_contracts.rb``)
whose rules and messages mirror ``gokogeri.codegen.runtime``; every text that
Python formats (bounds, patterns, enum lists) is formatted here, by Python,
and embedded, so both languages print the same bytes.
"""

from __future__ import annotations

import json
from functools import cache

import jinja2

from . import ecma, runtime
from .loader import json_kind
from .model import (
    ArrayType,
    BoolType,
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
    Property,
    StrType,
    TypeNode,
    UnionType,
)
from .render import HEADER, TEMPLATES

RUNTIME_FILE = "gokogeri_contracts.rb"
NAMESPACE = "GokogeriContracts"

# Ruby keywords and the names the generated methods use themselves.
_RUBY_RESERVED = frozenset(
    [
        "alias",
        "and",
        "begin",
        "break",
        "case",
        "class",
        "def",
        "defined",
        "do",
        "else",
        "elsif",
        "end",
        "ensure",
        "false",
        "for",
        "if",
        "in",
        "module",
        "next",
        "nil",
        "not",
        "or",
        "redo",
        "rescue",
        "retry",
        "return",
        "self",
        "super",
        "then",
        "true",
        "undef",
        "unless",
        "until",
        "when",
        "while",
        "yield",
        "__method__",
        "__FILE__",
        "__LINE__",
        "__ENCODING__",
        "BEGIN",
        "END",
        "interval",
        "timestamp",
        "items",
        "options",
        "values",
    ]
)


def rb_param(p: Param) -> str:
    name = p.name
    while name in _RUBY_RESERVED:
        name += "_"
    return name


def rb_str(s: str) -> str:
    """A double-quoted Ruby string literal (no interpolation, every control character escaped)."""
    out = ['"']
    for ch in s:
        cp = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "#":
            out.append("\\#")  # never "#{...}" interpolation
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif cp < 0x20 or cp == 0x7F or (cp >= 0x80 and not ch.isprintable()):
            out.append(f"\\u{{{cp:x}}}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def rb_lit(v: object) -> str:
    """A Ruby literal for a JSON value."""
    if v is None:
        return "nil"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, str):
        return rb_str(v)
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, list):
        return "[" + ", ".join(rb_lit(x) for x in v) + "]"
    if isinstance(v, dict):
        if not v:
            return "{}"
        return "{ " + ", ".join(f"{rb_str(k)} => {rb_lit(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"not a JSON value: {v!r}")


def rb_regex(source: str) -> str:
    """A Ruby regexp literal for ``source`` (already Ruby syntax)."""
    escaped = source.replace("/", "\\/").replace("\\\\/", "\\/")
    return f"/{escaped}/"


def _format_regex(python: str) -> str:
    # runtime.FORMATS are written for Python; \Z (end of string) is \z in Ruby.
    return rb_regex(python.replace("\\Z", "\\z"))


def _bounds(t: IntType | FloatType) -> str:
    parts = []
    for op, limit in (
        (":>=", t.minimum),
        (":<=", t.maximum),
        (":>", t.exclusive_minimum),
        (":<", t.exclusive_maximum),
        (":multiple", t.multiple_of),
    ):
        if limit is not None:
            # The message shows the limit as Python's f-string does (runtime._Number._bounds).
            parts.append(f"[{op}, {rb_lit(limit)}, {rb_str(str(limit))}]")
    return f"[{', '.join(parts)}]" if parts else ""


def rb_spec(t: TypeNode, aj: bool = False) -> str:
    """The Ruby spec constructor that checks and converts ``t``.

    ``aj``: for an ActiveJob job, whose values ActiveJob serializes itself: formats are checked
    as the Ruby value types they name (ActiveJobFormats).
    """
    if isinstance(t, (IntType, FloatType)):
        cls = "IntSpec" if isinstance(t, IntType) else "FloatSpec"
        b = _bounds(t)
        return f"{cls}.new({b})" if b else f"{cls}.new"
    if isinstance(t, StrType):
        kw = []
        if t.min_length is not None:
            kw.append(f"min_length: {t.min_length}")
        if t.max_length is not None:
            kw.append(f"max_length: {t.max_length}")
        if t.pattern is not None:
            kw.append(f"pattern: {rb_regex(ecma.translate(t.pattern).ruby)}")
            kw.append(f"source: {rb_str(repr(t.pattern))}")
        if t.format is not None:
            regex, what = runtime.FORMATS[t.format]
            kw.append(f"format: [{_format_regex(regex)}, {rb_str(t.format)}, {rb_str(what)}]")
        return f"StrSpec.new({', '.join(kw)})" if kw else "StrSpec.new"
    if isinstance(t, BoolType):
        return "BoolSpec.new"
    if isinstance(t, NullType):
        return "NullSpec.new"
    if isinstance(t, FormatType):
        if aj:
            return f"ActiveJobFormats.spec({rb_str(t.format)})"
        return {"date-time": "DateTimeSpec.new", "date": "DateSpec.new", "uuid": "UuidSpec.new"}[
            t.format
        ]
    if isinstance(t, LiteralType):
        return f"ConstSpec.new([{', '.join(rb_lit(v) for v in t.values)}])"
    if isinstance(t, NullableType):
        return f"NullableSpec.new({rb_spec(t.inner, aj)})"
    if isinstance(t, UnionType):
        kinds = tuple((json_kind(o), runtime.Spec()) for o in t.options)
        rule = runtime.Union(kinds).rule
        members = ", ".join(f"[{rb_str(json_kind(o))}, {rb_spec(o, aj)}]" for o in t.options)
        return f"UnionSpec.new([{members}], {rb_str(rule)})"
    if isinstance(t, ArrayType):
        kw = []
        if t.min_items is not None:
            kw.append(f"min_items: {t.min_items}")
        if t.max_items is not None:
            kw.append(f"max_items: {t.max_items}")
        return f"ArraySpec.new({', '.join([rb_spec(t.item, aj), *kw])})"
    if isinstance(t, MapType):
        return f"MapSpec.new({rb_spec(t.value, aj)})"
    assert isinstance(t, DefRef)
    return spec_const(t.name)


def spec_const(name: str) -> str:
    return f"SPEC_{name}"


def rb_prop(p: Property, aj: bool = False) -> str:
    default = rb_lit(p.default) if p.has_default else "nil"
    return (
        f"Prop.new({rb_str(p.key)}, {rb_spec(p.type, aj)}, {str(p.required).lower()}, "
        f"{default}, {str(p.has_default).lower()})"
    )


def rb_arg(p: Param, aj: bool = False) -> str:
    base = f"Arg.new({rb_str(p.name)}, {rb_spec(p.type, aj)}"
    if p.kind is ParamKind.OPTIONAL_DEFAULT:
        return f"{base}, {rb_lit(p.default)})"
    return base + ")"


def rb_param_decl(p: Param) -> str:
    if p.kind is ParamKind.OPTIONAL:
        return f"{rb_param(p)} = UNSET"
    if p.kind is ParamKind.OPTIONAL_DEFAULT:
        return f"{rb_param(p)} = {rb_lit(p.default)}"
    return rb_param(p)


# --- RBS ---


def rbs_type(t: TypeNode, defs: dict[str, NamedDef]) -> str:
    if isinstance(t, IntType):
        return "Integer"
    if isinstance(t, FloatType):
        return "Float | Integer"
    if isinstance(t, StrType):
        return "String"
    if isinstance(t, BoolType):
        return "bool"
    if isinstance(t, NullType):
        return "nil"
    if isinstance(t, FormatType):
        return _RBS_FORMATS[t.format]
    if isinstance(t, LiteralType):
        return " | ".join(
            "nil" if v is None else json.dumps(v) if not isinstance(v, bool) else str(v).lower()
            for v in t.values
        )
    if isinstance(t, NullableType):
        return f"({rbs_type(t.inner, defs)})?"
    if isinstance(t, UnionType):
        return " | ".join(rbs_type(o, defs) for o in t.options)
    if isinstance(t, ArrayType):
        return f"Array[{rbs_type(t.item, defs)}]"
    if isinstance(t, MapType):
        return f"Hash[String, {rbs_type(t.value, defs)}]"
    assert isinstance(t, DefRef)
    return rbs_alias(t.name)


# The Ruby class of each format's values (ActiveJob formats: what perform receives).
_RBS_FORMATS = {
    "date-time": "Time",
    "date": "Date",
    "uuid": "String",
    "ruby-datetime": "DateTime",
    "ruby-time-with-zone": "ActiveSupport::TimeWithZone",
    "duration": "ActiveSupport::Duration",
    "decimal": "BigDecimal | String",
    "ruby-symbol": "Symbol",
    "globalid": "GlobalID::Identification",
    "ruby-module": "Module",
}


def rbs_alias(name: str) -> str:
    # RBS type alias names start lowercase.
    return "t_" + name


def rbs_def(d: NamedDef, defs: dict[str, NamedDef]) -> str:
    if d.properties is None:
        assert d.alias is not None
        return rbs_type(d.alias, defs)
    # String-keyed hashes: RBS 2 records take only symbol keys and no optional fields.
    return "Hash[String, untyped]"


def rbs_param(p: Param, defs: dict[str, NamedDef]) -> str:
    t = rbs_type(p.type, defs)
    name = rb_param(p)
    if p.kind is ParamKind.OPTIONAL:
        return f"?({t} | {NAMESPACE}::unset) {name}"
    if p.kind is ParamKind.OPTIONAL_DEFAULT:
        return f"?{t} {name}"
    return f"{t} {name}"


@cache
def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # Ruby source, not HTML
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(
        HEADER=HEADER,
        NAMESPACE=NAMESPACE,
        RUNTIME_FILE=RUNTIME_FILE,
        rb_str=rb_str,
        rb_lit=rb_lit,
        rb_spec=rb_spec,
        rb_prop=rb_prop,
        rb_arg=rb_arg,
        rb_param=rb_param,
        rb_param_decl=rb_param_decl,
        spec_const=spec_const,
        rbs_type=rbs_type,
        rbs_alias=rbs_alias,
        rbs_def=rbs_def,
        rbs_param=rbs_param,
    )
    return env


def _comment(text: str | None) -> list[str]:
    return [line.rstrip() for line in (text or "").strip().splitlines()]


def _aj_perform_params(job: JobDef) -> tuple[list[str], list[str]]:
    """The parameters of the Rails job's perform, as Ruby and as RBS."""
    defs = {d.name: d for d in job.defs}
    positional = job.params[:-1] if job.keywords else job.params
    rb: list[str] = []
    rbs: list[str] = []
    for p in positional:
        if p.kind is ParamKind.OPTIONAL_DEFAULT:
            rb.append(f"{rb_param(p)} = {rb_lit(p.default)}")
        elif p.kind is ParamKind.OPTIONAL:
            rb.append(f"{rb_param(p)} = nil")
        else:
            rb.append(rb_param(p))
        optional = p.kind in (ParamKind.OPTIONAL, ParamKind.OPTIONAL_DEFAULT)
        rbs.append(f"{'?' if optional else ''}{rbs_type(p.type, defs)} {rb_param(p)}")
    if job.keywords:
        last = job.params[-1].type
        assert isinstance(last, DefRef)
        props = defs[last.name].properties or ()
        for prop in props:
            if prop.required:
                rb.append(f"{prop.key}:")
            else:
                rb.append(f"{prop.key}: {rb_lit(prop.default) if prop.has_default else 'nil'}")
            t = rbs_type(prop.type, defs)
            rbs.append(f"{'' if prop.required else '?'}{prop.key}: {t}")
    return rb, rbs


def render_activejob(job: JobDef) -> tuple[str, str]:
    """(Ruby module, RBS signature) for an ActiveJob job: a mixin for the Rails job class that
    checks perform_later's and perform's arguments against the contract."""
    defs = {d.name: d for d in job.defs}
    doc = _comment(job.title) + ([""] if job.title and job.description else [])
    doc += _comment(job.description)
    rb_sig, rbs_sig = _aj_perform_params(job)
    ctx = {
        "job": job,
        "doc": doc,
        "defs": defs,
        "positional": job.params[:-1] if job.keywords else job.params,
        "keywords": job.params[-1] if job.keywords else None,
        "rb_sig": rb_sig,
        "rbs_sig": rbs_sig,
    }
    rb = _env().get_template("job_activejob.rb.j2").render(**ctx)
    rbs = _env().get_template("job_activejob.rbs.j2").render(**ctx)
    return rb, rbs


def render_job(job: JobDef) -> tuple[str, str]:
    """(Ruby module, RBS signature) for one job."""
    if job.activejob:
        return render_activejob(job)
    defs = {d.name: d for d in job.defs}
    doc = _comment(job.title) + ([""] if job.title and job.description else [])
    doc += _comment(job.description)
    ctx = {
        "job": job,
        "doc": doc,
        "defs": defs,
        "names": [rb_param(p) for p in job.params],
        "call": "[" + ", ".join(rb_param(p) for p in job.params) + "]",
        "sig": ", ".join(rb_param_decl(p) for p in job.params),
        "rbs_sig": [rbs_param(p, defs) for p in job.params],
    }
    rb = _env().get_template("job.rb.j2").render(**ctx)
    rbs = _env().get_template("job.rbs.j2").render(**ctx)
    return rb, rbs


def render_package(pkg: Package) -> dict[str, str]:
    """File name -> contents for the Ruby output directory."""
    files = {
        RUNTIME_FILE: _env().get_template("gokogeri_contracts.rb.j2").render(),
        "gokogeri_contracts.rbs": _env().get_template("gokogeri_contracts.rbs.j2").render(),
    }
    requires = []
    for job in pkg.jobs:
        rb, rbs = render_job(job)
        files[f"{job.module}.rb"] = rb
        files[f"{job.module}.rbs"] = rbs
        requires.append(job.module)
    files["all.rb"] = _env().get_template("all.rb.j2").render(modules=requires)
    return dict(sorted(files.items()))
