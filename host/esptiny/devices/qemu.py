"""The emulated ESP32-C3-class board: the firmware cross-compiled for RV32IMC and run
under QEMU's riscv32 `virt` machine, its UART on a local TCP socket.

build() generates the model's C (esptiny.aot), cross-compiles the portable core, the AOT
engine, the model and the board layer (firmware/boards/qemu_rv32) with Debian's
gcc-riscv64-unknown-elf and picolibc, and checks flash and RAM from the ELF against the
ESP32-C3's 4 MB / 400 KB. Emulator runs the ELF with `-icount shift=0`: the "cycles" in
the INFER replies are then retired instructions (minstret), exact and identical from
run to run. They are not ESP32-C3 cycles; estimate_ms() (and the board's own clock,
which reports the same figure as the replies' microseconds) turns them into an ESP32-C3
time under a stated cycles-per-instruction assumption, labelled as an estimate.
"""
from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .. import atomic, paths
from ..crc import crc32
from ..errors import UserError
from ..link import protocol

BOARD_DIR = paths.FIRMWARE / "boards" / "qemu_rv32"
CHIP = "qemu-rv32imc (ESP32-C3-class)"
# The limits firmware/boards/qemu_rv32/qemu_rv32.ld enforces.
FLASH_LIMIT = 4 * 1024 * 1024  # a typical ESP32-C3 module: 4 MB flash
RAM_LIMIT = 400 * 1024         # ESP32-C3: 400 KB SRAM
# The deepest call chain (device loop -> serve -> conv kernel) takes under 1 KB
# (gcc -fstack-usage); 8 KB leaves room for bigger models and is what RAM counts.
STACK_BYTES = 8 * 1024
CPU_MHZ = 160
# One instruction per cycle: no pipeline stalls, no flash-cache misses. The ESP32-C3
# can only be slower, so the estimate is a lower bound on its time. board.c's clock
# (micros = minstret / 160) makes the same assumption.
ASSUMED_CPI = 1.0
COUNTER = "instructions (minstret, QEMU -icount shift=0)"
ESTIMATE_NOTE = (f"estimate: ESP32-C3 time = instructions x {ASSUMED_CPI:g} cycle per instruction "
                 f"(assumed) / {CPU_MHZ} MHz, a lower bound (the chip stalls on memory and flash "
                 f"cache); the board's microseconds are this estimate")

CC = "riscv64-unknown-elf-gcc"
QEMU = "qemu-system-riscv32"
# Tool -> the Debian package that provides it.
DEBIAN_PACKAGES = {CC: "gcc-riscv64-unknown-elf", "picolibc.specs": "picolibc-riscv64-unknown-elf",
                   QEMU: "qemu-system-misc"}

# Exit statuses of QEMU set by the firmware (firmware/boards/qemu_rv32/qemu_rv32.h).
EXIT_DEVICE_RETURNED = 2
EXIT_TRAP_BASE = 64
TRAP_CAUSES = {0: "instruction address misaligned", 1: "instruction access fault",
               2: "illegal instruction", 3: "breakpoint", 4: "load address misaligned",
               5: "load access fault (outside flash and RAM?)", 6: "store address misaligned",
               7: "store access fault (a write outside the 400 KB RAM, or a stack overflow)",
               11: "environment call"}

_OVERFLOW_RE = re.compile(r"region `(FLASH|RAM)' overflowed by (\d+) bytes")


# ---- tools ------------------------------------------------------------------------

def missing_packages() -> list:
    """The Debian packages the emulated board needs and this machine lacks."""
    missing = []
    if shutil.which(CC) is None:
        missing.append(DEBIAN_PACKAGES[CC])
    else:  # gcc prints the bare name back when it finds no such file
        found = subprocess.run([CC, "-print-file-name=picolibc.specs"], capture_output=True,
                               text=True).stdout.strip()
        if not os.path.isabs(found):
            missing.append(DEBIAN_PACKAGES["picolibc.specs"])
    if shutil.which(QEMU) is None:
        missing.append(DEBIAN_PACKAGES[QEMU])
    return missing


def require_tools():
    missing = missing_packages()
    if missing:
        names = " ".join(missing)
        raise UserError(f"the emulated board needs the Debian packages {names}: "
                        f"`sudo apt-get install {names}` (or `make debs` as root)")


# ---- build ------------------------------------------------------------------------

@dataclass(frozen=True)
class Firmware:
    elf: Path
    sizes: dict          # from elf_sizes()
    model_crc32: int


