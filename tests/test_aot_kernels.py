"""The AOT kernels against TFLite-Micro: single-layer int8 models generated with random
shapes, strides, padding, activations and quantization (random weights, random
representative data), compiled to C and run on 64 random int8 inputs each; the outputs
must equal TFLite-Micro's host runtime byte for byte. Plus the pieces on their own:
quantization constants, weight packing, the activation planner."""
import numpy as np
import pytest
from aot_support import assert_bit_exact, one_op_model, randomize, representative
from esptiny.aot import host, pack, plan, quant
from esptiny.aot.lower import Step
from esptiny.model import tflm

N_INPUTS = 64


def _convert(model, rep, weights="ptq"):
    """int8 .tflite: "ptq" is esptiny's own (per-channel conv, per-tensor dense);
    "per_channel" and "per_tensor" set every layer's weights one way (the converter's
    private switches), so both multiplier paths of each kernel are covered."""
    from esptiny.stages.compress import ptq
    if weights == "ptq":
        return ptq.int8(model, rep)
    from esptiny.tf import tf
    c = tf.lite.TFLiteConverter.from_keras_model(model)
    c.optimizations = [tf.lite.Optimize.DEFAULT]
    c.representative_dataset = lambda: ([rep[i:i + 1]] for i in range(len(rep)))
    c.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    c.inference_input_type = tf.int8
    c.inference_output_type = tf.int8
    c._experimental_disable_per_channel = weights == "per_tensor"
    c._experimental_disable_per_channel_quantization_for_dense_layers = weights == "per_tensor"
    return c.convert()


def _model(case: str, rs):
    """A small random model exercising one kernel; returns (keras model, input shape)."""
    from esptiny.tf import keras
    L = keras.layers
    h, w, c = rs.randint(5, 13), rs.randint(5, 13), rs.randint(1, 7)
    inp = L.Input((h, w, c))
    if case == "conv_same_relu_maxpool":      # fused conv + max pool
        x = L.Conv2D(rs.randint(2, 9), 3, padding="same", activation="relu")(inp)
        x = L.MaxPooling2D(2)(x)
    elif case == "conv_valid_stride2_relu6":
        x = L.Conv2D(rs.randint(2, 9), (3, 2), strides=2, padding="valid", activation="relu6")(inp)
    elif case == "conv_same_strided_pool_overlap":  # fused, overlapping windows, SAME pool
        x = L.Conv2D(rs.randint(2, 9), (2, 3), strides=(2, 1), padding="same")(inp)
        x = L.MaxPooling2D(3, strides=2, padding="same")(x)
    elif case == "depthwise_same_mult2_relu":
        x = L.DepthwiseConv2D(3, padding="same", depth_multiplier=2, activation="relu")(inp)
    elif case == "depthwise_valid_stride2_relu6":
        x = L.DepthwiseConv2D((2, 3), strides=2, padding="valid", activation="relu6")(inp)
    elif case == "dense_softmax":
        x = L.Dense(rs.randint(2, 17), activation="relu")(L.Flatten()(inp))
        x = L.Softmax()(L.Dense(rs.randint(2, 11))(x))
    elif case == "pools":
        a = L.AveragePooling2D(3, strides=2, padding="same")(inp)
        x = L.MaxPooling2D(2, strides=1, padding="valid")(a)
    elif case == "add_relu":
        a = L.Conv2D(4, 1)(inp)
        b = L.Conv2D(4, 3, padding="same")(inp)
        x = L.Activation("relu")(L.Add()([a, b]))
    elif case == "add_broadcast":  # (h, w, 4) + (1, 1, 4)
        a = L.Conv2D(4, 3, padding="same")(inp)
        x = L.Add()([a, L.MaxPooling2D(pool_size=(h, w))(a)])
    else:
        raise AssertionError(case)
    return keras.Model(inp, x), (h, w, c)


def _check(model_bytes, rs, shape):
    return assert_bit_exact(model_bytes, rs.randint(-128, 128, size=(N_INPUTS, *shape)).astype(np.int8))


