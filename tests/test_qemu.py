"""The emulated ESP32-C3-class board (host/esptiny/devices/qemu.py and rv32_firmware.py,
firmware/boards/qemu_rv32): cross-build, the board's counters and memory limits (the
esp32c3 board profile's), a bench through `esptiny bench --port qemu-rv32` equal to
TFLite-Micro's host runtime, reproducible instruction counts, an over-size model refused.
Needs Debian's gcc-riscv64-unknown-elf, picolibc-riscv64-unknown-elf and qemu-system-misc
(`make debs`)."""
import json
import re

import numpy as np
import pytest
from click.testing import CliRunner
from esptiny import toolchain
from esptiny.crc import crc32
from esptiny.devices import qemu, rv32_firmware
from esptiny.errors import UserError
from esptiny.targets import fit
from esptiny.targets.boards import BOARDS
from needs import require


@pytest.fixture
def tools():
    require("riscv64-unknown-elf-gcc", "gcc-riscv64-unknown-elf")
    require("qemu-system-riscv32", "qemu-system-misc")


def needs_tools(test):
    return pytest.mark.usefixtures("tools")(test)


def test_missing_tools_named(monkeypatch):
    monkeypatch.setattr(toolchain.shutil, "which", lambda name: None)
    with pytest.raises(UserError) as e:
        rv32_firmware.require_cross_compiler()
    assert str(e.value) == ("the emulated board needs `riscv64-unknown-elf-gcc`, which is not on this "
                            "machine: `sudo apt-get install gcc-riscv64-unknown-elf`")
    with pytest.raises(UserError) as e:
        qemu.require_qemu()
    assert str(e.value) == ("the emulated board needs `qemu-system-riscv32`, which is not on this "
                            "machine: `sudo apt-get install qemu-system-misc`")


def test_limits_are_the_esp32c3_profiles():
    c3 = BOARDS["esp32c3"]
    assert (rv32_firmware.FLASH_LIMIT, rv32_firmware.RAM_LIMIT, rv32_firmware.CPU_MHZ) == \
        (4_128_768, 409_600, 160)
    assert (c3.app_partition_bytes, c3.sram_bytes, c3.cpu_mhz) == (4_128_768, 409_600, 160)


def test_flash_limit_message():
    sizes = {"flash_bytes": 4_200_000, "text_bytes": 9_000, "rodata_bytes": 4_190_992,
             "data_bytes": 8, "ram_bytes": 20_000}
    with pytest.raises(UserError) as e:
        rv32_firmware.check_limits(sizes)
    assert str(e.value) == ("the firmware does not fit the ESP32-C3-class board: flash needs "
                            "4,200,000 bytes (code 9,000, constants 4,190,992, initial data 8), "
                            "the limit is 4,128,768 (ESP32-C3)")


def test_exit_statuses_named():
    assert qemu.describe_exit(qemu.EXIT_TRAP_BASE + 7).startswith(
        "the firmware trapped: mcause 7, store access fault")
    assert qemu.describe_exit(qemu.EXIT_DEVICE_RETURNED) == "the firmware stopped after a fatal link error"


@needs_tools
def test_board_selftest(tmp_path):
    """Exact instruction counts, the clock at 160 MHz, QEMU's mtime at 1 ns per
    instruction, and a store past the board's RAM trapping (PMP)."""
    status, text = qemu.selftest(tmp_path / "selftest")
    assert "chip qemu-rv32imc (ESP32-C3-class)" in text
    loops = {int(n): int(c) for n, c in re.findall(r"loop (\d+) instructions (\d+)", text)}
    assert set(loops) == {1, 1000, 100000}
    # The loop is 2n + 1 instructions plus a fixed overhead: the counts differ by exactly 2n.
    assert loops[1000] - loops[1] == 2 * 999
    assert loops[100000] - loops[1000] == 2 * 99000
    instr, micros, mtime_ns = map(int, re.search(
        r"instructions (\d+) micros (\d+) mtime_ns (\d+)", text).groups())
    assert 20_000_000 <= instr < 20_000_100
    assert abs(mtime_ns - instr) <= 200  # mtime ticks every 100 ns
    end = 0x80000000 + rv32_firmware.FLASH_LIMIT + rv32_firmware.RAM_LIMIT  # RAM follows flash
    assert "trap mcause=0x00000007" in text and f"mtval=0x{end:08x}" in text
    assert "no trap" not in text
    assert status == qemu.EXIT_TRAP_BASE + 7