def build(model_bytes: bytes, build_dir, stack_bytes: int = STACK_BYTES) -> Firmware:
    """Cross-compile the firmware for this model into build_dir (incrementally) and check
    it fits the board. Raises UserError naming the numbers when it does not."""
    require_tools()
    build_dir = Path(build_dir).resolve()
    model_dir = build_dir / "model"
    crc = crc32(model_bytes)
    _generate_model(model_bytes, model_dir)
    result = _make(build_dir, "all", model_dir, stack_bytes)
    log = build_dir / "build.log"
    atomic.write_text(log, result.stdout + result.stderr)
    if result.returncode != 0:
        _build_failed(result.stdout + result.stderr, build_dir, model_dir, stack_bytes, log)
    elf = build_dir / "firmware.elf"
    sizes = elf_sizes(elf)
    check_limits(sizes)
    return Firmware(elf, sizes, crc)


def _generate_model(model_bytes: bytes, model_dir: Path):
    """The model as C (esptiny.aot). Generated every time, since the AOT compiler may have
    changed as well as the model, but a file is replaced only when its text changed, so
    that make rebuilds nothing when nothing changed."""
    import tempfile

    from .. import aot
    model_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=model_dir.parent, prefix=".model-") as tmp:
        aot.generate(model_bytes, Path(tmp))
        fresh = {f.name: f.read_text() for f in Path(tmp).iterdir() if f.is_file()}
    for old in model_dir.iterdir():
        if old.name not in fresh:
            old.unlink()
    for name, text in fresh.items():
        target = model_dir / name
        if not target.exists() or target.read_text() != text:
            atomic.write_text(target, text)


def _make(build_dir: Path, target: str = "all", model_dir=None, stack_bytes: int = STACK_BYTES):
    cmd = ["make", "--no-print-directory", f"-j{os.cpu_count() or 1}", "-C", str(BOARD_DIR), target,
           f"BUILD={build_dir}", f"STACK_BYTES={stack_bytes}"]
    if model_dir is not None:
        cmd.append(f"MODEL_DIR={model_dir}")
    return subprocess.run(cmd, capture_output=True, text=True)


def _build_failed(output: str, build_dir: Path, model_dir: Path, stack_bytes: int, log: Path):
    if _OVERFLOW_RE.search(output):
        # Link again with the limits lifted, only to measure what the firmware needs.
        r = _make(build_dir, "unlimited", model_dir, stack_bytes)
        if r.returncode == 0:
            check_limits(elf_sizes(build_dir / "firmware-unlimited.elf"))
        over = ", ".join(f"{region} by {int(n):,} bytes" for region, n in _OVERFLOW_RE.findall(output))
        raise UserError(f"the firmware does not fit the ESP32-C3-class board: it overflows {over} "
                        f"(limits: flash {FLASH_LIMIT:,}, RAM {RAM_LIMIT:,} bytes)")
    lines = output.strip().splitlines()
    # The compiler's or linker's own complaint, not make's or collect2's summary of it.
    errors = [ln for ln in lines if ": error:" in ln or "undefined reference" in ln
              or "multiple definition" in ln] or [ln for ln in lines if "error" in ln.lower()]
    first = (errors or lines[-1:] or ["no output"])[0].strip()
    raise UserError(f"cross-compiling the firmware for the emulated board failed: {first[:200]} "
                    f"(full log: {log})")


