"""The demo int8 model on the emulated ESP32-C3-class board (QEMU riscv32 virt, RV32IMC).

Cross-compiles the firmware (portable core + AOT engine + the model), benches it with
`esptiny bench --port qemu-rv32` on the first N test images (default 1,000), then runs the
same images twice more on fresh QEMUs to check that the instruction counts repeat exactly.

    python benchmarks/emulated_board.py [RUN] [-n N]

RUN defaults to runs/demo; without one a small CNN is trained into build/benchmarks/.
Like `esptiny bench`, it records its results in RUN (bench/, build/int8/qemu_rv32/).
Figures: on-device accuracy and agreement with TFLite-Micro's host runtime (bit-exact
expected); instructions per inference (minstret under QEMU -icount shift=0: exact counts,
not ESP32-C3 cycles) and the ESP32-C3 time they give at 160 MHz under a stated CPI
assumption (an estimate); per layer (per_layer: each AOT step's ops, MACs, instructions
and instructions per MAC, from `--profile` on the profiling build); flash and RAM from the ELF against 4 MB / 400 KB; throughput
over the emulated UART (a local TCP socket), for inference and for bare PINGs of an
image's size. Ends with one JSON line.
"""
import argparse
import json
import sys
import time

import numpy as np
from click.testing import CliRunner
from esptiny import paths
from esptiny.cli import main
from esptiny.devices import qemu, rv32_firmware
from esptiny.errors import UserError
from esptiny.model import tflite
from esptiny.stages import compress as compress_stage
from esptiny.stages import train as train_stage
from esptiny.stages.run import Run, new_run


def demo_run(path) -> Run:
    if path:
        return Run(path)
    demo = paths.REPO / "runs" / "demo"
    if (demo / "manifest.json").exists() and Run(demo).has("compress") and "int8" in Run(demo).variants():
        return Run(demo)
    run = Run(paths.REPO / "build" / "benchmarks" / "emulated_board_run")
    if not run.has("compress"):  # a quick stand-in for the demo model
        print("no runs/demo: training a small CNN for 3 epochs", file=sys.stderr)
        run = new_run(run.path)
        train_stage.train(run, model_name="cnn", epochs=3, seed=0)
        compress_stage.compress(run, methods=["int8"], rep_samples=200)
    return run


def ping_rate(fw, payload_bytes: int, n: int) -> float:
    """PING round trips a second with payload_bytes each way, as many in flight as the
    board's RX budget allows: what the emulated UART moves without any inference."""
    import serial
    from esptiny.link import protocol as P
    with qemu.serve(fw) as url:
        ser = serial.serial_for_url(url, timeout=0.5)
        parser, got, sent, t0 = P.Parser(), 0, 0, None
        try:
            while not any(isinstance(e, P.Frame) and e.type == P.READY for e in parser.feed(ser.read(256))):
                pass
            budget = max(1, 8192 // (P.OVERHEAD + payload_bytes))
            t0 = time.perf_counter()
            while got < n:
                while sent < n and sent - got < budget:
                    sent += 1
                    ser.write(P.encode_frame(P.PING_REQ, sent, bytes(payload_bytes)))
                got += sum(isinstance(e, P.Frame) and e.type == P.PONG
                           for e in parser.feed(ser.read(max(1, ser.in_waiting))))
            return n / (time.perf_counter() - t0)
        finally:
            ser.close()


def main_():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", nargs="?")
    ap.add_argument("-n", type=int, default=1000, help="test images (default 1,000)")
    args = ap.parse_args()
    try:
        rv32_firmware.require_cross_compiler()
        qemu.require_qemu()
    except UserError as e:
        sys.exit(f"emulated_board: {e}")
    run = demo_run(args.run)
    model = run.variant_path("int8").read_bytes()

    t0 = time.perf_counter()
    fw = rv32_firmware.build(model, run.path / "build" / "int8" / "qemu_rv32")
    build_s = time.perf_counter() - t0

    r = CliRunner().invoke(main, ["bench", str(run.path), "--variant", "int8", "--port", "qemu-rv32",
                                  "-n", str(args.n), "--profile", "1"], catch_exceptions=False)
    print(r.output, file=sys.stderr)
    if r.exit_code != 0:
        sys.exit(r.exit_code)
    entry = run.stage("bench")["results"]["int8@qemu-rv32"]
    doc = json.loads(run.file(entry["path"]).read_text())
    prof = json.loads(run.file(entry["profile"]["path"]).read_text())

    # Two more runs, each on a fresh QEMU, for per-image counts.
    in_d, _ = tflite.io_details(model)
    x = tflite.to_input(run.dataset().x_test[:args.n], in_d)
    out1, counts1 = qemu.run_images(fw, x)
    out2, counts2 = qemu.run_images(fw, x)
    deterministic = bool(np.array_equal(counts1, counts2) and out1 == out2
                         and float(np.median(counts1)) == doc["latency_instructions"]["median"]
                         and int(counts1.min()) == doc["latency_instructions"]["min"]
                         and int(counts1.max()) == doc["latency_instructions"]["max"])

    pings = ping_rate(fw, x[0].nbytes, 300)
    per_inference = float(np.median(counts1))
    try:
        from esptiny.targets.costmodel import model_macs
        macs = model_macs(model)
    except ImportError:  # the cost model is optional here
        macs = None
    s = fw.sizes
    print(json.dumps({
        "images": doc["images"],
        "accuracy": doc["accuracy"],
        "device_vs_tflm_top1": doc["device_vs_tflm"]["top1_agreement"],
        "device_vs_tflm_identical_outputs": doc["device_vs_tflm"]["identical_outputs"],
        "device_vs_tflite_top1": doc["device_vs_tflite"]["top1_agreement"],
        "instructions_per_inference": per_inference,
        "instructions_min_max": [int(counts1.min()), int(counts1.max())],
        "instructions_unit": qemu.COUNTER,
        "instructions_per_mac": round(per_inference / macs, 2) if macs else None,
        "per_layer": [{"ops": s["op_names"], "macs": s["macs"], "instructions": int(s["counter"]),
                       "instructions_per_mac": s["counter_per_mac"]} for s in prof["steps"]],
        "per_layer_source": prof["source"] + "; the first test image, on the profiling build",
        "per_layer_sum_over_inference": round(prof["steps_over_inference"], 5),
        "profiling_build_instructions": int(prof["inference"]),
        "macs": macs,
        "deterministic": deterministic,
        "deterministic_runs": 3,
        "estimated_esp32c3_ms": round(qemu.estimate_ms(per_inference), 2),
        "estimate_note": qemu.ESTIMATE_NOTE,
        "assumed_cpi": qemu.ASSUMED_CPI,
        "flash_bytes": s["flash_bytes"], "flash_limit": rv32_firmware.FLASH_LIMIT,
        "ram_bytes": s["ram_bytes"], "ram_limit": rv32_firmware.RAM_LIMIT,
        "ram_breakdown": {k: s[f"{k}_bytes"] for k in ("stack", "data", "bss")},
        "flash_breakdown": {k: s[f"{k}_bytes"] for k in ("text", "rodata", "data")},
        "largest_ram_symbol": s["largest_ram_symbol"],
        "uart_images_per_s": doc["throughput"]["images_per_s"],
        "uart_ping_round_trips_per_s": round(pings, 1),
        "uart_bytes_per_s_each_way": round(pings * (x[0].nbytes + 11)),
        "uart": "QEMU 16550 on a local TCP socket (nodelay), pipelined by esptiny bench",
        "build_seconds": round(build_s, 2),
        "run": str(run.path),
    }))


if __name__ == "__main__":
    main_()
