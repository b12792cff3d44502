"""The bench stage: stream a run's test set to boards over serial (link/client.py: one
pipelined session a port; several ports shard the set), collect their outputs and timings,
compare them with the TFLite interpreter and TFLite-Micro's host runtime, record it all.

Each image is counted once: results.py accepts an image's first good reply only. A run
that cannot finish keeps a partial result that `--resume` continues."""
from __future__ import annotations

import json
import threading
import time
from collections import deque

import numpy as np

from ... import atomic
from ...crc import crc32
from ...devices import ports as portmod
from ...errors import UserError
from ...link.client import LinkError, Session, Settings, Stopped, one_line
from ...progress import bar, say
from ..export import latest_board
from .profile import check_port as check_profile_port
from .profile import describe as describe_profile
from .profile import run_profile
from .reference import tflm_reference
from .results import Results, partial_path
from .summary import Finished, describe, record

PARTIAL_EVERY_S = 10.0
DEFAULT_BOARD = "esp32"


def run_bench(run, variant: str = "int8", ports=("sim",), baud: int = 921600, limit=None,
              reset: bool = True, retries: int | None = None, timeout: float = 2.0,
              ready_timeout: float = 10.0, resume: bool = False, sim_options=None,
              device_options=None, stall_timeout: float = 30.0,
              profile_images: int = 0) -> dict:
    """Bench `variant` on the boards at `ports` (several shard the test set) and record
    the figures in the run. Returns the summary recorded in the manifest.

    device_options: settings for every device the bench starts (`--device-option`): the
    link emulation in front of it (linkemu.LinkOptions: baud, faults, reboots, hangs) and
    the virtual board's own (sim.SimOptions), by name; values may be strings.
    sim_options: settings for the virtual board alone; by default its link is paced at
    `baud`. profile_images: after the bench, profile that many images on the first port
    (profile.py); 0: no profile, nothing asked."""
    from ...model import tflite
    t_start = time.perf_counter()
    port_specs = [ports] if isinstance(ports, str) else list(ports)
    if not port_specs:
        raise UserError("no --port given")
    if profile_images:
        check_profile_port(port_specs[0])
    if (retries is not None and retries < 0) or min(timeout, ready_timeout, baud, stall_timeout) <= 0:
        raise UserError("--retries must be 0 or more; --timeout, --ready-timeout, --stall-timeout "
                        "and --baud above 0")
    model = run.deployable_variant_path(variant).read_bytes()
    in_d, out_d = tflite.io_details(model)
    crc = crc32(model)
    ds = run.test_set(variant)  # stages.data.TestSet: the variant's inputs and labels or targets
    n = len(ds) if limit is None else int(limit)
    if not 1 <= n <= len(ds):
        raise UserError(f"-n must be between 1 and {len(ds)} (the variant's test inputs), not {n}")
    ds = ds.first(n)
    x = ds.model_inputs(in_d)
    y = ds.y
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
                        ready_timeout=ready_timeout, stall_timeout=stall_timeout)
    # A board esptiny starts stands for the chip the variant was exported for.
    board = latest_board(run, variant) or DEFAULT_BOARD

    def options_for(spec):
        if spec == "sim":
            return {"baud": baud, "chip": board, **(device_options or {}), **(sim_options or {})}
        return dict(device_options or {}) if portmod.is_special(spec) else {}
    for spec in dict.fromkeys(port_specs):  # bad options fail before any device starts
        portmod.check_options(spec, options_for(spec))

    todo = deque(int(i) for i in np.flatnonzero(~results.done))
    todo_lock = threading.Lock()

    def work():
        with todo_lock:
            return todo.popleft() if todo else None

    sessions = []
    wall = 0.0
    device = portmod.Target(run.variant_path(variant), run.path / "build" / variant)
    with portmod.opened_all(port_specs, device, options_for) as urls:
        try:
            for spec, url, label in zip(port_specs, urls, labels):
                sess = Session(url, label, settings, portmod.link_paced(spec, options_for(spec)))
                sessions.append(sess)
                sess.connect()
                sess.check(variant, model, in_d, out_d)
            wall = _stream_all(sessions, results, x, work, n, run, variant, crc, ppath)
        finally:
            for sess in sessions:
                sess.close()
    ref_tflite = tflite.run(model, x)
    ref_tflm = tflm_reference(run, variant, model, x)
    summary = record(Finished(run, variant, model, crc, ds, y, results, ref_tflite, ref_tflm,
                              sessions, labels, wall, settings, ppath,
                              time.perf_counter() - t_start, latest_board(run, variant)))
    say(describe(variant, summary))
    if profile_images:
        key = f"{variant}@{'+'.join(labels)}"
        entry = run_profile(run, variant, model, port_specs[0], labels[0], device, options_for,
                            settings, x, profile_images)
        run.update(lambda m: m["stages"]["bench"]["results"][key].update(profile=entry))
        summary["profile"] = entry["summary"]
        say(describe_profile(entry["summary"]))
    return summary


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
        atomic.write_json(ppath, results.to_json(variant, crc))
        say(f"bench: partial result ({int(results.done.sum())} images) kept in {ppath}; "
            f"--resume continues")
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