def selftest(build_dir, timeout: float = 60.0) -> tuple:
    """Build and run the board self-test (firmware/boards/qemu_rv32/selftest.c); returns
    (QEMU's exit status, what the UART printed). It ends with a store past the 400 KB of
    RAM, so a working board exits with EXIT_TRAP_BASE + 7 (store access fault)."""
    require_tools()
    build_dir = Path(build_dir).resolve()
    r = _make(build_dir, "selftest")
    log = build_dir / "selftest.log"
    atomic.write_text(log, r.stdout + r.stderr)
    if r.returncode != 0:
        _build_failed(r.stdout + r.stderr, build_dir, None, STACK_BYTES, log)
    try:
        p = subprocess.run(command(build_dir / "selftest.elf", "stdio"), stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise UserError(f"the board self-test did not finish within {timeout:g} s") from None
    return p.returncode, p.stdout.decode(errors="replace")


# ---- sizes ------------------------------------------------------------------------

def elf_sizes(elf) -> dict:
    """Flash and RAM the firmware takes, from its ELF.

    flash_bytes: code, constants and the initial values of .data (copied to RAM at boot),
    up to the linker script's __espt_flash_end; ram_bytes: stack, .data, thread-local
    data and .bss (the tensor arena is there), up to __espt_ram_end. Both include the
    alignment padding; the *_bytes breakdown sums the sections themselves."""
    from elftools.elf.constants import SH_FLAGS
    from elftools.elf.elffile import ELFFile
    parts = {"text": 0, "rodata": 0, "data": 0, "bss": 0, "stack": 0}
    kind = {"text": "text", "rodata": "rodata", "srodata": "rodata", "data": "data",
            "sdata": "data", "tdata": "data", "tbss_space": "bss", "bss": "bss",
            "sbss": "bss", "stack": "stack"}
    with open(elf, "rb") as f:
        e = ELFFile(f)
        symtab = e.get_section_by_name(".symtab")
        sym = {name: _symbol(symtab, name) for name in (
            "__espt_flash_origin", "__espt_flash_end", "__espt_ram_origin", "__espt_ram_end")}
        if None in sym.values():
            raise UserError(f"{elf}: not an esptiny qemu_rv32 firmware (linker symbols missing)")
        for s in e.iter_sections():
            flags = s["sh_flags"]
            # .tbss takes no address space of its own: .tbss_space holds its bytes.
            if not flags & SH_FLAGS.SHF_ALLOC or (flags & SH_FLAGS.SHF_TLS and s["sh_type"] == "SHT_NOBITS"):
                continue
            key = kind.get(s.name.lstrip(".").split(".")[0])
            if key:
                parts[key] += s["sh_size"]
        ram_lo, ram_hi = sym["__espt_ram_origin"], sym["__espt_ram_end"]
        largest = _largest_symbol(symtab, ram_lo, ram_hi)
    return {"flash_bytes": sym["__espt_flash_end"] - sym["__espt_flash_origin"],
            "ram_bytes": ram_hi - ram_lo, "flash_limit": FLASH_LIMIT, "ram_limit": RAM_LIMIT,
            **{f"{k}_bytes": v for k, v in parts.items()}, "largest_ram_symbol": largest}


def _symbol(symtab, name: str):
    found = symtab.get_symbol_by_name(name) if symtab else None
    return found[0]["st_value"] if found else None


def _largest_symbol(symtab, lo: int, hi: int):
    best = None
    for s in symtab.iter_symbols():
        if s["st_info"]["type"] == "STT_OBJECT" and lo <= s["st_value"] < hi:
            if best is None or s["st_size"] > best[1]:
                best = (s.name, s["st_size"])
    return {"name": best[0], "bytes": best[1]} if best else None


def check_limits(sizes: dict):
    """A one-line UserError naming the numbers when the firmware exceeds the board."""
    problems = []
    if sizes["flash_bytes"] > FLASH_LIMIT:
        problems.append(
            f"flash needs {sizes['flash_bytes']:,} bytes (code {sizes['text_bytes']:,}, constants "
            f"{sizes['rodata_bytes']:,}, initial data {sizes['data_bytes']:,}), the limit is "
            f"{FLASH_LIMIT:,} (4 MB)")
    if sizes["ram_bytes"] > RAM_LIMIT:
        big = sizes.get("largest_ram_symbol")
        largest = f"; largest: {big['name']} {big['bytes']:,}" if big else ""
        problems.append(
            f"RAM needs {sizes['ram_bytes']:,} bytes (stack {sizes['stack_bytes']:,}, data "
            f"{sizes['data_bytes']:,}, bss {sizes['bss_bytes']:,}{largest}), the limit is "
            f"{RAM_LIMIT:,} (400 KB)")
    if problems:
        raise UserError("the firmware does not fit the ESP32-C3-class board: " + "; ".join(problems))


# ---- run --------------------------------------------------------------------------

def command(elf, serial: str) -> list:
    """qemu-system-riscv32 running elf on the virt machine with exact instruction counts.

    -bios none: no OpenSBI; QEMU 7.2 then starts at 0x80000000 (the linker script puts
    _start there). -icount shift=0: one instruction is one virtual nanosecond, so minstret
    and the clock are exact and reproducible. -m: QEMU's RAM holds both regions; the
    400 KB limit is the linker's and the PMP's (board.c), not QEMU's."""
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
        require_tools()
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

def build_dir_for(run, variant: str) -> Path:
    return Path(run.path) / "build" / "qemu_rv32" / variant


@contextmanager
def port(run, variant: str, options=None):
    """`--port qemu-rv32` (ports.SPECIAL): build the variant's firmware if needed, start
    QEMU, yield the UART's pyserial URL, stop QEMU after. Options: none yet (the link has
    no baud rate)."""
    fw = build(run.variant_path(variant).read_bytes(), build_dir_for(run, variant))
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
    import threading

    import numpy as np

    from ..link import client
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


def metadata(fw: Firmware | None = None) -> dict:
    """What a report says about this board's figures: the counter is instructions, and
    the time is an estimate with its assumption."""
    meta = {"board": "qemu-rv32", "chip": CHIP, "counter": COUNTER, "cpu_mhz": CPU_MHZ,
            "assumed_cpi": ASSUMED_CPI, "time_is": "estimate", "estimate_note": ESTIMATE_NOTE,
            "flash_limit": FLASH_LIMIT, "ram_limit": RAM_LIMIT}
    if fw is not None:
        meta.update(flash_bytes=fw.sizes["flash_bytes"], ram_bytes=fw.sizes["ram_bytes"])
    return meta


def estimate_ms(instructions: float) -> float:
    """Estimated ESP32-C3 time in ms for this many instructions (see ESTIMATE_NOTE)."""
    return instructions * ASSUMED_CPI / (CPU_MHZ * 1000.0)
