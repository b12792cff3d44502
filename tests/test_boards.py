"""Board profiles: their figures, sources, partition tables and build settings agree."""
import configparser
import re

import pytest
from esptiny.errors import UserError
from esptiny.paths import REPO
from esptiny.targets import boards, export


def _partitions(path):
    rows = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, ptype, sub, offset, size = [c.strip() for c in line.split(",")][:5]
            rows.append((name, ptype, sub, int(offset, 0), boards._size(size)))
    return rows


def test_the_three_boards_and_their_figures():
    assert list(boards.BOARDS) == ["esp32", "esp32s3", "esp32c3"]
    for name, b in boards.BOARDS.items():
        assert b.firmware_bytes_estimate < b.app_partition_bytes
        assert 0 < b.arena_budget_bytes < b.free_heap_bytes < b.sram_bytes
        assert b.console in b.consoles and name in boards.CONSOLE_NOTES
        # the partition table (another file) runs to the end of the flash the profile says
        rows = _partitions(b.partitions_path)
        assert rows[-1][3] + rows[-1][4] == b.flash_bytes
        for fig, entry in b.figures().items():
            assert entry["value"] > 0 and len(entry["source"]) > 20, (name, fig)


def test_every_figure_is_the_one_its_source_quotes():
    """Each figure against the number its cited source states (PlatformIO's board json,
    the datasheet, Espressif's published timings), read from the source text."""
    def quoted(pattern, text):
        m = re.search(pattern, text)
        assert m, (pattern, text)
        return m.group(1)
    for b in boards.BOARDS.values():
        src = b.sources
        assert int(quoted(r"f_cpu (\d+)000000L", src["cpu_mhz"])) == b.cpu_mhz
        assert int(quoted(r'flash_size "(\d+)MB"', src["flash_bytes"])) << 20 == b.flash_bytes
        assert int(quoted(r"\((0x[0-9A-F]+)\)", src["app_partition_bytes"]), 16) == b.app_partition_bytes
        assert int(quoted(r"(\d+) KB SRAM", src["sram_bytes"])) * 1024 == b.sram_bytes
        assert int(quoted(r"(\d+) KB$", src["free_heap_bytes"])) * 1024 == b.free_heap_bytes
        assert float(quoted(r"(\d+) ms$", src["person_detection_esp_nn_ms"])) == b.person_detection_esp_nn_ms
        assert float(quoted(r"(\d+) ms$", src["person_detection_reference_ms"])) == b.person_detection_reference_ms
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
