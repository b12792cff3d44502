"""A zoo of user-like architectures for the tests and benchmarks (tf_keras, seeded).

Measured on this 2-core host, shared with other work (load 3-8), by
`python benchmarks/zoo_facts.py` (its last line is the JSON of all of it). params, MACs:
esptiny.model.reader.Graph; arena: tflm.arena_bytes total; TFLM ms: TFLite-Micro host
runtime (PyPI wheel, reference kernels, x86-64) per inference, median of 20-50 invokes,
lowest (highest) of four runs; convert: ptq.int8 alone, CPU s of one run (all threads);
AOT: aot.compile_model, host.run == tflm.run on 200 inputs, and its planned arena; frame:
export's read_model (4096 B payload; since protocol 2 every size travels in pieces: all ok); fit: fit.plan_arena + fit.check, esp32/esp32s3/esp32c3.

| model | params | MACs | .tflite B | input | output | arena B | TFLM ms | convert CPU s | AOT | frame | fit 32/s3/c3 |
|---|---|---|---|---|---|---|---|---|---|---|---|
| resnet8 | 77,706 | 12,501,632 | 95,504 | int8 1x32x32x3 3,072 B | int8 1x10 | 55,984 | 10.7 (34) | 4.9 | 200/200 identical, 49,296 B | ok | fit/fit/fit |
| ds_cnn | 22,604 | 2,656,768 | 47,528 | int8 1x49x10x1 490 B | int8 1x12 | 24,272 | 3.5 (11) | 4.7 | 200/200 identical, 16,064 B | ok | fit/fit/fit |
| mobilenet_v1_025_96_gray | 210,706 | 7,157,888 | 313,800 | int8 1x96x96x1 9,216 B | int8 1x2 | 85,248 | 8.3 (25) | 16.4 | 200/200 identical, 55,304 B | refused (ok since protocol 2) | fit/refused/fit |
| mobilenet_v1_025_96_rgb | 210,850 | 7,489,664 | 313,944 | int8 1x96x96x3 27,648 B | int8 1x2 | 103,680 | 12.8 (29) | 13.7 | 200/200 identical, 64,512 B | refused (ok since protocol 2) | fit/refused/fit |
| autoencoder | 265,864 | 264,192 | 278,120 | int8 1x640 640 B | int8 1x640 640 B | 3,984 | 0.16 (0.28) | 5.5 | 200/200 identical, 768 B | ok | fit/fit/fit |
| conv1d | 62,694 | 238,016 | 70,336 | int8 1x128x3 384 B | int8 1x6 | 7,568 | 0.25 (0.33) | 1.0 | refused: EXPAND_DIMS | ok | fit/fit/fit |
| mobilenet_v3_block | 8,658 | 1,612,992 | 32,608 | int8 1x64x64x3 12,288 B | int8 1x10 | 57,776 | 3.9 (12) | 5.8 | refused: HARD_SWISH | refused (ok since protocol 2) | fit/fit/fit |
| float_io | 5,258 | 192,064 | 9,792 | float32 1x28x28x1 3,136 B | float32 1x10 40 B | 9,264 | 0.37 | 0.9 | refused: float32 input | ok | fit/fit/fit |

Ops (Graph.op_names, first use): resnet8 CONV_2D ADD AVERAGE_POOL_2D RESHAPE FULLY_CONNECTED
SOFTMAX; ds_cnn and both MobileNet-v1s CONV_2D DEPTHWISE_CONV_2D AVERAGE_POOL_2D RESHAPE
FULLY_CONNECTED SOFTMAX; autoencoder FULLY_CONNECTED x10; conv1d EXPAND_DIMS CONV_2D RESHAPE
MAX_POOL_2D FULLY_CONNECTED SOFTMAX (each Conv1D and MaxPooling1D is EXPAND_DIMS, the 2-D op,
RESHAPE: no SQUEEZE); mobilenet_v3_block CONV_2D HARD_SWISH DEPTHWISE_CONV_2D MEAN LOGISTIC
MUL ADD FULLY_CONNECTED SOFTMAX; float_io QUANTIZE CONV_2D MAX_POOL_2D RESHAPE FULLY_CONNECTED
SOFTMAX DEQUANTIZE. The whole zoo converts in 53 s CPU (44 to 146 s wall as the load
varied) and builds and trains in 51 s CPU; most of a conversion is TFLiteConverter's
Keras-to-SavedModel export (30 of 35 s for mobilenet_v1_025_96_rgb, cProfile).
esp32s3 refuses the MobileNet-v1s because fit.py's ESP-NN margin sums 28 scratch buffers
(~600 KB) as if none shared memory; esp32 and esp32c3 (generic ESP-NN: softmax scratch
only) fit them.

Weights are seeded, trained a few epochs on seeded synthetic data (a plane wave per class,
random phase, noise) so that calibration sees real ranges and outputs depend on the input;
batch norm statistics are then set from the training set. The MobileNet-v1s follow MLPerf
Tiny's VWW model (padding "same", average pool, dense): keras.applications.MobileNet at
alpha 0.25 has the same params and MACs but ends in MEAN SHAPE STRIDED_SLICE PACK RESHAPE.

Interface:
    ZOO[name] -> Spec          input shape, kind, classes, input range, builder
    keras_model(name)          the float model, built and briefly trained (cached)
    tflite(name) -> bytes      its int8 .tflite through esptiny's ptq.int8 (cached)
    inputs(name, n, seed)      float32 inputs in the input's range; labels(name, n, seed) theirs
    representative(name)       the calibration set ptq.int8 was given
    quantized(name, x)         float inputs in the .tflite's input dtype
    SECONDS[name]              {"build", "convert": wall s; "build_cpu", "convert_cpu": this
                               process's CPU s, all threads} measured in this process
"""
from __future__ import annotations

