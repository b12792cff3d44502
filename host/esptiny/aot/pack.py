"""Weight layouts made at compile time: blocked int8 rows for the conv and fully connected
kernels, and clustered weights as packed k-bit indices into a per-output-channel codebook.

Blocked: the kernels compute 8 output channels per pass over the input (each input byte
loaded once for 8 multiply-accumulates, espt_dot8_s8 in espt_aot_math.h), so each block
of 8 channels is stored in the order that loop reads it.

Packed:
A clustered model quantized per channel has at most `clusters` distinct int8 values in
each output channel; storing an index of k = ceil(log2(values)) bits per weight plus a
small codebook per channel halves the weight flash of a 16-cluster model, and decoding
gives back the very same int8 weights (the C side is espt_aot_unpack_row).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MODES = ("auto", "never")
BLOCK = 8    # ESPT_AOT_BLOCK: output channels per pass
CHUNK = 16   # ESPT_AOT_CHUNK: taps per unrolled chunk


def blocked(rows: np.ndarray, run: int | None = None) -> np.ndarray:
    """rows: [channels, n] -> the same weights, flat, in the kernels' order. n is made of
    runs of `run` taps (a conv: one filter row, k_w * in_c; a fully connected layer: all n),
    which the kernels read from contiguous input. Per block of BLOCK channels, per run: per
    CHUNK taps the BLOCK channels' CHUNK weights one after the other, then the run's
    run % CHUNK taps left tap by tap (BLOCK weights each). The channels after the last full
    block stay rows. Every block takes BLOCK * n bytes, so channel c of a tail row starts
    at c * n as before."""
    channels, n = rows.shape
    run = run or n
    assert n % run == 0, (n, run)
    blocks, whole = channels // BLOCK, run // CHUNK * CHUNK
    b = rows[:blocks * BLOCK].reshape(blocks, BLOCK, n // run, run)
    parts = []
    for r in range(n // run):
        seg = b[:, :, r, :]
        head = seg[:, :, :whole].reshape(blocks, BLOCK, whole // CHUNK, CHUNK).transpose(0, 2, 1, 3)
        parts += [head.reshape(blocks, BLOCK * whole), seg[:, :, whole:].transpose(0, 2, 1).reshape(blocks, BLOCK * (run - whole))]
    body = np.concatenate(parts, axis=1) if blocks else np.zeros((0, 0), rows.dtype)
    return np.concatenate([body.reshape(-1), rows[blocks * BLOCK:].reshape(-1)])


def unblocked(flat: np.ndarray, channels: int, n: int, run: int | None = None) -> np.ndarray:
    """The inverse of blocked(): [channels, n]."""
    order = blocked(np.arange(channels * n).reshape(channels, n), run)
    rows = np.empty(channels * n, flat.dtype)
    rows[order] = flat
    return rows.reshape(channels, n)


@dataclass(frozen=True)
class Packed:
    bits: int
    codebook: np.ndarray   # int8 [channels, codebook_len]
    indices: np.ndarray    # uint8 [channels, row_bytes]

    @property
    def row_bytes(self) -> int:
        return int(self.indices.shape[1])

    @property
    def nbytes(self) -> int:
        return int(self.codebook.size + self.indices.size)


def pack(rows: np.ndarray) -> Packed | None:
    """rows: int8 [channels, weights per channel]. None when packing would not save flash."""
    channels, n = rows.shape
    uniques = [np.unique(r) for r in rows]
    codebook_len = max(len(u) for u in uniques)
    bits = max(1, math.ceil(math.log2(codebook_len)))
    if bits >= 8:
        return None
    row_bytes = (n * bits + 7) // 8
    if channels * (row_bytes + codebook_len) >= rows.size:
        return None
    codebook = np.zeros((channels, codebook_len), np.int8)
    indices = np.zeros((channels, row_bytes), np.uint8)
    shifts = np.arange(bits, dtype=np.uint16)
    for c, (r, u) in enumerate(zip(rows, uniques)):
        codebook[c, :len(u)] = u
        idx = np.searchsorted(u, r).astype(np.uint16)
        # least significant bit first, value after value: the order the C decoder reads
        stream = ((idx[:, None] >> shifts) & 1).astype(np.uint8).reshape(-1)
        indices[c] = np.packbits(stream, bitorder="little")[:row_bytes] if stream.size else 0
    return Packed(bits, codebook, indices)


def unpack(p: Packed, n: int) -> np.ndarray:
    """The inverse, for checking: int8 [channels, n]."""
    stream = np.unpackbits(p.indices, axis=1, bitorder="little")[:, :n * p.bits]
    stream = stream.reshape(p.indices.shape[0], n, p.bits).astype(np.uint16)
    idx = (stream << np.arange(p.bits, dtype=np.uint16)).sum(axis=2)
    return np.take_along_axis(p.codebook, idx.astype(np.int64), axis=1)
