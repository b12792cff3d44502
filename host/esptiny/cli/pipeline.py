"""Commands for the host stages: train, compress, evaluate, report, and run (all of them)."""
import click

from ..targets.boards import BOARDS

RUN_DIR = click.argument("run_dir", metavar="RUN", type=click.Path(file_okay=False))
JOBS = click.option("--jobs", type=click.IntRange(min=1),
                    help="Variants evaluated at once, one process each [default: one per core].")


def data_options(f):
    f = click.option("--test-limit", type=click.IntRange(min=1), help="Use only the first N test images.")(f)
    f = click.option("--train-limit", type=click.IntRange(min=1), help="Use only the first N training images.")(f)
    f = click.option("--data-dir", type=click.Path(file_okay=False),
                     help="Folder with Fashion-MNIST's four idx .gz files (searched first; then "
                          "$ESPTINY_DATA, ~/.keras/datasets/fashion-mnist, /usr/share/datasets/fashion-mnist, "
                          "then keras' download).")(f)
    f = click.option("--data", "data_npz", type=click.Path(dir_okay=False),
                     help="Your own data: an .npz with x_train, y_train, x_test, y_test (optional labels); "
                          "with run --tflite, x_test [and y_test] or an .npy of inputs.")(f)
    return f


def train_options(f):
    f = click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")(f)
    f = click.option("--lr", type=click.FloatRange(min=0, min_open=True),
                     help="Peak learning rate (Adam, cosine decay) [default: 0.004 for cnn, 0.002 for mlp].")(f)
    f = click.option("--batch-size", type=click.IntRange(min=1),
                     help="[default: 256 for cnn, 128 for mlp]")(f)
    f = click.option("--epochs", type=click.IntRange(min=0),
                     help="Training epochs [default: 8 for cnn, 10 for mlp, 0 for --keras-model].")(f)
    f = click.option("--keras-model", type=click.Path(dir_okay=True),
                     help="Start from your own saved Keras classifier instead of building one.")(f)
    f = click.option("--model", "model_name", type=click.Choice(["cnn", "mlp"]), default="cnn",
                     show_default=True, help="cnn: ~99K-parameter conv net (92% on Fashion-MNIST); mlp: the seed's 784-128-10.")(f)
    return data_options(f)


def compress_options(f):
    from ..stages.compress.registry import DEFAULTS, METHODS
    f = click.option("--finetune-limit", type=click.IntRange(min=1), default=DEFAULTS["finetune_limit"],
                     show_default=True, help="Fine-tune on the first N training images (what each "
                                             "budget buys: docs/design.md).")(f)
    f = click.option("--finetune-lr", type=click.FloatRange(min=0, min_open=True),
                     default=DEFAULTS["finetune_lr"], show_default=True)(f)
    f = click.option("--finetune-epochs", type=click.IntRange(min=1), default=DEFAULTS["finetune_epochs"],
                     show_default=True, help="Epochs of QAT, pruning and clustering fine-tunes.")(f)
    f = click.option("--clusters", type=click.IntRange(2, 256), default=DEFAULTS["clusters"],
                     show_default=True, help="Weight clusters per layer.")(f)
    f = click.option("--sparsity", type=click.FloatRange(0, 1, min_open=True, max_open=True),
                     default=DEFAULTS["sparsity"], show_default=True, help="Target pruning sparsity.")(f)
    f = click.option("--rep-samples", type=click.IntRange(min=1), default=DEFAULTS["rep_samples"],
                     show_default=True, help="Training images that calibrate int8 activation ranges.")(f)
    f = click.option("--methods", default=",".join(METHODS), show_default=True,
                     help="Comma-separated variants to make: " + ", ".join(METHODS) + ".")(f)
    return f


def _methods(text):
    return [m.strip() for m in text.split(",") if m.strip()]


@click.command()
@RUN_DIR
@train_options
def train(run_dir, model_name, keras_model, epochs, batch_size, lr, seed, data_npz, data_dir,
          train_limit, test_limit):
    """Train a classifier into RUN (created if needed).

    Fashion-MNIST by default; --data for your own .npz; --keras-model to start from your
    own saved model (with --epochs 0 it is adopted as it is)."""
    from ..stages.run import new_run
    from ..stages.train import train as run_train
    run_train(new_run(run_dir), model_name, keras_model, data_npz, data_dir, train_limit,
              test_limit, epochs, batch_size, lr, seed)


@click.command()
@RUN_DIR
@compress_options
def compress(run_dir, methods, rep_samples, sparsity, clusters, finetune_epochs, finetune_lr, finetune_limit):
    """Make the compressed variants of RUN's model as variants/<name>.tflite.

    \b
    float32           the baseline
    float16           post-training float16 weights (not for TFLite-Micro)
    dynamic           post-training dynamic range (not for TFLite-Micro)
    int8              full-integer int8, int8 input and output
    qat               quantization-aware training, then int8
    pruned            magnitude pruning to --sparsity, stripped, then int8
    clustered         weight clustering to --clusters, stripped, then int8
    pruned_clustered  pruning + sparsity-preserving clustering, then int8"""
    from ..stages.compress import compress as run_compress
    from ..stages.run import Run
    run_compress(Run(run_dir), _methods(methods), rep_samples=rep_samples, sparsity=sparsity,
                 clusters=clusters, finetune_epochs=finetune_epochs, finetune_lr=finetune_lr,
                 finetune_limit=finetune_limit)


