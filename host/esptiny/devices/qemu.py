"""The emulated ESP32-C3-class board: the firmware (devices/rv32_firmware.py) run under
QEMU's riscv32 `virt` machine, its UART on a local TCP socket.

With `-icount shift=0` the "cycles" in the INFER replies are retired instructions
(minstret), exact and identical from run to run. They are not ESP32-C3 cycles;
estimate_ms() (and the board's own clock, which reports the same figure as the replies'
microseconds) turns them into an ESP32-C3 time under a stated cycles-per-instruction
assumption, labelled as an estimate.
"""
from __future__ import annotations

import socket
import subprocess
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .. import toolchain
from ..errors import UserError
from ..link import client, protocol
from .rv32_firmware import CPU_MHZ, Firmware, build, build_selftest

CHIP = "qemu-rv32imc (ESP32-C3-class)"
QEMU = "qemu-system-riscv32"
# One instruction per cycle: no pipeline stalls, no flash-cache misses. The ESP32-C3
# can only be slower, so the estimate is a lower bound on its time. board.c's clock
# (micros = minstret / CPU MHz) makes the same assumption.
ASSUMED_CPI = 1.0
COUNTER = "instructions (minstret, QEMU -icount shift=0)"
ESTIMATE_NOTE = (f"estimate: ESP32-C3 time = instructions x {ASSUMED_CPI:g} cycle per instruction "
                 f"(assumed) / {CPU_MHZ} MHz, a lower bound (the chip stalls on memory and flash "
                 f"cache); the board's microseconds are this estimate")

# Exit statuses of QEMU set by the firmware (firmware/boards/qemu_rv32/qemu_rv32.h).
EXIT_DEVICE_RETURNED = 2
EXIT_TRAP_BASE = 64
TRAP_CAUSES = {0: "instruction address misaligned", 1: "instruction access fault",
               2: "illegal instruction", 3: "breakpoint", 4: "load address misaligned",
               5: "load access fault (outside flash and RAM?)", 6: "store address misaligned",
               7: "store access fault (a write outside the board's RAM, or a stack overflow)",
               11: "environment call"}


def require_qemu() -> str:
    return toolchain.which(QEMU, "the emulated board")