import time
import zlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import numpy as np

REP_SAMPLES = 128    # calibration set
TRAIN_SAMPLES = 512  # synthetic training set of a trained model
REP_SEED = 1_000_003
TRAIN_SEED = 2_000_003
SECONDS: dict = {}


@dataclass(frozen=True)
class Spec:
    name: str
    input_shape: tuple   # without the batch dimension
    kind: str            # "classifier" | "autoencoder"
    classes: int         # output units (classes, or the reconstruction's width)
    low: float           # the input's real range
    high: float
    builder: Callable    # () -> an untrained tf_keras model
    epochs: int          # brief training on the synthetic set (0: random seeded weights)
    batch: int = 32
    learning_rate: float = 3e-3
    io_type: str = "int8"
    about: str = ""

    @property
    def seed(self) -> int:
        return zlib.crc32(self.name.encode())  # stable across processes, unlike hash()


# ---- builders ----------------------------------------------------------------------

def _keras():
    from esptiny.tf import keras
    return keras, keras.layers


def _bn(x):
    return _keras()[1].BatchNormalization()(x)


def _conv_bn(x, filters, kernel, strides=1, act="relu"):
    L = _keras()[1]
    x = _bn(L.Conv2D(filters, kernel, strides=strides, padding="same", kernel_initializer="he_normal")(x))
    return L.Activation(act)(x) if act else x


def _dw_bn(x, strides=1, act="relu"):
    L = _keras()[1]
    x = _bn(L.DepthwiseConv2D(3, strides=strides, padding="same", depthwise_initializer="he_normal")(x))
    return L.Activation(act)(x) if act else x


def resnet8():
    """MLPerf Tiny image classification's ResNet-8 (16-32-64 filters, three residual stacks,
    1x1 strided shortcuts, 8x8 average pool, dense softmax)."""
    keras, L = _keras()
    inp = L.Input((32, 32, 3))
    x = _conv_bn(inp, 16, 3)
    for filters, strides in ((16, 1), (32, 2), (64, 2)):
        y = _conv_bn(x, filters, 3, strides)
        y = _conv_bn(y, filters, 3, act=None)
        if strides != 1:
            x = L.Conv2D(filters, 1, strides=strides, padding="same", kernel_initializer="he_normal")(x)
        x = L.Activation("relu")(L.Add()([x, y]))
    x = L.Flatten()(L.AveragePooling2D(8)(x))
    return keras.Model(inp, L.Dense(10, activation="softmax")(x), name="resnet8")