CASES = ["conv_same_relu_maxpool", "conv_valid_stride2_relu6", "conv_same_strided_pool_overlap",
         "depthwise_same_mult2_relu", "depthwise_valid_stride2_relu6", "dense_softmax", "pools",
         "add_relu", "add_broadcast"]
KERNEL = {"conv_same_relu_maxpool": "espt_aot_conv_maxpool_s8", "conv_valid_stride2_relu6": "espt_aot_conv_s8",
          "conv_same_strided_pool_overlap": "espt_aot_conv_maxpool_s8",
          "depthwise_same_mult2_relu": "espt_aot_depthwise_conv_s8",
          "depthwise_valid_stride2_relu6": "espt_aot_depthwise_conv_s8",
          "dense_softmax": "espt_aot_softmax_s8", "pools": "espt_aot_avg_pool_s8", "add_relu": "espt_aot_add_s8",
          "add_broadcast": "espt_aot_add_s8"}


@pytest.mark.parametrize("case", CASES)
def test_single_layer_bit_exact(case):
    rs = np.random.RandomState(CASES.index(case) + 100)
    model, shape = _model(case, rs)
    randomize(model, rs)
    info = _check(_convert(model, representative(rs, shape)), rs, shape)
    assert KERNEL[case] in [s["kernel"] for s in info["steps"]]


@pytest.mark.parametrize("weights", ["per_tensor", "per_channel"])
def test_conv_dense_softmax_both_weight_quantizations(weights):
    """Conv and fully connected weights per tensor (FC's multiplier then takes the float
    product of the scales) and per channel, and softmax."""
    from esptiny.tf import keras
    L = keras.layers
    rs = np.random.RandomState(7)
    inp = L.Input((7, 6, 3))
    x = L.Conv2D(5, 3, activation="relu")(inp)
    x = L.Dense(7, activation="relu6")(L.Flatten()(x))
    model = keras.Model(inp, L.Softmax()(L.Dense(4)(x)))
    randomize(model, rs)
    b = _convert(model, rs.normal(0, 1, (32, 7, 6, 3)).astype(np.float32), weights)
    from esptiny.aot.lower import Lowering
    low = Lowering(b)
    dense = [t for t in low.tensors if t.data is not None and len(t.shape) == 2]
    assert dense and all((t.scales.size > 1) == (weights == "per_channel") for t in dense)
    _check(b, rs, (7, 6, 3))


def test_clustered_weights_are_packed_and_bit_exact():
    from esptiny.tf import keras
    L = keras.layers
    rs = np.random.RandomState(11)
    inp = L.Input((12, 12, 8))
    x = L.Conv2D(16, 3, padding="same", activation="relu")(inp)
    x = L.MaxPooling2D(2)(x)
    x = L.Conv2D(16, 3, padding="valid")(x)
    model = keras.Model(inp, L.Dense(24)(L.Flatten()(x)))
    randomize(model, rs, clusters=16)
    b = _convert(model, rs.normal(0, 1, (32, 12, 12, 8)).astype(np.float32))
    info = _check(b, rs, (12, 12, 8))
    assert info["packed_layers"] == 3
    assert info["weights_bytes"] < 0.6 * info["weights_bytes_int8"]  # 4-bit indices + codebooks


def test_blocked_weights_with_tails_bit_exact():
    """Channel counts that leave 4 + 1 channels after the blocks of 8, filter rows (runs)
    of 16-tap chunks plus a tail, a SAME pool with partial windows at odd sizes (the fused
    max-over-accumulators path), a conv without pool and a dense layer with tails."""
    from esptiny.tf import keras
    L = keras.layers
    rs = np.random.RandomState(21)
    inp = L.Input((9, 11, 7))
    x = L.Conv2D(21, 3, padding="same", activation="relu")(inp)    # runs of 3 x 7 = 21 taps
    x = L.MaxPooling2D(2, padding="same")(x)                        # 9x11 -> 5x6
    x = L.Conv2D(13, (2, 3), padding="valid")(x)                    # runs of 63 taps
    model = keras.Model(inp, L.Dense(19)(L.Flatten()(x)))
    randomize(model, rs)
    info = _check(_convert(model, representative(rs, (9, 11, 7))), rs, (9, 11, 7))
    assert [s["kernel"] for s in info["steps"]] == [
        "espt_aot_conv_maxpool_s8", "espt_aot_conv_s8", "espt_aot_fully_connected_s8"]


