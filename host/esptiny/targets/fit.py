"""Will it fit? The tensor arena a board needs, and the checks `esptiny export` makes
before it writes anything.

The arena: what TFLite-Micro records on the host (its reference kernels) plus a margin
for what ESP-NN's kernels ask for on top. On the host, TFLite-Micro's reference int8
conv, depthwise conv and softmax request no scratch buffers; esp-tflite-micro replaces
them with ESP-NN kernels whose Prepare calls RequestScratchBufferInArena() with
esp_nn_get_*_scratch_size() (espressif/esp-tflite-micro, checked at 99f49e1:
tensorflow/lite/micro/kernels/esp_nn/conv.cc, depthwise_conv.cc, softmax.cc). Those
sizes, from espressif/esp-nn's sources:

- ESP32 and ESP32-C3 use ESP-NN's generic kernels: conv and depthwise conv ask for
  0 bytes (esp_nn_get_conv_scratch_size_opt, esp_nn_get_depthwise_conv_scratch_size_opt),
  int8 softmax for 4 bytes per class (esp_nn_get_softmax_scratch_size_opt: width * 4).
- ESP32-S3's SIMD kernels copy the filter with its rows padded to 16 bytes, pad the input
  by the convolution's padding, keep out_channels int32 corrections and 16-byte
  alignment slack (esp_nn_get_conv_scratch_size_esp32s3, which picks among a 1x1, a 3x3,
  an im2col and a general path); depthwise conv asks for up to twice filter plus padded
  input (its int16 paths). We take, per layer, the largest of those paths' sizes.

The margin is the largest single request, not their sum: TFLite-Micro gives a scratch
buffer its op's lifetime and nothing more (esp-tflite-micro's
tensorflow/lite/micro/micro_allocation_info.cc at 99f49e1, AllocationInfoBuilder::
MarkAllocationLifetimes: a request whose node_idx is op i gets first_created and
last_used = op i's allocation scope), so the memory planner reuses one op's scratch for
the next op's, and at any op the arena holds the tensors live there plus that op's
scratch alone. Each request also costs 16 bytes of alignment in the arena and 32 bytes
of bookkeeping (its ScratchBufferHandle and request record); 1 KB more covers what
differs between the wheel's TFLite-Micro and esp-tflite-micro's (persistent op data,
the planner's temporary memory). It is an estimate, not a proof: if the device still
runs short, AllocateTensors fails, and the firmware says so over INFO with the arena
bytes it had.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import UserError
from .boards import Board

ALIGN = 16
BOOKKEEPING_BYTES = 32  # per request: its handle (persistent) and request record
SLACK_BYTES = 1024


def align(n: int, to: int = ALIGN) -> int:
    return (n + to - 1) // to * to


@dataclass
class Scratch:
    op: str
    index: int
    bytes: int
    why: str


@dataclass
class ArenaPlan:
    recorded: int                  # TFLite-Micro's recorded arena on the host
    scratch: list = field(default_factory=list)
    engine: str = "tflm"

    @property
    def largest(self) -> Scratch | None:
        """The one request that is live at the arena's peak, at most (they never overlap)."""
        return max(self.scratch, key=lambda s: s.bytes, default=None)

    @property
    def margin(self) -> int:
        if self.engine != "tflm":
            return 0
        largest = align(self.largest.bytes) + ALIGN if self.scratch else 0
        return largest + BOOKKEEPING_BYTES * len(self.scratch) + SLACK_BYTES

    @property
    def total(self) -> int:
        if self.engine != "tflm":
            return self.recorded  # the AOT compiler's own plan, exactly
        return align(self.recorded + self.margin)

    def summary(self) -> str:
        if self.engine != "tflm":
            return f"planned by the AOT compiler: {self.recorded} B"
        big = self.largest
        return (f"TFLite-Micro records {self.recorded} B on the host, + {self.margin} B margin: "
                + (f"the largest of {len(self.scratch)} ESP-NN scratch buffer(s) (op {big.index} "
                   f"{big.op}, {big.bytes} B; each lives only during its op), " if big else "")
                + "alignment, bookkeeping and slack")

    def reasoning(self) -> list:
        """Lines for the generated header's comment."""
        if self.engine != "tflm":
            return [self.summary()]
        lines = [f"TFLite-Micro's recorded arena on the host (reference kernels): {self.recorded} B.",
                 "ESP-NN's kernels on this chip ask for scratch buffers on top (host/esptiny/targets/fit.py):"]
        lines += [f"  op {s.index} {s.op}: {s.bytes} B ({s.why})" for s in self.scratch] or ["  none"]
        lines += [f"Each lives only during its op, so the planner reuses one buffer's memory for the next: "
                  f"margin {self.margin} B = the largest request, aligned, + {ALIGN} B + {BOOKKEEPING_BYTES} B "
                  f"bookkeeping per request + {SLACK_BYTES} B slack; total rounded up to {ALIGN} B.",
                  "If AllocateTensors still fails, INFO reports status 1 (arena too small)."]
        return lines

    def as_dict(self) -> dict:
        return {"recorded": self.recorded, "margin": self.margin, "total": self.total,
                "engine": self.engine,
                "scratch": [{"op": s.op, "index": s.index, "bytes": s.bytes, "why": s.why}
                            for s in self.scratch]}


def _pads(in_w, in_h, out_w, out_h, fw, fh, sw, sh) -> tuple:
    """Total padding (width, height) a layer's output extent implies."""
    return (max(0, (out_w - 1) * sw + fw - in_w), max(0, (out_h - 1) * sh + fh - in_h))


