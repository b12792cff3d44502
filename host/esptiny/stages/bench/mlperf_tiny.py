"""`esptiny bench --protocol mlperf-tiny`: drive a firmware that speaks the MLPerf Tiny
benchmark's protocol (link/mlperf_tiny.py) the way the official runner does, and score it
the way the runner scores it.

Performance mode: 5 inputs, each loaded with `db` and run with `infer N W`; N is chosen
so each window lasts at least `window_s` of the device's own time (10 s, the runner's
rule; shorter windows are allowed for tests and recorded as not meeting it); the score
is the median throughput of the 5 windows, and its inverse the latency. Accuracy mode:
`infer 1 0` on every test input; top-1 and AUC as the runner computes them (for anomaly
detection its threshold sweep and the AUC of the anomaly score). Every m-results line is
also compared, character for character, with what TFLite-Micro's host runtime gives for
the same input tensor, formatted as the firmware formats it.

Writes bench/<variant>-<port>-mlperf-tiny.json and, beside it, the runner's results.txt
(bench/<variant>-<port>-mlperf-tiny/results.txt)."""
from __future__ import annotations

import math
import statistics
import time

import numpy as np

from ... import atomic
from ...devices import ports as portmod
from ...errors import UserError
from ...link import mlperf_tiny as wire
from ...progress import bar, say

WINDOWS = 5              # the runner's `loop 5`
OFFICIAL_WINDOW_S = 10.0
# Warm-ups of the runner's performance scripts (tests_performance.yaml).
WARMUPS = {"ic01": 5, "kws01": 10, "vww01": 5, "ad01": 10}
DEFAULT_WARMUPS = 10
CALIBRATE_MIN_US = 2000  # a calibration window shorter than this is too coarse


def source_of(spec: str) -> str:
    """What the device's microseconds are, for the figures' labels."""
    if spec == "native":
        return "native firmware (this host's clock: host time, not a chip's)"
    if spec == "sim":
        return ("virtual board (the firmware's C core with TFLite-Micro's host runtime: "
                "host time, not a chip's)")
    if spec == "qemu-rv32":
        return ("emulated core (QEMU RV32IMC, -icount: microseconds = instructions / 160 MHz, "
                "an ESP32-C3 estimate)")
    return "board (its own microsecond timer)"


# ---- what TFLite-Micro's host runtime says the device must print -------------------

def _dequantize(q: np.ndarray, details: dict) -> np.ndarray:
    """As the firmware does: (float)(q - zero_point) * scale, in float32."""
    if np.dtype(details["dtype"]) == np.float32:
        return q.astype(np.float32).ravel()
    scale, zp = details["quantization"]
    return (q.astype(np.int64).ravel() - int(zp)).astype(np.float32) * np.float32(scale)


def anomaly_score(out: np.ndarray, x: np.ndarray, out_d: dict, in_d: dict) -> np.float32:
    """Mean squared error between the dequantized output and input, summed in float32 in
    element order as the firmware sums it."""
    d = _dequantize(out, out_d) - _dequantize(x, in_d)
    s = np.float32(0)
    for v in (d * d).astype(np.float32):
        s = np.float32(s + v)
    return np.float32(s / np.float32(d.size))


def results_text(task: str, out: np.ndarray, x: np.ndarray, in_d: dict, out_d: dict) -> str:
    """The inside of m-results-[...] for one inference ("%0.3f" per value)."""
    if task == "ad01" and out.size == x.size:
        return "%0.3f" % float(anomaly_score(out, x, out_d, in_d))
    return ",".join("%0.3f" % float(v) for v in _dequantize(out, out_d))


def guess_task(in_d: dict, out_d: dict) -> str:
    """The task the firmware reports for this model (mlperf_tiny.c's guess_task)."""
    shape = tuple(int(d) for d in in_d["shape"])
    n_out = int(np.prod(out_d["shape"]))
    if shape == (1, 32, 32, 3):
        return "ic01"
    if shape == (1, 49, 10, 1):
        return "kws01"
    if shape == (1, 96, 96, 3):
        return "vww01"
    if int(np.prod(shape)) == 640 and n_out == 640:
        return "ad01"
    return "unknown"


# ---- the runner's scores --------------------------------------------------------------

def auc(y_true: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve of `score` for the positives y_true == 1 (ties count one
    half): what sklearn's roc_auc_score, which the runner calls, computes."""
    y = np.asarray(y_true).astype(bool)
    s = np.asarray(score, dtype=np.float64)
    pos, neg = int(y.sum()), int((~y).sum())
    if pos == 0 or neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s), np.float64)
    sorted_s = s[order]
    i = 0
    while i < len(s):  # average ranks over ties
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return float((ranks[y].sum() - pos * (pos + 1) / 2.0) / (pos * neg))