def test_blocked_layout_hand_worked():
    """9 channels of 40 taps in runs of 20: weight (c, t) = 100 c + t."""
    rows = (100 * np.arange(9)[:, None] + np.arange(40)[None, :])
    flat = pack.blocked(rows, 20)
    assert list(flat[:18]) == list(range(16)) + [100, 101]    # chunk 0: channel 0's taps 0-15, then channel 1's
    assert list(flat[112:130]) == [700 + t for t in range(16)] + [16, 116]  # channel 7, then run 0's tail, tap 16
    assert list(flat[152:162]) == [19 + 100 * c for c in range(8)] + [20, 21]  # tap 19 of channels 0-7; run 1
    assert list(flat[320:324]) == [800, 801, 802, 803]        # channel 8 after the block: a row
    assert np.array_equal(pack.unblocked(flat, 9, 40, 20), rows)
    assert np.array_equal(pack.blocked(rows[:3]), rows[:3].reshape(-1))  # no full block: rows


MATH_PROBE = r"""
#include <stdio.h>
#include "espt_aot_math.h"
int main(void)
{
    long long a, b;
    int shift;
    while (scanf("%lld %lld %d", &a, &b, &shift) == 3) {
        printf("%ld %ld\n", (long)espt_srdhm((int32_t)a, (int32_t)b),
               (long)espt_mbqm((int32_t)a, (int32_t)b, shift));
    }
    return 0;
}
"""


def _gemmlowp_srdhm(a: int, b: int) -> int:
    """gemmlowp's SaturatingRoundingDoublingHighMul, as written there: nudge, then a
    division truncating toward zero."""
    if a == b == -(1 << 31):
        return (1 << 31) - 1
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    q = abs(ab + nudge) // (1 << 31)
    return q if ab + nudge >= 0 else -q


def _rounding_divide_by_pot(x: int, e: int) -> int:
    mask = (1 << e) - 1
    remainder, threshold = x & mask, (mask >> 1) + (1 if x < 0 else 0)
    return (x >> e) + (1 if remainder > threshold else 0)


def test_fixed_point_matches_gemmlowp_on_edge_products(tmp_path):
    """espt_srdhm (add 2^30, shift) and espt_mbqm (32-bit mask) against gemmlowp's
    definitions, on the products where the rounding changes: exact halves, one off them,
    both signs, the extremes."""
    import subprocess

    from esptiny import paths
    from needs import require
    cc = require("gcc")
    src = tmp_path / "probe.c"
    src.write_text(MATH_PROBE)
    exe = tmp_path / "probe"
    subprocess.run([cc, "-std=c99", "-O2", "-Wall", "-Werror", f"-I{paths.FIRMWARE / 'engines' / 'aot'}",
                    str(src), "-o", str(exe)], check=True)
    lo, hi = -(1 << 31), (1 << 31) - 1
    cases = [(lo, lo, 0), (lo, hi, 0), (hi, hi, 0), (hi, lo, -31), (lo, 1 << 30, -1), (1, 1 << 30, 0),
             (-1, 1 << 30, 0), (3, 1 << 30, -1), (-3, 1 << 30, -1), (5, 3 << 29, -2), (-5, 3 << 29, -2)]
    rs = np.random.RandomState(5)
    for _ in range(400):
        m = int(rs.randint(1 << 30, 1 << 31))
        x = int(rs.randint(-(1 << 24), 1 << 24))
        cases.append((x, m, -int(rs.randint(0, 32))))
    for e in range(1, 31):  # a * b at exact halves of 2^31 and of the final shift
        cases += [((1 << e) + sign, 1 << 30, -e) for sign in (-1, 0, 1)]
        cases += [(-(1 << e) + sign, 1 << 30, -e) for sign in (-1, 0, 1)]
    cases += [(x, 1 << 30, 1) for x in (-3, -1, 0, 1, 3, 1 << 29)]
    out = subprocess.run([str(exe)], input="".join(f"{a} {b} {s}\n" for a, b, s in cases),
                         capture_output=True, text=True, check=True).stdout.split("\n")
    for (a, b, shift), line in zip(cases, out):
        left, right = max(shift, 0), max(-shift, 0)
        shifted = ((a << left) + (1 << 31)) % (1 << 32) - (1 << 31)
        want = (_gemmlowp_srdhm(a, b), _rounding_divide_by_pot(_gemmlowp_srdhm(shifted, b), right))
        assert tuple(int(v) for v in line.split()) == want, (a, b, shift)


