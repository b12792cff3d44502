"""What each record of the AOT engine's profile covers (docs/protocol.md, "PROFILE").

One record per step the generated code runs, in order: each kernel call (a fused conv +
max pool names both ops) and each alias op (RESHAPE and the like compile to nothing, but
keep their record so that every TFLite op is in exactly one record, as with TFLite-Micro).
Live arena bytes come from the planner's buffers (plan.py): those alive during the step,
scratch included; for an alias, those alive across the gap it sits in.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..model.reader import op_code

NO_OP = 0xFFFF  # an unused op slot (docs/protocol.md)


@dataclass(frozen=True)
class Entry:
    ops: tuple            # TFLite operator indices
    names: tuple
    step: int | None      # the kernel step (index into the lowered steps); None: an alias
    arena_live_bytes: int

    @property
    def codes(self) -> tuple:
        return tuple(op_code(n) for n in self.names)


def _live(plan, alive) -> int:
    return sum(b.size for b in plan.buffers.values() if alive(b))


def entries(ops, steps, plan) -> list:
    """Profile records for a graph's ops (reader.Op list) lowered to `steps`, planned as `plan`."""
    covered = {k: s for s, step in enumerate(steps) for k in step.ops}
    out, next_step = [], 0
    for k, op in enumerate(ops):
        if k not in covered:  # an alias between kernel steps next_step - 1 and next_step
            j = next_step
            out.append(Entry((k,), (op.name,), None,
                             _live(plan, lambda b: b.first <= j - 1 and b.last >= j)))
        elif steps[covered[k]].ops[0] == k:
            s = covered[k]
            out.append(Entry(tuple(steps[s].ops), tuple(steps[s].op_names), s,
                             _live(plan, lambda b: b.first <= s <= b.last)))
            next_step = s + 1
    assert sorted(k for e in out for k in e.ops) == list(range(len(ops)))
    return out
