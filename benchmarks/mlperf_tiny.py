"""The four MLPerf Tiny tasks through the benchmark's own serial protocol, on the firmware
esptiny builds here.

    python benchmarks/mlperf_tiny.py [-n 50] [--qemu-n 20] [--window 2] [--qemu-window 1]
                                     [--official] [--tasks ic01,kws01,vww01,ad01]

Per task (the look-alikes of tests/mlperf_tasks.py: tests/zoo.py's tf_keras ResNet-8,
DS-CNN, MobileNet-v1 0.25 96x96x3 and dense autoencoder on synthetic data, brought in
with `esptiny import` into build/benchmarks/mlperf_tiny/<task>/run), each through
`esptiny bench --protocol mlperf-tiny` (stages/bench/mlperf_tiny.py):
- --port native: the firmware (core, POSIX board, AOT engine) built with the host's gcc.
  Performance mode's median throughput and latency are THIS HOST's time (labelled
  "native firmware"), not a chip's.
- --port qemu-rv32: the same firmware cross-compiled for RV32IMC and run under QEMU with
  -icount: instructions per inference are exact (the firmware's m-infer-cycles line
  around `infer 1 0`, median over the accuracy inputs), and the ESP32-C3 time is an
  ESTIMATE (instructions at 1 cycle each, 160 MHz: a lower bound).
- accuracy mode on both: every m-results line compared, character for character, with
  TFLite-Micro's host runtime on the same input tensor; top-1 (or, anomaly detection,
  the runner's threshold sweep) and AUC as the runner computes them.
Engines: the AOT engine is the one that builds here (TFLite-Micro is built only by
ESP-IDF for the chips); TFLite-Micro's host runtime is the reference.

Windows: the benchmark's rule is 10 s each; the defaults here are shorter to keep the
run to minutes, and are recorded as such (--official uses 10 s).

The last line is one JSON object: tasks, all_identical_to_tflm, and per task the QEMU
instructions per inference, the ESP32-C3 estimate and the native figures."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))  # tests/mlperf_tasks.py, tests/zoo.py
sys.path.insert(0, str(HERE.parent / "host"))

import mlperf_tasks  # noqa: E402
from esptiny.stages.bench.mlperf_tiny import run_mlperf  # noqa: E402
from esptiny.stages.run import Run  # noqa: E402

OUT = HERE.parent / "build" / "benchmarks" / "mlperf_tiny"


def task_run(task: str, n: int) -> Run:
    path = OUT / task / "run"
    if path.exists():
        run = Run(path)
        try:
            if len(run.test_set("int8")) >= n:
                return run
        except Exception:  # an older or broken run: rebuild it
            pass
        import shutil
        shutil.rmtree(path.parent)
    return mlperf_tasks.make_run(path, task, n)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=50, help="accuracy-mode inputs on --port native")
    ap.add_argument("--qemu-n", type=int, default=20, help="accuracy-mode inputs on --port qemu-rv32")
    ap.add_argument("--window", type=float, default=2.0, help="seconds per window on native")
    ap.add_argument("--qemu-window", type=float, default=1.0,
                    help="device seconds (instructions / 160 MHz) per window on qemu-rv32")
    ap.add_argument("--official", action="store_true", help="10 s windows on both")
    ap.add_argument("--tasks", default=",".join(mlperf_tasks.TASKS))
    args = ap.parse_args()
    if args.official:
        args.window = args.qemu_window = 10.0
    tasks = [t for t in args.tasks.split(",") if t]
    per_task, all_identical = {}, True
    for task in tasks:
        t0 = time.perf_counter()
        run = task_run(task, max(args.n, args.qemu_n))
        build_s = time.perf_counter() - t0
        nat = run_mlperf(run, "int8", "native", "both", limit=args.n, window_s=args.window)
        qemu = run_mlperf(run, "int8", "qemu-rv32", "both", limit=args.qemu_n, window_s=args.qemu_window)
        same = nat["accuracy"]["identical_to_tflm"] and qemu["accuracy"]["identical_to_tflm"]
        all_identical &= same
        row = {
            "model": mlperf_tasks.TASKS[task][1], "engine": "aot",
            "tflm_engine": "not built here (TFLite-Micro builds in ESP-IDF only); host runtime = reference",
            "identical_to_tflm": same,
            "accuracy_images": {"native": nat["accuracy"]["images"], "qemu": qemu["accuracy"]["images"]},
            "top1_percent": nat["accuracy"]["top1_percent"], "auc": nat["accuracy"]["auc"],
            "qemu_instructions_per_inference": qemu["qemu"]["instructions_per_inference"],
            "qemu_window_instructions_per_inference": qemu["performance"]["cycles_per_inference"],
            "esp32c3_estimate_ms": qemu["qemu"]["esp32c3_estimate_ms"],
            "qemu_median_throughput_per_s_estimate": qemu["performance"]["median_throughput_per_s"],
            "native_median_throughput_per_s_host_time": nat["performance"]["median_throughput_per_s"],
            "native_latency_ms_host_time": nat["performance"]["latency_ms"],
            "windows_s": {"native": args.window, "qemu": args.qemu_window},
            "official_windows": nat["performance"]["official_windows"] and qemu["performance"]["official_windows"],
            "seconds": {"build_and_import": round(build_s, 1), "native": nat["seconds"], "qemu": qemu["seconds"]},
        }
        per_task[task] = row
        print(f"{task} ({row['model']}): identical to TFLite-Micro {same}; "
              f"QEMU {row['qemu_instructions_per_inference']:,.0f} instructions/inference "
              f"(ESP32-C3 estimate {row['esp32c3_estimate_ms']:.2f} ms); native {row['native_latency_ms_host_time']:.4f} ms "
              f"host time; top-1 {row['top1_percent']:.1f}%, AUC {row['auc']:.3f}", flush=True)
    print(json.dumps({"tasks": len(per_task), "all_identical_to_tflm": all_identical,
                      "units": {"qemu_instructions_per_inference": "RV32IMC instructions (QEMU -icount, exact)",
                                "esp32c3_estimate_ms": "estimate: instructions / 160 MHz at 1 cycle each (lower bound)",
                                "native_latency_ms_host_time": "ms of this host's time (native firmware)"},
                      "per_task": per_task}))


if __name__ == "__main__":
    main()
