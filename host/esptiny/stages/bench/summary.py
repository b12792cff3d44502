"""A finished bench as the run records it: the JSON document, the plots, the manifest entry
with its headline figures, and those figures as lines for the terminal."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ... import atomic
from ...devices import ports
from ...errors import UserError
from ...link import protocol as P
from ...targets import costmodel
from .. import plots as bench_plots
from .figures import figures


@dataclass
class Finished:
    """Everything a finished bench measured, for recording."""
    run: object
    variant: str
    model: bytes
    crc: int
    dataset: object           # stages.data.TestSet, the inputs streamed
    y: np.ndarray | None      # its labels or targets
    results: object           # results.Results
    ref_tflite: np.ndarray
    ref_tflm: np.ndarray
    sessions: list            # link.client.Session, one per port
    labels: list              # port labels
    wall: float               # seconds the streams ran
    settings: object          # link.client.Settings
    partial: Path             # the partial result to remove
    seconds: float            # the whole stage
    exported_for: str | None  # the board the variant was exported for, if it was


def record(f: Finished) -> dict:
    """Write the bench's JSON and plots and its manifest entry; return the summary."""
    run, variant, model, crc, ds = f.run, f.variant, f.model, f.crc, f.dataset
    results, ref_tflite, ref_tflm, sessions = f.results, f.ref_tflite, f.ref_tflm, f.sessions
    labels, wall, settings, ppath = f.labels, f.wall, f.settings, f.partial
    key_label = "+".join(labels)
    stem = f"bench/{variant}-{key_label}"
    from ...model import tflite
    out_d = tflite.io_details(model)[1]
    chip = sessions[0].info.chip
    source = ports.source_of(chip)
    if any(ports.source_of(x.info.chip) != source for x in sessions):
        raise UserError("the boards of one bench must be of one kind (board, virtual board, "
                        "native firmware, emulated core): their figures mean different things")
    where = ports.SOURCES[source]
    counter = where["counter"]
    fig = figures(ds, results.outputs, ref_tflite, ref_tflm, results.micros, results.cycles, out_d,
                  counter)
    new_images = sum(s.images for s in sessions)
    by_label = {s.label: s for s in sessions}
    bound = 0.0
    unpaced = []
    boards = {}
    for b, label in enumerate(results.boards):  # every board that answered, this run or before
        mask = results.board == b
        if not mask.any():
            continue
        sub = figures(ds.take(mask), results.outputs[mask], ref_tflite[mask], ref_tflm[mask],
                      results.micros[mask], results.cycles[mask], out_d, counter)
        sub.pop("confusion_matrix", None)
        sub.pop("predictions", None)
        boards[label] = sub
        s = by_label.get(label)
        if s is None:
            continue
        med = sub["latency_us"]["median"]
        # An emulated core's microseconds are an estimate for the real chip, not wall time.
        latency_rate = 1e6 / med if med > 0 and source != "emulated core" else None
        rate = s.images / s.seconds if s.seconds > 0 and s.images else None
        eff, why = _link_efficiency(s, rate)
        if eff is None:
            unpaced.append(f"{label}: {why}")
        else:
            bound += s.link_rate()
        sub.update({"port": s.url, "source": source, "info": _info_dict(s.info),
                    "images_this_run": s.images, "stream_seconds": round(s.seconds, 3),
                    "images_per_s": rate, "link_paced": s.paced,
                    "link_limited_images_per_s": s.link_rate() if s.paced else None,
                    "latency_limited_images_per_s": latency_rate,
                    "link_efficiency": eff, "link_efficiency_why_none": why,
                    "link": dict(s.counts), "boot_noise_bytes": s.noise_bytes})
    rate = new_images / wall if wall > 0 and new_images else None
    total_eff = rate / bound if rate and bound and not unpaced else None
    quantized = np.dtype(results.outputs.dtype).kind == "i"
    # The cost model is calibrated on int8 kernels: no estimate for a float model. It is for
    # the chip the firmware was exported for; without an export, for the chip the device
    # names (a board's, or the one a virtual board stands for).
    exported = costmodel.board_for(f.exported_for) if f.exported_for else None
    board = exported or costmodel.board_for(chip)
    estimate = costmodel.estimate(costmodel.model_macs(model), board.name) if quantized and board else None
    if estimate:
        estimate["for"] = (f"the board the firmware was exported for ({f.exported_for})" if exported
                           else f"the chip the device names ({chip}; not exported)")
    out_unit = "int8 steps" if quantized else "output units"
    doc = {
        "variant": variant, "model_crc32": f"{crc:08x}", "model_bytes": len(model),
        "ports": labels, "chip": chip, "source": source, "source_what": where["what"],
        "latency_source": where["latency"], "counter": counter, "counter_note": where["counter_note"],
        "output_diff_unit": out_unit,
        **fig, "labels": ds.class_names(out_d), "data_source": ds.source,
        "throughput": {"images_this_run": new_images, "seconds": round(wall, 3),
                       "images_per_s": rate, "link_limited_images_per_s": bound or None,
                       "link_efficiency": total_eff,
                       "link_efficiency_why_none": "; ".join(unpaced) or None,
                       "baud": settings.baud,
                       "link_rate_note": "UART full duplex: baud/10 bytes/s each way; the "
                                         "longer of request and reply (framing included) sets "
                                         "the link-limited rate"},
        "estimate": estimate,
        "boards": boards,
        "settings": {"retries": settings.retries, "timeout_s": settings.timeout,
                     "reset": settings.reset},
    }

    def rounded(v, digits):
        return None if v is None else round(v, digits)

    plots = bench_plots.write_all(run, stem, doc, results.micros)
    atomic.write_json(run.file(f"{stem}.json"), doc)
    if ppath.exists():
        ppath.unlink()
    summary = {  # headline figures, rounded for reading; the JSON keeps full precision
        "images": fig["images"], "shows": fig["view_why"],
        "accuracy": rounded(fig["accuracy"], 4), "mse": rounded(fig["mse"], 6),
        "device_vs_tflm_identical": round(fig["device_vs_tflm"]["identical_outputs"], 4),
        "device_vs_tflm_top1": rounded(fig["device_vs_tflm"]["top1_agreement"], 4),
        "device_vs_tflite_identical": round(fig["device_vs_tflite"]["identical_outputs"], 4),
        "device_vs_tflite_top1": rounded(fig["device_vs_tflite"]["top1_agreement"], 4),
        f"device_vs_tflite_max_diff_{out_unit.replace(' ', '_')}": fig["device_vs_tflite"]["max_abs_diff"],
        "latency_median_us": round(fig["latency_us"]["median"], 1),
        "latency_p99_us": round(fig["latency_us"]["p99"], 1),
        "latency_median_cycles": rounded(fig["latency_cycles"] and fig["latency_cycles"]["median"], 0),
        "latency_median_instructions": rounded(fig["latency_instructions"]
                                               and fig["latency_instructions"]["median"], 0),
        "counter": where["counter_note"],
        "source": source, "latency_source": where["latency"], "chip": chip,
        "images_per_s": rounded(rate, 1), "link_efficiency": rounded(doc["throughput"]["link_efficiency"], 3),
        "link_efficiency_why_none": doc["throughput"]["link_efficiency_why_none"],
        "retries": sum(v for s in sessions for k, v in s.counts.items() if k.startswith("retry")),
    }
    if estimate:
        summary["estimate_esp_nn_latency_ms"] = estimate["esp_nn_latency_ms"]
        summary["estimate_reference_latency_ms"] = estimate["reference_latency_ms"]
        summary["estimate_label"] = (f"estimate for {estimate['chip']}, {estimate['for']} (MAC-count "
                                     f"cost model calibrated on one model's published timings: "
                                     f"person detection)")
    run.record("bench", {"results": {f"{variant}@{key_label}": {"path": f"{stem}.json", "plots": plots,
                                                                  "summary": summary}},
                         "finished": time.strftime("%Y-%m-%dT%H:%M:%S"), "seconds": round(f.seconds, 2)},
               merge="results")
    return summary


