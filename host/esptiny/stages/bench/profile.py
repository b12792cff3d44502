"""`esptiny bench --profile`: where one inference's time goes, step by step.

After the bench, a few images (the first `images` of the test set) are inferred one at a
time on the first port, each followed by PROFILE requests (link/profiling.py). The
steps' counters are the board's own: CPU cycles on a chip, retired instructions on the
emulated core, host nanoseconds on the native firmware (each labelled so). A device
esptiny starts runs its profiling build for this (ports.PROFILES), so the bench itself
ran the plain firmware, with no counter read between its kernel calls. Written beside the
bench JSON: bench/<variant>-<port>-profile.json and its bar chart.
"""
from __future__ import annotations

import numpy as np

from ... import atomic
from ...devices import ports as portmod
from ...errors import UserError
from ...link import protocol as P
from ...link.client import LinkError, Session, one_line
from ...link.profiling import ProfileRefused, profile
from ...model.reader import Graph, op_name
from .. import plots

DEFAULT_IMAGES = 3

# What a counter unit means, for every figure that carries it.
SOURCES = {
    "cycles": "measured on device: the CPU cycle counter (esp_cpu_get_cycle_count)",
    "instructions": "emulated (QEMU riscv32, -icount shift=0): retired instructions (minstret), "
                    "exact; not ESP32-C3 cycles",
    "nanoseconds": "native firmware on this host: CLOCK_MONOTONIC nanoseconds, not a CPU counter",
}


def check_port(spec: str):
    """Refuse, before the bench starts, a port that cannot answer PROFILE."""
    if portmod.is_special(spec) and spec not in portmod.PROFILES:
        raise UserError(f"--profile: --port {spec} does not answer PROFILE requests yet; "
                        f"profile on {' or '.join('--port ' + p for p in portmod.PROFILES)}, "
                        f"or a board flashed with a profiling build")


def run_profile(run, variant: str, model: bytes, spec: str, label: str, device, options_for,
                settings, x, images: int) -> dict:
    """Profile `images` inputs of x on the port `spec`; write the JSON and the chart into the
    run; return {"path", "plots", "summary"} for the bench's manifest entry."""
    images = min(int(images), len(x))
    options = {**options_for(spec), "profile": True}
    with portmod.opened_all([spec], device, lambda _: options) as (url,):
        sess = Session(url, label, settings, portmod.link_paced(spec, options))
        try:
            sess.connect()
            profiles = [profile(sess, x[i].tobytes()) for i in range(images)]
        except ProfileRefused as e:
            raise UserError(f"--profile: {e}; flash a build with profiling on "
                            f"(-DESPT_AOT_PROFILE for the AOT engine)") from None
        except LinkError as e:
            raise UserError(f"--profile: {one_line(e)}") from None
        finally:
            sess.close()
    doc = table(model, profiles)
    doc.update({"variant": variant, "port": label, "chip": sess.info.chip,
                "engine": P.ENGINE_NAMES.get(sess.info.engine, sess.info.engine)})
    stem = f"bench/{variant}-{label}-profile"
    chart = f"{stem}.png"
    plots.profile_bars(doc, run.file(chart), f"where the time goes, {variant} on {label} ({doc['chip']})")
    atomic.write_json(run.file(f"{stem}.json"), doc)
    return {"path": f"{stem}.json", "plots": [chart], "summary": {
        "steps": len(doc["steps"]), "unit": doc["unit"], "source": doc["source"],
        "steps_over_inference": doc["steps_over_inference"],
        "slowest": doc["steps"][int(np.argmax([s["counter"] for s in doc["steps"]]))]["label"]}}


def _shapes(g: Graph, ops) -> str:
    """The step's activations in and out: the first op's non-constant inputs, the last op's output."""
    ins = [i for i in g.ops[ops[0]].inputs if i >= 0 and g.tensors[i].data is None]
    out = g.ops[ops[-1]].outputs[0]
    return " + ".join("x".join(map(str, g.shape(i))) for i in ins) + " -> " + "x".join(map(str, g.shape(out)))


def table(model: bytes, profiles: list) -> dict:
    """The per-step table of a few profiles of the same model: medians over the images."""
    g = Graph(model)
    first = profiles[0]
    layout = [(s.op_indices, s.op_codes) for s in first.steps]
    for p in profiles:
        if [(s.op_indices, s.op_codes) for s in p.steps] != layout or p.unit != first.unit:
            raise UserError("--profile: the board's steps differ from one inference to the next")
    for ops, codes in layout:
        for k, code in zip(ops, codes):
            if not 0 <= k < len(g.ops) or g.ops[k].name != op_name(code):
                raise UserError(f"--profile: the board names op {k} {op_name(code)}, which this "
                                f"model does not have there")
    counters = np.array([[s.counter for s in p.steps] for p in profiles], np.int64)
    per_step = np.median(counters, axis=0)
    sums = counters.sum(axis=1)
    whole = np.array([p.inference.cycles for p in profiles], np.int64)
    total = float(per_step.sum())
    unit = P.COUNTER_UNITS[first.unit]
    steps = []
    for k, ((ops, _), c) in enumerate(zip(layout, per_step)):
        names = [g.ops[i].name for i in ops]
        macs = sum(g.op_macs(g.ops[i]) for i in ops)
        steps.append({"step": k, "ops": list(ops), "op_names": names,
                      "label": f"{k}: {' + '.join(names)}", "shapes": _shapes(g, ops), "macs": macs,
                      "counter": float(c), "counter_per_mac": round(float(c) / macs, 3) if macs else None,
                      "share": float(c) / total if total else 0.0,
                      "arena_live_bytes": first.steps[k].arena_live_bytes})
    return {"unit": unit, "source": SOURCES[unit], "images": len(profiles),
            "model_ops": len(g.ops), "steps": steps,
            "steps_total": float(np.median(sums)), "inference": float(np.median(whole)),
            "steps_over_inference": float(np.median(sums / whole)),
            "note": "each step's counter is the median over the images; the steps are consecutive "
                    "reads of the counter inside the engine's invoke, the inference the INFER "
                    "reply's (reads just around the invoke)"}


def describe(summary: dict) -> str:
    return (f"  profile: {summary['steps']} steps in {summary['unit']} ({summary['source']}); "
            f"they add up to {summary['steps_over_inference']:.2%} of the inference; "
            f"slowest {summary['slowest']}")
