"""esptiny bench: stream the test set to boards over serial, collect their outputs and
timings, compare them with the TFLite interpreter and TFLite-Micro's host runtime.

A session per port (any pyserial URL; special names such as "sim" start a device, see
ports.py): open, optionally reset through DTR/RTS, wait for READY skipping boot text,
INFO, check the model; then a pipeline that keeps as many requests in flight as the
board's RX buffer holds, so a fast board is limited by the link and a slow one by its
compute. Replies are matched by seq; the device answers in order, so a reply to a later
request means every earlier one still in flight was lost. Lost, failed or timed-out
requests are resent (bounded per image); a READY mid-run means the board rebooted and
everything in flight is resent. Each image is counted once: a late reply to a request
given up on is still accepted, a second reply for a finished image ignored. A run that
cannot finish keeps a partial result that `--resume` continues.
"""
from __future__ import annotations

import json
import threading
import time
from collections import deque
from pathlib import Path

import numpy as np

from .. import atomic
from ..crc import crc32
from ..devices import ports as portmod
from ..errors import UserError
from ..link import protocol as P
from ..link.client import LinkError, Session, Settings, Stopped, one_line
from ..progress import bar, say

PARTIAL_EVERY_S = 10.0
# What INFO's chip name says about where the timings come from; others are measured.
LATENCY_SOURCES = [
    ("virtual-", "simulated (host time)"),  # esptiny sim
    ("posix-", "native build (host time)"),  # firmware/boards/posix
    ("qemu-", "emulated (QEMU -icount shift=0): cycles are retired instructions; "
              "microseconds are an estimate at 160 MHz, CPI 1"),  # firmware/boards/qemu_rv32
]


def latency_source(chip: str) -> str:
    for prefix, source in LATENCY_SOURCES:
        if chip.startswith(prefix):
            return source
    return "measured on device"



# ---- results, partial results -------------------------------------------------------

class Results:
    """Per-image outputs, timings and the board that answered; thread-safe to add to."""

    def __init__(self, n: int, out_shape: tuple, out_dtype):
        self.outputs = np.zeros((n, *out_shape), dtype=out_dtype)
        self.cycles = np.zeros(n, np.int64)
        self.micros = np.zeros(n, np.int64)
        self.board = np.full(n, -1, np.int32)
        self.boards: list = []  # board labels, indexed by self.board
        self.lock = threading.Lock()

    @property
    def done(self) -> np.ndarray:
        return self.board >= 0

    def board_index(self, label: str) -> int:
        with self.lock:
            if label not in self.boards:
                self.boards.append(label)
            return self.boards.index(label)

    def add(self, i: int, b: int, r: P.InferResult) -> bool:
        with self.lock:
            if self.board[i] >= 0:
                return False
            self.outputs[i] = np.frombuffer(r.output, self.outputs.dtype).reshape(self.outputs.shape[1:])
            self.cycles[i], self.micros[i], self.board[i] = r.cycles, r.micros, b
            return True

    def to_json(self, variant: str, crc: int) -> dict:
        with self.lock:  # copy under the lock, serialise outside: the streams keep going
            board, cycles, micros = self.board.copy(), self.cycles.copy(), self.micros.copy()
            outputs, boards = self.outputs.copy(), list(self.boards)
        idx = np.flatnonzero(board >= 0)
        return {"format": 1, "variant": variant, "model_crc32": f"{crc:08x}",
                "images": len(board), "boards": boards,
                "done": [[int(i), int(board[i]), int(cycles[i]), int(micros[i]),
                          outputs[i].reshape(-1).tolist()] for i in idx]}

    def load_json(self, d: dict, variant: str, crc: int, path):
        if d.get("format") != 1 or d.get("model_crc32") != f"{crc:08x}" or d.get("variant") != variant:
            raise UserError(f"{path} is a partial result for another model; run without --resume")
        if d.get("images") != len(self.board):
            raise UserError(f"{path} covers {d.get('images')} images, this bench {len(self.board)}; "
                            f"use the same -n or run without --resume")
        self.boards = list(d["boards"])
        shape = self.outputs.shape[1:]
        for i, b, cyc, us, out in d["done"]:
            self.outputs[i] = np.asarray(out, self.outputs.dtype).reshape(shape)
            self.cycles[i], self.micros[i], self.board[i] = cyc, us, b


