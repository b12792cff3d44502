"""The static activation plan: tensor lifetimes from the step order, then greedy offsets.

Like TFLite-Micro's GreedyMemoryPlanner: buffers sorted by size (largest first), each put
at the lowest offset where it overlaps no already placed buffer that is alive at the same
time. Reshapes are aliases (lower.py), so they cost nothing; each step's scratch lives
only during that step. The result is one arena of a known size and an offset per buffer.
"""
from __future__ import annotations

from dataclasses import dataclass

ALIGN = 4


@dataclass
class Buffer:
    key: tuple      # ("tensor", index) or ("scratch", step)
    size: int
    first: int      # step that writes it first (-1: before the first step)
    last: int       # step that reads it last
    offset: int = -1

    def alive_with(self, other: Buffer) -> bool:
        return self.first <= other.last and other.first <= self.last


@dataclass
class Plan:
    buffers: dict   # key -> Buffer
    arena_bytes: int

    def offset(self, key: tuple) -> int:
        return self.buffers[key].offset


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def lifetimes(steps: list, sizes: dict, graph_input: int, graph_output: int) -> list:
    """Buffers of every activation tensor and scratch area, with [first, last] steps."""
    spans: dict = {}

    def touch(t, k):
        first, last = spans.get(t, (k, k))
        spans[t] = (min(first, k), max(last, k))

    touch(graph_input, -1)
    for k, s in enumerate(steps):
        for t in list(s.inputs) + list(s.outputs):
            touch(t, k)
    touch(graph_output, len(steps))
    buffers = [Buffer(("tensor", t), sizes[t], a, b) for t, (a, b) in spans.items()]
    buffers += [Buffer(("scratch", k), s.scratch_bytes, k, k) for k, s in enumerate(steps) if s.scratch_bytes]
    return buffers


def greedy(buffers: list) -> Plan:
    placed: list = []
    for b in sorted(buffers, key=lambda b: (-b.size, b.first, str(b.key))):
        size = _align(b.size)
        live = sorted((p for p in placed if p.alive_with(b)), key=lambda p: p.offset)
        offset = 0
        for p in live:  # first gap below each live buffer that fits
            if offset + size <= p.offset:
                break
            offset = max(offset, p.offset + _align(p.size))
        b.offset = offset
        placed.append(b)
    arena = max((b.offset + _align(b.size) for b in placed), default=0)
    return Plan({b.key: b for b in placed}, arena)


def plan(steps: list, sizes: dict, graph_input: int, graph_output: int) -> Plan:
    result = greedy(lifetimes(steps, sizes, graph_input, graph_output))
    _check(result)
    return result


def _check(p: Plan):
    """No two buffers alive at the same time share a byte (a bug, not a user error)."""
    bs = list(p.buffers.values())
    for i, a in enumerate(bs):
        assert 0 <= a.offset and a.offset + a.size <= p.arena_bytes
        for b in bs[i + 1:]:
            if a.alive_with(b):
                assert a.offset + a.size <= b.offset or b.offset + b.size <= a.offset, (a, b)
