"""The AOT compiler's ops beyond conv/dense/pool against TFLite-Micro: for each, small
random models built with tf_keras (random shapes, parameters, weights and calibration
data, so random scales and zero points), converted with esptiny's int8 calibration,
compiled to C and run on 64 inputs (the first ones hold every int8 value); the outputs
must equal TFLite-Micro's byte for byte. Plus a float-I/O model, and the refusals: an op
outside the list by name, a custom op by its custom name, parameters the kernels do not
reproduce."""
import numpy as np
import pytest
from aot_support import (
    assert_bit_exact,
    float_io,
    int8,
    int8_inputs,
    one_op_model,
    randomize,
    representative,
)
from esptiny import aot
from esptiny.errors import UserError

N_INPUTS = 64


def _hard_swish(L, t):
    from esptiny.tf import tf
    return L.Lambda(lambda v: v * tf.nn.relu6(v + 3.0) / 6.0)(t)


def _model(case: str, rs):
    """(keras model, the op it must compile to) for one case; parameters drawn from rs."""
    from esptiny.tf import keras, tf
    L = keras.layers
    h, w, c = rs.randint(4, 10), rs.randint(4, 10), rs.randint(1, 6)
    inp = L.Input((h, w, c))
    conv = L.Conv2D(rs.randint(2, 7), rs.randint(1, 4), padding="same")
    if case == "mean_global":
        x, op = L.GlobalAveragePooling2D(keepdims=bool(rs.randint(2)))(conv(inp)), "MEAN"
    elif case == "mean_channels":
        x, op = L.Lambda(lambda t: tf.reduce_mean(t, axis=-1, keepdims=True))(inp), "MEAN"
    elif case == "mean_rows":
        x, op = L.Lambda(lambda t: tf.reduce_mean(t, axis=1))(inp), "MEAN"
    elif case == "pad":
        pads = [tuple(int(p) for p in rs.randint(0, 3, 2)) for _ in range(2)]
        x, op = L.ZeroPadding2D(pads)(inp), "PAD"
    elif case == "padv2":
        value, pads = float(rs.uniform(-2, 2)), rs.randint(0, 3, (4, 2)).tolist()
        pads[0] = [0, 0]
        x, op = L.Lambda(lambda t: tf.pad(t, pads, constant_values=value))(inp), "PADV2"
    elif case == "concat_channels":
        x = L.Concatenate()([conv(inp), L.Conv2D(rs.randint(1, 5), 1)(inp), inp])
        op = "CONCATENATION"
    elif case == "concat_rows":
        x, op = L.Concatenate(axis=1)([conv(inp), L.Conv2D(conv.filters, 3, padding="same")(inp)]), "CONCATENATION"
    elif case == "mul":
        x, op = L.Multiply()([conv(inp), L.Conv2D(conv.filters, 1, activation="relu")(inp)]), "MUL"
    elif case == "mul_broadcast":   # squeeze-and-excitation's scaling
        a = conv(inp)
        x, op = L.Multiply()([a, L.GlobalAveragePooling2D(keepdims=True)(a)]), "MUL"
    elif case == "mul_constant":
        k = rs.normal(0, 1, (c,)).astype(np.float32)
        x, op = L.Lambda(lambda t: t * k)(inp), "MUL"
    elif case == "logistic":
        x, op = L.Activation("sigmoid")(inp if rs.randint(2) else conv(inp)), "LOGISTIC"
    elif case == "tanh":
        x, op = L.Activation("tanh")(inp if rs.randint(2) else conv(inp)), "TANH"
    elif case == "hard_swish":
        x, op = _hard_swish(L, inp if rs.randint(2) else conv(inp)), "HARD_SWISH"
    elif case == "relu":
        x, op = L.ReLU()(inp), "RELU"
    elif case == "relu6":
        x, op = L.ReLU(6.0)(inp), "RELU6"
    elif case == "leaky_relu":
        x, op = L.LeakyReLU(float(rs.uniform(0.01, 0.9)))(inp if rs.randint(2) else conv(inp)), "LEAKY_RELU"
    elif case == "strided_slice":
        a, s = int(rs.randint(0, h // 2)), int(rs.randint(1, 3))
        x, op = L.Lambda(lambda t: t[:, a::s, ::-1, c // 2:])(inp), "STRIDED_SLICE"
    elif case == "cropping":
        crop = [tuple(int(p) for p in rs.randint(0, 2, 2)) for _ in range(2)]
        x, op = L.Cropping2D(crop)(inp), "STRIDED_SLICE"
    elif case == "conv1d":   # EXPAND_DIMS, CONV_2D, RESHAPE
        inp = L.Input((h * w, c))
        x, op = L.Conv1D(rs.randint(2, 6), rs.randint(1, 4), strides=int(rs.randint(1, 3)))(inp), "EXPAND_DIMS"
    else:
        raise AssertionError(case)
    return keras.Model(inp, x), op


CASES = ["mean_global", "mean_channels", "mean_rows", "pad", "padv2", "concat_channels", "concat_rows",
         "mul", "mul_broadcast", "mul_constant", "logistic", "tanh", "hard_swish", "relu", "relu6",
         "leaky_relu", "strided_slice", "cropping", "conv1d"]


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("case", CASES)
def test_op_bit_exact(case, seed):
    rs = np.random.RandomState(1000 * CASES.index(case) + seed)
    model, op = _model(case, rs)
    randomize(model, rs)
    shape = model.input_shape[1:]
    b = int8(model, representative(rs, shape))
    info = assert_bit_exact(b, int8_inputs(rs, N_INPUTS, shape))
    assert op in info["code_ops"], info["code_ops"]


def test_squeeze_and_expand_dims_are_aliases():
    """The converter turns most squeezes into RESHAPE; TFLite-Micro runs SQUEEZE and
    EXPAND_DIMS as copies, the AOT engine as the same bytes under a new shape (no step)."""
    rs = np.random.RandomState(4)
    squeeze = one_op_model("SQUEEZE", [_t("in", [1, 3, 1, 4]), _t("out", [1, 3, 4])], [0], [1],
                           _options("Squeeze", squeezeDims=[2]))
    expand = one_op_model("EXPAND_DIMS", [_t("in", [1, 12]), _int32("axis", [1]), _t("out", [1, 1, 12])],
                          [0, 1], [2])
    for b, shape in ((squeeze, (3, 1, 4)), (expand, (12,))):
        info = assert_bit_exact(b, int8_inputs(rs, 8, shape))
        assert info["steps"] == [] and info["code_ops"] in (["SQUEEZE"], ["EXPAND_DIMS"])


def test_float_io_model_quantizes_and_dequantizes_in_the_engine():
    """float32 in and out: QUANTIZE and DEQUANTIZE compiled into the model; the engine's
    I/O are float32; outputs identical to TFLite-Micro's as bytes, inputs including values
    exactly halfway between two quantization steps (the rounding)."""
    from esptiny.tf import keras
    L = keras.layers
    rs = np.random.RandomState(5)
    inp = L.Input((8, 8, 2))
    x = L.Conv2D(4, 3, activation="relu")(inp)
    model = keras.Model(inp, L.Dense(6)(L.Flatten()(x)))
    randomize(model, rs)
    b = float_io(model, representative(rs, (8, 8, 2)))
    info = aot.compile_model(b).info
    assert info["code_ops"][0] == "QUANTIZE" and info["code_ops"][-1] == "DEQUANTIZE"
    assert (info["input"]["dtype"], info["output"]["dtype"]) == ("float32", "float32")
    assert info["input"]["bytes"] == 8 * 8 * 2 * 4
    from esptiny.aot.lower import Lowering
    low = Lowering(b)
    q = low.tensors[low.g.ops[0].outputs[0]]
    x = rs.normal(0, 2, (200, 8, 8, 2)).astype(np.float32)
    halves = (rs.randint(-140, 140, x[:20].shape) + 0.5 - q.zero_point) * np.float32(q.scale)
    x[:20] = halves.astype(np.float32)
    x[20:22] = 1e6  # far outside int8 both ways
    x[22] = -1e6
    assert_bit_exact(b, x)


def test_float_io_header_and_engine_carry_the_dtype(tmp_path):
    from esptiny.tf import keras
    L = keras.layers
    rs = np.random.RandomState(6)
    inp = L.Input((5,))
    model = keras.Model(inp, L.Dense(3)(inp))
    randomize(model, rs)
    aot.generate(float_io(model, representative(rs, (5,))), tmp_path)
    h = (tmp_path / "model_aot.h").read_text()
    assert "#define ESPT_AOT_INPUT_DTYPE 0" in h and "#define ESPT_AOT_OUTPUT_DTYPE 0" in h
    assert "#define ESPT_AOT_INPUT_BYTES 20u" in h and "#define ESPT_AOT_OUTPUT_BYTES 12u" in h


# ---- refusals ---------------------------------------------------------------------

def test_op_outside_the_list_is_refused_by_name():
    from esptiny.tf import keras
    L = keras.layers
    rs = np.random.RandomState(0)
    inp = L.Input((4, 3, 2))
    model = keras.Model(inp, L.Permute((2, 1, 3))(L.Conv2D(2, 1)(inp)))
    b = int8(model, representative(rs, (4, 3, 2)))
    with pytest.raises(UserError) as e:
        aot.compile_model(b)
    assert str(e.value).startswith("the AOT engine cannot compile layer 1 (TRANSPOSE): op not supported "
                                   "(it compiles ")
    assert "HARD_SWISH" in str(e.value) and "\n" not in str(e.value)


def _t(name, shape, **kw):
    return dict(name=name, shape=shape, scale=kw.pop("scale", 0.05), zero_point=kw.pop("zero_point", 0), **kw)


def test_custom_op_is_refused_by_its_custom_name():
    b = one_op_model("CUSTOM", [_t("in", [1, 4]), _t("out", [1, 4])], [0], [1], custom_code="MyFancyOp")
    with pytest.raises(UserError, match=r"^the AOT engine cannot compile layer 0 \(custom op MyFancyOp\): "
                                        r"op not supported \(it compiles "):
        aot.compile_model(b)


def _options(kind: str, **fields):
    from esptiny.model.reader import schema
    S = schema()
    o = getattr(S, f"{kind}OptionsT")()
    for k, v in fields.items():
        setattr(o, k, v)
    return getattr(S.BuiltinOptions, f"{kind}Options"), o


def _int32(name, values):
    return {"name": name, "shape": [len(values)], "type": "int32", "data": np.asarray(values, np.int32)}


REFUSED = {
    "negative alpha": (
        "LEAKY_RELU", [_t("in", [1, 8]), _t("out", [1, 8])], [0], [1], _options("LeakyRelu", alpha=-0.5),
        r"layer 0 \(LEAKY_RELU\): alpha -0.5 \(the AOT engine compiles alpha >= 0\)"),
    "concat of differently quantized inputs": (
        "CONCATENATION", [_t("a", [1, 2]), _t("b", [1, 2], scale=0.1, data=np.array([3, -4], np.int8)),
                          _t("out", [1, 4])], [0, 1], [2],
        _options("Concatenation", axis=1),
        r"layer 0 \(CONCATENATION\): input 'b' is quantized unlike the output \(TFLite-Micro refuses it too\)"),
    "strided slice with an ellipsis": (
        "STRIDED_SLICE", [_t("in", [1, 4, 4, 2]), _int32("b", [0, 0, 0, 0]), _int32("e", [1, 4, 4, 2]),
                          _int32("s", [1, 1, 1, 1]), _t("out", [1, 4, 4, 2])], [0, 1, 2, 3], [4],
        _options("StridedSlice", ellipsisMask=2),
        r"layer 0 \(STRIDED_SLICE\): ellipsis, new-axis or offset masks \(TFLite-Micro ignores them\)"),
    "mean of a 5-D tensor": (
        "MEAN", [_t("in", [1, 2, 2, 2, 2]), _int32("axis", [1]), _t("out", [1, 2, 2, 2])], [0, 1], [2],
        _options("Reducer", keepDims=False),
        r"layer 0 \(MEAN\): tensor 'in' has rank 5 \(the AOT kernels take up to 4\)"),
    "negative padding": (
        "PAD", [_t("in", [1, 4, 4, 1]), {"name": "p", "shape": [4, 2], "type": "int32",
                                         "data": np.array([[0, 0], [-1, 0], [0, 0], [0, 0]], np.int32)},
                _t("out", [1, 3, 4, 1])], [0, 1], [2], None, r"layer 0 \(PAD\): negative padding"),
    "hard swish needing a 19-bit shift": (
        "HARD_SWISH", [_t("in", [1, 4], scale=1e-8), _t("out", [1, 4], scale=1e-8)], [0], [1], None,
        r"layer 0 \(HARD_SWISH\): input scale 1e-08 and output scale 1e-08 need a shift beyond 15 bits"),
}


@pytest.mark.parametrize("what", list(REFUSED))
def test_parameters_outside_the_kernels_are_refused(what):
    op, tensors, ins, outs, options, message = REFUSED[what]
    b = one_op_model(op, tensors, ins, outs, options)
    with pytest.raises(UserError, match=f"^the AOT engine cannot compile {message}$"):
        aot.compile_model(b)


UNARY = ["RELU", "RELU6", "LEAKY_RELU", "HARD_SWISH", "LOGISTIC", "TANH", "QUANTIZE"]


@pytest.mark.parametrize("op", UNARY)
def test_unary_op_on_every_int8_value_at_random_scales(op):
    """One-op models (no converter, so scales far from what calibration gives): each op at
    four random input and output quantizations, on all 256 int8 inputs."""
    rs = np.random.RandomState(UNARY.index(op))
    every = np.arange(-128, 128, dtype=np.int16).astype(np.int8).reshape(1, 256)
    for _ in range(4):
        s_in, s_out = (float(np.float32(10 ** rs.uniform(-3.5, 0.5))) for _ in range(2))
        z_in, z_out = (int(rs.randint(-128, 128)) for _ in range(2))
        if op == "LOGISTIC":
            s_out, z_out = 1 / 256, -128
        elif op == "TANH":
            s_out, z_out = 1 / 128, 0
        elif op == "HARD_SWISH":
            s_out = max(s_out, s_in / 64)  # TFLite-Micro needs output scale >= input scale / 128
        options = _options("LeakyRelu", alpha=float(rs.uniform(0, 2))) if op == "LEAKY_RELU" else None
        b = one_op_model(op, [_t("in", [1, 256], scale=s_in, zero_point=z_in),
                              _t("out", [1, 256], scale=s_out, zero_point=z_out)], [0], [1], options,
                         version=2 if op == "QUANTIZE" else 1)
        assert_bit_exact(b, every)


def test_mean_and_mul_at_random_quantizations():
    """MEAN over random axes (kept or not) and MUL by a broadcast constant as one-op
    models at random scales, wider than calibration gives (MEAN's 1/count folding clamps
    its shift at small output scales)."""
    rs = np.random.RandomState(9)
    for _ in range(4):
        dims = [1, int(rs.randint(1, 9)), int(rs.randint(1, 9)), int(rs.randint(1, 6))]
        s_in, s_out = (float(np.float32(10 ** rs.uniform(-4, 0))) for _ in range(2))
        z_in, z_out = (int(rs.randint(-128, 128)) for _ in range(2))
        axes = sorted(rs.choice(4, int(rs.randint(1, 4)), replace=False).tolist())
        keep = bool(rs.randint(2))
        out = [1 if a in axes else d for a, d in enumerate(dims)] if keep else \
            [d for a, d in enumerate(dims) if a not in axes] or [1]
        mean = one_op_model("MEAN", [_t("in", dims, scale=s_in, zero_point=z_in), _int32("axis", axes),
                                     _t("out", out, scale=s_out, zero_point=z_out)], [0, 1], [2],
                            _options("Reducer", keepDims=keep))
        assert_bit_exact(mean, int8_inputs(rs, 16, dims[1:]))
        k = _t("k", [dims[3]], scale=float(10 ** rs.uniform(-3, 0)), zero_point=int(rs.randint(-20, 20)),
               data=rs.randint(-128, 128, dims[3]).astype(np.int8))
        mul = one_op_model("MUL", [_t("in", dims, scale=s_in, zero_point=z_in), k,
                                   _t("out", dims, scale=s_out, zero_point=z_out)], [0, 1], [2],
                           _options("Mul"))
        assert_bit_exact(mul, int8_inputs(rs, 16, dims[1:]))
