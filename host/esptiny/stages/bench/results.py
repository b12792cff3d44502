"""Per-image bench results, shared by the streams of several boards, and the partial result
a run that cannot finish keeps (so that `--resume` continues it)."""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from ...errors import UserError
from ...link import protocol as P


class Results:
    """Per-image outputs, timings and the board that answered; thread-safe to add to."""

    def __init__(self, n: int, out_shape: tuple, out_dtype):
        self.outputs = np.zeros((n, *out_shape), dtype=out_dtype)
        self.cycles = np.zeros(n, np.int64)
        self.micros = np.zeros(n, np.int64)
        self.board = np.full(n, -1, np.int32)
        self.boards: list = []  # board labels, indexed by self.board
        self.lock = threading.Lock()

    @property
    def done(self) -> np.ndarray:
        return self.board >= 0

    def board_index(self, label: str) -> int:
        with self.lock:
            if label not in self.boards:
                self.boards.append(label)
            return self.boards.index(label)

    def add(self, i: int, b: int, r: P.InferResult) -> bool:
        with self.lock:
            if self.board[i] >= 0:
                return False
            self.outputs[i] = np.frombuffer(r.output, self.outputs.dtype).reshape(self.outputs.shape[1:])
            self.cycles[i], self.micros[i], self.board[i] = r.cycles, r.micros, b
            return True

    def to_json(self, variant: str, crc: int) -> dict:
        with self.lock:  # copy under the lock, serialise outside: the streams keep going
            board, cycles, micros = self.board.copy(), self.cycles.copy(), self.micros.copy()
            outputs, boards = self.outputs.copy(), list(self.boards)
        idx = np.flatnonzero(board >= 0)
        return {"format": 1, "variant": variant, "model_crc32": f"{crc:08x}",
                "images": len(board), "boards": boards,
                "done": [[int(i), int(board[i]), int(cycles[i]), int(micros[i]),
                          outputs[i].reshape(-1).tolist()] for i in idx]}

    def load_json(self, d: dict, variant: str, crc: int, path):
        if d.get("format") != 1 or d.get("model_crc32") != f"{crc:08x}" or d.get("variant") != variant:
            raise UserError(f"{path} is a partial result for another model; run without --resume")
        if d.get("images") != len(self.board):
            raise UserError(f"{path} covers {d.get('images')} images, this bench {len(self.board)}; "
                            f"use the same -n or run without --resume")
        self.boards = list(d["boards"])
        shape = self.outputs.shape[1:]
        for i, b, cyc, us, out in d["done"]:
            self.outputs[i] = np.asarray(out, self.outputs.dtype).reshape(shape)
            self.cycles[i], self.micros[i], self.board[i] = cyc, us, b


def partial_path(run, variant: str) -> Path:
    return run.file(f"bench/{variant}.partial.json")