@needs_tools
def test_trap_reported_to_the_host(tmp_path):
    """A board that dies is named as such, not left as a silent port error: the
    self-test traps right after boot, before any READY."""
    from esptiny.link import client
    qemu.selftest(tmp_path)
    fw = rv32_firmware.Firmware(tmp_path / "selftest.elf", {}, 0, 0)
    with pytest.raises(UserError) as e:
        with qemu.serve(fw) as url:
            client.Session(url, "qemu-rv32", client.Settings(reset=False, ready_timeout=5)).connect()
    assert str(e.value).startswith("the emulated board stopped (the firmware trapped: mcause 7, "
                                   "store access fault")


@needs_tools
def test_cross_build_fits(tiny_run, tmp_path):
    model = tiny_run.variant_path("int8").read_bytes()
    fw = rv32_firmware.build(model, tmp_path / "fw")
    s = fw.sizes
    assert fw.elf.exists() and fw.model_crc32 == crc32(model)
    # The weights are constants in flash; the arena, the buffers and the stack in RAM.
    assert len(model) // 2 < s["rodata_bytes"] < s["flash_bytes"] <= rv32_firmware.FLASH_LIMIT
    assert s["flash_bytes"] >= s["text_bytes"] + s["rodata_bytes"] + s["data_bytes"]
    assert s["ram_bytes"] >= s["stack_bytes"] + s["data_bytes"] + s["bss_bytes"]
    assert s["stack_bytes"] == rv32_firmware.STACK_BYTES and s["ram_bytes"] <= rv32_firmware.RAM_LIMIT
    # A second build with nothing changed rebuilds nothing.
    mtime = fw.elf.stat().st_mtime_ns
    assert rv32_firmware.build(model, tmp_path / "fw").elf.stat().st_mtime_ns == mtime


@needs_tools
def test_bench_equals_tflm(tiny_run):
    from esptiny.cli import main
    from esptiny.model import tflite
    n = 60
    r = CliRunner().invoke(main, ["bench", str(tiny_run.path), "--variant", "int8",
                                  "--port", "qemu-rv32", "-n", str(n)])
    assert r.exit_code == 0, r.output
    entry = tiny_run.stage("bench")["results"]["int8@qemu-rv32"]
    doc = json.loads(tiny_run.file(entry["path"]).read_text())
    assert doc["images"] == n and doc["chip"] == qemu.CHIP
    # Every output byte equals TFLite-Micro's host runtime's, so every prediction does.
    assert doc["device_vs_tflm"]["identical_outputs"] == 1.0
    assert doc["device_vs_tflm"]["top1_agreement"] == 1.0
    info = doc["boards"]["qemu-rv32"]["info"]
    assert info["engine"] == "aot" and info["cpu_mhz"] == 160
    # Its counter is retired instructions, labelled so, never cycles; and exact: a second
    # QEMU on the same firmware counts the same instructions for the same images.
    assert doc["source"] == "emulated core" and doc["counter"] == "instructions"
    assert doc["latency_cycles"] is None and entry["summary"]["latency_median_cycles"] is None
    model = tiny_run.variant_path("int8").read_bytes()
    x = tflite.to_input(tiny_run.dataset().x_test[:n], tflite.io_details(model)[0])
    _, counts = qemu.run_images(rv32_firmware.build(model, tiny_run.path / "build" / "int8" / "qemu_rv32"), x)
    got = doc["latency_instructions"]
    assert (got["min"], got["median"], got["max"]) == (counts.min(), float(np.median(counts)), counts.max())
    assert entry["summary"]["latency_median_instructions"] == round(float(np.median(counts)))
    assert doc["throughput"]["link_efficiency"] is None  # a TCP socket: no paced link


