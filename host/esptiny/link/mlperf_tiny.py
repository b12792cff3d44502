"""The MLPerf Tiny benchmark's serial protocol, host side: what its official runner
(mlcommons/tiny benchmark/runner) sends and reads, over pyserial. Commands end in '%';
the device answers with lines ending in CRLF and `m-ready` after every command; errors
are `e-[...]` lines. Input goes in with `db load N`, then `db HEX` commands of 31 bytes
each, as the runner sends them. docs/mlperf-tiny.md describes the exchange.

The limits are the firmware's (firmware/core/mlperf_tiny.h), read from that header."""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from functools import lru_cache

from ..paths import FIRMWARE

HEADER = FIRMWARE / "core" / "mlperf_tiny.h"
PROTOCOL = "mlperf-tiny"
PROTOCOLS = ("esptiny", PROTOCOL)
TERMINATOR = "%"
READY = "m-ready"
CHUNK_BYTES = 31   # bytes a `db` command carries (the runner's DUT._max_bytes)
TASKS = {"ic01": "image classification", "kws01": "keyword spotting",
         "vww01": "visual wake words", "ad01": "anomaly detection"}

_RESULTS = re.compile(r"^m-results-\[([^]]*)\]$")
_LAP = re.compile(r"^m-lap-us-(\d+)$")
_CYCLES = re.compile(r"^m-infer-cycles-(\d+)$")


@lru_cache(maxsize=None)
def limits() -> dict:
    """CMD_SIZE, DB_BYTES, OUT_BYTES, RX_CHUNK, TX_BYTES, MAX_COUNT from firmware/core/mlperf_tiny.h."""
    text = HEADER.read_text()
    out = {}
    for name in ("CMD_SIZE", "DB_BYTES", "OUT_BYTES", "RX_CHUNK", "TX_BYTES", "MAX_COUNT"):
        m = re.search(rf"#define ESPT_MLPERF_{name} \(?([0-9u* ]+)\)?\n", text)
        assert m, f"{HEADER}: ESPT_MLPERF_{name} not found"
        value = 1
        for factor in m.group(1).replace("u", "").split("*"):
            value *= int(factor)
        out[name] = value
    return out


def static_bytes() -> int:
    """RAM the MLPerf Tiny firmware holds in static buffers beside the tensor arena
    (firmware/core/mlperf_tiny.c: cmd, db, staged (a quarter of db: float32 in, 8-bit
    input), out, rx, tx); the fit check takes it from the arena's budget."""
    lim = limits()
    return (lim["CMD_SIZE"] + 1 + lim["DB_BYTES"] + lim["DB_BYTES"] // 4 + lim["OUT_BYTES"]
            + lim["RX_CHUNK"] + lim["TX_BYTES"])


class DeviceError(Exception):
    """The device answered a command with e-[...], or the link failed; one line."""


@dataclass
class Infer:
    """What `infer N W` printed."""
    iterations: int
    warmups: int
    start_us: int
    end_us: int
    cycles: int | None     # esptiny's m-infer-cycles line (None from another firmware)
    results: list          # floats of m-results-[...]
    lines: list

    @property
    def elapsed_us(self) -> int:
        return self.end_us - self.start_us


@dataclass
class Counts:
    commands: int = 0
    lines: int = 0
    bytes_sent: int = 0
    errors: list = field(default_factory=list)


