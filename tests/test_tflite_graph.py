"""Reading .tflite flatbuffers: ops, parameters, sparsity and MACs against hand counts."""
import numpy as np
import pytest
from esptiny.errors import UserError
from esptiny.model.reader import Graph
from esptiny.stages.compress import ptq


@pytest.fixture(scope="module")
def small_model():
    from esptiny.tf import keras
    L = keras.layers
    m = keras.Sequential([L.Input((8, 8, 1)), L.Conv2D(4, 3), L.Flatten(), L.Dense(10)])
    w, b = m.layers[0].get_weights()
    w[:, :, :, 0] = 0.0  # one whole filter zero: 9 of the conv's 36 weights
    m.layers[0].set_weights([w, b + 0.1])
    dw, db = m.layers[2].get_weights()  # a zero bias would be dropped by the converter
    m.layers[2].set_weights([dw, db + 0.1])
    return m


def test_counts_float32(small_model):
    g = Graph(ptq.float32(small_model))
    assert g.op_names() == ["CONV_2D", "RESHAPE", "FULLY_CONNECTED"]
    assert g.params() == (36 + 4) + (144 * 10 + 10)
    assert g.macs() == 6 * 6 * 4 * 9 + 144 * 10
    dense_zeros = int(np.sum(small_model.layers[2].get_weights()[0] == 0))
    assert g.sparsity() == pytest.approx((9 + dense_zeros) / (36 + 1440))


def test_counts_int8_and_float16_agree(small_model):
    rep = np.random.default_rng(0).random((8, 8, 8, 1)).astype(np.float32)
    for blob in (ptq.int8(small_model, rep), ptq.float16(small_model)):
        g = Graph(blob)
        assert g.params() == 40 + 1450
        assert g.macs() == 1296 + 1440
    assert "DEQUANTIZE" in Graph(ptq.float16(small_model)).op_names()


def test_not_a_model():
    with pytest.raises(UserError, match="not a TFLite model"):
        Graph(b"\x00" * 64)
    with pytest.raises(UserError):
        Graph(b"\x1c\x00\x00\x00TFL3" + b"\xff" * 40)
