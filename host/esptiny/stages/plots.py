"""Bench plots: the latency histogram, the device's confusion matrix and where a profiled
inference's time goes (matplotlib, Agg)."""
from __future__ import annotations

import numpy as np

from .. import atomic


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path):
    with atomic.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")


def latency_histogram(micros, path, title: str, source: str, estimate: dict | None = None):
    """Per-inference latency in µs, median and p99 marked; the cost-model estimate, when
    there is one and it falls near the measured range, as a labelled line."""
    plt = _pyplot()
    micros = np.asarray(micros, np.float64)
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    ax.hist(micros, bins=min(60, max(10, len(micros) // 20)), color="#4477aa")
    for q, style in ((50, "-"), (99, "--")):
        v = np.percentile(micros, q)
        ax.axvline(v, color="black", linestyle=style, linewidth=1, label=f"p{q} {v:,.0f} µs")
    ax.set_xlabel(f"latency per inference (µs, {source})")
    ax.set_ylabel("images")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    if estimate:
        ax.text(0.99, 0.70, f"estimate on {estimate['chip']}: {estimate['esp_nn_latency_ms']:,.1f} ms "
                f"(ESP-NN), {estimate['reference_latency_ms']:,.0f} ms (reference)\n"
                "MAC-count cost model", transform=ax.transAxes, ha="right", fontsize=7, color="#aa3377")
    _save(fig, path)
    plt.close(fig)


def confusion(cm, labels, path, title: str):
    """Rows: true class; columns: the device's top-1. Counts in the cells."""
    plt = _pyplot()
    cm = np.asarray(cm)
    fig, ax = plt.subplots(figsize=(6.4, 5.6))
    ax.imshow(cm, cmap="Blues")
    ticks = np.arange(len(labels))
    ax.set_xticks(ticks, labels, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(ticks, labels, fontsize=8)
    ax.set_xlabel("predicted on the device")
    ax.set_ylabel("true class")
    ax.set_title(title, fontsize=10)
    top = cm.max() if cm.size else 0
    for (r, c), v in np.ndenumerate(cm):
        if v:
            ax.text(c, r, str(v), ha="center", va="center", fontsize=7,
                    color="white" if v > top / 2 else "black")
    _save(fig, path)
    plt.close(fig)


def profile_bars(doc: dict, path, title: str):
    """Where the time goes: each step's share of the inference, its counter beside it."""
    plt = _pyplot()
    steps = doc["steps"]
    fig, ax = plt.subplots(figsize=(7.2, 0.8 + 0.28 * len(steps)))
    y = np.arange(len(steps))
    shares = [100 * s["share"] for s in steps]
    ax.barh(y, shares, color="#4477aa")
    ax.set_yticks(y, [s["label"] for s in steps], fontsize=7)
    ax.invert_yaxis()
    for k, s in enumerate(steps):
        ax.text(shares[k], k, f" {s['counter']:,.0f}", va="center", fontsize=6)
    ax.set_xlabel(f"share of the inference (%); counts in {doc['unit']}")
    ax.set_title(f"{title}\n{doc['source']}", fontsize=8)
    ax.set_xlim(0, max(shares + [1]) * 1.25)
    _save(fig, path)
    plt.close(fig)


def write_all(run, stem: str, doc: dict, micros) -> list:
    """Both plots beside the bench JSON; their paths relative to the run."""
    where = f"{doc['variant']} on {'+'.join(doc['ports'])} ({doc['chip']}, {doc['source']})"
    hist, cm = f"{stem}-latency.png", f"{stem}-confusion.png"
    latency_histogram(micros, run.file(hist), f"latency, {where}", doc["latency_source"],
                      doc.get("estimate"))
    if "confusion_matrix" not in doc:  # not a classifier with labels: no confusion to draw
        return [hist]
    confusion(doc["confusion_matrix"], doc["labels"], run.file(cm),
              f"device confusion matrix, {where}: {doc['accuracy']:.2%}")
    return [hist, cm]
