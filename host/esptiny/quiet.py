"""Capturing what C and C++ libraries print on file descriptor 2.

TensorFlow, its converter and TFLite-Micro print from native code, past sys.stderr,
so redirecting the descriptor is the only way to keep or read what they say.
"""
import ctypes
import os
import sys
import tempfile
from contextlib import contextmanager


class Captured:
    text = ""


@contextmanager
def captured_stderr(replay_on_error: bool = True):
    """Yield a Captured whose .text holds fd 2's output once the block ends.
    If the block raises, the output is replayed to the terminal first."""
    libc = ctypes.CDLL(None)
    cap = Captured()
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        ok = False
        try:
            yield cap
            ok = True
        finally:
            libc.fflush(None)  # C stdio may still buffer text meant for fd 2
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            cap.text = tmp.read().decode(errors="replace")
            if not ok and replay_on_error:
                sys.stderr.write(cap.text)
