"""Rendering the lowered, planned model as C99 (templates/aot/*.j2)."""
from __future__ import annotations

import numpy as np

from ..paths import TEMPLATES
from .profile import NO_OP
from .steps import Step

CTYPE_BYTES = {"int8_t": 1, "uint8_t": 1, "int32_t": 4, "uint32_t": 4}
PER_LINE = {"int8_t": 20, "uint8_t": 20, "int32_t": 8, "uint32_t": 8}


def _literal(v: int, ctype: str) -> str:
    if ctype == "int32_t" and v == -(1 << 31):
        return "(-2147483647 - 1)"
    if ctype == "uint32_t":
        return f"{v}u"
    return str(v)


def array_body(values: np.ndarray, ctype: str) -> str:
    vals = [_literal(int(v), ctype) for v in np.asarray(values).reshape(-1)]
    n = PER_LINE[ctype]
    return ",\n".join("    " + ", ".join(vals[i:i + n]) for i in range(0, len(vals), n))


def _environment():
    import jinja2
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES / "aot")),
                              undefined=jinja2.StrictUndefined, trim_blocks=True,
                              lstrip_blocks=True, keep_trailing_newline=True,
                              autoescape=False)


def _pointer(lowering, plan, t: int, const: bool) -> str:
    """Where tensor t lives in the arena, typed for the kernel (float32 at a float-I/O
    model's edges; offsets are 4-byte aligned)."""
    at = f"arena.bytes + {plan.offset(('tensor', t))}"
    if lowering.tensors[t].dtype_name == "float32":
        q = "const " if const else ""
        return f"({q}float *)({q}void *)({at})"
    return at


def _code(lowering, step: Step, index: int, plan) -> str:
    subst = {}
    for n, t in enumerate(step.inputs):
        subst[f"in{n}"] = _pointer(lowering, plan, t, True)
    for n, t in enumerate(step.outputs):
        subst[f"out{n}"] = _pointer(lowering, plan, t, False)
    subst["scratch"] = (f"arena.bytes + {plan.offset(('scratch', index))}"
                        if step.scratch_bytes else "NULL")
    return step.call.format(**subst)


def _profile_view(profile: list, view_steps: list) -> tuple[list, list]:
    """The profile table's rows, and where each record's counter read goes: after its kernel
    call, or (an alias, no code) before the next step's call or at the end."""
    rows, pending = [], []
    for i, e in enumerate(profile):
        pad = [NO_OP] * (2 - len(e.ops))
        what = " + ".join(f"op {k} {n}" for k, n in zip(e.ops, e.names))
        rows.append({"op_count": len(e.ops), "index": list(e.ops) + pad, "code": list(e.codes) + pad,
                     "live": e.arena_live_bytes, "what": what + ("" if e.step is not None else ", an alias")})
        if e.step is None:
            pending.append({"index": i, "what": what})
        else:
            view_steps[e.step]["marks_before"], pending = pending, []
            view_steps[e.step]["mark"] = i
    return rows, pending


def render(lowering, steps: list, plan, model_bytes: int, model_crc32: int, tensor_info: dict,
           const_bytes: int, plan_lines: list, profile: list) -> tuple[str, str]:
    env = _environment()
    view_steps = []
    for k, s in enumerate(steps):
        view_steps.append({
            "comment": s.comment, "ops": ", ".join(f"op {k} {n}" for k, n in zip(s.ops, s.op_names)),
            "fused": len(s.ops) > 1, "marks_before": [], "mark": None,
            "struct": s.struct.rstrip("\n"), "code": _code(lowering, s, k, plan),
            "consts": [{"ctype": c.ctype, "name": c.name, "count": int(np.asarray(c.values).size),
                        "body": array_body(c.values, c.ctype)} for c in s.consts],
        })
    profile_rows, marks_after = _profile_view(profile, view_steps)
    ctx = {"profile": profile_rows, "marks_after": marks_after,
           "model_bytes": model_bytes, "model_crc32": model_crc32, "arena_bytes": plan.arena_bytes,
           "const_bytes": const_bytes, "steps": view_steps, "op_count": len(lowering.g.ops),
           "input": tensor_info["input"], "output": tensor_info["output"],
           "input_offset": plan.offset(("tensor", lowering.root(lowering.input_index))),
           "output_offset": plan.offset(("tensor", lowering.root(lowering.output_index))),
           "plan_lines": plan_lines}
    return env.get_template("model_aot.c.j2").render(**ctx), env.get_template("model_aot.h.j2").render(**ctx)
