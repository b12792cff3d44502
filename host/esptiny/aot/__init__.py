"""esptiny's AOT compiler: an int8 .tflite model -> plain C99, bit-exact with TFLite-Micro.

    generate(model_bytes, out_dir) writes model_aot.c and model_aot.h: weights and
    requantization constants as const arrays, one kernel call per layer into
    firmware/engines/aot/, and one static arena planned offline. The engine
    (firmware/engines/aot/engine_aot.c) serves it through firmware/core/engine.h.

Stages: lower.py (read the flatbuffer, refuse what cannot be exact, hand each op to its
family in ops/, fuse conv + max pool), quant.py (TFLite-Micro's Prepare constants), pack.py (clustered weights as k-bit codebook indices),
plan.py (lifetimes and greedy offsets), codegen.py (Jinja templates in templates/aot).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .. import atomic
from ..crc import crc32
from . import codegen
from . import plan as planner
from . import profile as aot_profile
from .lower import SUPPORTED, Lowering
from .steps import float_literal

__all__ = ["SUPPORTED", "compile_model", "generate"]

MODEL_C, MODEL_H = "model_aot.c", "model_aot.h"


@dataclass
class Compiled:
    c_source: str
    header: str
    info: dict


def _tensor_info(t) -> dict:
    """The engine's input or output: int8, or float32 in a float-I/O model (whose scale
    and zero point are then 0, as TFLite-Micro reports a float tensor's)."""
    shape = list(t.shape) or [1]
    return {"shape": shape, "dims4": shape + [1] * (4 - len(shape)), "bytes": t.nbytes,
            "scale": float(t.scale), "scale_c": float_literal(t.scale),
            "zero_point": t.zero_point, "dtype": t.dtype_name, "dtype_code": t.dtype}


def _lower_and_plan(model_bytes: bytes, pack_weights: str, fuse: bool):
    low = Lowering(model_bytes, pack_weights=pack_weights, fuse=fuse)
    steps = low.run()
    used = {low.input_index, low.output_index} | {i for s in steps for i in s.inputs + s.outputs}
    sizes = {low.root(i): low.tensors[low.root(i)].nbytes for i in used}
    arena = planner.plan(steps, sizes, low.root(low.input_index), low.root(low.output_index))
    return low, steps, arena


def _const_bytes(steps, kinds) -> int:
    return sum(c.values.size * codegen.CTYPE_BYTES[c.ctype]
               for s in steps for c in s.consts if c.kind in kinds)


def _plan_lines(low, steps, arena) -> list:
    lines = []
    for b in sorted(arena.buffers.values(), key=lambda b: (b.offset, b.first)):
        if b.key[0] == "tensor":
            what = f"tensor {low.tensors[b.key[1]].shape_str()}"
        else:
            what = f"scratch of step {b.key[1]}"
        span = "before step 0" if b.first < 0 else f"step {b.first}"
        end = "the end" if b.last >= len(steps) else f"step {b.last}"
        lines.append(f"[{b.offset:6d}, {b.offset + b.size:6d})  {what}, {span} to {end}")
    return lines


def compile_model(model_bytes: bytes, pack_weights: str = "auto", fuse: bool = True) -> Compiled:
    """The generated C and its figures, without writing anything."""
    model_bytes = bytes(model_bytes)
    low, steps, arena = _lower_and_plan(model_bytes, pack_weights, fuse)
    crc = crc32(model_bytes)
    weights = _const_bytes(steps, ("weights", "bias"))
    packed_stored = sum(c.values.size * codegen.CTYPE_BYTES[c.ctype] for s in steps if s.packed
                        for c in s.consts if c.kind == "weights")
    weights_int8 = weights - packed_stored + sum(s.weights_int8_bytes for s in steps if s.packed)
    const_bytes = _const_bytes(steps, ("weights", "bias", "params"))
    tinfo = {"input": _tensor_info(low.tensors[low.input_index]),
             "output": _tensor_info(low.tensors[low.output_index])}
    profile = aot_profile.entries(low.g.ops, steps, arena)
    c_src, h_src = codegen.render(low, steps, arena, len(model_bytes), crc, tinfo, const_bytes,
                                  _plan_lines(low, steps, arena), profile)
    unfused = arena.arena_bytes
    if fuse and any(len(s.ops) > 1 for s in steps):
        unfused = _lower_and_plan(model_bytes, pack_weights, False)[2].arena_bytes
    info = {
        "arena_bytes": arena.arena_bytes,
        "arena_bytes_unfused": unfused,
        "weights_bytes": weights,
        "weights_bytes_int8": weights_int8,
        "const_bytes": const_bytes,
        "packed_layers": sum(1 for s in steps if s.packed),
        "code_ops": [op.name for op in low.g.ops],
        "steps": [{"kernel": s.kernel, "ops": s.op_names, "comment": s.comment,
                   "scratch_bytes": s.scratch_bytes, "packed": s.packed} for s in steps],
        "profile_steps": [{"ops": list(e.ops), "op_names": list(e.names), "kernel_step": e.step,
                           "arena_live_bytes": e.arena_live_bytes} for e in profile],
        "model_crc32": crc,
        "model_bytes": len(model_bytes),
        "input": {k: v for k, v in tinfo["input"].items() if k not in ("scale_c", "dims4", "dtype_code")},
        "output": {k: v for k, v in tinfo["output"].items() if k not in ("scale_c", "dims4", "dtype_code")},
    }
    return Compiled(c_src, h_src, info)


def generate(model_bytes: bytes, out_dir: Path, pack_weights: str = "auto") -> dict:
    """Write model_aot.c and model_aot.h into out_dir (each atomically, and only when its
    text changed, so incremental builds stay incremental); return the figures:
    arena_bytes, weights_bytes, code_ops, model_crc32 and more (see compile_model)."""
    compiled = compile_model(model_bytes, pack_weights=pack_weights)
    out_dir = Path(out_dir)
    atomic.update_text(out_dir / MODEL_H, compiled.header)
    atomic.update_text(out_dir / MODEL_C, compiled.c_source)
    return compiled.info