def classification_scores(results: list, y: np.ndarray) -> dict:
    """The runner's accuracy mode for a classifier: each result vector normalized to sum
    1 (one inference a file), top-1 over argmax, AUC one-vs-rest (binary: the second
    column's). Classes absent from y are left out of the AUC (sklearn would refuse)."""
    p = np.array([np.asarray(r, np.float64) / (sum(r) or 1.0) for r in results])
    y = np.asarray(y).astype(np.int64)
    top1 = 100.0 * float(np.mean(np.argmax(p, axis=1) == y))
    if p.shape[1] == 2:
        a = auc(y == 1, p[:, 1])
    else:
        present = [c for c in range(p.shape[1]) if (y == c).any() and (y != c).any()]
        a = float(np.mean([auc(y == c, p[:, c]) for c in present])) if present else float("nan")
    return {"top1_percent": top1, "auc": a}


def anomaly_scores(scores: np.ndarray, y: np.ndarray) -> dict:
    """The runner's accuracy mode for anomaly detection: "Top 1%" is the best, over 100
    thresholds between the lowest and the highest score, of 100 * (precision + recall) / 2
    (with its 1e-8 guards); AUC that of the score."""
    s = np.asarray(scores, np.float64)
    y = np.asarray(y).astype(np.int64)
    best = 0.0
    for thr in np.amin(s) + np.arange(0.0, 1.0, 0.01) * (np.amax(s) - np.amin(s)):
        pred = s > thr
        tp = np.sum(pred[y == 1])
        fp = np.sum(pred[y == 0])
        fn = np.sum(~pred[y == 1])
        precision = tp / (tp + fp + 1e-8)
        recall = tp / (tp + fn + 1e-8)
        best = max(best, 100 * (precision + recall) / 2)
    return {"top1_percent": float(best), "auc": auc(y == 1, s)}


# ---- the two modes ----------------------------------------------------------------------

def performance(dut: wire.Dut, inputs: list, task: str, window_s: float, warmups: int | None = None,
                timeout_s: float = 30.0, progress=None) -> dict:
    """5 windows of `infer N W`, each on its own input (cycled when fewer than 5), N chosen
    from a calibration so each lasts at least window_s on the device's clock; a window
    that came out short is run again with a larger N (counted in reruns)."""
    w = WARMUPS.get(task, DEFAULT_WARMUPS) if warmups is None else int(warmups)
    dut.load(inputs[0])
    n, t0, calibrations = 1, time.monotonic(), 1
    cal = dut.infer(1, 0, timeout=timeout_s)
    while cal.elapsed_us < CALIBRATE_MIN_US and n < wire.limits()["MAX_COUNT"] // 10:
        n *= 10
        t0 = time.monotonic()
        cal = dut.infer(n, 0, timeout=timeout_s)
        calibrations += 1
    per_us = max(cal.elapsed_us, 1) / n
    host_per_device_s = (time.monotonic() - t0) / max(cal.elapsed_us / 1e6, 1e-9)
    n = max(1, math.ceil(window_s * 1e6 * 1.05 / per_us))
    windows, reruns = [], 0
    for k in range(WINDOWS):
        dut.load(inputs[k % len(inputs)])
        while True:
            expect_s = (n + w) * per_us / 1e6 * host_per_device_s
            r = dut.infer(n, w, timeout=max(timeout_s, 3 * expect_s + 5))
            if r.elapsed_us >= window_s * 1e6 or n >= wire.limits()["MAX_COUNT"]:
                break
            reruns += 1
            n = min(wire.limits()["MAX_COUNT"],
                    max(n + 1, math.ceil(n * window_s * 1e6 * 1.05 / max(r.elapsed_us, 1))))
        windows.append({"iterations": r.iterations, "warmups": r.warmups, "elapsed_us": r.elapsed_us,
                        "throughput": r.iterations / (r.elapsed_us / 1e6) if r.elapsed_us > 0 else 0.0,
                        "cycles": r.cycles, "results": r.results})
        if progress:
            progress(1)
    median = statistics.median(x["throughput"] for x in windows)
    cycles = [x["cycles"] / x["iterations"] for x in windows if x["cycles"] is not None]
    return {"windows": windows, "warmups": w, "window_s_asked": window_s,
            "official_windows": all(x["elapsed_us"] >= OFFICIAL_WINDOW_S * 1e6 for x in windows),
            "reruns": reruns, "calibration_infers": calibrations, "median_throughput_per_s": median,
            "latency_ms": 1e3 / median if median > 0 else None,
            "cycles_per_inference": statistics.median(cycles) if cycles else None}


