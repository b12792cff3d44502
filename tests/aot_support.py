"""What the AOT tests share: random weights and calibration data, esptiny's int8
conversion (and a float-I/O one), one-op models built with the schema's object API, and
the byte-for-byte comparison with TFLite-Micro (one compiled program per model, all
inputs in one batch)."""
import numpy as np
from esptiny.aot import host
from esptiny.model import tflm


def randomize(model, rs, clusters=None):
    """Random weights of random spread (so random scales after quantization)."""
    for v in model.weights:
        vals = rs.normal(0, rs.uniform(0.05, 1.0), v.shape).astype(np.float32)
        if clusters and len(v.shape) > 1:
            centroids = rs.normal(0, 0.5, clusters).astype(np.float32)
            vals = centroids[rs.randint(0, clusters, v.shape)]
        v.assign(vals)


def representative(rs, shape, n=32):
    """Calibration data with a random spread and offset (random input scale and zero point)."""
    return (rs.normal(0, rs.uniform(0.3, 3.0), (n, *shape)) + rs.uniform(-1, 1)).astype(np.float32)


def int8(model, rep):
    """esptiny's own full-integer conversion (int8 in and out)."""
    from esptiny.stages.compress import ptq
    return ptq.int8(model, rep)


def float_io(model, rep):
    """int8 inside, float32 in and out (the converter's QUANTIZE and DEQUANTIZE at the
    edges), through the same esptiny calibration."""
    from esptiny.stages.compress import ptq
    return ptq.int8(model, rep, io_type="float32")


def int8_inputs(rs, n, shape):
    """n random int8 inputs; the first ones hold every int8 value (unary ops at the input
    are then checked on all 256)."""
    x = rs.randint(-128, 128, size=(n, *shape)).astype(np.int8)
    flat = x.reshape(-1)
    every = np.arange(-128, 128, dtype=np.int16).astype(np.int8)
    reps = min(flat.size // 256, 4)
    flat[:256 * reps] = np.tile(every, reps)
    return x


def assert_bit_exact(model_bytes, x):
    """The AOT engine's outputs for x equal TFLite-Micro's byte for byte; returns the
    compiler's figures."""
    with host.Runner(model_bytes) as r:
        y_aot = r.run(x)
        info = r.info
    y_tflm = tflm.run(model_bytes, x).reshape(y_aot.shape)
    assert y_aot.dtype == y_tflm.dtype
    a, b = y_aot.reshape(len(x), -1).view(np.uint8), y_tflm.reshape(len(x), -1).view(np.uint8)
    assert np.array_equal(a, b), (
        f"{int((a != b).any(axis=1).sum())} of {len(x)} inputs give different bytes, "
        f"{int((y_aot != y_tflm).sum())} of {y_aot.size} values")
    return info


def one_op_model(op_name, tensors, inputs, outputs, options=None, custom_code=None, version=1):
    """A one-op model from the schema's object API: tensors as dicts (name, shape, type,
    scale, zero_point, data), op inputs/outputs as tensor indices (the model's inputs are
    the op's non-constant inputs). For ops and parameters the converter rarely emits."""
    import flatbuffers
    from esptiny.model.reader import schema
    S = schema()
    buffers = [S.BufferT()]
    ts = []
    for t in tensors:
        tt = S.TensorT()
        tt.name, tt.shape = t["name"].encode(), list(t["shape"])
        tt.type = getattr(S.TensorType, t.get("type", "int8").upper())
        if "scale" in t:
            tt.quantization = S.QuantizationParametersT()
            tt.quantization.scale, tt.quantization.zeroPoint = [t["scale"]], [t.get("zero_point", 0)]
        b = S.BufferT()
        if t.get("data") is not None:
            b.data = np.ascontiguousarray(t["data"]).view(np.uint8).reshape(-1).tolist()
        tt.buffer = len(buffers)
        buffers.append(b)
        ts.append(tt)
    code = S.OperatorCodeT()
    builtin = getattr(S.BuiltinOperator, op_name)
    code.builtinCode, code.deprecatedBuiltinCode = builtin, min(builtin, 127)
    code.version = version
    if custom_code:
        code.customCode = custom_code.encode()
    op = S.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, list(inputs), list(outputs)
    if options is not None:
        op.builtinOptionsType, op.builtinOptions = options
    sg = S.SubGraphT()
    sg.tensors = ts
    sg.inputs = [i for i in inputs if tensors[i].get("data") is None]
    sg.outputs, sg.operators = list(outputs), [op]
    m = S.ModelT()
    m.version, m.operatorCodes, m.subgraphs, m.buffers = 3, [code], [sg], buffers
    b = flatbuffers.Builder(0)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())