@needs_tools
def test_instruction_counts_reproducible(tiny_run, tmp_path):
    from esptiny.model import tflite, tflm
    model = tiny_run.variant_path("int8").read_bytes()
    in_d, _ = tflite.io_details(model)
    x = tflite.to_input(tiny_run.dataset().x_test[:40], in_d)
    fw = rv32_firmware.build(model, tmp_path / "fw")
    out1, counts1 = qemu.run_images(fw, x)
    out2, counts2 = qemu.run_images(fw, x)
    assert (counts1 > 100_000).all()
    np.testing.assert_array_equal(counts1, counts2)
    assert out1 == out2
    ref = tflm.run(model, x).reshape(len(x), -1)
    np.testing.assert_array_equal(np.stack([np.frombuffer(o, np.int8) for o in out1]), ref)


@needs_tools
def test_oversize_model_refused(tmp_path):
    """A conv layer whose 28x28x512 int8 output alone (401,408 bytes) needs more RAM than
    an ESP32-C3 firmware plans on for its arena: refused before anything is built, with
    the very line `esptiny export --board esp32c3` gives, and no firmware is left to run."""
    from esptiny import aot
    from esptiny.stages.compress import ptq
    from esptiny.tf import keras
    L = keras.layers
    model = keras.Sequential([L.Input((28, 28, 1)), L.Conv2D(512, 3, padding="same", activation="relu"),
                              L.Conv2D(1, 1), L.Flatten(), L.Dense(10)])
    rep = np.random.default_rng(0).random((4, 28, 28, 1), dtype=np.float32)
    blob = ptq.int8(model, rep)
    with pytest.raises(UserError) as e:
        rv32_firmware.build(blob, tmp_path / "fw")
    arena = aot.compile_model(blob).info["arena_bytes"]
    assert arena > 28 * 28 * 512
    with pytest.raises(UserError) as export_says:
        fit.check_arena(BOARDS["esp32c3"], fit.ArenaPlan(recorded=arena, engine="aot"), "model")
    assert str(e.value) == str(export_says.value)
    assert str(e.value).startswith(f"the model model's tensor arena ({arena:,} B: planned by the AOT "
                                   f"compiler: {arena} B) does not fit the 245,760 B of esp32c3's")
    assert not (tmp_path / "fw" / "firmware.elf").exists()


@needs_tools
def test_overflowing_ram_named_with_its_numbers(tmp_path, monkeypatch):
    """Past the arena check, the linker still guards the board's SRAM: a stack larger than
    the RAM left gives the numbers, measured from a second link without the limits."""
    from esptiny.stages.compress import ptq
    from esptiny.tf import keras
    L = keras.layers
    model = keras.Sequential([L.Input((8, 8, 1)), L.Conv2D(4, 3), L.Flatten(), L.Dense(3)])
    blob = ptq.int8(model, np.random.default_rng(0).random((4, 8, 8, 1), dtype=np.float32))
    with pytest.raises(UserError) as e:
        rv32_firmware.build(blob, tmp_path / "fw", stack_bytes=rv32_firmware.RAM_LIMIT)
    m = re.fullmatch(r"the firmware does not fit the ESP32-C3-class board: RAM needs ([\d,]+) bytes "
                     r"\(stack 409,600, data ([\d,]+), bss ([\d,]+); largest: (\w+) ([\d,]+)\), "
                     r"the limit is 409,600 \(ESP32-C3 SRAM\)", str(e.value))
    assert m, str(e.value)
    need, data, bss = (int(g.replace(",", "")) for g in m.groups()[:3])
    assert need >= rv32_firmware.RAM_LIMIT + data + bss  # stack, data and bss, plus alignment
    assert not (tmp_path / "fw" / "firmware.elf").exists()