def _link_efficiency(s, rate) -> tuple:
    """(achieved / link-limited rate, None) on a paced link, else (None, why not)."""
    if not s.paced:
        return None, ("the link is not paced (a pseudo-terminal or socket runs as fast as the "
                      "host): no link-limited rate to compare with")
    if rate is None:
        return None, "no images streamed this run"
    eff = rate / s.link_rate()
    if eff > 1.0:
        return None, (f"{rate:.1f} images/s is above the {s.link_rate():.1f} images/s the baud "
                      f"rate allows: this link is not paced at --baud (USB-CDC ignores it)")
    return eff, None


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


def describe(variant: str, s: dict) -> str:
    """The summary as a few lines for the terminal."""
    diff_key = next(k for k in s if k.startswith("device_vs_tflite_max_diff"))
    unit = diff_key.rsplit('diff_', 1)[1].replace('_', ' ')
    main = (f"accuracy {s['accuracy']:.2%}" if s.get("accuracy") is not None
            else f"mean squared error {s['mse']:.4g}" if s.get("mse") is not None else "no labels")

    def agree(ref):
        top1 = s[f"device_vs_{ref}_top1"]
        return (f"{s[f'device_vs_{ref}_identical']:.2%} identical outputs"
                + (f", top-1 {top1:.2%}" if top1 is not None and s.get("accuracy") is not None else ""))
    lines = [f"bench {variant} on {s['chip']} ({s['source']}): {s['images']} inputs, {main}",
             f"  shows {s['shows']}",
             f"  agreement: {agree('tflm')} with TFLite-Micro's host runtime; {agree('tflite')} "
             f"with the TFLite interpreter (largest difference {s[diff_key]:g} {unit})",
             f"  latency: median {s['latency_median_us']:,.0f} µs, p99 {s['latency_p99_us']:,.0f} µs, "
             f"{s['latency_source']}"]
    counted = s.get("latency_median_cycles") or s.get("latency_median_instructions")
    lines.append(f"  counter: median {counted:,.0f}, {s['counter']}" if counted is not None
                 else f"  cycles: {s['counter']}")
    if "estimate_esp_nn_latency_ms" in s:
        lines.append(f"  {s['estimate_label']}: {s['estimate_esp_nn_latency_ms']:,.1f} ms with ESP-NN, "
                     f"{s['estimate_reference_latency_ms']:,.0f} ms with reference kernels")
    if s["images_per_s"]:
        eff = s["link_efficiency"]
        lines.append(f"  throughput: {s['images_per_s']:,.1f} images/s"
                     + (f", link efficiency {eff:.1%}" if eff is not None else
                        f" (no link efficiency: {s['link_efficiency_why_none']})")
                     + f"; {s['retries']} retries")
    return "\n".join(lines)
