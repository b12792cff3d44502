"""The AOT engine beside TFLite-Micro, same models and inputs, measured in one run.

    python benchmarks/aot_vs_tflm.py [--run RUN ...] [--quick] [-k K]

Models: every deployable variant of runs/demo (the demo CNN) and of an MLP run (the
demo MLP: build/benchmarks/aot_vs_tflm_mlp, trained and compressed here when missing);
--run replaces both; without runs/demo a small CNN is trained into build/benchmarks/.
--quick: only the first run's int8 variant.

Figures, all measured on this host:
- bit-exact: AOT outputs (the generated C built with gcc -O2, run by
  firmware/engines/aot/aot_run_main.c) against TFLite-Micro's host runtime
  (esptiny.tflm.run) on every test image of the run (10,000 for Fashion-MNIST), byte for
  byte, per variant.
- RAM: the AOT arena (planned offline, scratch included) against the arena TFLite-Micro
  records (esptiny.tflm.arena_bytes: head + tail, the total it needs).
- compute: x86-64 instructions per inference under valgrind's callgrind, counted as
  (count for 1+K inferences - count for 1) / K, for TFLite-Micro's host runtime (a Python
  script driving tflite_micro's interpreter; the wheel's build, GCC 14.2) and for the AOT
  program (gcc 12.2 -O2), same image.
- flash: text + rodata + data of the compiled AOT code (kernels, engine, generated model;
  gcc -O2, linked with --gc-sections from the engine interface, `size -A`; x86-64, and
  RV32IMC too when riscv64-unknown-elf-gcc is installed) against the .tflite flatbuffer
  alone. TFLite-Micro's own code comes on
  top of its flatbuffer; its x86-64 runtime library's .text is printed as a reference but
  kept out of the ratio (it also holds Python bindings and every kernel).

The last line is one JSON object: bit_exact_fraction (identical outputs over all images
of all variants), ram_ratio, instr_ratio, flash_ratio (AOT / TFLite-Micro, int8 variant
of the first run) and the per-variant figures. Targets: 1.0, <= 0.75, <= 0.5.
"""
import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from esptiny import paths
from esptiny.aot import compare, host
from esptiny.model import tflite, tflm
from esptiny.stages import compress as compress_stage
from esptiny.stages import train as train_stage
from esptiny.stages.run import Run, new_run

TARGETS = {"bit_exact_fraction": 1.0, "ram_ratio": 0.75, "instr_ratio": 0.5}
BENCH_DIR = paths.REPO / "build" / "benchmarks"
TFLM_SCRIPT = """
import sys
import numpy as np
from tflite_micro.python.tflite_micro import runtime
model = open(sys.argv[1], "rb").read()
x = np.load(sys.argv[2])
interp = runtime.Interpreter.from_bytes(model)
for _ in range(int(sys.argv[3])):
    interp.set_input(x, 0)
    interp.invoke()
"""


def _train(path: Path, model_name: str, epochs: int, methods) -> Run:
    run = Run(path)
    if run.has("compress") and all(m in run.variants() for m in methods):
        return run
    print(f"training a {model_name} for {epochs} epochs into {path}", file=sys.stderr)
    run = new_run(path)
    train_stage.train(run, model_name=model_name, epochs=epochs, seed=0)
    compress_stage.compress(run, methods=list(methods), rep_samples=200, finetune_epochs=1)
    return run


def default_runs(quick: bool) -> list:
    demo = paths.REPO / "runs" / "demo"
    if (demo / "manifest.json").exists() and Run(demo).has("compress") and "int8" in Run(demo).variants():
        runs = [Run(demo)]
    else:
        runs = [_train(BENCH_DIR / "aot_vs_tflm_cnn", "cnn", 3, ["int8"] if quick else
                       ["int8", "qat", "pruned", "clustered", "pruned_clustered"])]
    if not quick:
        runs.append(_train(BENCH_DIR / "aot_vs_tflm_mlp", "mlp", 3,
                           ["int8", "qat", "pruned", "clustered", "pruned_clustered"]))
    return runs