def _quantize_model(n: int, s_in: float, z_in: int, s_out: float, z_out: int) -> bytes:
    """A one-op model, QUANTIZE int8 -> int8 (requantize): the converter rarely emits it,
    TFLite-Micro runs it."""
    return one_op_model("QUANTIZE", [{"name": "in", "shape": [1, n], "scale": s_in, "zero_point": z_in},
                                     {"name": "out", "shape": [1, n], "scale": s_out, "zero_point": z_out}],
                        [0], [1], version=2)


def test_quantize_requantizes_like_tflite_micro():
    rs = np.random.RandomState(3)
    every_value = np.arange(-128, 128, dtype=np.int16).astype(np.int8).reshape(4, 64)
    for _ in range(4):
        b = _quantize_model(64, float(rs.uniform(1e-3, 0.1)), int(rs.randint(-128, 128)),
                            float(rs.uniform(1e-3, 0.1)), int(rs.randint(-128, 128)))
        y_aot = host.run(b, every_value)
        y_tflm = tflm.run(b, every_value)
        assert np.array_equal(y_aot.reshape(y_tflm.shape), y_tflm)


# ---- the pieces on their own ----------------------------------------------------

def test_quantize_multiplier_matches_tflite():
    assert quant.quantize_multiplier(0.5) == (1 << 30, 0)
    assert quant.quantize_multiplier(1.0) == (1 << 30, 1)
    assert quant.quantize_multiplier(0.75) == (3 << 29, 0)
    assert quant.quantize_multiplier(0.0) == (0, 0)
    assert quant.quantize_multiplier(2.0 ** -40) == (0, 0)           # flushed to zero below 2^-31
    assert quant.quantize_multiplier(1 - 2.0 ** -33) == (1 << 30, 1)  # rounds up to 2^31: halved
    rs = np.random.RandomState(0)
    for real in rs.uniform(1e-6, 4.0, 200):
        q, s = quant.quantize_multiplier(float(real))
        assert (1 << 30) <= q < (1 << 31)
        assert abs(q * 2.0 ** (s - 31) - real) <= real * 2.0 ** -30


def test_activation_range_quantizes_in_float():
    assert quant.activation_range(quant.ACT_NONE, 0.1, 3) == (-128, 127)
    assert quant.activation_range(quant.ACT_RELU, 0.1, -5) == (-5, 127)
    assert quant.activation_range(quant.ACT_RELU6, 0.05, -128) == (-128, -8)  # 6 / 0.05 = 120
    assert quant.activation_range(quant.ACT_RELU6, 0.01, -128) == (-128, 127)