def partial_path(run, variant: str) -> Path:
    return run.file(f"bench/{variant}.partial.json")


# ---- figures ------------------------------------------------------------------------

def _stats(a) -> dict:
    a = np.asarray(a, np.float64)
    return {"median": float(np.median(a)), "p90": float(np.percentile(a, 90)),
            "p99": float(np.percentile(a, 99)), "min": float(a.min()), "max": float(a.max())}


def _compare(dev: np.ndarray, ref: np.ndarray) -> dict:
    diff = np.abs(dev.astype(np.float64) - ref.astype(np.float64)).reshape(len(dev), -1)
    return {"top1_agreement": float(np.mean(dev.reshape(len(dev), -1).argmax(1)
                                            == ref.reshape(len(ref), -1).argmax(1))),
            "max_abs_diff": float(diff.max()) if diff.size else 0.0,
            "identical_outputs": float(np.mean((diff == 0).all(axis=1)))}


def figures(y, dev, ref_tflite, ref_tflm, micros, cycles, num_classes: int) -> dict:
    """Accuracy, agreement with both references, latency, confusion matrix."""
    from .evaluate import confusion
    pred = dev.reshape(len(dev), -1).argmax(1)
    cm = confusion(y, pred, num_classes)
    per_class = cm.diagonal() / np.maximum(cm.sum(1), 1)
    return {"images": int(len(y)), "correct": int((pred == y).sum()),
            "predictions": pred.tolist(),
            "accuracy": float(np.mean(pred == y)),
            "device_vs_tflite": _compare(dev, ref_tflite),
            "device_vs_tflm": _compare(dev, ref_tflm),
            "latency_us": _stats(micros), "latency_cycles": _stats(cycles),
            "confusion_matrix": cm.tolist(), "per_class_accuracy": [float(a) for a in per_class]}


def tflm_reference(run, variant: str, model_bytes: bytes, x: np.ndarray) -> np.ndarray:
    """TFLite-Micro host runtime outputs for x (the first test images): the evaluate
    stage's when it ran this very model on enough images, else computed and cached in the
    run by the model's CRC (reference kernels: about 1.5 ms an image)."""
    from ..model import tflm
    crc = crc32(model_bytes)
    ev = run.manifest()["stages"].get("evaluate", {}).get("variants", {}).get(variant, {})
    rel = (ev.get("outputs") or {}).get("tflm")
    if ev.get("crc32") == crc and rel and run.file(rel).exists():
        try:
            y = np.load(run.file(rel), allow_pickle=False)
            if len(y) >= len(x):
                return y[:len(x)]
        except (OSError, ValueError):
            pass
    path = run.file(f"bench/cache/tflm-{crc:08x}.npy")
    have = None
    if path.exists():
        try:
            have = np.load(path, allow_pickle=False)
        except (OSError, ValueError):
            have = None
    have_n = 0 if have is None else len(have)
    if have_n >= len(x):
        return have[:len(x)]
    with bar("tflm ref", len(x) - have_n) as advance:
        more = tflm.run(model_bytes, x[have_n:], progress=advance)
    out = more if have is None else np.concatenate([have, more])
    with atomic.atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, out)
    return out


# ---- the bench ----------------------------------------------------------------------

def _variant(run, variant: str):
    from ..model import tflite
    entry = run.variants().get(variant)
    path = run.variant_path(variant)
    if entry and entry.get("deployable") is False:
        raise UserError(f"variant '{variant}' does not run on TFLite-Micro: {entry.get('reason')}")
    model = path.read_bytes()
    in_d, out_d = tflite.io_details(model)
    return model, in_d, out_d


