"""Commands that talk to a device: the virtual board (sim) and the serial benchmark (bench)."""
import click

RUN_DIR = click.argument("run_dir", metavar="RUN", type=click.Path(file_okay=False, exists=True))
VARIANT = click.option("--variant", default="int8", show_default=True,
                       help="The variant the board carries (variants/<name>.tflite in RUN).")


def _chips():
    from ..targets.boards import BOARDS
    return list(BOARDS)


@click.command()
@RUN_DIR
@VARIANT
@click.option("--listen", metavar="socket://HOST:PORT",
              help="Serve on a TCP socket (pyserial socket:// URL) instead of a pseudo-terminal.")
@click.option("--chip", type=click.Choice(_chips()), default="esp32", show_default=True,
              help="The chip it reports in INFO (name, CPU MHz); the bench's cost-model estimate uses it.")
@click.option("--baud", type=click.IntRange(min=0), default=0, show_default=True,
              help="Pace bytes both ways as a UART at this rate (10 bits a byte); 0: as fast as the host.")
@click.option("--corrupt-rate", type=float, default=0.0, show_default=True,
              help="Probability that a byte is corrupted (bits flipped).")
@click.option("--drop-rate", type=float, default=0.0, show_default=True,
              help="Probability that a byte is lost.")
@click.option("--fault-on", type=click.Choice(["rx", "tx", "both"]), default="both", show_default=True,
              help="Which bytes the faults hit: received by the board, sent by it, or both.")
@click.option("--reset-after", type=click.IntRange(min=1), multiple=True, metavar="N",
              help="Reboot on receiving the Nth request (lost, like a brown-out); repeatable.")
@click.option("--hang-after", type=click.IntRange(min=0), metavar="N",
              help="Stop answering after N requests, until the host reopens the port.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the fault generator.")
@click.option("--arena-bytes", type=click.IntRange(min=1),
              help="Tensor arena size [default: what TFLite-Micro records, rounded up to 1 KiB]; "
                   "too small gives INFO status 'arena too small'.")
@click.option("--rx-buffer-bytes", type=click.IntRange(64, 65535), default=4096, show_default=True,
              help="RX buffer it reports: the host keeps at most this many request bytes in flight.")
@click.option("--boot-ms", type=click.IntRange(min=0), default=100, show_default=True,
              help="Time from a (re)boot to READY, during which received bytes are lost.")
def sim(run_dir, variant, listen, chip, baud, corrupt_rate, drop_rate, fault_on, reset_after,
        hang_after, seed, arena_bytes, rx_buffer_bytes, boot_ms):
    """Run a virtual board carrying RUN's VARIANT until Ctrl-C.

    It is the firmware's own C core (built for this host) with TFLite-Micro's host runtime
    as its engine, behind the link emulation (pacing, faults, reboots), on a
    pseudo-terminal whose path it prints. Like a dev board it boots (boot text, then
    READY) whenever a host opens the port. Bench it from another shell:

    \b
      esptiny bench RUN --port /dev/pts/N
    """
    from ..devices import linkemu
    from ..devices import sim as simmod
    from ..stages.run import Run
    run = Run(run_dir)
    model_path = run.variant_path(variant)
    board = simmod.SimOptions(chip=chip, arena_bytes=arena_bytes, rx_buffer_bytes=rx_buffer_bytes).check()
    link = linkemu.LinkOptions(baud=baud, corrupt_rate=corrupt_rate, drop_rate=drop_rate,
                               fault_on=fault_on, reset_after=tuple(reset_after), hang_after=hang_after,
                               seed=seed, boot_ms=boot_ms, listen=listen, chip=chip).check()

    def announce(url):
        click.echo(url)
        click.echo(f"virtual {chip} carrying {variant}: bench it with "
                   f"`esptiny bench {run_dir} --variant {variant} --port {url}`; Ctrl-C stops it", err=True)

    linkemu.serve(lambda: simmod.start(model_path, board, run.path / "build" / variant / "sim"), link,
                  "reopen", announce, log=lambda m: click.echo(f"sim: {m}", err=True))


@click.command()
@RUN_DIR
@VARIANT
@click.option("--port", "ports", multiple=True, metavar="PORT",
              help="A serial device (/dev/ttyUSB0), a pyserial URL (socket://host:port, "
                   "rfc2217://host:port), or a device esptiny starts: 'sim' (virtual board, "
                   "TFLite-Micro's host runtime) [default], 'native' (the firmware with the AOT "
                   "engine built with gcc, on a pty), 'qemu-rv32' (the same firmware on an emulated "
                   "RV32IMC core; cycles are instructions). Repeat to shard the test set across boards.")
@click.option("--baud", type=click.IntRange(min=1), default=921600, show_default=True,
              help="Link rate; also what a virtual board started with --port sim emulates.")