def ds_cnn():
    """MLPerf Tiny keyword spotting's DS-CNN: conv 10x4 stride 2 (64), four depthwise
    separable blocks (64), 25x5 average pool, dense softmax over 12 keywords."""
    keras, L = _keras()
    inp = L.Input((49, 10, 1))
    x = L.Dropout(0.2)(_conv_bn(inp, 64, (10, 4), 2))
    for _ in range(4):
        x = _conv_bn(_dw_bn(x), 64, 1)
    x = L.Flatten()(L.AveragePooling2D((25, 5))(L.Dropout(0.4)(x)))
    return keras.Model(inp, L.Dense(12, activation="softmax")(x), name="ds_cnn")


def _mobilenet_v1_025_96(channels):
    """MobileNet-v1, width 0.25, 96x96 (MLPerf Tiny visual wake words / TFLite-Micro person
    detection): conv 3x3 stride 2 (8), 13 depthwise separable blocks, 3x3 average pool,
    dense softmax over 2 classes."""
    keras, L = _keras()
    inp = L.Input((96, 96, channels))
    x = _conv_bn(inp, 8, 3, 2)
    blocks = [(16, 1), (32, 2), (32, 1), (64, 2), (64, 1), (128, 2)] + [(128, 1)] * 5 + [(256, 2), (256, 1)]
    for filters, strides in blocks:
        x = _conv_bn(_dw_bn(x, strides), filters, 1)
    x = L.Flatten()(L.AveragePooling2D(x.shape[1:3])(x))
    return keras.Model(inp, L.Dense(2, activation="softmax")(x), name=f"mobilenet_v1_025_96_{channels}")


def autoencoder():
    """MLPerf Tiny anomaly detection's dense autoencoder: 640 -> 128 x4 -> 8 -> 128 x4 -> 640,
    batch norm and ReLU after every hidden layer, linear output."""
    keras, L = _keras()
    inp = L.Input((640,))
    x = inp
    for units in (128, 128, 128, 128, 8, 128, 128, 128, 128):
        x = L.Activation("relu")(_bn(L.Dense(units)(x)))
    return keras.Model(inp, L.Dense(640)(x), name="autoencoder")


def conv1d():
    """A Conv1D sensor classifier: 128 steps x 3 accelerometer axes -> 6 activities."""
    keras, L = _keras()
    inp = L.Input((128, 3))
    x = L.MaxPooling1D(2)(L.Conv1D(16, 5, activation="relu")(inp))
    x = L.MaxPooling1D(2)(L.Conv1D(32, 5, activation="relu")(x))
    x = L.Dense(64, activation="relu")(L.Flatten()(x))
    return keras.Model(inp, L.Dense(6, activation="softmax")(x), name="conv1d")


def _hard_swish(x):
    """x * relu6(x + 3) / 6, as Keras' MobileNetV3 writes it (the converter fuses it)."""
    L = _keras()[1]
    return L.Multiply()([x, L.Rescaling(1 / 6)(L.ReLU(6.0)(L.Rescaling(1.0, offset=3.0)(x)))])


def _squeeze_excite(x, squeeze):
    L = _keras()[1]
    s = L.GlobalAveragePooling2D(keepdims=True)(x)
    s = L.Conv2D(squeeze, 1, activation="relu")(s)
    s = L.Conv2D(x.shape[-1], 1, activation="sigmoid")(s)
    return L.Multiply()([x, s])


def mobilenet_v3_block():
    """MobileNet-v3-small-like: conv stride 2 with hard-swish, an inverted-residual block
    with squeeze-and-excite (global average pool, ReLU, sigmoid, multiply) and a residual
    add, a 1x1 conv with hard-swish, global average pool, dense softmax."""
    keras, L = _keras()
    inp = L.Input((64, 64, 3))
    x = _hard_swish(_conv_bn(inp, 16, 3, 2, act=None))
    x = _squeeze_excite(_dw_bn(x, 2), 8)                       # 16x16x16
    x = _conv_bn(x, 16, 1, act=None)
    y = _hard_swish(_conv_bn(x, 64, 1, act=None))              # expand
    y = _squeeze_excite(_hard_swish(_dw_bn(y, act=None)), 16)
    x = L.Add()([x, _conv_bn(y, 16, 1, act=None)])             # project + residual
    x = _hard_swish(_conv_bn(x, 96, 1, act=None))
    x = L.GlobalAveragePooling2D()(x)
    return keras.Model(inp, L.Dense(10, activation="softmax")(x), name="mobilenet_v3_block")


