"""Board profiles: their figures, sources, partition tables and build settings agree."""
import configparser
import re

import pytest
from esptiny.errors import UserError
from esptiny.paths import REPO
from esptiny.targets import boards, export

EXPECTED = {  # name: (PlatformIO board, cores, MHz, flash MB, app partition bytes)
    "esp32": ("esp32dev", 2, 240, 4, 0x3F0000),
    "esp32s3": ("esp32-s3-devkitc-1", 2, 240, 8, 0x7F0000),
    "esp32c3": ("esp32-c3-devkitm-1", 1, 160, 4, 0x3F0000),
}


def _partitions(path):
    rows = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, ptype, sub, offset, size = [c.strip() for c in line.split(",")][:5]
            rows.append((name, ptype, sub, int(offset, 0), boards._size(size)))
    return rows


def test_the_three_boards_and_their_figures():
    assert list(boards.BOARDS) == list(EXPECTED)
    for name, (pio, cores, mhz, flash_mb, app) in EXPECTED.items():
        b = boards.get(name)
        assert (b.pio_board, b.cores, b.cpu_mhz, b.flash_bytes) == (pio, cores, mhz, flash_mb << 20)
        assert b.app_partition_bytes == app
        assert b.firmware_bytes_estimate < b.app_partition_bytes
        assert 0 < b.arena_budget_bytes < b.free_heap_bytes < b.sram_bytes
        assert b.console in b.consoles and name in boards.CONSOLE_NOTES
        for fig, entry in b.figures().items():
            assert entry["value"] > 0 and len(entry["source"]) > 20, (name, fig)


def test_every_source_states_where_a_figure_came_from():
    for b in boards.BOARDS.values():
        assert str(b.cpu_mhz) in b.sources["cpu_mhz"].replace("000000L", "")
        assert hex(b.app_partition_bytes).upper()[2:] in b.sources["app_partition_bytes"].upper()
        assert str(b.free_heap_bytes // 1024) in b.sources["free_heap_bytes"]
        assert "estimate" in b.sources["arena_budget_bytes"]
        assert "338,752" in b.sources["firmware_bytes_estimate"]


@pytest.mark.parametrize("csv", ["partitions_4mb.csv", "partitions_8mb.csv"])
def test_partition_tables_are_sound(csv):
    rows = _partitions(boards.BOARD_DIR / csv)
    flash = (8 if "8mb" in csv else 4) << 20
    end = 0x9000  # after the bootloader (0x1000/0x0) and the partition table at 0x8000
    for name, ptype, sub, offset, size in rows:
        assert offset >= end, f"{name} overlaps the previous partition"
        if ptype == "app":
            assert offset % 0x10000 == 0, "app partitions are 64 KB aligned"
        end = offset + size
    assert end == flash  # the factory app runs to the end of the flash
    assert [r[1:3] for r in rows if r[1] == "app"] == [("app", "factory")]


def test_unknown_board_is_one_line():
    with pytest.raises(UserError, match="unknown board 'esp8266'; choose from esp32, esp32s3, esp32c3"):
        boards.get("esp8266")


def test_repository_platformio_ini_has_an_env_per_board():
    cfg = configparser.ConfigParser(inline_comment_prefixes=(";",))
    cfg.read(REPO / "platformio.ini")
    assert cfg.get("platformio", "src_dir") == "firmware"
    assert cfg.get("env", "platform") == boards.PLATFORM == "platformio/espressif32 @ 6.13.0"
    assert cfg.get("env", "framework") == "espidf"
    for b in boards.BOARDS.values():
        sec = f"env:{b.pio_env}"
        assert cfg.get(sec, "board") == b.pio_board
        part = REPO / cfg.get(sec, "board_build.partitions")
        assert part == b.partitions_path and part.exists()


def test_sdkconfig_defaults_per_board_match_the_profiles():
    common = (boards.BOARD_DIR / "sdkconfig.defaults").read_text()
    for key in ("CONFIG_ESP_CONSOLE_NONE=y", "CONFIG_LOG_DEFAULT_LEVEL_NONE=y", "CONFIG_ESP_TASK_WDT_TIMEOUT_S=60"):
        assert key in common
    for b in boards.BOARDS.values():
        text = (boards.BOARD_DIR / f"sdkconfig.defaults.{b.name}").read_text()
        assert f"CONFIG_ESP_DEFAULT_CPU_FREQ_MHZ_{b.cpu_mhz}=y" in text
        assert f"CONFIG_ESPTOOLPY_FLASHSIZE_{b.flash_bytes >> 20}MB=y" in text
        assert re.search(rf'CONFIG_PARTITION_TABLE_CUSTOM_FILENAME=".*/{b.partitions}"', text)
        # the core that runs Invoke is never watched through its idle task
        unwatched = "CPU1" if b.cores > 1 else "CPU0"
        assert f"# CONFIG_ESP_TASK_WDT_CHECK_IDLE_TASK_{unwatched} is not set" in text


def test_console_choice_matches_the_firmware_default():
    # board_esp32.c picks USB-Serial-JTAG on the ESP32-S3 unless told otherwise
    src = (boards.BOARD_DIR / "board_esp32.c").read_text()
    assert "#if CONFIG_IDF_TARGET_ESP32S3\n#define ESPT_CONSOLE_USB_SERIAL_JTAG 1" in src
    assert [b.name for b in boards.BOARDS.values() if b.console == "usb-serial-jtag"] == ["esp32s3"]
    # and an exported project overrides it only when asked
    b = boards.get("esp32c3")
    assert export._board_ctx(b, "p.csv", "uart")["build_flags"] == []
    assert export._board_ctx(b, "p.csv", "usb-serial-jtag")["build_flags"] == ["-DESPT_CONSOLE_USB_SERIAL_JTAG=1"]
