"""The zoo pinned: each model's int8 .tflite has exactly these builtin ops, input and
output types and shapes, parameters and MACs; TFLite-Micro's host runtime and the TFLite
interpreter both run it and agree within one int8 step; the int8 model still does its
synthetic task; the zoo is deterministic; ptq.int8's io_type keyword."""
import numpy as np
import pytest
import zoo
from esptiny.model import tflite, tflm
from esptiny.model.reader import Graph
from esptiny.stages.compress import ptq

CLASSIFIER_TAIL = {"AVERAGE_POOL_2D", "RESHAPE", "FULLY_CONNECTED", "SOFTMAX"}

# name: (ops, (input dtype, shape), (output dtype, shape), params, MACs)
PINS = {
    "resnet8": ({"CONV_2D", "ADD"} | CLASSIFIER_TAIL,
                ("int8", (1, 32, 32, 3)), ("int8", (1, 10)), 77_706, 12_501_632),
    "ds_cnn": ({"CONV_2D", "DEPTHWISE_CONV_2D"} | CLASSIFIER_TAIL,
               ("int8", (1, 49, 10, 1)), ("int8", (1, 12)), 22_604, 2_656_768),
    "mobilenet_v1_025_96_gray": ({"CONV_2D", "DEPTHWISE_CONV_2D"} | CLASSIFIER_TAIL,
                                 ("int8", (1, 96, 96, 1)), ("int8", (1, 2)), 210_706, 7_157_888),
    "mobilenet_v1_025_96_rgb": ({"CONV_2D", "DEPTHWISE_CONV_2D"} | CLASSIFIER_TAIL,
                                ("int8", (1, 96, 96, 3)), ("int8", (1, 2)), 210_850, 7_489_664),
    "autoencoder": ({"FULLY_CONNECTED"}, ("int8", (1, 640)), ("int8", (1, 640)), 265_864, 264_192),
    # Conv1D: EXPAND_DIMS to 4-D before each convolution, RESHAPE back after (no SQUEEZE);
    # MaxPooling1D runs as MAX_POOL_2D on the expanded tensor.
    "conv1d": ({"EXPAND_DIMS", "CONV_2D", "RESHAPE", "MAX_POOL_2D", "FULLY_CONNECTED", "SOFTMAX"},
               ("int8", (1, 128, 3)), ("int8", (1, 6)), 62_694, 238_016),
    "mobilenet_v3_block": ({"CONV_2D", "HARD_SWISH", "DEPTHWISE_CONV_2D", "MEAN", "LOGISTIC", "MUL",
                            "ADD", "FULLY_CONNECTED", "SOFTMAX"},
                           ("int8", (1, 64, 64, 3)), ("int8", (1, 10)), 8_658, 1_612_992),
    "float_io": ({"QUANTIZE", "CONV_2D", "MAX_POOL_2D", "RESHAPE", "FULLY_CONNECTED", "SOFTMAX",
                  "DEQUANTIZE"}, ("float32", (1, 28, 28, 1)), ("float32", (1, 10)), 5_258, 192_064),
}
# int8 top-1 on 200 seeded test inputs (TFLite interpreter): at least this.
MIN_ACCURACY = {"resnet8": 0.95, "ds_cnn": 0.8, "mobilenet_v1_025_96_gray": 0.95,
                "mobilenet_v1_025_96_rgb": 0.95, "conv1d": 0.95, "mobilenet_v3_block": 0.95,
                "float_io": 0.8}
RUNTIME_INPUTS = 5
TASK_INPUTS = 200


def test_every_model_is_pinned():
    assert set(PINS) == set(zoo.NAMES)
    assert set(MIN_ACCURACY) == {n for n, s in zoo.ZOO.items() if s.kind == "classifier"}


@pytest.mark.parametrize("name", zoo.NAMES)
def test_ops_types_shapes_and_sizes(name):
    ops, (in_dtype, in_shape), (out_dtype, out_shape), params, macs = PINS[name]
    g = Graph(zoo.tflite(name))
    assert set(g.op_names()) == ops
    t_in, t_out = g.tensors[g.inputs[0]], g.tensors[g.outputs[0]]
    assert (t_in.dtype_name, t_in.shape) == (in_dtype, in_shape)
    assert (t_out.dtype_name, t_out.shape) == (out_dtype, out_shape)
    assert (g.params(), g.macs()) == (params, macs)
    assert in_shape[1:] == zoo.ZOO[name].input_shape