def selftest(build_dir, timeout: float = 60.0) -> tuple:
    """Build and run the board self-test (firmware/boards/qemu_rv32/selftest.c); returns
    (QEMU's exit status, what the UART printed). It ends with a store past the board's
    RAM, so a working board exits with EXIT_TRAP_BASE + 7 (store access fault)."""
    elf = build_selftest(build_dir)
    require_qemu()
    try:
        p = subprocess.run(command(elf, "stdio"), stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise UserError(f"the board self-test did not finish within {timeout:g} s") from None
    return p.returncode, p.stdout.decode(errors="replace")


# ---- run --------------------------------------------------------------------------

def command(elf, serial: str) -> list:
    """qemu-system-riscv32 running elf on the virt machine with exact instruction counts.

    -bios none: no OpenSBI; QEMU 7.2 then starts at 0x80000000 (the linker script puts
    _start there). -icount shift=0: one instruction is one virtual nanosecond, so minstret
    and the clock are exact and reproducible. -m: QEMU's RAM holds both regions; the
    RAM limit is the linker's and the PMP's (board.c), not QEMU's."""
    return [QEMU, "-machine", "virt", "-bios", "none", "-nographic", "-monitor", "none",
            "-icount", "shift=0", "-m", "128M", "-kernel", str(elf), "-serial", serial]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Emulator:
    """QEMU running one firmware ELF; its UART is a TCP server on 127.0.0.1.

    wait=on: QEMU starts the core only once the host has connected, so the READY frame
    the firmware sends at boot is not lost (with wait=off QEMU drops what the UART sends
    while nobody is connected). nodelay=on: without it each round trip waits tens of
    milliseconds for Nagle's algorithm."""

    def __init__(self, elf, log_path=None):
        self.elf = Path(elf)
        self.log_path = Path(log_path) if log_path else self.elf.with_name("qemu.log")
        self.proc = None
        self.port = None

    @property
    def url(self) -> str:
        return f"socket://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> str:
        """Start QEMU; returns the pyserial URL of the UART once QEMU listens."""
        require_qemu()
        for _ in range(3):  # another process may take the port between probe and bind
            self.port = _free_port()
            serial = f"tcp:127.0.0.1:{self.port},server=on,wait=on,nodelay=on"
            with open(self.log_path, "wb") as log:
                self.proc = subprocess.Popen(command(self.elf, serial), stdin=subprocess.DEVNULL,
                                             stdout=log, stderr=subprocess.STDOUT)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                text = self._log()
                if "waiting for connection" in text:
                    return self.url
                if self.proc.poll() is not None:
                    break
                time.sleep(0.02)
            if self.proc.poll() is None:
                self.stop()
                raise UserError(f"QEMU did not open its UART within {timeout:g} s (log: {self.log_path})")
            if "Address already in use" not in self._log():
                raise UserError(f"QEMU failed to start: {self._log().strip()[-300:]}")
        raise UserError(f"QEMU could not bind a local TCP port (log: {self.log_path})")

    def _log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def exit_reason(self, wait: float = 0.0):
        """Why QEMU stopped on its own (the firmware trapped, or returned), else None.
        wait: how long to give it (the host sees the socket close before QEMU has exited)."""
        if self.proc is None:
            return None
        try:
            self.proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            return None
        return describe_exit(self.proc.returncode)

    def stop(self) -> int | None:
        """Stop QEMU (if still running); returns its exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()


def describe_exit(status: int) -> str:
    if status == 0:
        return "QEMU stopped cleanly"
    if status == EXIT_DEVICE_RETURNED:
        return "the firmware stopped after a fatal link error"
    if status >= EXIT_TRAP_BASE and status < EXIT_TRAP_BASE + 64:
        cause = status - EXIT_TRAP_BASE
        return f"the firmware trapped: mcause {cause}, {TRAP_CAUSES.get(cause, 'exception')}"
    if status < 0:
        return f"QEMU was stopped by signal {-status}"
    return f"QEMU exited with status {status}"


# ---- for the bench ------------------------------------------------------------------

@contextmanager
def port(model_bytes: bytes, build_dir, protocol: str = "esptiny", profile: bool = False):
    """`--port qemu-rv32` (ports.SPECIAL): build the model's firmware (speaking
    `protocol`; profile: the profiling build) if needed, start QEMU, yield the UART's
    pyserial URL, stop QEMU after."""
    fw = build(model_bytes, build_dir, protocol=protocol, profile=profile)
    with serve(fw) as url:
        yield url


@contextmanager
def serve(fw: Firmware):
    """Start QEMU on a built firmware, yield its UART's pyserial URL; stop QEMU after."""
    emu = Emulator(fw.elf)
    emu.start()
    try:
        yield emu.url
    except Exception as e:
        # A board that trapped shows up as a time-out on the host: say what happened.
        reason = emu.exit_reason(wait=1.0)
        if reason:
            raise UserError(f"the emulated board stopped ({reason}; QEMU log {emu.log_path}): "
                            f"{e}") from e
        raise
    finally:
        emu.stop()


def run_images(fw: Firmware, x):
    """Run the inputs x (already in the model's input dtype) through a freshly started
    QEMU on fw over its UART, with the bench's client; returns (outputs as bytes per
    image, instruction counts per image), in order. Two calls on the same firmware show
    whether the counts are reproducible."""
    n = len(x)
    outputs, cycles = [None] * n, np.zeros(n, np.int64)
    pending = iter(range(n))

    def accept(i, r):
        if outputs[i] is not None:
            return False
        outputs[i], cycles[i] = r.output, r.cycles
        return True

    with serve(fw) as url:
        session = client.Session(url, "qemu-rv32", client.Settings(reset=False))
        try:
            info = session.connect()
            if info.model_crc32 != fw.model_crc32 or info.status != protocol.STATUS_READY:
                raise UserError(f"the emulated board runs another model or is not ready "
                                f"(CRC32 {info.model_crc32:08x}, status {info.status})")
            session.stream(lambda: next(pending, None), lambda i: x[i].tobytes(), accept,
                           lambda i: outputs[i] is not None, threading.Event())
        except client.LinkError as e:
            raise UserError(str(e)) from None
        finally:
            session.close()
    return outputs, cycles


def estimate_ms(instructions: float) -> float:
    """Estimated ESP32-C3 time in ms for this many instructions (see ESTIMATE_NOTE)."""
    return instructions * ASSUMED_CPI / (CPU_MHZ * 1000.0)