def run_bench(run, variant: str = "int8", ports=("sim",), baud: int = 921600, limit=None,
              reset: bool = True, retries: int = 10, timeout: float = 2.0,
              ready_timeout: float = 10.0, resume: bool = False, sim_options=None) -> dict:
    """Bench `variant` on the boards at `ports_` (several shard the test set) and record
    the figures in the run. Returns the summary recorded in the manifest.

    sim_options: settings for boards the bench starts ("sim": sim.SimOptions fields);
    by default they emulate the link at `baud`."""
    from ..model import tflite
    t_start = time.perf_counter()
    port_specs = [ports] if isinstance(ports, str) else list(ports)
    if not port_specs:
        raise UserError("no --port given")
    if retries < 0 or timeout <= 0 or ready_timeout <= 0 or baud <= 0:
        raise UserError("--retries must be 0 or more; --timeout, --ready-timeout and --baud above 0")
    model, in_d, out_d = _variant(run, variant)
    crc = crc32(model)
    ds = run.dataset()
    n = len(ds.x_test) if limit is None else int(limit)
    if not 1 <= n <= len(ds.x_test):
        raise UserError(f"-n must be between 1 and {len(ds.x_test)} (the run's test images), not {n}")
    x = tflite.to_input(ds.x_test[:n], in_d)
    y = ds.y_test[:n].astype(np.int64)
    out_dtype = np.dtype(out_d["dtype"])
    results = Results(n, tuple(int(s) for s in out_d["shape"][1:]), out_dtype)
    ppath = partial_path(run, variant)
    if resume:
        if ppath.exists():
            try:
                results.load_json(json.loads(ppath.read_text()), variant, crc, ppath)
            except (json.JSONDecodeError, KeyError, TypeError, ValueError, IndexError) as e:
                raise UserError(f"{ppath}: unreadable partial result ({one_line(e)})") from None
            say(f"bench: resuming, {int(results.done.sum())}/{n} images already done")
        else:
            say("bench: no partial result to resume; starting afresh")
    labels = portmod.labels(port_specs)
    settings = Settings(baud=baud, reset=reset, retries=retries, timeout=timeout,
                        ready_timeout=ready_timeout)
    device_options = {"baud": baud, **(sim_options or {})}

    todo = deque(int(i) for i in np.flatnonzero(~results.done))
    todo_lock = threading.Lock()

    def work():
        with todo_lock:
            return todo.popleft() if todo else None

    sessions = []
    wall = 0.0
    with portmod.opened_all(port_specs, run, variant, device_options) as urls:
        try:
            for spec, url, label in zip(port_specs, urls, labels):
                sess = Session(url, label, settings, portmod.link_paced(spec, device_options))
                sessions.append(sess)
                sess.connect()
                sess.check(variant, model, in_d, out_d)
            wall = _stream_all(sessions, results, x, work, n, run, variant, crc, ppath)
        finally:
            for sess in sessions:
                sess.close()
    ref_tflite = tflite.run(model, x)
    ref_tflm = tflm_reference(run, variant, model, x)
    summary = _record(run, variant, model, crc, ds, y, results, ref_tflite, ref_tflm, sessions,
                      labels, wall, settings, ppath, time.perf_counter() - t_start)
    say(describe(variant, summary))
    return summary


def describe(variant: str, s: dict) -> str:
    """The summary as a few lines for the terminal."""
    diff_key = next(k for k in s if k.startswith("device_vs_tflite_max_diff"))
    lines = [f"bench {variant} on {s['chip']}: {s['images']} images, accuracy {s['accuracy']:.2%}",
             f"  top-1 agreement: {s['device_vs_tflm_top1']:.2%} with TFLite-Micro's host runtime, "
             f"{s['device_vs_tflite_top1']:.2%} with the TFLite interpreter "
             f"(largest difference {s[diff_key]:g} {diff_key.rsplit('diff_', 1)[1].replace('_', ' ')})",
             f"  latency: median {s['latency_median_us']:,.0f} µs, p99 {s['latency_p99_us']:,.0f} µs, "
             f"{s['latency_source']}"]
    if "estimate_esp_nn_latency_ms" in s:
        lines.append(f"  {s['estimate_label']}: {s['estimate_esp_nn_latency_ms']:,.1f} ms with ESP-NN, "
                     f"{s['estimate_reference_latency_ms']:,.0f} ms with reference kernels")
    if s["images_per_s"]:
        eff = s["link_efficiency"]
        lines.append(f"  throughput: {s['images_per_s']:,.1f} images/s"
                     + (f", link efficiency {eff:.1%}" if eff else "") + f"; {s['retries']} retries")
    return "\n".join(lines)