def accuracy(dut: wire.Dut, inputs: list, timeout_s: float = 30.0, progress=None) -> list:
    """`infer 1 0` on every input, in order: the m-results text and values of each."""
    out = []
    for data in inputs:
        dut.load(data)
        r = dut.infer(1, 0, timeout=timeout_s)
        text = next(line for line in r.lines if line.startswith("m-results-["))[11:-1]
        out.append({"text": text, "values": r.results, "cycles": r.cycles, "elapsed_us": r.elapsed_us})
        if progress:
            progress(1)
    return out


# ---- results.txt, as the runner writes it --------------------------------------------

def results_txt(perf: dict | None, acc: dict | None, when: float | None = None) -> str:
    stamp = time.strftime("%m%d.%H%M%S ", time.localtime(when))
    lines = []
    if perf is not None:
        for k, w in enumerate(perf["windows"]):
            lines += [f"Performance results for window {k + 1}",
                      f"    # Inferences : {w['iterations']}",
                      f"    Runtime: {w['elapsed_us'] / 1e6} sec.",
                      f"    Throughput: {w['throughput']} inf./sec."]
            if w["elapsed_us"] / 1e6 > OFFICIAL_WINDOW_S:
                lines.append("    Runtime requirements have been met.")
        rule = f"{stamp}ulp-mlperf: ---------------------------------------------------------"
        lines += [rule, f"{stamp}ulp-mlperf: Median throughput is "
                        f"{perf['median_throughput_per_s']:>10.3f} inf./sec.", rule]
    if acc is not None and acc.get("top1_percent") is not None:
        lines += [f"{stamp}ulp-mlperf: Top 1% = {acc['top1_percent']:2.1f}",
                  f"{stamp}ulp-mlperf: AUC = {acc['auc']:.3f}"]
    return "\n".join(lines) + "\n"


# ---- the bench -------------------------------------------------------------------------

def run_mlperf(run, variant: str = "int8", port: str = "native", mode: str = "both",
               limit: int | None = None, window_s: float = OFFICIAL_WINDOW_S,
               warmups: int | None = None, baud: int = 921600, reset: bool = True,
               timeout: float = 30.0, ready_timeout: float = 10.0) -> dict:
    """Bench `variant` over the MLPerf Tiny protocol on one port; record the figures."""
    from ...model import tflite
    from .reference import tflm_reference
    if mode not in ("performance", "accuracy", "both"):
        raise UserError(f"--mode must be performance, accuracy or both, not {mode}")
    if window_s <= 0 or timeout <= 0 or ready_timeout <= 0:
        raise UserError("--window-seconds, --timeout and --ready-timeout must be above 0")
    t_start = time.perf_counter()
    model = run.deployable_variant_path(variant).read_bytes()
    in_d, out_d = tflite.io_details(model)
    ds = run.test_set(variant)
    n = len(ds) if limit is None else int(limit)
    if not 1 <= n <= len(ds):
        raise UserError(f"-n must be between 1 and {len(ds)} (the variant's test inputs), not {n}")
    ds = ds.first(n)
    x = ds.model_inputs(in_d)
    blobs = [x[i].tobytes() for i in range(n)]
    label = portmod.label(port)
    target = portmod.Target(run.variant_path(variant), run.path / "build" / variant, wire.PROTOCOL)
    perf = acc = acc_raw = None
    with portmod.open_port(port, target, {}) as url:
        special = portmod.is_special(port)
        dut = wire.Dut(url, baud=baud, timeout=timeout, reset=reset and not special)
        try:
            dut.wait_boot(ready_timeout if special else 2.0)
            name = dut.name()
            profile = dut.profile()
            task = profile["model"]
            if mode in ("performance", "both"):
                with bar("mlperf perf", WINDOWS) as advance:
                    perf = performance(dut, blobs[:WINDOWS], task, window_s, warmups, timeout, advance)
            if mode in ("accuracy", "both"):
                with bar("mlperf acc", n) as advance:
                    acc_raw = accuracy(dut, blobs, timeout, advance)
        except wire.DeviceError as e:
            raise UserError(f"mlperf-tiny bench on {label}: {e}") from None
        finally:
            dut.close()
    if acc_raw is not None:
        ref = tflm_reference(run, variant, model, x)
        expected = [results_text(task, ref[i], x[i], in_d, out_d) for i in range(n)]
        mismatches = [i for i in range(n) if acc_raw[i]["text"] != expected[i]]
        acc = {"images": n, "identical_to_tflm": not mismatches, "mismatches": len(mismatches),
               "first_mismatch": None if not mismatches else {
                   "image": mismatches[0], "device": acc_raw[mismatches[0]]["text"][:200],
                   "tflm": expected[mismatches[0]][:200]},
               "top1_percent": None, "auc": None}
        y = ds.y
        if y is not None and np.asarray(y).ndim == 1 and np.issubdtype(np.asarray(y).dtype, np.integer):
            values = [r["values"] for r in acc_raw]
            if task == "ad01":
                acc.update(anomaly_scores(np.array([v[0] for v in values]), y))
            elif len(values[0]) >= 2:
                acc.update(classification_scores(values, y))
        cycles = [r["cycles"] for r in acc_raw if r["cycles"] is not None]
        # median_low: one input's exact count, not the mean of two
        acc["cycles_per_inference_median"] = statistics.median_low(cycles) if cycles else None
    stem = f"bench/{variant}-{label}-mlperf-tiny"
    summary = {"protocol": wire.PROTOCOL, "variant": variant, "port": port, "task": task,
               "task_name": wire.TASKS.get(task, "unknown"), "dut_name": name,
               "profile": profile.get("profile"), "source": source_of(port),
               "performance": perf, "accuracy": acc,
               "commands": dut.counts.commands, "lines": dut.counts.lines,
               "bytes_sent": dut.counts.bytes_sent, "boot_lines": dut.boot_lines,
               "seconds": round(time.perf_counter() - t_start, 2),
               "json": f"{stem}.json", "results_txt": f"{stem}/results.txt"}
    if port == "qemu-rv32":
        from ...devices import qemu
        # Exact per inference from accuracy mode's `infer 1 0` (median over the inputs);
        # else the performance windows' count / N.
        c = (acc or {}).get("cycles_per_inference_median") or (perf or {}).get("cycles_per_inference")
        summary["qemu"] = {"instructions_per_inference": c, "counter": qemu.COUNTER,
                           "esp32c3_estimate_ms": qemu.estimate_ms(c) if c else None,
                           "estimate_note": qemu.ESTIMATE_NOTE}
    atomic.write_text(run.file(summary["results_txt"]), results_txt(perf, acc))
    atomic.write_json(run.file(summary["json"]), summary)
    run.record("mlperf_tiny", {"results": {f"{variant}-{label}": _headline(summary)},
                               "finished": time.strftime("%Y-%m-%dT%H:%M:%S")}, merge="results")
    say(describe(summary))
    return summary


