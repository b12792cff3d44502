"""An ESP32 latency estimate from a model's multiply-accumulates (MACs).

Calibration: Espressif's published TFLite-Micro person-detection invoke() times, with and
without ESP-NN (espressif/esp-tflite-micro, README.md, "Performance Comparison"; internal
memory). The person-detection model is MobileNet v1 with width 0.25 on a 96x96x1 input
(tensorflow/tflite-micro, examples/person_detection/training_a_model.md:
`--model_name=mobilenet_v1_025 --train_image_size=96 --input_grayscale=True`); its MACs are
counted below layer by layer (7.16 M). Dividing cycles by MACs gives cycles per MAC for
each chip and kernel set, which the estimate applies to another model's MAC count.

It is an estimate, and labelled so wherever it is shown: person detection is mostly
depthwise and 1x1 convolutions, a different mix from a small CNN or an MLP, and fixed
per-op costs are folded into the per-MAC figure.
"""
from __future__ import annotations

import re

from .boards import BOARDS, Board

MACS_SOURCE = ("MobileNet v1 0.25 on 96x96x1 (tensorflow/tflite-micro person_detection/"
               "training_a_model.md), MACs counted layer by layer")


def mobilenet_v1_macs(size: int = 96, channels_in: int = 1, alpha: float = 0.25,
                      classes: int = 2) -> int:
    """MACs of MobileNet v1 (Howard et al. 2017, table 1) at a width multiplier."""
    def width(c):
        return int(c * alpha)
    side = (size + 1) // 2  # first conv 3x3, stride 2, 'same'
    cin = width(32)
    macs = side * side * cin * 9 * channels_in
    blocks = [(1, 64), (2, 128), (1, 128), (2, 256), (1, 256), (2, 512)] + [(1, 512)] * 5 \
        + [(2, 1024), (1, 1024)]
    for stride, cout in blocks:
        side = (side + stride - 1) // stride
        cout = width(cout)
        macs += side * side * cin * 9  # depthwise 3x3
        macs += side * side * cin * cout  # pointwise 1x1
        cin = cout
    return macs + cin * classes  # average pool, then the fully connected layer


PERSON_DETECTION_MACS = mobilenet_v1_macs()  # 7,157,888


def cycles_per_mac(board: Board, esp_nn: bool) -> float:
    """CPU cycles per MAC of person detection on this board, with or without ESP-NN."""
    ms = board.person_detection_esp_nn_ms if esp_nn else board.person_detection_reference_ms
    return ms * 1e3 * board.cpu_mhz / PERSON_DETECTION_MACS


def board_for(chip: str) -> Board | None:
    """'virtual-esp32s3', 'ESP32-S3', 'esp32s3' -> that board's profile; None for another chip."""
    key = re.sub(r"[^a-z0-9]", "", chip.lower().removeprefix("virtual-"))
    return BOARDS.get(key)


def model_macs(model_bytes: bytes) -> int:
    from ..model.reader import Graph
    return Graph(model_bytes).macs()


def estimate(macs: int, chip: str) -> dict | None:
    """Estimated invoke() latency on `chip` for a model of `macs` MACs; None for an unknown chip."""
    board = board_for(chip)
    if board is None:
        return None
    out = {"label": "estimate (MAC-count cost model, calibrated on one model's published timings)",
           "chip": board.chip_name, "cpu_mhz": board.cpu_mhz, "macs": int(macs)}
    for kernels, esp_nn in (("esp_nn", True), ("reference", False)):
        cpm = cycles_per_mac(board, esp_nn)
        out[f"{kernels}_cycles_per_mac"] = round(cpm, 2)
        out[f"{kernels}_latency_ms"] = round(macs * cpm / (board.cpu_mhz * 1e3), 3)
    out["calibration"] = (f"{board.chip_name}: person detection {board.person_detection_esp_nn_ms:g} ms "
                          f"with ESP-NN, {board.person_detection_reference_ms:g} ms without, at "
                          f"{board.cpu_mhz} MHz; {PERSON_DETECTION_MACS:,} MACs")
    out["sources"] = [board.sources["person_detection_esp_nn_ms"], MACS_SOURCE]
    return out