def _stream_all(sessions, results, x, work, n, run, variant, crc, ppath) -> float:
    stop = threading.Event()
    failures = []
    done_before = int(results.done.sum())

    def payload(i):
        return x[i].tobytes()

    def runner(sess):
        b = results.board_index(sess.label)
        try:
            sess.stream(work, payload, lambda i, r: results.add(i, b, r),
                        lambda i: results.board[i] >= 0, stop)
        except Stopped:
            pass
        except LinkError as e:
            failures.append(str(e))
            stop.set()
        except Exception as e:  # a bug: stop the others too, then let it surface
            failures.append(e)
            stop.set()

    threads = [threading.Thread(target=runner, args=(s,), daemon=True, name=f"bench {s.label}")
               for s in sessions]
    t0 = time.monotonic()
    last_save = t0
    try:
        with bar("bench", n - done_before) as advance:
            for t in threads:
                t.start()
            shown = done_before
            while any(t.is_alive() for t in threads):
                for t in threads:
                    t.join(0.2)
                now_done = int(results.done.sum())
                retries = sum(v for s in sessions for k, v in s.counts.items() if k.startswith("retry"))
                rate = (now_done - done_before) / max(time.monotonic() - t0, 1e-9)
                advance(now_done - shown, **{"img/s": f"{rate:.0f}", "retries": retries})
                shown = now_done
                if time.monotonic() - last_save > PARTIAL_EVERY_S and now_done < n:
                    atomic.write_json(ppath, results.to_json(variant, crc))
                    last_save = time.monotonic()
    except KeyboardInterrupt:
        stop.set()
        for t in threads:
            t.join(5)
        _keep_partial(results, variant, crc, ppath, run)
        raise
    wall = time.monotonic() - t0
    if failures:
        bug = next((f for f in failures if isinstance(f, Exception)), None)
        atomic.write_json(ppath, results.to_json(variant, crc))
        if bug is not None:
            raise bug
        k = int(results.done.sum())
        raise UserError(f"{failures[0]}; {k}/{n} images done, kept in {ppath} "
                        f"(`esptiny bench {run.path} --variant {variant} --resume` continues)")
    missing = int((~results.done).sum())
    assert missing == 0, f"{missing} images neither done nor failed"
    return wall


def _keep_partial(results, variant, crc, ppath, run):
    atomic.write_json(ppath, results.to_json(variant, crc))
    say(f"bench: partial result ({int(results.done.sum())} images) kept in {ppath}; "
        f"--resume continues")


