"""Energy per inference and battery life, estimated from datasheet currents.

energy per inference = latency x active current x supply voltage; battery life at one
inference per second on a 1,000 mAh cell, the chip in light sleep between inferences
(average current = (t x active + (1 s - t) x light sleep) / 1 s). Everything here is an
estimate: the currents are the datasheet's for the chip alone (a dev board's regulator,
USB bridge and LEDs draw more), the latency is the run's measurement on that board where
it has one, else the cost model's. A figure not found in a datasheet is left out (None,
with the reason), never guessed.
"""
from __future__ import annotations

from dataclasses import dataclass

SUPPLY_V = 3.3
BATTERY_MAH = 1000.0
PERIOD_S = 1.0  # one inference per second
LABEL = "estimate"


@dataclass(frozen=True)
class Currents:
    active_ma: float | None        # CPU running at the board's clock, radio off
    active_source: str
    light_sleep_ma: float | None
    light_sleep_source: str


_NOT_FOUND = ("not found: the {chip} datasheet's table was not reachable from this machine's "
              "document search (2026-12); left out rather than guessed")

CURRENTS = {
    "esp32": Currents(
        68.0, "ESP32 Series Datasheet v3.5, Table 6 'Power Consumption by Power Modes': Modem-sleep "
              "(CPU powered on, radio off), 240 MHz, dual-core chips, 30 mA ~ 68 mA; the upper value "
              "taken for a CPU busy with an inference",
        0.8, "ESP-WROOM-32 User's Manual (Espressif), Table 5 'Power Consumption by Power Modes': "
             "Light-sleep mode 0.8 mA (version not shown on the page read)"),
    "esp32s3": Currents(None, _NOT_FOUND.format(chip="ESP32-S3"), None, _NOT_FOUND.format(chip="ESP32-S3")),
    "esp32c3": Currents(None, _NOT_FOUND.format(chip="ESP32-C3"), None, _NOT_FOUND.format(chip="ESP32-C3")),
}


def energy_mj(latency_ms: float, active_ma: float, supply_v: float = SUPPLY_V) -> float:
    """ms x mA x V = microjoules; returned in millijoules."""
    return latency_ms * active_ma * supply_v / 1000.0


def average_ma(latency_ms: float, active_ma: float, sleep_ma: float, period_s: float = PERIOD_S) -> float | None:
    """Average current with one inference per period and light sleep in between; None
    when the inference does not fit in the period."""
    t = latency_ms / 1000.0
    if t >= period_s:
        return None
    return (t * active_ma + (period_s - t) * sleep_ma) / period_s


def estimate(board: str, latency_ms: float, latency_source: str) -> dict:
    """The estimate for one board and latency, with its inputs; the figures it cannot give
    are None with the reason under "missing"."""
    c = CURRENTS[board]
    out = {"label": LABEL, "board": board, "latency_ms": round(float(latency_ms), 3),
           "latency_source": latency_source, "supply_v": SUPPLY_V, "battery_mah": BATTERY_MAH,
           "inferences_per_s": 1.0 / PERIOD_S, "active_ma": c.active_ma, "active_source": c.active_source,
           "light_sleep_ma": c.light_sleep_ma, "light_sleep_source": c.light_sleep_source,
           "energy_mj": None, "average_ma": None, "battery_hours": None, "missing": []}
    if c.active_ma is None:
        out["missing"].append("active current: " + c.active_source)
        return out
    out["energy_mj"] = round(energy_mj(latency_ms, c.active_ma), 4)
    if c.light_sleep_ma is None:
        out["missing"].append("light-sleep current: " + c.light_sleep_source)
        return out
    avg = average_ma(latency_ms, c.active_ma, c.light_sleep_ma)
    if avg is None:
        out["missing"].append(f"battery life: an inference takes {latency_ms:g} ms, longer than the {PERIOD_S:g} s period")
        return out
    out["average_ma"] = round(avg, 4)
    out["battery_hours"] = round(BATTERY_MAH / avg, 1)
    return out


def latency_for(board: str, macs: int, bench_summaries: list) -> tuple[float, str]:
    """(ms, source): a bench summary measured on this board (a serial device, not the
    virtual or emulated board), else the cost model's ESP-NN estimate."""
    from .costmodel import board_for
    from .costmodel import estimate as cost_estimate
    for s in bench_summaries:
        chip = str(s.get("chip", ""))
        b = board_for(chip)
        if b is not None and b.name == board and not chip.lower().startswith("virtual") \
                and s.get("latency_median_us") is not None:
            return s["latency_median_us"] / 1000.0, f"measured on the board ({chip}), median"
    e = cost_estimate(macs, board)
    return e["esp_nn_latency_ms"], "estimate: " + e["label"] + ", ESP-NN kernels"


def variant_table(variants: dict, bench_results: dict) -> list:
    """Per variant (with MACs) and board: the estimate. bench_results: the bench stage's
    results ("variant@port" -> {"summary": ...})."""
    rows = []
    for name, v in variants.items():
        if v.get("macs") is None:
            continue
        summaries = [r.get("summary", {}) for key, r in bench_results.items() if key.split("@")[0] == name]
        for board in CURRENTS:
            ms, source = latency_for(board, int(v["macs"]), summaries)
            rows.append({"variant": name, **estimate(board, ms, source)})
    return rows