def float_io():
    """A small CNN kept with float32 input and output in its int8 .tflite."""
    keras, L = _keras()
    inp = L.Input((28, 28, 1))
    x = L.MaxPooling2D()(L.Conv2D(8, 3, activation="relu")(inp))
    x = L.MaxPooling2D()(L.Conv2D(16, 3, activation="relu")(x))
    return keras.Model(inp, L.Dense(10, activation="softmax")(L.Flatten()(x)), name="float_io")


ZOO = {s.name: s for s in [
    Spec("resnet8", (32, 32, 3), "classifier", 10, 0.0, 1.0, resnet8, 3, about="images in [0, 1]"),
    Spec("ds_cnn", (49, 10, 1), "classifier", 12, -30.0, 30.0, ds_cnn, 3, about="MFCC-like features"),
    Spec("mobilenet_v1_025_96_gray", (96, 96, 1), "classifier", 2, 0.0, 1.0,
         lambda: _mobilenet_v1_025_96(1), 3, about="grayscale images in [0, 1]"),
    Spec("mobilenet_v1_025_96_rgb", (96, 96, 3), "classifier", 2, 0.0, 1.0,
         lambda: _mobilenet_v1_025_96(3), 3, about="RGB images in [0, 1]"),
    Spec("autoencoder", (640,), "autoencoder", 640, -60.0, 0.0, autoencoder, 20, 64, 1e-2,
         about="5 frames x 128 log-mel energies in dB"),
    Spec("conv1d", (128, 3), "classifier", 6, -2.0, 2.0, conv1d, 3, about="accelerations in g"),
    Spec("mobilenet_v3_block", (64, 64, 3), "classifier", 10, 0.0, 1.0, mobilenet_v3_block, 3,
         about="images in [0, 1]"),
    Spec("float_io", (28, 28, 1), "classifier", 10, 0.0, 1.0, float_io, 8, io_type="float32",
         about="images in [0, 1]"),
]}
NAMES = tuple(ZOO)


# ---- synthetic data ----------------------------------------------------------------

PATTERNS_AUTOENCODER = 4  # the autoencoder's "normal machine" signals


def _spatial(shape: tuple) -> tuple:
    """The axes a wave runs along: all but the channels (a vector is all one axis)."""
    return shape if len(shape) == 1 else shape[:-1]


