"""The serial benchmark's pipeline against an emulated 921600-baud UART.

Benches the demo int8 model (runs/demo, made by `make demo`; without it a small CNN is
trained into a temporary run) on the virtual board (the firmware's C core with
TFLite-Micro's host runtime) behind the link emulation (devices/linkemu.py) pacing bytes
at 921600 baud both ways, on the first N test images (default 2,000: about 17 s of link
time), and large_input_link_efficiency (benchmarks/large_input.py: the zoo's 96x96x3
MobileNet, 27,648 B in pieces, over a paced link at the same baud; --large-n images, 0 to
skip; its source is in large_input_source).

    python benchmarks/bench_link.py [RUN] [-n N] [--baud B] [--large-n 30]

The bench runs on a scratch copy of the run's manifest and int8 model, so the demo's own
bench results are left as they are. Target: link_efficiency >= 0.95, where efficiency is
the achieved images/s over the link-limited rate (UART full duplex: the longer of request
and reply, framing included, at baud/10 bytes a second); it exists only on a paced link
and is never above 1. Ends with one JSON line.
"""
import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from esptiny import paths
from esptiny.stages import bench
from esptiny.stages import compress as compress_stage
from esptiny.stages import train as train_stage
from esptiny.stages.run import Run, new_run


def scratch_run(src: Path, dst: Path) -> Run:
    """A run holding src's manifest, int8 model and TFLite-Micro outputs, nothing else."""
    run = Run(src)
    m = run.manifest()
    m["stages"].pop("bench", None)
    keep = [m["stages"]["compress"]["variants"]["int8"]["path"]]
    tflm_out = m["stages"].get("evaluate", {}).get("variants", {}).get("int8", {}).get("outputs", {}).get("tflm")
    keep += [tflm_out] if tflm_out else []
    for rel in keep:
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src / rel, dst / rel)
    (dst / "manifest.json").write_text(json.dumps(m))
    return Run(dst)


def quick_run(dst: Path, n: int) -> Run:
    run = new_run(dst)
    train_stage.train(run, model_name="cnn", train_limit=6000, test_limit=n, epochs=2, seed=0)
    compress_stage.compress(run, methods=["int8"], rep_samples=200)
    return run


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", nargs="?", default=str(paths.REPO / "runs" / "demo"))
    ap.add_argument("-n", type=int, default=2000, help="test images to bench")
    ap.add_argument("--baud", type=int, default=921600)
    ap.add_argument("--large-n", type=int, default=30, help="images for large_input_link_efficiency")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="esptiny-bench-link-"))
    try:
        src = Path(args.run)
        if (src / "manifest.json").exists() and Run(src).has("compress"):
            run, source = scratch_run(src, tmp / "run"), str(src)
        else:
            print(f"bench_link: no run at {src}; training a small CNN", file=sys.stderr)
            run, source = quick_run(tmp / "run", args.n), "quick 2-epoch CNN (no runs/demo)"
        t0 = time.perf_counter()
        s = bench.run_bench(run, "int8", ports=("sim",), baud=args.baud, limit=args.n)
        seconds = time.perf_counter() - t0
        doc = json.loads(run.file("bench/int8-sim.json").read_text())
        large = None
        if args.large_n:
            import large_input
            large = large_input.measure(large_input.zoo_run(tmp / "large", args.large_n),
                                        n=args.large_n, baud=args.baud)
            print(f"large input: {large}", file=sys.stderr)
        board, tp = doc["boards"]["sim"], doc["throughput"]
        eff = tp["link_efficiency"]
        print(f"{s['images']} images at {args.baud} baud: {tp['images_per_s']:.1f} images/s of "
              f"{board['link_limited_images_per_s']:.1f} link-limited "
              f"({board['latency_limited_images_per_s']:.0f} latency-limited): "
              f"efficiency {eff if eff is None else round(eff, 3)}; accuracy {s['accuracy']:.2%}, "
              f"{s['device_vs_tflm_top1']:.2%} top-1 agreement with TFLite-Micro, "
              f"{s['device_vs_tflite_top1']:.2%} with TFLite", file=sys.stderr)
        print(json.dumps({
            "images": s["images"],
            "accuracy": s["accuracy"],
            "device_vs_tflm_top1": s["device_vs_tflm_top1"],
            "device_vs_tflm_identical_outputs": s["device_vs_tflm_identical"],
            "device_vs_tflite_top1": s["device_vs_tflite_top1"],
            "images_per_s": round(tp["images_per_s"], 2),
            "link_limited_images_per_s": board["link_limited_images_per_s"],
            "latency_limited_images_per_s": board["latency_limited_images_per_s"],
            "link_efficiency": None if eff is None else round(eff, 4),
            "link_efficiency_why_none": tp["link_efficiency_why_none"],
            "target_link_efficiency": 0.95,
            "baud": args.baud,
            "latency_median_us": s["latency_median_us"],
            "source": s["source"],
            "latency_source": s["latency_source"],
            "latency_median_cycles": s["latency_median_cycles"],
            "retries": s["retries"],
            "bench_seconds": round(seconds, 1),
            "model": source,
            "large_input_link_efficiency": large and large["efficiency"],
            "target_large_input_link_efficiency": 0.9,
            "large_input": large,
        }))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