def callgrind_instructions(cmd: list) -> int:
    with tempfile.TemporaryDirectory() as d:
        r = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={d}/cg.out", *cmd],
                           capture_output=True, text=True)
        m = re.search(r"Collected : (\d+)", r.stderr)
        assert r.returncode == 0 and m, f"callgrind failed on {cmd}: {r.stderr[-800:]}"
        return int(m.group(1))


def per_inference(counts: tuple, k: int) -> float:
    return (counts[1] - counts[0]) / k


def instructions(model: bytes, x1: np.ndarray, runner: host.Runner, k: int, work: Path) -> dict:
    (work / "model.tflite").write_bytes(model)
    np.save(work / "x.npy", x1)
    (work / "tflm_n.py").write_text(TFLM_SCRIPT)
    tf_cmd = [sys.executable, str(work / "tflm_n.py"), str(work / "model.tflite"), str(work / "x.npy")]
    tflm_counts = tuple(callgrind_instructions(tf_cmd + [str(n)]) for n in (1, 1 + k))
    for n in (1, 1 + k):
        (work / f"in{n}.bin").write_bytes(np.repeat(x1, n, axis=0).tobytes())
    aot_counts = tuple(callgrind_instructions([str(runner.exe), str(work / f"in{n}.bin"),
                                               str(work / f"out{n}.bin")]) for n in (1, 1 + k))
    return {"tflm": per_inference(tflm_counts, k), "aot": per_inference(aot_counts, k)}


def section_bytes(obj: Path, size_tool: str = "size") -> dict:
    """text / rodata / data bytes of an object (`size -A`), small-data sections included."""
    out = subprocess.run([size_tool, "-A", str(obj)], capture_output=True, text=True, check=True).stdout
    kinds = {"text": 0, "rodata": 0, "data": 0}
    prefixes = {"text": (".text",), "rodata": (".rodata", ".srodata"), "data": (".data", ".sdata")}
    for line in out.splitlines()[2:]:
        parts = line.split()
        if len(parts) >= 2 and parts[1].isdigit():
            for kind, pre in prefixes.items():
                if any(parts[0] == p or parts[0].startswith(p + ".") for p in pre):
                    kinds[kind] += int(parts[1])
    return kinds


ENGINE_ROOTS = ("espt_engine_init", "espt_engine_set_input", "espt_engine_invoke", "espt_engine_get_output")
RV32 = ["riscv64-unknown-elf-gcc", "-march=rv32imc", "-mabi=ilp32"]
RV32_HEADERS = ["--specs=picolibc.specs"]  # the C library's headers; the partial link needs none


def aot_flash(gen_dir: Path, work: Path, cc: list, size_tool: str, compile_only=()) -> dict:
    """What a firmware keeps of the AOT engine: kernels, engine and model at -O2, linked
    with --gc-sections from the engine interface (unused kernels dropped), `size -A`."""
    objs = []
    for src in host.engine_sources(gen_dir):
        obj = work / f"{src.stem}.o"
        subprocess.run([*cc, *compile_only, "-std=c99", "-O2", "-ffunction-sections", "-fdata-sections",
                        *host.include_flags(gen_dir), "-c", str(src), "-o", str(obj)],
                       check=True, capture_output=True)
        objs.append(str(obj))
    linked = work / "aot_engine.o"
    roots = [f"-Wl,-u,{s}" for s in ENGINE_ROOTS]
    subprocess.run([*cc, "-nostdlib", "-r", "-Wl,--gc-sections", *roots, "-o", str(linked), *objs],
                   check=True, capture_output=True)
    return section_bytes(linked, size_tool)


def rv32_flash(gen_dir: Path, work: Path):
    """The same for RV32IMC (an ESP32-C3-class core) when Debian's cross compiler is here."""
    if shutil.which(RV32[0]) is None:
        return None
    d = work / "rv32"
    d.mkdir()
    try:
        return aot_flash(gen_dir, d, RV32, "riscv64-unknown-elf-size", RV32_HEADERS)
    except subprocess.CalledProcessError:  # no picolibc: skip, say so
        return None


def tflm_library_text() -> int:
    import tflite_micro.python.tflite_micro as pkg
    so = next(Path(pkg.__path__[0]).glob("_runtime*.so"))
    return section_bytes(so)["text"]


