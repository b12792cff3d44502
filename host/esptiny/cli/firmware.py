"""Commands for the firmware: export a run's model as a PlatformIO project, build, flash."""
import click

from ..link.mlperf_tiny import PROTOCOLS
from ..targets.boards import BOARDS
from ..targets.export import CONSOLES, ENGINES

PROJECT_DIR = click.argument("project", metavar="DIR", type=click.Path(file_okay=False))
ENV = click.option("-e", "--env", "env", metavar="ENV",
                   help="PlatformIO environment to build (an exported project has one; the "
                        "repository's platformio.ini has " + ", ".join(BOARDS) + ").")
TIMEOUT = click.option("--timeout", type=click.FloatRange(min=1), metavar="SECONDS",
                       help="Give up if `pio run` takes longer (a first build downloads ~1 GB).")


@click.command()
@click.argument("run_dir", metavar="RUN", type=click.Path(file_okay=False))
@click.option("--variant", default="int8", show_default=True,
              help="Which compressed model (variants/<name>.tflite). float16 and dynamic are refused: "
                   "TFLite-Micro has no kernels for them.")
@click.option("--board", type=click.Choice(list(BOARDS)), default="esp32", show_default=True,
              help="esp32: ESP32-DevKitC (esp32dev); esp32s3: ESP32-S3-DevKitC-1; esp32c3: ESP32-C3-DevKitM-1.")
@click.option("--engine", type=click.Choice(list(ENGINES)), default="tflm", show_default=True,
              help="tflm: TFLite-Micro with ESP-NN kernels (esp-tflite-micro); aot: esptiny's "
                   "ahead-of-time compiled C.")
@click.option("--out", type=click.Path(file_okay=False),
              help="Project directory [default: RUN/firmware/<variant>-<board>-<engine>]. Replaced "
                   "if it holds an earlier export.")
@click.option("--into-repo", is_flag=True,
              help="Write only the model files into this repository's firmware/model/, for its "
                   "top-level platformio.ini (`pio run -e ENV`).")
@click.option("--console", type=click.Choice(CONSOLES),
              help="Serial link [default: per board: uart on esp32 and esp32c3, usb-serial-jtag "
                   "on esp32s3, the DevKitC-1's port marked USB].")
@click.option("--protocol", type=click.Choice(PROTOCOLS), default="esptiny", show_default=True,
              help="The serial protocol the firmware speaks: esptiny's (docs/protocol.md) or the "
                   "MLPerf Tiny benchmark's (docs/mlperf-tiny.md), for its official runner and "
                   "`esptiny bench --protocol mlperf-tiny`.")
def export(run_dir, variant, board, engine, out, into_repo, console, protocol):
    """Export RUN's model as a PlatformIO project for an ESP32 board.

    \b
    Checks first that the variant can run (TFLite-Micro kernels), that every op is known
    to the op resolver, and that the model and its tensor arena fit the board's flash and
    RAM; then writes platformio.ini, the firmware sources and the generated model files.
    Build and flash it with `esptiny build DIR` and `esptiny flash DIR --port PORT`.
    """
    from ..stages.export import export as run_export
    from ..stages.run import Run
    if into_repo and out:
        raise click.UsageError("--into-repo writes firmware/model/; leave out --out")
    run_export(Run(run_dir), variant=variant, board=board, engine=engine, out=out,
               into_repo=into_repo, console=console, protocol=protocol)


@click.command()
@PROJECT_DIR
@ENV
@TIMEOUT
def build(project, env, timeout):
    """Build an exported project (`pio run -d DIR`).

    The first build downloads PlatformIO's ESP32 platform, ESP-IDF, its toolchains and the
    esp-tflite-micro component, so it needs the internet once.
    """
    from ..targets.platformio import build as run_build
    run_build(project, env=env, echo=click.echo, timeout=timeout)


@click.command()
@PROJECT_DIR
@click.option("--port", required=True, help="The board's serial port, e.g. /dev/ttyUSB0, /dev/ttyACM0, COM3.")
@ENV
@TIMEOUT
def flash(project, port, env, timeout):
    """Build and flash an exported project (`pio run -d DIR -t upload --upload-port PORT`)."""
    from ..targets.platformio import flash as run_flash
    run_flash(project, port, env=env, echo=click.echo, timeout=timeout)


COMMANDS = [export, build, flash]