class Dut:
    """The device under test on a serial port (a path or a pyserial URL)."""

    def __init__(self, url: str, baud: int = 115200, timeout: float = 5.0, reset: bool = False):
        import serial
        self.url = url
        self.timeout = timeout
        try:
            self.port = serial.serial_for_url(url, baudrate=baud, timeout=0.05,
                                              do_not_open=True)
            if reset:  # a dev board: EN low through RTS, IO0 high through DTR, as esptool does
                self.port.dtr = False
                self.port.rts = True
            self.port.open()
            if reset:
                time.sleep(0.1)
                self.port.rts = False
        except (serial.SerialException, OSError, ValueError) as e:
            raise DeviceError(f"cannot open {url}: {e}") from None
        self._buf = b""
        self.counts = Counts()
        self.boot_lines = []

    def close(self):
        self.port.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- lines ----------------------------------------------------------------

    def _read_line(self, deadline: float) -> str | None:
        import serial
        while b"\n" not in self._buf:
            if time.monotonic() > deadline:
                return None
            try:
                # One byte (waiting at most the port's 50 ms), then whatever else is there:
                # a read of a fixed size would wait out the time-out on every line.
                chunk = self.port.read(1)
                if chunk and self.port.in_waiting:
                    chunk += self.port.read(self.port.in_waiting)
            except (serial.SerialException, OSError) as e:
                raise DeviceError(f"{self.url}: the link failed: {e}") from None
            self._buf += chunk
        raw, self._buf = self._buf.split(b"\n", 1)
        self.counts.lines += 1
        # The runner drops CR and NUL; a byte that is not ASCII is a line it cannot parse.
        return raw.replace(b"\r", b"").replace(b"\0", b"").decode("ascii", errors="replace")

    def wait_boot(self, timeout: float) -> list:
        """The boot lines up to the first m-ready (a board that booted before the port
        was opened sends none: then a `name` command syncs)."""
        deadline = time.monotonic() + timeout
        lines = []
        while True:
            line = self._read_line(deadline)
            if line is None:
                break
            lines.append(line)
            if line == READY:
                break
        self.boot_lines = lines
        return lines

    def command(self, text: str, timeout: float | None = None) -> list:
        """Send one command; return its lines up to (not including) m-ready. An e-[...]
        line raises DeviceError once m-ready came."""
        if len(text) > limits()["CMD_SIZE"]:
            raise DeviceError(f"command longer than {limits()['CMD_SIZE']} characters: {text[:40]}...")
        data = (text + TERMINATOR).encode("ascii")
        import serial
        try:
            self.port.write(data)
        except (serial.SerialException, OSError) as e:
            raise DeviceError(f"{self.url}: the link failed: {e}") from None
        self.counts.commands += 1
        self.counts.bytes_sent += len(data)
        deadline = time.monotonic() + (timeout or self.timeout)
        lines = []
        while True:
            line = self._read_line(deadline)
            if line is None:
                raise DeviceError(f"no m-ready from {self.url} within {timeout or self.timeout:g} s "
                                  f"after '{text[:40]}' (got {len(lines)} lines)")
            if line == READY:
                break
            lines.append(line)
        errors = [ln for ln in lines if ln.startswith("e-")]
        if errors:
            self.counts.errors.append(errors[0])
            raise DeviceError(f"'{text[:40]}': {errors[0]}")
        return lines

    # ---- the benchmark's commands ----------------------------------------------

    def name(self) -> str:
        for line in self.command("name"):
            m = re.match(r"^m-name-dut-\[([^]]+)\]$", line)
            if m:
                return m.group(1)
        raise DeviceError(f"{self.url}: no m-name-dut-[...] line: is it an MLPerf Tiny firmware?")

    def profile(self) -> dict:
        out = {}
        for line in self.command("profile"):
            m = re.match(r"^m-(model|profile)-\[([^]]+)\]$", line)
            if m:
                out[m.group(1)] = m.group(2)
        if "model" not in out:
            raise DeviceError(f"{self.url}: no m-model-[...] line in the profile")
        return out

    def load(self, data: bytes):
        """`db load N`, then `db HEX` of 31 bytes each; the last must say m-load-done."""
        lines = self.command(f"db load {len(data)}")
        if f"m-[Expecting {len(data)} bytes]" not in lines:
            raise DeviceError(f"{self.url}: db load {len(data)} answered {lines}")
        last = []
        for i in range(0, len(data), CHUNK_BYTES):
            last = self.command("db " + data[i:i + CHUNK_BYTES].hex())
        if "m-load-done" not in last:
            raise DeviceError(f"{self.url}: {len(data)} bytes sent, no m-load-done")

    def infer(self, n: int, warmups: int, timeout: float | None = None) -> Infer:
        lines = self.command(f"infer {n} {warmups}", timeout=timeout)
        laps = [int(m.group(1)) for m in map(_LAP.match, lines) if m]
        cycles = [int(m.group(1)) for m in map(_CYCLES.match, lines) if m]
        results = [m.group(1) for m in map(_RESULTS.match, lines) if m]
        if len(laps) != 2 or len(results) != 1 or f"m-infer-start-{n}" not in lines \
                or "m-infer-done" not in lines:
            raise DeviceError(f"{self.url}: 'infer {n} {warmups}' printed {len(lines)} lines "
                              f"without two m-lap-us, m-infer-done and one m-results")
        try:
            values = [float(x) for x in results[0].split(",") if x.strip()]
        except ValueError:
            raise DeviceError(f"{self.url}: unreadable m-results-[{results[0][:60]}]") from None
        return Infer(n, warmups, laps[0], laps[1], cycles[0] if cycles else None, values, lines)