@click.option("-n", "--limit", type=click.IntRange(min=1), help="Bench only the first N test images.")
@click.option("--reset/--no-reset", default=True, show_default=True,
              help="Reset the board through RTS (EN) with DTR (IO0) high on opening, as esptool does.")
@click.option("--retries", type=click.IntRange(min=0), default=None,
              help="Resends allowed per image after CRC errors, losses, time-outs or a reboot "
                   "[default: no bound; the run stops only when the link makes no progress].")
@click.option("--stall-timeout", type=click.FloatRange(min=0, min_open=True), default=30.0,
              show_default=True,
              help="Seconds without any image finished (or piece taken) before the run gives up; "
                   "the port is reopened (the board reset) meanwhile when nothing comes back.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=2.0, show_default=True,
              help="Seconds without any reply before what is in flight is resent (plus link time "
                   "and twice the slowest inference seen).")
@click.option("--ready-timeout", type=click.FloatRange(min=0, min_open=True), default=10.0,
              show_default=True, help="Seconds to wait for the board's READY (or an INFO answer).")
@click.option("--resume", is_flag=True, help="Continue the partial result an interrupted bench kept.")
@click.option("--sim-baud", type=click.IntRange(min=0),
              help="Link rate a --port sim board emulates [default: --baud]; 0: no pacing.")
@click.option("--profile", "profile_images", type=click.IntRange(min=1), is_flag=False, flag_value=3,
              default=None, metavar="[N]",
              help="After the bench, profile N images (3 if N is not given) on the first port: "
                   "each step's counter and live arena (native and qemu-rv32 run their profiling "
                   "build; a board must carry one).")
@click.option("--protocol", type=click.Choice(["esptiny", "mlperf-tiny"]), default="esptiny",
              show_default=True,
              help="mlperf-tiny: drive a firmware exported with --protocol mlperf-tiny as the MLPerf "
                   "Tiny runner does (docs/mlperf-tiny.md); one --port (native, qemu-rv32 or a board).")
@click.option("--mode", type=click.Choice(["performance", "accuracy", "both"]), default="both",
              show_default=True, help="With --protocol mlperf-tiny: the runner's modes to run.")
@click.option("--window-seconds", type=click.FloatRange(min=0, min_open=True), default=10.0,
              show_default=True,
              help="With --protocol mlperf-tiny: the least device time of each performance window "
                   "(the benchmark's rule is 10 s; a shorter one is recorded as not meeting it).")
@click.option("--warmups", type=click.IntRange(min=0),
              help="With --protocol mlperf-tiny: W of `infer N W` [default: the runner's, per task].")
@click.option("--device-option", "device_options", multiple=True, metavar="NAME=VALUE",
              help="A setting of the devices the bench starts (sim, native, qemu-rv32): the link "
                   "emulation in front of them (baud, corrupt_rate, drop_rate, fault_on, "
                   "reset_after=N[,N...], hang_after, boot_ms, boot_text, seed) or the virtual "
                   "board's (arena_bytes, rx_buffer_bytes, chip); repeatable.")
def bench(run_dir, variant, ports, baud, limit, reset, retries, timeout, ready_timeout, resume, sim_baud,
          protocol, mode, window_seconds, warmups, device_options, stall_timeout, profile_images):
    """Benchmark RUN's VARIANT on boards over serial: on-device accuracy, agreement with
    the TFLite interpreter and TFLite-Micro's host runtime, latency, throughput.

    Writes bench/<variant>-<port>.json and plots into RUN and adds them to its report.
    With no --port (or --port sim) a virtual board is started for the run."""
    from ..stages.run import Run
    if protocol == "mlperf-tiny":
        from ..stages.bench.mlperf_tiny import run_mlperf
        if len(ports) > 1 or resume or device_options:
            raise click.UsageError("--protocol mlperf-tiny takes one --port, no --resume and no --device-option")
        run_mlperf(Run(run_dir), variant, port=ports[0] if ports else "native", mode=mode,
                   limit=limit, window_s=window_seconds, warmups=warmups,
                   baud=baud, reset=reset,
                   timeout=max(timeout, 30.0), ready_timeout=ready_timeout)
        return
    from ..stages.bench import run_bench
    run_bench(Run(run_dir), variant, ports=ports or ("sim",), baud=baud, limit=limit,
              reset=reset, retries=retries, timeout=timeout, ready_timeout=ready_timeout,
              stall_timeout=stall_timeout, resume=resume, sim_options=None if sim_baud is None else {"baud": sim_baud},
              device_options=_name_values(device_options), profile_images=profile_images or 0)


def _name_values(items) -> dict:
    out = {}
    for item in items:
        name, eq, value = item.partition("=")
        if not eq or not name.strip():
            raise click.BadParameter(f"'{item}' is not NAME=VALUE", param_hint="--device-option")
        out[name.strip()] = value.strip()
    return out


COMMANDS = [sim, bench]
