"""Tables and plots built from what the run directory holds: report.json, .md, .html, PNGs."""
from __future__ import annotations

import base64
import json

from .. import atomic
from ..devices import ports
from ..paths import TEMPLATES
from ..progress import say
from .run import Run

PLOT_SIZE = "size_vs_accuracy.png"
PLOT_CONFUSION = "confusion.png"


def collect(run: Run) -> dict:
    """Every figure the stages recorded, in one JSON-able dict."""
    stages = run.manifest()["stages"]
    train = stages.get("train")
    ev = run.stage("evaluate")
    return {
        "run": str(run.path),
        "model": None if train is None else {
            k: train.get(k) for k in ("model_name", "params", "epochs", "input_shape", "train_images",
                                      "test_images", "data_source", "keras_test_accuracy")},
        "imported": {n: {"file": v["source"], "type": v.get("type"), "data": v["data"]["source"],
                         "inputs": v["data"]["images"]}
                     for n, v in stages.get("import", {}).get("variants", {}).items()},
        "labels": (train or {}).get("labels", []),
        "stage_seconds": {name: s.get("seconds") for name, s in stages.items()},
        "compress_options": stages.get("compress", {}).get("options", {}),
        "variants": ev["variants"],
        "bench": stages.get("bench", {}).get("results", {}),
        "mlperf_tiny": mlperf_tiny_sections(run, stages.get("mlperf_tiny", {}).get("results", {})),
        "profiles": _profiles(run, stages.get("bench", {}).get("results", {})),
        "export": stages.get("export", {}),
    }


def mlperf_tiny_sections(run: Run, results: dict) -> dict:
    """`esptiny bench --protocol mlperf-tiny` results: the headline figures and the
    runner-format results.txt beside them."""
    out = {}
    for key, r in results.items():
        txt = run.file(r["results_txt"]) if r.get("results_txt") else None
        out[key] = {"figures": {k: v for k, v in r.items() if k not in ("json", "results_txt")},
                    "results_txt": txt.read_text() if txt is not None and txt.exists() else "",
                    "path": r.get("results_txt")}
    return out


def _profiles(run: Run, bench: dict) -> dict:
    """`esptiny bench --profile`'s tables (bench/*-profile.json), by bench result."""
    out = {}
    for key, b in bench.items():
        p = b.get("profile")
        if p and run.file(p["path"]).exists():
            out[key] = {**json.loads(run.file(p["path"]).read_text()), "plots": p.get("plots", [])}
    return out


def profile_rows(doc: dict) -> list:
    """The per-layer table of one profile (strings), in the order the steps ran."""
    unit = doc["unit"]
    return [{"step": str(s["step"]), "op": " + ".join(s["op_names"]), "shapes": s["shapes"],
             "MACs": f"{s['macs']:,}" if s["macs"] else "—", unit: f"{s['counter']:,.0f}",
             f"{unit} per MAC": "—" if s["counter_per_mac"] is None else f"{s['counter_per_mac']:.2f}",
             "share": f"{100 * s['share']:.1f}%", "live arena B": f"{s['arena_live_bytes']:,}"}
            for s in doc["steps"]]


def profile_note(doc: dict) -> str:
    return (f"{doc['engine']} engine on {doc['chip']}, {doc['images']} image(s), median per step; "
            f"{doc['unit']}: {doc['source']}. The steps add up to {doc['steps_over_inference']:.2%} of "
            f"the inference ({doc['steps_total']:,.0f} of {doc['inference']:,.0f} {doc['unit']}).")


def intro(data: dict) -> list:
    """What the run holds, as sentences (Markdown emphasis)."""
    out = []
    m = data["model"]
    if m:
        out.append(f"Model **{m['model_name']}**: {m['params']:,} parameters, {m['epochs']} epochs on "
                   f"{m['train_images']:,} inputs ({m['data_source']}); test set {m['test_images']:,} inputs.")
    for name, v in data["imported"].items():
        out.append(f"Imported **{name}**: {v['type']} .tflite from {v['file']}, evaluated on "
                   f"{v['inputs']:,} inputs ({v['data']}).")
    return out


def _pct(x):
    return "—" if x is None else f"{100 * x:.2f}%"


SHOWS = {"labels": "accuracy", "targets": "MSE", "none": "agreement only"}


