"""Every model of the shared zoo (tests/zoo.py: ResNet-8, DS-CNN, MobileNet-v1 0.25 at
96x96, the anomaly-detection autoencoder, a Conv1D classifier, a MobileNet-v3 block, a
float-I/O CNN) compiles with the AOT engine, and its outputs equal TFLite-Micro's byte for
byte on 200 of the zoo's inputs (one compiled program per model, all inputs in one batch)."""
import pytest
import zoo
from aot_support import assert_bit_exact
from esptiny.model.reader import Graph

N = 200


@pytest.mark.parametrize("name", list(zoo.ZOO))
def test_zoo_model_compiles_and_is_bit_exact(name):
    model = zoo.tflite(name)
    x = zoo.quantized(name, zoo.inputs(name, N, seed=7))
    info = assert_bit_exact(model, x)
    assert info["code_ops"] == [op.name for op in Graph(model).ops]
    assert info["input"]["dtype"] == str(x.dtype)