def bit_exact(run: Run, variant: str) -> dict:
    model = run.variant_path(variant).read_bytes()
    d_in, _ = tflite.io_details(model)
    return compare.side_by_side(model, tflite.to_input(run.dataset().x_test, d_in))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", action="append", help="a run directory (repeatable)")
    ap.add_argument("--quick", action="store_true", help="only the first run's int8 variant")
    ap.add_argument("-k", type=int, default=5, help="extra inferences counted under callgrind (default 5)")
    args = ap.parse_args()
    runs = [Run(p) for p in args.run] if args.run else default_runs(args.quick)

    variants, images, identical = {}, 0, 0
    for run in runs:
        names = [n for n, v in run.variants().items() if v.get("deployable", True) and n != "float32"]
        for name in names[:1] if args.quick else names:
            key = f"{run.path.name}/{name}"
            fig = bit_exact(run, name)
            variants[key] = fig
            images += fig["images"]
            identical += fig["identical"]
            print(f"{key:32s} identical {fig['identical']:>6,}/{fig['images']:,}   arena AOT "
                  f"{fig['arena_bytes_aot']:>6,} B vs TFLM {fig['arena_bytes_tflm']:>6,} B   weights "
                  f"{fig['weights_bytes_aot']:>7,} B (int8 {fig['weights_bytes_int8']:,} B)", flush=True)

    main_run = runs[0]
    model = main_run.variant_path("int8").read_bytes()
    d_in, _ = tflite.io_details(model)
    x1 = tflite.to_input(main_run.dataset().x_test[:1], d_in)
    with tempfile.TemporaryDirectory() as d, host.Runner(model) as runner:
        work = Path(d)
        instr = instructions(model, x1, runner, args.k, work)
        flash = aot_flash(runner.dir, work, [host.gcc()], "size")
        flash_rv32 = rv32_flash(runner.dir, work)
        info = runner.info
    arena_tflm = tflm.arena_bytes(model)
    aot_flash_bytes = flash["text"] + flash["rodata"] + flash["data"]
    lib_text = tflm_library_text()
    print(f"\n{main_run.path.name}/int8:")
    print(f"  RAM     AOT arena {info['arena_bytes']:,} B (without conv+pool fusion "
          f"{info['arena_bytes_unfused']:,} B) vs TFLite-Micro arena {arena_tflm['total']:,} B "
          f"(head {arena_tflm['head']:,}, tail {arena_tflm['tail']:,})")
    print(f"  compute {instr['aot']:,.0f} vs {instr['tflm']:,.0f} x86-64 instructions per inference "
          f"(callgrind, {1 + args.k} minus 1 inferences)")
    print(f"  flash   AOT text+rodata+data {aot_flash_bytes:,} B (code {flash['text']:,}, constants "
          f"{flash['rodata']:,}; x86-64 -O2, --gc-sections) vs .tflite {len(model):,} B; TFLite-Micro's "
          f"x86-64 runtime library adds {lib_text:,} B of .text (not in the ratio)")
    if flash_rv32:
        print(f"          RV32IMC -O2: {sum(flash_rv32.values()):,} B (code {flash_rv32['text']:,}), "
              f"{sum(flash_rv32.values()) / len(model):.3f} of the .tflite")
    result = {
        "bit_exact_fraction": identical / images,
        "ram_ratio": info["arena_bytes"] / arena_tflm["total"],
        "instr_ratio": instr["aot"] / instr["tflm"],
        "flash_ratio": aot_flash_bytes / len(model),
        "images": images,
        "variants": variants,
        "model": f"{main_run.path.name}/int8",
        "arena_bytes": {"aot": info["arena_bytes"], "aot_unfused": info["arena_bytes_unfused"],
                        "tflm": arena_tflm["total"]},
        "instructions_per_inference": {"aot": round(instr["aot"]), "tflm": round(instr["tflm"])},
        "flash_bytes": {"aot_x86_64": flash, "aot_rv32imc": flash_rv32, "tflite": len(model),
                        "tflm_runtime_text_x86_64": lib_text},
        "targets": TARGETS,
    }
    result["meets_targets"] = (result["bit_exact_fraction"] >= 1.0 and result["ram_ratio"] <= 0.75
                               and result["instr_ratio"] <= 0.5)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