def _score(v: dict) -> str:
    """The data's figure for a variant: accuracy, mean squared error, or why neither."""
    if v.get("accuracy") is not None:
        return _pct(v["accuracy"])
    if v.get("mse") is not None:
        return f"MSE {v['mse']:.4g}"
    return "no labels"


def variant_rows(data: dict) -> list:
    """One row per variant with the columns of the report's main table (strings)."""
    rows = []
    for name, v in data["variants"].items():
        t = v.get("tflm") or {}
        rows.append({
            "variant": name,
            "shows": SHOWS.get(v.get("view", "labels"), "—"),
            "accuracy / MSE": _score(v),
            "vs float32": _pct(v.get("agreement_with_float32")),
            "bytes": f"{v['bytes']:,}",
            "gzip": f"{v['gzip_bytes']:,}",
            "ratio": "—" if v.get("size_ratio_to_float32") is None else f"{v['size_ratio_to_float32']:.3f}",
            "sparsity": f"{100 * v['sparsity']:.1f}%",
            "MACs": f"{v['macs']:,}",
            "TFLM": _score(t) if t else "not deployable",
            "TFLM vs TFLite": (f"{_pct(t.get('identical_fraction'))} identical, max {t['max_output_diff']:.3g}"
                               f"{' steps' if t['max_output_diff_unit'].endswith('steps') else ''}") if t else "—",
            "arena B": f"{t['arena_bytes']:,}" if t else "—",
        })
    return rows


def view_notes(data: dict) -> list:
    """Why each view is shown, once per view, naming its variants."""
    from .outputs import VIEWS
    by_view: dict = {}
    for name, v in data["variants"].items():
        by_view.setdefault(v.get("view", "labels"), []).append(name)
    return [f"{', '.join(names)}: {VIEWS[view]}." for view, names in by_view.items()]


def firmware_rows(data: dict) -> list:
    """One row per exported firmware project: where it is and how it fits its board."""
    rows = []
    for key, p in data["export"].get("projects", {}).items():
        f, a = p["fit"], p["arena"]
        rows.append({
            "project": key, "board": p["board"], "engine": p["engine"],
            "model B": f"{p['model_bytes']:,}",
            "flash used / app partition": f"{f['app_used_bytes']:,} / {f['app_partition_bytes']:,} (firmware estimated)",
            "arena B (recorded + margin)": f"{a['total']:,} ({a['recorded']:,} + {a['margin']:,})",
            "arena budget B": f"{f['arena_budget_bytes']:,}",
            "path": p["path"],
        })
    return rows


def aot_rows(data: dict) -> list:
    """The compiled-C engine beside TFLite-Micro, per int8 variant (same inputs)."""
    rows = []
    for name, v in data["variants"].items():
        a = v.get("aot")
        if not a:
            continue
        if "refused" in a or "not_run" in a:
            why = f"refused: {a['refused']}" if "refused" in a else f"not run: {a['not_run']}"
            rows.append({"variant": name, "bit-exact with TFLM": why[:90],
                         "arena AOT / TFLM B": "—", "RAM ratio": "—", "weights B (packed / int8)": "—"})
            continue
        rows.append({"variant": name,
                     "bit-exact with TFLM": f"{_pct(a['bit_exact_fraction'])} of {a['images']:,}",
                     "arena AOT / TFLM B": f"{a['arena_bytes_aot']:,} / {a['arena_bytes_tflm']:,}",
                     "RAM ratio": f"{a['ram_ratio']:.2f}",
                     "weights B (packed / int8)": f"{a['weights_bytes_aot']:,} / {a['weights_bytes_int8']:,}"})
    return rows


def energy_rows(data: dict) -> list:
    """Energy per inference and battery life per variant and board (targets/energy.py):
    estimates, each with its inputs."""
    from ..targets import energy
    rows = []
    for e in energy.variant_table(data["variants"], data.get("bench") or {}):
        rows.append({
            "variant": e["variant"], "board": e["board"],
            "latency ms": f"{e['latency_ms']:g} ({e['latency_source']})",
            "active mA": f"{e['active_ma']:g}",
            "light-sleep mA": f"{e['light_sleep_ma']:g}",
            "energy / inference (estimate)": f"{e['energy_mj']:g} mJ",
            "battery life at 1/s, 1,000 mAh (estimate)":
                "—" if e["battery_hours"] is None else f"{e['battery_hours']:,} h ({e['battery_hours'] / 24:.1f} days)",
            "missing": "; ".join(e["missing"]) or "—",
        })
    return rows