@lru_cache(maxsize=None)
def _waves(name: str) -> tuple:
    """Per class (per normal signal for the autoencoder): a plane wave over the input's
    axes but the channels (whole cycles per extent, distinct per class) and a gain per
    channel. A sample is its class's wave at a random phase plus noise, so a class is a
    local texture that convolutions and global pooling can find anywhere."""
    spec = ZOO[name]
    shape = spec.input_shape
    spatial = _spatial(shape)
    count = spec.classes if spec.kind == "classifier" else PATTERNS_AUTOENCODER
    ranges = [range(-(d // 8), d // 8 + 1) if a else range(d // 8 + 1) for a, d in enumerate(spatial)]
    combos = [c for c in np.array(np.meshgrid(*ranges, indexing="ij")).reshape(len(spatial), -1).T if c.any()]
    assert len(combos) >= count, f"{name}: {len(combos)} waves for {count} classes"
    rng = np.random.default_rng(spec.seed)
    freqs = np.array(combos)[rng.choice(len(combos), count, replace=False)]
    gains = rng.uniform(0.5, 1.0, (count, shape[-1] if len(shape) > 1 else 1))
    return freqs, gains


def _sample(name: str, n: int, seed: int) -> tuple:
    spec = ZOO[name]
    shape = spec.input_shape
    spatial = _spatial(shape)
    freqs, gains = _waves(name)
    rng = np.random.default_rng([spec.seed, seed])
    y = rng.integers(0, len(freqs), n)
    grid = np.meshgrid(*[np.arange(d) / d for d in spatial], indexing="ij")
    offset = rng.random(n).reshape((n,) + (1,) * len(spatial))  # a random phase per sample
    wave = np.sin(2 * np.pi * (np.tensordot(freqs[y], np.array(grid), axes=1) + offset))
    if len(shape) > 1:
        wave = wave[..., None] * gains[y].reshape((n,) + (1,) * len(spatial) + (-1,))
    unit = np.clip(0.5 + 0.35 * wave + rng.normal(0.0, 0.1, (n, *shape)), 0.0, 1.0)
    return (spec.low + (spec.high - spec.low) * unit).astype(np.float32), y


def inputs(name: str, n: int, seed: int = 0) -> np.ndarray:
    """n float32 inputs in the model's input range (seeded; seed 0 is the test set)."""
    return _sample(name, n, seed)[0]


def labels(name: str, n: int, seed: int = 0) -> np.ndarray:
    """The classes of inputs(name, n, seed); a classifier's only."""
    assert ZOO[name].kind == "classifier", f"{name} is an {ZOO[name].kind}: no labels"
    return _sample(name, n, seed)[1]


def representative(name: str) -> np.ndarray:
    return inputs(name, REP_SAMPLES, REP_SEED)


# ---- models ------------------------------------------------------------------------

@lru_cache(maxsize=None)
def keras_model(name: str):
    """The float model: seeded weights, trained briefly on the synthetic set so that
    calibration sees real activation ranges and the outputs depend on the input."""
    from esptiny.tf import keras, seed
    spec = ZOO[name]
    t0, c0 = time.perf_counter(), time.process_time()
    seed(spec.seed)
    keras.backend.reset_uids()  # layer names, and so the .tflite's bytes, not depend on what was built before
    model = spec.builder()
    if spec.epochs:
        x, y = _sample(name, TRAIN_SAMPLES, TRAIN_SEED)
        classifier = spec.kind == "classifier"
        model.compile(keras.optimizers.Adam(spec.learning_rate),
                      "sparse_categorical_crossentropy" if classifier else "mse")
        model.fit(x, y if classifier else x, batch_size=spec.batch, epochs=spec.epochs,
                  shuffle=True, verbose=0)
        _settle_batch_norm(model, x)
    SECONDS.setdefault(name, {}).update(build=round(time.perf_counter() - t0, 2),
                                        build_cpu=round(time.process_time() - c0, 2))
    return model


def _settle_batch_norm(model, x):
    """Moving statistics of every batch norm = those of the trained weights on x.

    A brief training leaves them far behind the weights (momentum 0.99, a few dozen
    steps), so the inference-mode model, the one converted, would be degenerate."""
    from esptiny.tf import keras
    bns = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    if not bns:
        return
    kept = [bn.momentum for bn in bns]
    for bn in bns:
        bn.momentum = 0.0
    model(x, training=True)  # eager: updates moving mean and variance to this batch's
    for bn, m in zip(bns, kept):
        bn.momentum = m


@lru_cache(maxsize=None)
def tflite(name: str) -> bytes:
    """The int8 .tflite (int8 or float32 at the edges, as the spec says), converted once
    per process."""
    from esptiny.stages.compress import ptq
    spec = ZOO[name]
    model = keras_model(name)
    t0, c0 = time.perf_counter(), time.process_time()
    blob = ptq.int8(model, representative(name), io_type=spec.io_type)
    SECONDS[name].update(convert=round(time.perf_counter() - t0, 2),
                         convert_cpu=round(time.process_time() - c0, 2))
    return blob


def quantized(name: str, x: np.ndarray) -> np.ndarray:
    """Float inputs as the .tflite takes them (int8 with its scale and zero point, or float32)."""
    from esptiny.model import tflite as litert
    d_in, _ = litert.io_details(tflite(name))
    return litert.to_input(x, d_in)
