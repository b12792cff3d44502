"""Energy per inference and battery life, estimated from datasheet currents.

energy per inference = latency x active current x supply voltage; battery life at one
inference per second on a 1,000 mAh cell, the chip in light sleep between inferences
(average current = (t x active + (1 s - t) x light sleep) / 1 s). Everything here is an
estimate: the currents are the datasheet's for the chip alone (a dev board's regulator,
USB bridge and LEDs draw more), the latency is the run's measurement on that board where
it has one, else the cost model's. The currents and their tables are in the board
profiles (targets/boards.py).
"""
from __future__ import annotations

from .boards import BOARDS

SUPPLY_V = 3.3
BATTERY_MAH = 1000.0
PERIOD_S = 1.0  # one inference per second
LABEL = "estimate"


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
    """The estimate for one board and latency, with its inputs; battery life is None, with
    the reason under "missing", when an inference outlasts the period."""
    b = BOARDS[board]
    out = {"label": LABEL, "board": board, "latency_ms": round(float(latency_ms), 3),
           "latency_source": latency_source, "supply_v": SUPPLY_V, "battery_mah": BATTERY_MAH,
           "inferences_per_s": 1.0 / PERIOD_S, "active_ma": b.active_ma, "active_source": b.sources["active_ma"],
           "light_sleep_ma": b.light_sleep_ma, "light_sleep_source": b.sources["light_sleep_ma"],
           "energy_mj": round(energy_mj(latency_ms, b.active_ma), 4),
           "average_ma": None, "battery_hours": None, "missing": []}
    avg = average_ma(latency_ms, b.active_ma, b.light_sleep_ma)
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
        for board in BOARDS:
            ms, source = latency_for(board, int(v["macs"]), summaries)
            rows.append({"variant": name, **estimate(board, ms, source)})
    return rows