def _conv_s3(inp, flt, out, opts) -> tuple:
    _, h, w, c = inp
    oc, fh, fw, _ = flt
    _, oh, ow, _ = out
    pw, ph = _pads(w, h, ow, oh, fw, fh, opts.strideW, opts.strideH)
    window = align(fw * fh * c)
    padded_input = (w + pw) * (h + ph) * c if (pw or ph) else 0
    filter_copy = oc * max(fh * align(fw * c), window)
    general = padded_input + filter_copy + window + 4 * oc + 64 + 32
    one_by_one = 2 * 8 * align(c, 8) + 24 * c + 8 * oc + 64
    if fw == fh == 1 and c * oc > 24 * 1024:
        one_by_one += 24 * c + 16 * 1024 + 64  # the output-channel panel driver
    n = max(general, one_by_one)
    return n, f"{fh}x{fw}x{c}->{oc}: padded input {padded_input} + 16-byte-row filter copy {filter_copy} + window, corrections, alignment"


def _depthwise_s3(inp, flt, out, opts) -> tuple:
    _, h, w, c = inp
    _, fh, fw, cm = flt  # 1, H, W, C * multiplier
    _, oh, ow, _ = out
    pw, ph = _pads(w, h, ow, oh, fw, fh, opts.strideW, opts.strideH)
    filter_size = fh * fw * cm
    padded_input = (w + pw) * (h + ph) * c
    return 2 * (filter_size + padded_input) + 16, f"{fh}x{fw}x{cm}: 2 x (filter {filter_size} + padded input {padded_input}) + 16"


def espnn_scratch(graph, board: Board) -> list:
    """The scratch buffers ESP-NN's kernels request for this model on this board."""
    out = []
    for i, op in enumerate(graph.ops):
        if not op.inputs or graph.tensors[op.inputs[0]].dtype_name != "int8":
            continue  # float kernels are TFLite-Micro's reference ones: no scratch
        shapes = [graph.shape(t) if t >= 0 else () for t in op.inputs[:2]] + [graph.shape(op.outputs[0])]
        if op.name == "SOFTMAX":
            width = shapes[-1][-1] if shapes[-1] else 1
            out.append(Scratch(op.name, i, 4 * width, f"{width} classes x 4 B"))
        elif board.espnn == "esp32s3" and op.name == "CONV_2D" and all(len(s) == 4 for s in shapes):
            out.append(Scratch(op.name, i, *_conv_s3(*shapes, op.options)))
        elif board.espnn == "esp32s3" and op.name == "DEPTHWISE_CONV_2D" and all(len(s) == 4 for s in shapes):
            out.append(Scratch(op.name, i, *_depthwise_s3(*shapes, op.options)))
    return out


def plan_arena(recorded: int, graph, board: Board) -> ArenaPlan:
    return ArenaPlan(recorded=recorded, scratch=espnn_scratch(graph, board))


def check(board: Board, model_bytes: int, arena: ArenaPlan, variant: str, static_bytes: int = 0,
          static_why: str = "") -> dict:
    """The figures, or a one-line UserError naming the numbers and the ways out.
    static_bytes: RAM a protocol's firmware holds beside the arena beyond what the budget
    already allows for (static_why names it), taken from the budget."""
    app = board.app_partition_bytes
    firmware = board.firmware_bytes_estimate
    used = model_bytes + firmware
    if used > app:
        raise UserError(
            f"the {variant} model ({model_bytes:,} B) plus the firmware (~{firmware:,} B, estimated) "
            f"needs {used:,} B, more than {board.name}'s app partition ({app:,} B); ways out: a smaller "
            f"variant (int8 is about a quarter of float32), a board with more flash (esp32s3: "
            f"{_app('esp32s3'):,} B), or a bigger flash chip and partition table")
    budget = check_arena(board, arena, variant, static_bytes, static_why)
    return {"board": board.name, "model_bytes": model_bytes, "firmware_bytes_estimate": firmware,
            "app_used_bytes": used, "app_partition_bytes": app, "arena_bytes": arena.total,
            "arena_budget_bytes": budget, "protocol_static_bytes": static_bytes,
            "protocol_static_why": static_why, "free_heap_bytes": board.free_heap_bytes,
            "flash_headroom_bytes": app - used, "ram_headroom_bytes": budget - arena.total}


def check_arena(board: Board, arena: ArenaPlan, variant: str, static_bytes: int = 0, static_why: str = ""):
    """The RAM planned for the tensor arena, or a one-line UserError when it does not fit."""
    budget = board.arena_budget_bytes - static_bytes
    if arena.total > budget:
        less = f", {board.arena_budget_bytes:,} B less {static_bytes:,} B for {static_why}" if static_bytes else ""
        raise UserError(
            f"the {variant} model's tensor arena ({arena.total:,} B: {arena.summary()}) does not fit "
            f"the {budget:,} B of {board.name}'s internal RAM planned for it{less} ({board.free_heap_bytes:,} B "
            f"heap free after boot); ways out: a smaller variant (int8 activations take a quarter of "
            f"float32's), a board with more RAM ({_roomiest(board)}), or PSRAM (an ESP32-S3 N8R8 or "
            f"ESP32-WROVER board; this firmware keeps the arena in internal RAM)")
    return budget


def _app(name: str) -> int:
    from .boards import BOARDS
    return BOARDS[name].app_partition_bytes


def _roomiest(board: Board) -> str:
    from .boards import BOARDS
    others = sorted((b for b in BOARDS.values() if b.arena_budget_bytes > board.arena_budget_bytes),
                    key=lambda b: -b.arena_budget_bytes)
    if not others:
        return "none of esptiny's boards has more"
    return ", ".join(f"{b.name}: {b.arena_budget_bytes:,} B" for b in others)