def energy_notes() -> list:
    """The currents' sources and the formula, once."""
    from ..targets import energy
    from ..targets.boards import BOARDS
    notes = [f"Estimate: energy = latency x active current x {energy.SUPPLY_V:g} V; battery life = "
             f"{energy.BATTERY_MAH:,.0f} mAh / average current at one inference a second, light sleep "
             "in between. Datasheet currents are the chip's alone (a dev board draws more)."]
    for board, b in BOARDS.items():
        notes.append(f"{board}: active {b.sources['active_ma']}; light sleep {b.sources['light_sleep_ma']}.")
    return notes


def _md_table(rows: list) -> list:
    if not rows:
        return []
    cols = list(rows[0])
    return (["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
            + ["| " + " | ".join(r[c] for c in cols) + " |" for r in rows])


BENCH_TITLES = {"board": "On-device benchmark",
                "virtual board": "Benchmark on the virtual board (not a device)",
                "native firmware": "Benchmark of the native firmware (this host, not a device)",
                "emulated core": "Benchmark on the emulated core (QEMU, not a device)"}


def bench_groups(data: dict) -> list:
    """The bench results by where they came from, boards first: [(title, what, {key: entry})].
    Only a board's results are "On-device"."""
    groups = {}
    for key, b in data["bench"].items():
        summary = b.get("summary", {})
        src = summary.get("source") or ports.source_of(summary.get("chip", ""))
        groups.setdefault(src, {})[key] = b
    return [(BENCH_TITLES[src], ports.SOURCES[src]["what"], groups[src])
            for src in ports.SOURCES if src in groups]


def markdown(data: dict) -> str:
    lines = [f"# esptiny report — {data['run']}", ""]
    lines += [x for sentence in intro(data) for x in (sentence, "")]
    lines += ["## Variants", "",
              "Figures from the TFLite interpreter (reference) on each variant's test inputs; TFLM "
              "columns from TFLite-Micro's host runtime (the device's kernels), arena as TFLite-Micro "
              "records it. What each variant shows and why:", ""]
    lines += [f"- {n}" for n in view_notes(data)] + [""]
    lines += _md_table(variant_rows(data))
    not_dep = {n: v["reason"] for n, v in data["variants"].items() if not v["deployable"]}
    if not_dep:
        lines += ["", "Not deployable:"] + [f"- {n}: {r}" for n, r in not_dep.items()]
    lines += [""] + [f"![{p}]({p})" for p in data.get("plots", [])]
    if aot_rows(data):
        lines += ["", "## Compiled C (engine aot) beside TFLite-Micro", "",
                  "Same inputs; outputs compared byte for byte with TFLite-Micro's host runtime. "
                  "Instruction counts and flash: `benchmarks/aot_vs_tflm.py`.", ""] + _md_table(aot_rows(data))
    if energy_rows(data):
        lines += ["", "## Energy per inference and battery life (estimate)", ""]
        lines += [f"- {n}" for n in energy_notes()] + [""] + _md_table(energy_rows(data))
    if firmware_rows(data):
        lines += ["", "## Firmware projects", ""] + _md_table(firmware_rows(data))
    for title, what, entries in bench_groups(data):
        lines += ["", f"## {title}", "", f"Source: {what}.", ""]
        for key, b in entries.items():
            lines += [f"### {key}", "", "| figure | value |", "|---|---|"]
            lines += [f"| {k} | {v} |" for k, v in b.get("summary", {}).items()]
            lines += [f"![{p}]({p})" for p in b.get("plots", [])] + [""]
    if data.get("mlperf_tiny"):
        lines += ["", "## MLPerf Tiny protocol", "",
                  "`esptiny bench --protocol mlperf-tiny` (docs/mlperf-tiny.md); each figure's "
                  "source is named.", ""]
        for key, m in data["mlperf_tiny"].items():
            lines += [f"### {key}", "", "| figure | value |", "|---|---|"]
            lines += [f"| {k} | {v} |" for k, v in m["figures"].items()]
            lines += ["", f"{m['path']}:", "", "```", m["results_txt"].rstrip(), "```", ""]
    if data.get("profiles"):
        lines += ["", "## Where the time goes (per-layer profile)", ""]
        for key, doc in data["profiles"].items():
            lines += [f"### {key}", "", profile_note(doc), ""] + _md_table(profile_rows(doc))
            lines += [""] + [f"![{p}]({p})" for p in doc["plots"]] + [""]
    lines += ["", "## Stage wall time", "", "| stage | seconds |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in data["stage_seconds"].items()]
    return "\n".join(lines) + "\n"


def plot_size_accuracy(data: dict, path):
    """Two panels: bytes as stored in flash, and gzipped (where pruning and clustering pay)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import ScalarFormatter
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), dpi=110, sharey=True)
    for ax, key, title in ((axes[0], "bytes", "as stored (flash)"), (axes[1], "gzip_bytes", "gzipped")):
        for name, v in data["variants"].items():
            if v.get("accuracy") is None:
                continue
            x, y = v[key] / 1024, 100 * v["accuracy"]
            ax.scatter(x, y, s=60, zorder=3, color="tab:green" if v["deployable"] else "tab:gray")
            ax.annotate(name, (x, y), textcoords="offset points", xytext=(6, 4), fontsize=8)
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(ScalarFormatter())
        ax.tick_params(axis="x", which="minor", labelsize=7)
        ax.set_xlabel(f"model size, {title} (KiB, log scale)")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("test accuracy (%), TFLite interpreter")
    fig.suptitle("Size against accuracy (green: runs on TFLite-Micro; grey: no TFLite-Micro kernels)")
    fig.tight_layout()
    with atomic.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def plot_confusion(matrix, labels, title: str, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    m = np.asarray(matrix)
    fig, ax = plt.subplots(figsize=(6.5, 5.5), dpi=110)
    ax.imshow(m, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            if m[i, j]:
                ax.text(j, i, str(m[i, j]), ha="center", va="center", fontsize=6,
                        color="white" if m[i, j] > m.max() / 2 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    with atomic.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def confusion_variant(data: dict) -> str | None:
    """The classifier a device would run: int8 if it has a confusion matrix, else the first
    deployable one that has; None when no variant is scored against labels."""
    v = {n: x for n, x in data["variants"].items() if x.get("confusion")}
    if "int8" in v:
        return "int8"
    return next((n for n, x in v.items() if x["deployable"]), next(iter(v), None))


def _inline_png(run: Run, rel: str) -> str:
    return "data:image/png;base64," + base64.b64encode(run.file(rel).read_bytes()).decode()


def html(run: Run, data: dict) -> str:
    import jinja2
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)),
                             autoescape=jinja2.select_autoescape(["html", "j2"]))
    images = {p: _inline_png(run, p) for p in data.get("plots", [])
              + [q for b in data["bench"].values() for q in b.get("plots", [])]
              + [q for doc in data.get("profiles", {}).values() for q in doc["plots"]] if run.file(p).exists()}
    return env.get_template("report.html.j2").render(d=data, rows=variant_rows(data), images=images,
                                                     intro=[x.replace("**", "") for x in intro(data)],
                                                     notes=view_notes(data),
                                                     firmware=firmware_rows(data), aot=aot_rows(data),
                                                     energy=energy_rows(data), energy_notes=energy_notes(),
                                                     bench_groups=bench_groups(data),
                                                     profiles={k: (profile_note(doc), profile_rows(doc))
                                                               for k, doc in data.get("profiles", {}).items()},
                                                     plot_size=PLOT_SIZE, plot_confusion=PLOT_CONFUSION)


def report(run: Run) -> dict:
    with run.timed("report") as entry:
        data = collect(run)
        plots = []
        if any(v.get("accuracy") is not None for v in data["variants"].values()):
            plot_size_accuracy(data, run.file(PLOT_SIZE))
            plots.append(PLOT_SIZE)
        cv = confusion_variant(data)
        if cv is not None:
            v = data["variants"][cv]
            plot_confusion(v["confusion"], v.get("labels") or data["labels"],
                           f"{cv}: confusion on {v.get('test_images', len(v['confusion'])):,} test inputs (TFLite)",
                           run.file(PLOT_CONFUSION))
            plots.append(PLOT_CONFUSION)
        data["plots"] = plots
        atomic.write_json(run.file("report.json"), data)
        atomic.write_text(run.file("report.md"), markdown(data))
        atomic.write_text(run.file("report.html"), html(run, data))
        entry.update(files=["report.json", "report.md", "report.html", *plots])
    say(f"report: {run.file('report.html')}")
    return entry


def load(run: Run) -> dict:
    return json.loads(run.file("report.json").read_text())
