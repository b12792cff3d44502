"""The op lowerings, one module per family: conv (CONV_2D, DEPTHWISE_CONV_2D,
FULLY_CONNECTED), pool, elementwise (ADD, MUL), activation (SOFTMAX, RELU, RELU6,
LEAKY_RELU, HARD_SWISH, LOGISTIC, TANH), quantize (QUANTIZE, DEQUANTIZE), shape
(RESHAPE, EXPAND_DIMS, SQUEEZE, PAD, PADV2, CONCATENATION, STRIDED_SLICE), reduce (MEAN).
Importing this package registers them all, in this order (registry.REGISTRY)."""
from . import conv, pool, shape, activation, elementwise, quantize, reduce  # noqa: F401,I001
