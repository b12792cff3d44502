"""Reliability, measured: 10,000 images on the native firmware (this host) through a link
with 0.05% byte corruption and 0.05% byte drops each way, two reboots and one hang, with
esptiny bench's default options (link/client.py Settings()).

    python benchmarks/faults.py [RUN] [-n 10000] [--corrupt 0.0005] [--drop 0.0005]

The int8 model of RUN (runs/demo, made by `make demo`; without it a small CNN is trained
into a temporary run) is built into firmware-native; the link emulation (devices/linkemu.py,
what `--device-option` puts in front of a device) stands between the bench's client and
the firmware's pty: faults drawn per byte from a seeded generator, reboots (the firmware
process restarted) at two request counts, a hang (nothing answered) at a third, cleared
when the host reopens the port. A clean pass over the same firmware gives the reference
outputs.

Last line, one JSON object: images (done in the faulty run), identical_to_clean (fraction
of images whose output bytes equal the clean run's), counted_once (every image accepted
exactly once), retries (resends), reboots_survived, hangs_survived, reopens, seconds (the
faulty run's wall time), and the link's counts. Targets: images 10000, identical_to_clean
1.0, counted_once true.
"""
import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_link import quick_run, scratch_run  # noqa: E402
from esptiny import paths  # noqa: E402
from esptiny.devices import linkemu, native  # noqa: E402
from esptiny.link import client  # noqa: E402
from esptiny.model import tflite  # noqa: E402
from esptiny.stages.run import Run  # noqa: E402


def bench(url, x, label):
    """Every image through one session with default options: outputs and accept counts."""
    n = len(x)
    outputs, accepted = [None] * n, np.zeros(n, np.int64)
    pending = iter(range(n))

    def accept(i, r):
        if outputs[i] is not None:
            return False
        outputs[i] = r.output
        accepted[i] += 1
        return True

    sess = client.Session(url, label, client.Settings(), paced=False)
    try:
        sess.connect()
        sess.stream(lambda: next(pending, None), lambda i: x[i].tobytes(), accept,
                    lambda i: outputs[i] is not None, threading.Event())
    finally:
        sess.close()
    return outputs, accepted, sess


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", nargs="?", default=str(paths.REPO / "runs" / "demo"))
    ap.add_argument("-n", type=int, default=10000)
    ap.add_argument("--corrupt", type=float, default=0.0005)
    ap.add_argument("--drop", type=float, default=0.0005)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="esptiny-faults-"))
    src = Path(args.run)
    if (src / "manifest.json").exists() and Run(src).has("compress"):
        run = scratch_run(src, tmp / "run")
    else:
        print(f"faults: no run at {src}; training a small CNN", file=sys.stderr)
        run = quick_run(tmp / "run", args.n)
    model = run.variant_path("int8").read_bytes()
    d_in, _ = tflite.io_details(model)
    x = run.test_set("int8").first(args.n).model_inputs(d_in)
    n = len(x)
    build = tmp / "build"
    exe = native.build(model, build)

    with native.serve(exe) as url:
        clean, _, _ = bench(url, x, "native (clean)")
    # linkemu counts every request frame the device is sent (about one an image, plus
    # resends): reboots at a fifth and three fifths of the run, the hang at two fifths
    k = n
    opts = linkemu.LinkOptions(corrupt_rate=args.corrupt, drop_rate=args.drop, seed=args.seed,
                               reset_after=(k // 5, 3 * k // 5), hang_after=2 * k // 5).check()
    t0 = time.perf_counter()
    error = None
    with linkemu.front(lambda: native.serve(exe), opts, reboot="restart") as (url, link):
        try:
            outputs, accepted, sess = bench(url, x, "native (faulty link)")
        except client.LinkError as e:
            error, outputs, accepted, sess = str(e), [None] * n, np.zeros(n), None
        seconds = time.perf_counter() - t0
        stats = {"requests": link.requests, "bytes_corrupted": link.faults.corrupted,
                 "bytes_dropped": link.faults.dropped, "reboots_injected": len(opts.reset_after),
                 "reboots_done": link.reboots, "hangs_injected": link.hangs}
    faults = {"corrupt": args.corrupt, "drop": args.drop, "seed": args.seed,
              "reboot_at": list(opts.reset_after), "hang_at": opts.hang_after}
    done = sum(o is not None for o in outputs)
    identical = sum(o is not None and o == c for o, c in zip(outputs, clean)) / n
    counts = dict(sess.counts) if sess else {}
    reboots_seen = counts.get("reboots", 0)
    doc = {
        "images": done,
        "identical_to_clean": identical,
        "counted_once": bool(done == n and (accepted == 1).all() and sess is not None and sess.images == n),
        "retries": sum(v for kk, v in counts.items() if kk.startswith("retry")),
        "reboots_survived": min(reboots_seen, len(opts.reset_after)) if error is None else 0,
        "hangs_survived": min(counts.get("reopens", 0), stats["hangs_injected"]) if error is None else 0,
        "reopens": counts.get("reopens", 0),
        "seconds": round(seconds, 2),
        "source": "native firmware (this host) behind devices/linkemu.py (unpaced pty)",
        "settings": "esptiny bench defaults (client.Settings())",
        "faults": {**faults, **stats},
        "link": counts,
        "error": error,
    }
    print(f"{done}/{n} images through {args.corrupt:.2%} corruption and {args.drop:.2%} drops "
          f"each way, {reboots_seen} reboots seen, {doc['reopens']} reopens: "
          f"{identical:.4f} identical to the clean run, {doc['retries']} resends, {seconds:.0f} s",
          file=sys.stderr)
    print(json.dumps(doc))


if __name__ == "__main__":
    main()
