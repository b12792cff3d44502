"""esptiny's command line: one module per group of commands, click only, no logic."""
import sys

import click

from ..errors import UserError


class Main(click.Group):
    """Turns the errors a user can cause into one line and a non-zero exit."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except UserError as e:
            click.echo(f"esptiny: error: {e}", err=True)
            sys.exit(1)
        except click.UsageError as e:  # one line, not click's usage block
            hint = f" (see `{e.ctx.command_path} --help`)" if e.ctx else ""
            click.echo(f"esptiny: error: {e.format_message()}{hint}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("esptiny: interrupted", err=True)
            sys.exit(130)


@click.group(cls=Main, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="esptiny")
def main():
    """Train (or import), compress, export and benchmark a model on an ESP32.

    \b
    A run directory carries everything one run makes; each command is one stage:
      esptiny run RUN          the whole pipeline (train .. report, bench on the virtual board)
      esptiny train RUN        train a model (Fashion-MNIST unless --data or --keras-model)
      esptiny import RUN MODEL your own .tflite or Keras model (--data FILE or --random N)
      esptiny compress RUN     float32, float16, dynamic, int8, QAT, pruned, clustered, ...
      esptiny evaluate RUN     accuracy, size, agreement; TFLite and TFLite-Micro
      esptiny report RUN       report.json / .md / .html and plots
    """


def _register():
    from . import pipeline
    for cmd in pipeline.COMMANDS:
        main.add_command(cmd)
    from . import device
    for cmd in device.COMMANDS:
        main.add_command(cmd)
    from . import firmware
    for cmd in firmware.COMMANDS:
        main.add_command(cmd)


_register()
