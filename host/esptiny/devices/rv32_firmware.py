"""The firmware for the emulated ESP32-C3-class board: the portable core, the AOT engine, the
model compiled to C and the board layer (firmware/boards/qemu_rv32), cross-compiled for
RV32IMC with Debian's gcc-riscv64-unknown-elf and picolibc, and checked against the
ESP32-C3's flash and RAM (esptiny's esp32c3 board profile, the one place those figures
live) from the ELF. devices/qemu.py runs it.
"""
from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .. import aot, atomic, paths, toolchain
from ..crc import crc32
from ..errors import UserError
from ..targets import fit
from ..targets.boards import BOARDS

BOARD_DIR = paths.FIRMWARE / "boards" / "qemu_rv32"
BOARD = BOARDS["esp32c3"]  # the chip the emulated core stands for
FLASH_LIMIT = BOARD.app_partition_bytes  # what an app may take on the real board
RAM_LIMIT = BOARD.sram_bytes
CPU_MHZ = BOARD.cpu_mhz
# The deepest call chain (device loop -> serve -> conv kernel) takes under 1 KB
# (gcc -fstack-usage); 8 KB leaves room for bigger models and is what RAM counts.
STACK_BYTES = 8 * 1024
CC = "riscv64-unknown-elf-gcc"
PICOLIBC_PACKAGE = "picolibc-riscv64-unknown-elf"

_OVERFLOW_RE = re.compile(r"region `(FLASH|RAM)' overflowed by (\d+) bytes")


def require_cross_compiler() -> str:
    cc = toolchain.which(CC, "the emulated board")
    # gcc prints the bare name back when it finds no such file
    found = subprocess.run([cc, "-print-file-name=picolibc.specs"], capture_output=True,
                           text=True).stdout.strip()
    if not os.path.isabs(found):
        raise UserError(f"the emulated board needs picolibc for {CC}: "
                        f"`sudo apt-get install {PICOLIBC_PACKAGE}`")
    return cc


@dataclass(frozen=True)
class Firmware:
    elf: Path
    sizes: dict          # from elf_sizes()
    model_crc32: int
    arena_bytes: int     # the AOT compiler's plan


def build(model_bytes: bytes, build_dir, stack_bytes: int = STACK_BYTES,
          protocol: str = "esptiny", profile: bool = False) -> Firmware:
    """Cross-compile the firmware for this model into build_dir (incrementally) and check
    it fits the board: the tensor arena against the RAM export plans on (as `esptiny
    export --board esp32c3` checks it), the ELF against flash and SRAM. A one-line
    UserError names the numbers when it does not fit. protocol: esptiny's or
    "mlperf-tiny" (the Makefile's PROTOCOL); profile: the AOT engine built with
    -DESPT_AOT_PROFILE (give it a build_dir of its own)."""
    require_cross_compiler()
    build_dir = Path(build_dir).resolve()
    model_dir = build_dir / "model"
    info = aot.generate(bytes(model_bytes), model_dir)
    fit.check_arena(BOARD, fit.ArenaPlan(recorded=int(info["arena_bytes"]), engine="aot"), "model")
    log = build_dir / "build.log"
    r = _make(build_dir, "all", model_dir, stack_bytes, protocol, profile)
    atomic.write_text(log, r.stdout + r.stderr)
    if r.returncode != 0:
        _build_failed(r.stdout + r.stderr, build_dir, model_dir, stack_bytes, log, protocol)
    elf = build_dir / "firmware.elf"
    sizes = elf_sizes(elf)
    check_limits(sizes)
    return Firmware(elf, sizes, crc32(model_bytes), int(info["arena_bytes"]))


def _make(build_dir: Path, target: str, model_dir=None, stack_bytes: int = STACK_BYTES,
          protocol: str = "esptiny", profile: bool = False):
    cmd = ["make", "--no-print-directory", f"-j{os.cpu_count() or 1}", "-C", str(BOARD_DIR), target,
           f"BUILD={build_dir}", f"STACK_BYTES={stack_bytes}", f"FLASH_BYTES={FLASH_LIMIT}",
           f"RAM_BYTES={RAM_LIMIT}", f"CPU_MHZ={CPU_MHZ}", f"PROTOCOL={protocol}"]
    if model_dir is not None:
        cmd.append(f"MODEL_DIR={model_dir}")
    if profile:
        cmd.append("PROFILE=1")
    return subprocess.run(cmd, capture_output=True, text=True)


def _build_failed(output: str, build_dir: Path, model_dir, stack_bytes: int, log: Path,
                  protocol: str = "esptiny"):
    if _OVERFLOW_RE.search(output):
        # Link again with the limits lifted, only to measure what the firmware needs.
        r = _make(build_dir, "unlimited", model_dir, stack_bytes, protocol)
        if r.returncode == 0:
            check_limits(elf_sizes(build_dir / "firmware-unlimited.elf"))
        over = ", ".join(f"{region} by {int(n):,} bytes" for region, n in _OVERFLOW_RE.findall(output))
        raise UserError(f"the firmware does not fit the ESP32-C3-class board: it overflows {over} "
                        f"(limits: flash {FLASH_LIMIT:,}, RAM {RAM_LIMIT:,} bytes)")
    raise UserError(f"cross-compiling the firmware for the emulated board failed: "
                    f"{toolchain.first_error(output)[:300]} (full log: {log})")


def build_selftest(build_dir) -> Path:
    """The board self-test (firmware/boards/qemu_rv32/selftest.c) as an ELF."""
    require_cross_compiler()
    build_dir = Path(build_dir).resolve()
    r = _make(build_dir, "selftest")
    log = build_dir / "selftest.log"
    atomic.write_text(log, r.stdout + r.stderr)
    if r.returncode != 0:
        _build_failed(r.stdout + r.stderr, build_dir, None, STACK_BYTES, log)
    return build_dir / "selftest.elf"


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
            f"{FLASH_LIMIT:,} ({BOARD.chip_name})")
    if sizes["ram_bytes"] > RAM_LIMIT:
        big = sizes.get("largest_ram_symbol")
        largest = f"; largest: {big['name']} {big['bytes']:,}" if big else ""
        problems.append(
            f"RAM needs {sizes['ram_bytes']:,} bytes (stack {sizes['stack_bytes']:,}, data "
            f"{sizes['data_bytes']:,}, bss {sizes['bss_bytes']:,}{largest}), the limit is "
            f"{RAM_LIMIT:,} ({BOARD.chip_name} SRAM)")
    if problems:
        raise UserError("the firmware does not fit the ESP32-C3-class board: " + "; ".join(problems))