def _output_step(blob) -> float:
    """One int8 step of the output: its own scale, or that of the int8 tensor that the
    final DEQUANTIZE reads."""
    g = Graph(blob)
    t = g.tensors[g.outputs[0]]
    if t.dtype_name == "int8":
        return 1.0
    (last,) = [op for op in g.ops if g.outputs[0] in op.outputs]
    assert last.name == "DEQUANTIZE", f"a float output comes from {last.name}"
    return g.tensors[last.inputs[0]].scale


@pytest.mark.parametrize("name", zoo.NAMES)
def test_tflite_micro_and_tflite_run_it_and_agree_within_one_step(name):
    blob = zoo.tflite(name)
    x = zoo.quantized(name, zoo.inputs(name, RUNTIME_INPUTS, seed=1))
    y_ref = tflite.run(blob, x).reshape(RUNTIME_INPUTS, -1).astype(np.float64)
    y_tflm = tflm.run(blob, x).reshape(RUNTIME_INPUTS, -1).astype(np.float64)
    assert y_ref.shape == (RUNTIME_INPUTS, zoo.ZOO[name].classes)
    step = _output_step(blob)
    assert np.abs(y_ref - y_tflm).max() <= tflm.TFLITE_MAX_STEPS * step * (1 + 1e-6)
    assert len({row.tobytes() for row in y_tflm}) > 1  # the output depends on the input


@pytest.mark.parametrize("name", [n for n, s in zoo.ZOO.items() if s.kind == "classifier"])
def test_int8_classifier_does_its_task(name):
    blob = zoo.tflite(name)
    y = tflite.run(blob, zoo.quantized(name, zoo.inputs(name, TASK_INPUTS)))
    accuracy = float((y.reshape(TASK_INPUTS, -1).argmax(axis=1) == zoo.labels(name, TASK_INPUTS)).mean())
    assert accuracy >= MIN_ACCURACY[name]


def test_int8_autoencoder_reconstructs():
    """Raw (linear) outputs: the reconstruction error is well below the inputs' variance,
    so the outputs are not a constant."""
    blob = zoo.tflite("autoencoder")
    x = zoo.inputs("autoencoder", TASK_INPUTS)
    _, d_out = tflite.io_details(blob)
    y = tflite.to_float(tflite.run(blob, zoo.quantized("autoencoder", x)), d_out)
    assert float(((y - x) ** 2).mean()) < 0.5 * float(x.var())


def test_inputs_are_seeded_and_in_range():
    for name, spec in zoo.ZOO.items():
        x = zoo.inputs(name, 16, seed=3)
        assert x.dtype == np.float32 and x.shape == (16, *spec.input_shape)
        assert spec.low <= x.min() < x.max() <= spec.high
        assert np.array_equal(x, zoo.inputs(name, 16, seed=3))
        assert not np.array_equal(x, zoo.inputs(name, 16, seed=4))
    assert zoo.representative("resnet8").shape == (zoo.REP_SAMPLES, 32, 32, 3)


def test_a_rebuild_gives_the_same_bytes():
    """Seeded weights, training, calibration and layer names: a second build in this
    process, after the others, gives the cached .tflite byte for byte."""
    name = "float_io"
    cached = zoo.tflite(name)
    rebuilt = ptq.int8(zoo.keras_model.__wrapped__(name), zoo.representative(name), io_type="float32")
    assert rebuilt == cached


def test_ptq_int8_io_type():
    """float32 edges: QUANTIZE first, DEQUANTIZE last; the default keeps int8 edges and
    neither op."""
    model, rep = zoo.keras_model("float_io"), zoo.representative("float_io")
    g_float = Graph(zoo.tflite("float_io"))
    assert (g_float.ops[0].name, g_float.ops[-1].name) == ("QUANTIZE", "DEQUANTIZE")
    g_int8 = Graph(ptq.int8(model, rep))
    assert {"QUANTIZE", "DEQUANTIZE"}.isdisjoint(g_int8.op_names())
    assert [g_int8.tensors[i].dtype_name for i in g_int8.inputs + g_int8.outputs] == ["int8", "int8"]
    with pytest.raises(AssertionError, match="io_type"):
        ptq.int8(model, rep, io_type="uint8")