@pytest.mark.parametrize("bits", range(1, 8))
def test_pack_unpack_round_trip(bits):
    rs = np.random.RandomState(bits)
    values = 1 << bits
    rows = np.stack([rs.choice(rs.randint(-128, 128, values), 1201) for _ in range(5)]).astype(np.int8)
    p = pack.pack(rows)
    assert p is not None and p.bits <= bits
    assert p.indices.shape == (5, (1201 * p.bits + 7) // 8)
    assert np.array_equal(pack.unpack(p, 1201), rows)


def test_pack_refuses_when_it_saves_nothing():
    rows = np.arange(-128, 128, dtype=np.int16).astype(np.int8).reshape(2, 128)
    assert pack.pack(rows) is None  # 128 distinct values a row: 7 bits + codebook > int8


def test_planner_reuses_memory():
    # a chain 0 -> 1 -> 2 -> 3 with sizes 100, 300, 50, 10 and a scratch in step 1
    steps = [Step("k", [0], ["OP"], "", [0], [1], ""), Step("k", [1], ["OP"], "", [1], [2], "", scratch_bytes=40),
             Step("k", [2], ["OP"], "", [2], [3], "")]
    p = plan.plan(steps, {0: 100, 1: 300, 2: 50, 3: 10}, 0, 3)
    assert p.arena_bytes == 400  # step 0: 100 + 300 live; step 1: 300 + 52 + 40; step 2: 52 + 12
    b = p.buffers
    assert (b[("tensor", 1)].offset, b[("tensor", 0)].offset) == (0, 300)
    assert b[("scratch", 1)].offset == 352 and b[("tensor", 2)].offset == 300  # 2 reuses 0's bytes


def _must_be_intact(steps, graph_input, graph_output) -> list:
    """Per step, the buffers whose bytes it must not clobber: what it reads and writes,
    its scratch, and every tensor written before it (the model input: before all) and
    read after it (the model output: at the end)."""
    written = {graph_input: -1}
    read_last = {graph_output: len(steps)}
    for k, s in enumerate(steps):
        for t in s.outputs:
            written.setdefault(t, k)
        for t in s.inputs:
            read_last[t] = max(read_last.get(t, k), k)
    sets = []
    for k, s in enumerate(steps):
        keep = {("tensor", t) for t in list(s.inputs) + list(s.outputs)}
        keep |= {("tensor", t) for t, w in written.items() if w < k < read_last.get(t, -1)}
        if s.scratch_bytes:
            keep.add(("scratch", k))
        sets.append(keep)
    return sets


def _assert_no_live_overlap(p, steps, graph_input, graph_output):
    for k, keep in enumerate(_must_be_intact(steps, graph_input, graph_output)):
        spans = sorted((p.buffers[key].offset, p.buffers[key].offset + p.buffers[key].size, key) for key in keep)
        for (a0, a1, ka), (b0, b1, kb) in zip(spans, spans[1:]):
            assert a1 <= b0, f"step {k}: {ka} [{a0}, {a1}) overlaps {kb} [{b0}, {b1})"
        assert spans[0][0] >= 0 and spans[-1][1] <= p.arena_bytes


def test_planner_never_overlaps_live_buffers_on_random_graphs():
    """The whole plan, every step: random step graphs with skips, branches that join and
    scratch, against the buffers each step must leave intact (computed here from the steps,
    not from the planner's lifetimes)."""
    rs = np.random.RandomState(9)
    for _ in range(60):
        n = int(rs.randint(2, 12))
        steps, sizes = [], {0: int(rs.randint(1, 400))}
        for k in range(n):
            reads = sorted(set(int(t) for t in rs.randint(0, k + 1, size=rs.randint(1, 3))))
            steps.append(Step("k", [k], ["OP"], "", reads, [k + 1], "",
                              scratch_bytes=int(rs.choice([0, 0, rs.randint(1, 200)]))))
            sizes[k + 1] = int(rs.randint(1, 400))
        p = plan.plan(steps, sizes, 0, n)
        _assert_no_live_overlap(p, steps, 0, n)
        peak = max(sum(-(-(p.buffers[key].size) // 4) * 4 for key in keep)
                   for keep in _must_be_intact(steps, 0, n))
        assert peak <= p.arena_bytes <= sum(-(-v // 4) * 4 for v in sizes.values()) + \
            sum(-(-s.scratch_bytes // 4) * 4 for s in steps)


@pytest.mark.parametrize("case", ["add_relu", "add_broadcast", "conv_same_relu_maxpool", "dense_softmax"])
def test_planner_never_overlaps_live_buffers_on_models(case):
    """The compiler's plan of real models: branches (add), a tensor read two steps later
    (the broadcast add), fused conv + pool scratch, dense + softmax."""
    from esptiny.aot import _lower_and_plan
    rs = np.random.RandomState(CASES.index(case) + 300)
    model, shape = _model(case, rs)
    randomize(model, rs)
    low, steps, p = _lower_and_plan(_convert(model, representative(rs, shape)), "auto", True)
    _assert_no_live_overlap(p, steps, low.root(low.input_index), low.root(low.output_index))
