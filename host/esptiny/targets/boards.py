"""Board profiles as data, one record per board (esptool's habit: a chip's facts in one
place, no if-chains). Every figure carries where it came from; the fit checks
(fit.py) and the exported project (export.py) read them from here.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UserError
from ..paths import FIRMWARE

# PlatformIO's ESP32 platform, pinned: 6.13.0 ships ESP-IDF v5.5.3 (its release notes:
# "Added support for ESP-IDF v5.5.3"). esp-tflite-micro 1.4.0 needs ESP-IDF >= 5.1.
PLATFORM_NAME = "platformio/espressif32"
PLATFORM_VERSION = "6.13.0"
PLATFORM = f"{PLATFORM_NAME} @ {PLATFORM_VERSION}"
IDF_VERSION = "5.5.3"
TFLM_COMPONENT = ("espressif/esp-tflite-micro", "1.4.0")

BOARD_DIR = FIRMWARE / "boards" / "esp32"  # board sources, partition tables
UART_BAUD = 921600  # CP2102(N) bridges reach 921600 (FACTS: CP2104 2 Mbaud, ESP32 UART 5 Mbaud)

# Firmware without the model: esp-tflite-micro's micro_speech example for ESP32-S3 builds
# to 0x52b40 = 338,752 bytes with ESP-IDF v5.2 (espressif/esp-tflite-micro issue #78),
# its ~18 KB model and audio front end included. Rounded up, for every chip.
_FIRMWARE_ESTIMATE = 360_000
_FIRMWARE_SOURCE = ("estimate: esp-tflite-micro micro_speech.bin for ESP32-S3 is 0x52b40 = "
                    "338,752 B with ESP-IDF v5.2 (espressif/esp-tflite-micro issue #78), model "
                    "included; rounded up to 360,000 B (TFLite-Micro, ESP-NN, ESP-IDF, drivers)")
_PERSON_DETECTION_SOURCE = ("espressif/esp-tflite-micro README.md, 'Performance Comparison': "
                            "person detection invoke() with and without ESP-NN, internal memory")
_HEAP_SOURCE = ("esp_get_free_heap_size() in ESP-IDF's hello_world, release/v5.3, as Espressif's "
                "support team tabulated it (blog.csdn.net/wireless_tag/article/details/140876639)")


def partition_app_bytes(csv_path: Path) -> int:
    """Size of the (single) app partition in an ESP-IDF partition table CSV."""
    sizes = []
    for line in Path(csv_path).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        cols = [c.strip() for c in line.split(",")]
        if len(cols) >= 5 and cols[1] == "app":
            sizes.append(_size(cols[4]))
    assert len(sizes) == 1, f"{csv_path}: expected one app partition, found {len(sizes)}"
    return sizes[0]


def _size(text: str) -> int:
    m = re.fullmatch(r"(0x[0-9a-fA-F]+|\d+)\s*([KM]?)", text)
    assert m, f"unreadable partition size {text!r}"
    return int(m.group(1), 0) * {"": 1, "K": 1024, "M": 1024 * 1024}[m.group(2)]


@dataclass(frozen=True)
class Board:
    name: str                 # esptiny's name, also CONFIG_IDF_TARGET and the INFO chip string
    chip: str
    pio_board: str            # PlatformIO board id
    arch: str
    cores: int
    cpu_mhz: int
    flash_bytes: int
    partitions: str           # partition table in firmware/boards/esp32/
    sram_bytes: int           # on-chip SRAM, datasheet
    free_heap_bytes: int      # heap free after boot in a minimal ESP-IDF app
    arena_budget_bytes: int   # largest tensor arena this firmware plans on (one block)
    psram: str
    console: str              # default link: "uart" (UART0 via the USB bridge) or "usb-serial-jtag"
    consoles: tuple           # links the chip has
    espnn: str                # ESP-NN kernel family: "esp32s3" (SIMD, scratch buffers) or "generic"
    chip_name: str            # the chip alone, as Espressif names it: "ESP32-S3"
    # Espressif's person-detection invoke() times, ms, with and without ESP-NN: the cost
    # model's calibration (targets/costmodel.py)
    person_detection_esp_nn_ms: float
    person_detection_reference_ms: float
    # datasheet currents for the energy estimate (targets/energy.py): CPU busy at cpu_mhz
    # with the radio off (Modem-sleep), and Light-sleep between inferences
    active_ma: float
    light_sleep_ma: float
    sources: dict = field(default_factory=dict)  # figure -> where it came from

    @property
    def pio_env(self) -> str:
        return self.name

    @property
    def partitions_path(self) -> Path:
        return BOARD_DIR / self.partitions

    @property
    def app_partition_bytes(self) -> int:
        return partition_app_bytes(self.partitions_path)

    @property
    def firmware_bytes_estimate(self) -> int:
        return _FIRMWARE_ESTIMATE

    def figures(self) -> dict:
        """Every figure with its unit and source, for reports and docs."""
        names = ["cpu_mhz", "flash_bytes", "app_partition_bytes", "sram_bytes", "free_heap_bytes",
                 "arena_budget_bytes", "firmware_bytes_estimate", "person_detection_esp_nn_ms",
                 "person_detection_reference_ms", "active_ma", "light_sleep_ma"]
        return {n: {"value": getattr(self, n), "source": self.sources[n]} for n in names}


def _pio_json(board_id: str, facts: str) -> str:
    return f"PlatformIO board definition boards/{board_id}.json (platformio/platform-espressif32): {facts}"


BOARDS = {b.name: b for b in [
    Board(
        name="esp32", chip="ESP32 (ESP32-WROOM-32 on ESP32-DevKitC)", pio_board="esp32dev",
        arch="Xtensa LX6, dual core", cores=2, cpu_mhz=240, flash_bytes=4 * 1024 * 1024,
        partitions="partitions_4mb.csv", sram_bytes=520 * 1024, free_heap_bytes=298 * 1024,
        arena_budget_bytes=110 * 1024,
        psram="none on ESP32-WROOM-32 (WROVER modules carry 4-8 MB; not enabled by this firmware)",
        console="uart", consoles=("uart",), espnn="generic",
        chip_name="ESP32", person_detection_esp_nn_ms=380, person_detection_reference_ms=4084,
        active_ma=68.0, light_sleep_ma=0.8,
        sources={
            "cpu_mhz": _pio_json("esp32dev", "f_cpu 240000000L") + "; sdkconfig sets CONFIG_ESP_DEFAULT_CPU_FREQ_MHZ_240",
            "flash_bytes": _pio_json("esp32dev", 'flash_size "4MB"'),
            "app_partition_bytes": "factory partition in firmware/boards/esp32/partitions_4mb.csv (0x3F0000)",
            "sram_bytes": "ESP32 datasheet: 520 KB SRAM (ESP-IDF memory-types guide: 320 KB DRAM, 200 KB IRAM)",
            "free_heap_bytes": _HEAP_SOURCE + ": ESP32 298 KB",
            "arena_budget_bytes": (
                "estimate: the ESP32's DRAM heap is split (ESP-IDF memory-types guide: at most "
                "160 KB static DRAM, the rest only as heap); the region 0x3FFE4350-0x3FFFFFFF is "
                "111 KB and the main region 0x3FFB0000-0x3FFE0000 (192 KB) also holds static data, "
                "task stacks and the UART buffer, so one block of 110 KB is what we plan on"),
            "firmware_bytes_estimate": _FIRMWARE_SOURCE,
            "person_detection_esp_nn_ms": _PERSON_DETECTION_SOURCE + ": ESP32 380 ms",
            "person_detection_reference_ms": _PERSON_DETECTION_SOURCE + ": ESP32 4084 ms",
            "active_ma": ("ESP32 Series Datasheet v3.5, Table 6 'Power Consumption by Power Modes': "
                          "Modem-sleep (CPU powered on, radio off), 240 MHz, dual-core chips, 30 mA ~ "
                          "68 mA; the upper value taken for a CPU busy with an inference"),
            "light_sleep_ma": ("ESP-WROOM-32 User's Manual (Espressif), Table 5 'Power Consumption by "
                               "Power Modes': Light-sleep mode 0.8 mA (version not shown on the page read)"),
        }),
    Board(
        name="esp32s3", chip="ESP32-S3 (ESP32-S3-DevKitC-1-N8)", pio_board="esp32-s3-devkitc-1",
        arch="Xtensa LX7 with SIMD (ESP-NN's esp32s3 kernels), dual core", cores=2, cpu_mhz=240,
        flash_bytes=8 * 1024 * 1024, partitions="partitions_8mb.csv", sram_bytes=512 * 1024,
        free_heap_bytes=380 * 1024, arena_budget_bytes=240 * 1024,
        psram=("none on the N8 (PlatformIO's esp32-s3-devkitc-1); N8R2/N8R8 variants carry 2/8 MB, "
               "not enabled by this firmware"),
        console="usb-serial-jtag", consoles=("usb-serial-jtag", "uart"), espnn="esp32s3",
        chip_name="ESP32-S3", person_detection_esp_nn_ms=54, person_detection_reference_ms=2300,
        active_ma=87.9, light_sleep_ma=0.24,
        sources={
            "cpu_mhz": _pio_json("esp32-s3-devkitc-1", "f_cpu 240000000L") + "; sdkconfig sets CONFIG_ESP_DEFAULT_CPU_FREQ_MHZ_240",
            "flash_bytes": _pio_json("esp32-s3-devkitc-1", 'flash_size "8MB"'),
            "app_partition_bytes": "factory partition in firmware/boards/esp32/partitions_8mb.csv (0x7F0000)",
            "sram_bytes": "ESP32-S3 datasheet: 512 KB SRAM",
            "free_heap_bytes": _HEAP_SOURCE + ": ESP32-S3 380 KB",
            "arena_budget_bytes": (
                "estimate: the ESP32-S3's DRAM heap is mostly one region (SRAM1 above the app's "
                "IRAM and static data, below ROM's reserved top); of 380 KB free we leave ~140 KB "
                "for task stacks, the USB/UART buffers, SRAM2's separate 64 KB and fragmentation"),
            "firmware_bytes_estimate": _FIRMWARE_SOURCE,
            "person_detection_esp_nn_ms": _PERSON_DETECTION_SOURCE + ": ESP32-S3 54 ms",
            "person_detection_reference_ms": _PERSON_DETECTION_SOURCE + ": ESP32-S3 2300 ms",
            "active_ma": ("ESP32-S3-WROOM-1 & WROOM-1U Datasheet v1.8, Table 6-6 'Current Consumption "
                          "in Modem-sleep Mode' (excerpted from the ESP32-S3 Series Datasheet): 240 MHz, "
                          "single core running 128-bit data access instructions (ESP-NN's SIMD "
                          "kernels), the other core idle, all peripheral clocks enabled, 87.9 mA typ "
                          "(72.4 mA with them disabled)"),
            "light_sleep_ma": ("ESP32-S3-WROOM-1 & WROOM-1U Datasheet v1.8, Table 6-7 'Current "
                               "Consumption in Low-Power Modes': Light-sleep, VDD_SPI and Wi-Fi powered "
                               "down, 240 uA typ"),
        }),
    Board(
        name="esp32c3", chip="ESP32-C3 (ESP32-C3-DevKitM-1)", pio_board="esp32-c3-devkitm-1",
        arch="RISC-V RV32IMC, single core (ESP-NN's generic kernels)", cores=1, cpu_mhz=160,
        flash_bytes=4 * 1024 * 1024, partitions="partitions_4mb.csv", sram_bytes=400 * 1024,
        free_heap_bytes=322 * 1024, arena_budget_bytes=240 * 1024,
        psram="none: the ESP32-C3 has no PSRAM interface",
        console="uart", consoles=("uart", "usb-serial-jtag"), espnn="generic",
        chip_name="ESP32-C3", person_detection_esp_nn_ms=426, person_detection_reference_ms=3355,
        active_ma=28.0, light_sleep_ma=0.13,
        sources={
            "cpu_mhz": _pio_json("esp32-c3-devkitm-1", "f_cpu 160000000L") + "; sdkconfig sets CONFIG_ESP_DEFAULT_CPU_FREQ_MHZ_160",
            "flash_bytes": _pio_json("esp32-c3-devkitm-1", 'flash_size "4MB"'),
            "app_partition_bytes": "factory partition in firmware/boards/esp32/partitions_4mb.csv (0x3F0000)",
            "sram_bytes": "ESP32-C3 datasheet: 400 KB SRAM (16 KB of it cache)",
            "free_heap_bytes": _HEAP_SOURCE + ": ESP32-C3 322 KB",
            "arena_budget_bytes": (
                "estimate: the ESP32-C3's DRAM heap is one region (SRAM above the app's IRAM and "
                "static data, below ROM's reserved top); of 322 KB free we leave ~80 KB for task "
                "stacks, the UART buffer and fragmentation"),
            "firmware_bytes_estimate": _FIRMWARE_SOURCE,
            "person_detection_esp_nn_ms": _PERSON_DETECTION_SOURCE + ": ESP32-C3 426 ms",
            "person_detection_reference_ms": _PERSON_DETECTION_SOURCE + ": ESP32-C3 3355 ms",
            "active_ma": ("ESP32-C3 Series Datasheet v2.4, Table 5-8 'Current Consumption in "
                          "Modem-sleep Mode': 160 MHz, CPU is running, all peripheral clocks enabled, "
                          "28 mA typ (23 mA with them disabled)"),
            "light_sleep_ma": ("ESP32-C3 Series Datasheet v2.4, Table 5-9 'Current Consumption in "
                               "Low-Power Modes': Light-sleep, VDD_SPI and Wi-Fi powered down, 130 uA typ"),
        }),
]}

# Why each board's default link is what it is (docs/firmware.md repeats this).
CONSOLE_NOTES = {
    "esp32": "UART0 through the DevKitC's USB-UART bridge (CP2102 or CH340), the only link it has",
    "esp32s3": ("the USB-Serial-JTAG controller on the DevKitC-1's port marked USB: full-speed USB "
                "with flow control (no bytes lost while the device infers), baud rate ignored"),
    "esp32c3": ("UART0 through the DevKitM-1's CP2102N bridge: its one USB connector goes to the "
                "bridge, not to the chip's USB-Serial-JTAG pins (GPIO18/19)"),
}


def get(name: str) -> Board:
    if name not in BOARDS:
        raise UserError(f"unknown board '{name}'; choose from {', '.join(BOARDS)}")
    return BOARDS[name]
