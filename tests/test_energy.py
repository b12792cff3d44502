"""Energy per inference and battery life estimates (targets/energy.py), on hand-worked
examples with the numbers written out."""
import pytest
from esptiny.stages import report
from esptiny.targets import energy


def test_energy_per_inference_hand_worked():
    # 100 ms x 68 mA x 3.3 V = 0.1 s x 0.068 A x 3.3 V = 0.02244 J
    assert energy.energy_mj(100.0, 68.0) == pytest.approx(22.44)
    assert energy.energy_mj(2.5, 20.0, supply_v=3.0) == pytest.approx(0.15)  # 2.5 ms x 20 mA x 3 V


def test_battery_life_hand_worked():
    # 0.1 s at 68 mA + 0.9 s at 0.8 mA each second: 6.8 + 0.72 = 7.52 mA; 1000 mAh / 7.52 mA = 132.98 h
    e = energy.estimate("esp32", 100.0, "by hand")
    assert e["label"] == "estimate"
    assert (e["active_ma"], e["light_sleep_ma"], e["supply_v"], e["battery_mah"]) == (68.0, 0.8, 3.3, 1000.0)
    assert e["energy_mj"] == pytest.approx(22.44)
    assert e["average_ma"] == pytest.approx(7.52)
    assert e["battery_hours"] == pytest.approx(133.0)
    # half the latency (a compressed variant): 3.4 + 0.76 = 4.16 mA -> 240.4 h
    assert energy.estimate("esp32", 50.0, "by hand")["battery_hours"] == pytest.approx(240.4)
    assert "Table 6" in e["active_source"] and "v3.5" in e["active_source"]


def test_inference_longer_than_the_period_has_no_battery_life():
    e = energy.estimate("esp32", 1000.0, "by hand")
    assert e["energy_mj"] == pytest.approx(224.4) and e["battery_hours"] is None
    assert "longer than the 1 s period" in e["missing"][0]


def test_figures_not_found_are_left_out():
    for board in ("esp32s3", "esp32c3"):
        e = energy.estimate(board, 10.0, "by hand")
        assert e["energy_mj"] is None and e["battery_hours"] is None
        assert "not found" in e["missing"][0]


def test_latency_measured_on_the_board_else_cost_model():
    measured = [{"chip": "ESP32", "latency_median_us": 12345.0}]
    assert energy.latency_for("esp32", 1_994_240, measured) == (12.345, "measured on the board (ESP32), median")
    # the virtual board is not the board: cost model, 1,994,240 MACs x 380 ms / 7,157,888 MACs = 105.87 ms
    ms, source = energy.latency_for("esp32", 1_994_240, [{"chip": "virtual-esp32", "latency_median_us": 5.0}])
    assert ms == pytest.approx(105.87, abs=0.01) and source.startswith("estimate: ")


def test_report_rows_per_variant_and_board():
    data = {"variants": {"int8": {"macs": 1_994_240}, "float32": {"macs": None}},
            "bench": {"int8@/dev/ttyUSB0": {"summary": {"chip": "ESP32", "latency_median_us": 50000.0}}}}
    rows = report.energy_rows(data)
    assert [(r["variant"], r["board"]) for r in rows] == [("int8", "esp32"), ("int8", "esp32s3"), ("int8", "esp32c3")]
    assert rows[0]["energy / inference (estimate)"] == "11.22 mJ"              # 50 ms x 68 mA x 3.3 V
    assert rows[0]["battery life at 1/s, 1,000 mAh (estimate)"] == "240.4 h (10.0 days)"
    assert rows[1]["energy / inference (estimate)"] == "—" and "not found" in rows[1]["missing"]