def _headline(s: dict) -> dict:
    perf, acc = s["performance"] or {}, s["accuracy"] or {}
    out = {"task": s["task"], "source": s["source"], "json": s["json"], "results_txt": s["results_txt"]}
    if perf:
        out.update(median_throughput_per_s=round(perf["median_throughput_per_s"], 3),
                   latency_ms=round(perf["latency_ms"], 4) if perf["latency_ms"] else None,
                   official_windows=perf["official_windows"])
    if acc:
        out.update(images=acc["images"], identical_to_tflm=acc["identical_to_tflm"],
                   top1_percent=acc["top1_percent"], auc=acc["auc"])
    if s.get("qemu"):
        out.update(qemu_instructions_per_inference=s["qemu"]["instructions_per_inference"],
                   esp32c3_estimate_ms=s["qemu"]["esp32c3_estimate_ms"])
    return out


def describe(s: dict) -> str:
    parts = [f"mlperf-tiny {s['task']} on {s['port']}"]
    perf, acc = s["performance"], s["accuracy"]
    if perf:
        note = "" if perf["official_windows"] else f", windows of {perf['window_s_asked']:g} s: not the 10 s rule"
        parts.append(f"median {perf['median_throughput_per_s']:.3f} inf/s, {perf['latency_ms']:.3f} ms "
                     f"({s['source'].split(' (')[0]}{note})")
    if acc:
        same = "identical to" if acc["identical_to_tflm"] else f"{acc['mismatches']} differ from"
        top = "" if acc["top1_percent"] is None else f", top-1 {acc['top1_percent']:.1f}%, AUC {acc['auc']:.3f}"
        parts.append(f"{acc['images']} results {same} TFLite-Micro{top}")
    if s.get("qemu") and s["qemu"]["instructions_per_inference"]:
        parts.append(f"{s['qemu']['instructions_per_inference']:,.0f} instructions/inference "
                     f"(ESP32-C3 estimate {s['qemu']['esp32c3_estimate_ms']:.2f} ms)")
    return "; ".join(parts) + f"; results.txt: {s['results_txt']}"
