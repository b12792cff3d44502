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


def test_every_board_has_its_datasheet_currents():
    # ESP32-S3: 5 ms x 87.9 mA x 3.3 V = 1.45035 mJ; 0.005 x 87.9 + 0.995 x 0.24 = 0.6783 mA -> 1474.3 h
    s3 = energy.estimate("esp32s3", 5.0, "by hand")
    assert (s3["active_ma"], s3["light_sleep_ma"]) == (87.9, 0.24)
    assert s3["energy_mj"] == pytest.approx(1.45035, abs=1e-4) and s3["average_ma"] == pytest.approx(0.6783)
    assert s3["battery_hours"] == pytest.approx(1474.3)
    assert "Table 6-6" in s3["active_source"] and "Table 6-7" in s3["light_sleep_source"]
    # ESP32-C3: 40 ms x 28 mA x 3.3 V = 3.696 mJ; 0.04 x 28 + 0.96 x 0.13 = 1.2448 mA -> 803.3 h
    c3 = energy.estimate("esp32c3", 40.0, "by hand")
    assert (c3["active_ma"], c3["light_sleep_ma"]) == (28.0, 0.13)
    assert c3["energy_mj"] == pytest.approx(3.696) and c3["average_ma"] == pytest.approx(1.2448)
    assert c3["battery_hours"] == pytest.approx(803.3)
    assert "v2.4, Table 5-8" in c3["active_source"] and "Table 5-9" in c3["light_sleep_source"]
    assert c3["missing"] == [] and s3["missing"] == []


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
    # no ESP32-S3 bench: the cost model, 1,994,240 MACs x 54 ms / 7,157,888 MACs = 15.045 ms x 87.9 mA x 3.3 V
    assert rows[1]["energy / inference (estimate)"] == "4.3641 mJ" and rows[1]["missing"] == "—"