@click.command()
@RUN_DIR
@click.option("--variants", help="Comma-separated variants [default: all in the run].")
@click.option("--tflm-limit", type=click.IntRange(min=1),
              help="Run only the first N test images on TFLite-Micro (it is ~100x slower than TFLite).")
@JOBS
def evaluate(run_dir, variants, tflm_limit, jobs):
    """Measure every variant: accuracy, agreement, size, sparsity, MACs (TFLite interpreter);
    accuracy, agreement and arena bytes on TFLite-Micro's host runtime for deployable ones."""
    from ..stages.evaluate import evaluate as run_evaluate
    from ..stages.run import Run
    run_evaluate(Run(run_dir), _methods(variants) if variants else None, tflm_limit, jobs)


@click.command("import")
@RUN_DIR
@click.argument("model", metavar="MODEL", type=click.Path(exists=True))
@click.option("--data", "data_path", type=click.Path(dir_okay=False, exists=True),
              help="Inputs to evaluate and bench on: an .npz with x_test (and y_test: class labels "
                   "or targets; x_train calibrates a Keras model), or an .npy of inputs. Floats are "
                   "quantized with the model's input scale; the model's integer type is taken as it is.")
@click.option("--random", "random_n", type=click.IntRange(min=1), metavar="N",
              help="No data: N seeded inputs spanning the input type's range (no labels).")
@click.option("--name", help="Variant name for a .tflite [default: the file's name].")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of --random.")
def import_cmd(run_dir, model, data_path, random_n, name, seed):
    """Bring your own MODEL into RUN (created if needed).

    A .tflite becomes a variant of RUN that evaluate, export, bench and report take like any
    other; a Keras model (.keras, .h5, SavedModel folder) becomes RUN's model and is
    compressed into every variant, as `train --keras-model` and `compress` do."""
    from ..stages.importer import import_model
    from ..stages.run import new_run
    import_model(new_run(run_dir), model, data_path, name, random_n, seed)


@click.command()
@RUN_DIR
def report(run_dir):
    """Write report.json, report.md, report.html and the plots from what RUN holds."""
    from ..stages.report import report as run_report
    from ..stages.run import Run
    run_report(Run(run_dir))


@click.command("run")
@RUN_DIR
@train_options
@compress_options
@click.option("--tflm-limit", type=click.IntRange(min=1), help="See `esptiny evaluate --help`.")
@JOBS
@click.option("--resume", is_flag=True,
              help="Keep every stage whose inputs (options, the files it reads) did not change "
                   "since the last run into RUN, and say so.")
@click.option("--board", type=click.Choice(list(BOARDS)), default="esp32",
              show_default=True, help="Board to export the int8 variant for (`esptiny export`); "
                                      "--no-export skips it.")
@click.option("--export/--no-export", "do_export", default=True, show_default=True)
@click.option("--bench/--no-bench", default=True, show_default=True,
              help="Benchmark the int8 variant on the virtual board (`esptiny bench --port sim`).")
@click.option("--bench-limit", type=click.IntRange(min=1), default=2000, show_default=True,
              help="Test images to stream to the virtual board (at an emulated 921600 baud: ~115/s).")
@click.option("--tflite", "tflite_model", type=click.Path(dir_okay=False, exists=True), metavar="MODEL",
              help="Your own .tflite instead of training: import (with --data or --random), evaluate, "
                   "export, bench, report; the training and compression options do not apply.")
@click.option("--random", "random_n", type=click.IntRange(min=1), metavar="N",
              help="With --tflite and no --data: N seeded inputs spanning the input type's range.")
def run_all(run_dir, model_name, keras_model, epochs, batch_size, lr, seed, data_npz, data_dir,
            train_limit, test_limit, methods, rep_samples, sparsity, clusters, finetune_epochs,
            finetune_lr, finetune_limit, tflm_limit, jobs, resume, board, do_export, bench, bench_limit,
            tflite_model, random_n):
    """The whole pipeline into RUN: train, compress, evaluate, export the int8 variant as
    a firmware project, bench it on the virtual board, report. With --tflite MODEL: import
    your model instead of training and compressing one, then the same stages on it. Each
    stage can be rerun alone with its own command."""
    from ..stages import pipeline
    if tflite_model:
        if keras_model:
            raise click.UsageError("--tflite and --keras-model exclude each other")
        pipeline.run_tflite(run_dir, tflite_model, data_npz, random_n, tflm_limit=tflm_limit,
                            board=board, do_export=do_export, bench=bench, bench_limit=bench_limit)
        return
    if random_n:
        raise click.UsageError("--random goes with --tflite")
    pipeline.run_all(
        run_dir,
        train_options=dict(model_name=model_name, keras_model=keras_model, data_npz=data_npz,
                           data_dir=data_dir, train_limit=train_limit, test_limit=test_limit,
                           epochs=epochs, batch_size=batch_size, lr=lr, seed=seed),
        compress_options=dict(rep_samples=rep_samples, sparsity=sparsity, clusters=clusters,
                              finetune_epochs=finetune_epochs, finetune_lr=finetune_lr,
                              finetune_limit=finetune_limit),
        methods=_methods(methods), tflm_limit=tflm_limit, board=board, do_export=do_export,
        bench=bench, bench_limit=bench_limit, resume=resume, jobs=jobs)


COMMANDS = [train, import_cmd, compress, evaluate, report, run_all]