def _record(run, variant, model, crc, ds, y, results, ref_tflite, ref_tflm, sessions, labels,
            wall, settings, ppath, seconds: float) -> dict:
    from ..targets import costmodel
    from . import plots as bench_plots
    key_label = "+".join(labels)
    stem = f"bench/{variant}-{key_label}"
    fig = figures(y, results.outputs, ref_tflite, ref_tflm, results.micros, results.cycles,
                  ds.num_classes)
    chip = sessions[0].info.chip
    source = latency_source(chip)
    new_images = sum(s.images for s in sessions)
    by_label = {s.label: s for s in sessions}
    bound = 0.0
    boards = {}
    for b, label in enumerate(results.boards):  # every board that answered, this run or before
        mask = results.board == b
        if not mask.any():
            continue
        sub = figures(y[mask], results.outputs[mask], ref_tflite[mask], ref_tflm[mask],
                      results.micros[mask], results.cycles[mask], ds.num_classes)
        sub.pop("confusion_matrix")
        sub.pop("predictions")
        boards[label] = sub
        s = by_label.get(label)
        if s is None:
            continue
        med = sub["latency_us"]["median"]
        # An emulated core's microseconds are an estimate for the real chip, not wall time,
        # so they bound nothing here: no link efficiency for it.
        wall_clock = not source.startswith("emulated")
        latency_rate = 1e6 / med if med > 0 and wall_clock else float("inf")
        s_bound = min(s.link_rate(), latency_rate)
        rate = s.images / s.seconds if s.seconds > 0 and s.images else None
        if rate is None or s_bound == float("inf"):
            s_bound = None
        else:
            bound += s_bound
        sub.update({"port": s.url, "info": _info_dict(s.info), "images_this_run": s.images,
                    "stream_seconds": round(s.seconds, 3), "images_per_s": rate,
                    "link_limited_images_per_s": s.link_rate() if s.paced else None,
                    "latency_limited_images_per_s": latency_rate if latency_rate != float("inf") else None,
                    "link_efficiency": rate / s_bound if s_bound else None,
                    "link": dict(s.counts), "boot_noise_bytes": s.noise_bytes})
    rate = new_images / wall if wall > 0 and new_images else None
    quantized = np.dtype(results.outputs.dtype).kind == "i"
    # The cost model is calibrated on int8 kernels: no estimate for a float model.
    estimate = costmodel.estimate(costmodel.model_macs(model), chip) if quantized else None
    out_unit = "int8 steps" if quantized else "output units"
    doc = {
        "variant": variant, "model_crc32": f"{crc:08x}", "model_bytes": len(model),
        "ports": labels, "chip": chip, "latency_source": source, "output_diff_unit": out_unit,
        **fig, "labels": list(ds.labels),
        "throughput": {"images_this_run": new_images, "seconds": round(wall, 3),
                       "images_per_s": rate, "bound_images_per_s": bound,
                       "link_efficiency": rate / bound if rate and bound else None,
                       "baud": settings.baud,
                       "link_rate_note": "UART full duplex: baud/10 bytes/s each way; the "
                                         "longer of request and reply (framing included) sets "
                                         "the link-limited rate"},
        "estimate": estimate,
        "boards": boards,
        "settings": {"retries": settings.retries, "timeout_s": settings.timeout,
                     "reset": settings.reset},
    }
    plots = bench_plots.write_all(run, stem, doc, results.micros)
    atomic.write_json(run.file(f"{stem}.json"), doc)
    if ppath.exists():
        ppath.unlink()
    def rounded(v, digits):
        return None if v is None else round(v, digits)

    summary = {  # headline figures, rounded for reading; the JSON keeps full precision
        "images": fig["images"], "accuracy": round(fig["accuracy"], 4),
        "device_vs_tflm_top1": round(fig["device_vs_tflm"]["top1_agreement"], 4),
        "device_vs_tflm_identical": round(fig["device_vs_tflm"]["identical_outputs"], 4),
        "device_vs_tflite_top1": round(fig["device_vs_tflite"]["top1_agreement"], 4),
        f"device_vs_tflite_max_diff_{out_unit.replace(' ', '_')}": fig["device_vs_tflite"]["max_abs_diff"],
        "latency_median_us": round(fig["latency_us"]["median"], 1),
        "latency_p99_us": round(fig["latency_us"]["p99"], 1),
        "latency_median_cycles": round(fig["latency_cycles"]["median"]),
        "latency_source": source, "chip": chip,
        "images_per_s": rounded(rate, 1), "link_efficiency": rounded(doc["throughput"]["link_efficiency"], 3),
        "retries": sum(v for s in sessions for k, v in s.counts.items() if k.startswith("retry")),
    }
    if estimate:
        summary["estimate_esp_nn_latency_ms"] = estimate["esp_nn_latency_ms"]
        summary["estimate_reference_latency_ms"] = estimate["reference_latency_ms"]
        summary["estimate_label"] = f"estimate for {estimate['chip']} (MAC-count cost model)"
    entry = dict(run.manifest()["stages"].get("bench", {}))
    results_entry = dict(entry.get("results", {}))
    results_entry[f"{variant}@{key_label}"] = {"path": f"{stem}.json", "plots": plots,
                                               "summary": summary}
    entry["results"] = results_entry
    entry["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    entry["seconds"] = round(seconds, 2)
    run.record("bench", entry)
    return summary


def _info_dict(info: P.Info) -> dict:
    def tensor(t):
        return {"dtype": P.DTYPE_NAMES.get(t.dtype, t.dtype), "shape": list(t.shape),
                "scale": t.scale, "zero_point": t.zero_point}
    return {"chip": info.chip, "firmware_version": info.firmware_version,
            "engine": P.ENGINE_NAMES.get(info.engine, info.engine),
            "status": P.STATUS_NAMES.get(info.status, info.status), "cpu_mhz": info.cpu_mhz,
            "model_crc32": f"{info.model_crc32:08x}", "model_bytes": info.model_bytes,
            "arena_bytes": info.arena_bytes, "arena_used_bytes": info.arena_used_bytes,
            "max_payload": info.max_payload, "rx_buffer_bytes": info.rx_buffer_bytes,
            "input": tensor(info.input), "output": tensor(info.output)}
