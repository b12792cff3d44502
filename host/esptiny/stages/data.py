"""Data sets: Fashion-MNIST from idx files (with a search path), or a user's .npz."""
from __future__ import annotations

import gzip
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..model import tflite

FASHION_FILES = {
    "x_train": "train-images-idx3-ubyte.gz",
    "y_train": "train-labels-idx1-ubyte.gz",
    "x_test": "t10k-images-idx3-ubyte.gz",
    "y_test": "t10k-labels-idx1-ubyte.gz",
}
FASHION_LABELS = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                  "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
KERAS_CACHE = Path.home() / ".keras" / "datasets" / "fashion-mnist"
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")


@dataclass
class Dataset:
    """What training and compression use: inputs as float32 (Fashion-MNIST: images in
    [0, 1] with a channel axis), labels as int64. y_* are None when the data has none;
    x_train is x_test when the data has no training split (calibration only)."""
    x_train: np.ndarray
    y_train: np.ndarray | None
    x_test: np.ndarray
    y_test: np.ndarray | None
    labels: list
    source: str

    @property
    def input_shape(self) -> tuple:
        return tuple(self.x_train.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    def subset(self, train: int | None = None, test: int | None = None) -> "Dataset":
        def cut(a, n):
            return None if a is None else a[:n]
        return Dataset(self.x_train[:train], cut(self.y_train, train), self.x_test[:test],
                       cut(self.y_test, test), self.labels, self.source)

    def test_set(self) -> "TestSet":
        return TestSet(self.x_test, self.y_test, list(self.labels) if self.y_test is not None else [],
                       self.source)


def read_idx(path: Path) -> np.ndarray:
    """An idx file (gzipped or not) as a numpy array; a one-line error when it is not one."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
        zero, dtype_code, ndim = struct.unpack_from(">HBB", raw)
        if zero != 0 or dtype_code != 0x08 or not 1 <= ndim <= 4:
            raise ValueError("bad idx header")
        dims = struct.unpack_from(f">{ndim}I", raw, 4)
        offset = 4 + 4 * ndim
        count = int(np.prod(dims))
        if len(raw) - offset != count:
            raise ValueError(f"{len(raw) - offset} data bytes for dims {dims}")
        return np.frombuffer(raw, np.uint8, count, offset).reshape(dims)
    except (OSError, EOFError, struct.error, ValueError, gzip.BadGzipFile) as e:
        raise UserError(f"{path}: not a valid idx file ({e})") from None


def search_path(data_dir=None) -> list:
    """Where Fashion-MNIST is looked for, in order."""
    places = []
    if data_dir:
        places.append(("--data-dir", Path(data_dir)))
    if os.environ.get("ESPTINY_DATA"):
        places.append(("$ESPTINY_DATA", Path(os.environ["ESPTINY_DATA"])))
    places.append(("keras cache", KERAS_CACHE))
    places.append(("Debian dataset-fashion-mnist", DEBIAN_DIR))
    return places


def _has_all(d: Path) -> bool:
    return all((d / f).is_file() for f in FASHION_FILES.values())


def _from_dir(d: Path, source: str) -> Dataset:
    arrays = {k: read_idx(d / f) for k, f in FASHION_FILES.items()}
    for split in ("train", "test"):
        if len(arrays[f"x_{split}"]) != len(arrays[f"y_{split}"]):
            raise UserError(f"{d}: {split} images and labels differ in count")
    return _normalise(arrays, FASHION_LABELS, source)


def _normalise(arrays: dict, labels: list, source: str) -> Dataset:
    """Fashion-MNIST's uint8 images as float32 in [0, 1] with a channel axis."""
    def images(x):
        return np.asarray(x, np.float32)[..., None] / 255.0
    y_train = np.asarray(arrays["y_train"]).astype(np.int64).reshape(-1)
    y_test = np.asarray(arrays["y_test"]).astype(np.int64).reshape(-1)
    return Dataset(images(arrays["x_train"]), y_train, images(arrays["x_test"]), y_test,
                   labels, source)


def _download() -> Dataset | None:
    """keras' own download, for users online. Returns None when it fails (offline)."""
    try:
        from ..tf import keras
        (xtr, ytr), (xte, yte) = keras.datasets.fashion_mnist.load_data()
    except Exception:  # offline, DNS, HTTP: all mean "not available here"
        return None
    return _normalise({"x_train": xtr, "y_train": ytr, "x_test": xte, "y_test": yte},
                      FASHION_LABELS, "keras download")


def read_arrays(path) -> dict:
    """The arrays of a user's .npz (x_test, optional y_test, x_train, y_train, labels) or .npy
    (inputs only, as x_test); one-line errors for a file that is neither."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such data file")
    try:
        if path.suffix == ".npy":
            return {"x_test": np.load(path, allow_pickle=False)}
        with np.load(path, allow_pickle=False) as z:
            if not isinstance(z, np.lib.npyio.NpzFile):
                raise ValueError("not an .npz archive")
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError) as e:
        raise UserError(f"{path}: not a readable .npz or .npy ({str(e).splitlines()[0][:120]})") from None
    if "x_test" not in arrays:
        raise UserError(f"{path}: no x_test array (it has {', '.join(arrays) or 'none'}); an .npz "
                        "needs x_test, and optionally y_test, x_train, y_train, labels")
    for x, y in (("x_test", "y_test"), ("x_train", "y_train")):
        if y in arrays and x in arrays and len(arrays[y]) != len(arrays[x]):
            raise UserError(f"{path}: {len(arrays[x])} {x} but {len(arrays[y])} {y}")
    for k, a in arrays.items():
        if k != "labels" and (a.dtype.kind not in "biuf" or a.ndim == 0 or len(a) == 0):
            raise UserError(f"{path}: {k} is {a.dtype} of shape {a.shape}; esptiny needs a "
                            "non-empty numeric array with one row per sample")
    return arrays


def load_npz(path) -> Dataset:
    """A user's data for training or compressing a Keras model: x_test, and optionally
    y_test, x_train (calibration; x_test stands in without it), y_train, labels. Inputs are
    taken as they are, as float32: nothing is rescaled."""
    path = Path(path)
    arrays = read_arrays(path)
    y_test, y_train = arrays.get("y_test"), arrays.get("y_train")
    classes = [int(y.max()) + 1 for y in (y_test, y_train) if y is not None and is_labels(y)]
    labels = [str(s) for s in arrays["labels"]] if "labels" in arrays else \
        [str(i) for i in range(max(classes))] if classes else []
    x_test = np.asarray(arrays["x_test"], np.float32)
    x_train = np.asarray(arrays["x_train"], np.float32) if "x_train" in arrays else x_test
    return Dataset(x_train, y_train if "x_train" in arrays else None, x_test, y_test, labels, str(path))


def is_labels(y: np.ndarray) -> bool:
    """Class labels: one non-negative integer a sample."""
    return y.ndim == 1 and y.dtype.kind in "iub" and (y.size == 0 or int(y.min()) >= 0)


def load(data: str | None = None, data_dir: str | None = None, download: bool = True) -> Dataset:
    """The user's .npz if given, else Fashion-MNIST from the first place that has it."""
    if data:
        return load_npz(data)
    places = search_path(data_dir)
    for label, d in places:
        if _has_all(d):
            return _from_dir(d, f"{label} ({d})")
    if download:
        ds = _download()
        if ds is not None:
            return ds
    looked = "; ".join(f"{label} {d}" for label, d in places)
    raise UserError(f"Fashion-MNIST not found (looked in: {looked}; keras download "
                    f"{'failed' if download else 'disabled'}); put the four idx .gz files in one "
                    "of those folders, `apt-get install dataset-fashion-mnist`, or pass --data FILE.npz")


def spec(data=None, data_dir=None, train_limit=None, test_limit=None) -> dict:
    """What a run records so that later stages reload exactly the same data."""
    return {"data": str(Path(data).resolve()) if data else None,
            "data_dir": str(Path(data_dir).resolve()) if data_dir else None,
            "train_limit": train_limit, "test_limit": test_limit}


def from_spec(s: dict) -> Dataset:
    return load(s.get("data"), s.get("data_dir")).subset(s.get("train_limit"), s.get("test_limit"))


# ---- what a variant is evaluated and benched on ---------------------------------------------

@dataclass
class TestSet:
    """Inputs as given (floats, or already in the model's integer type) and, per sample,
    a class label, a target of the output's shape, or nothing (y None)."""
    x: np.ndarray
    y: np.ndarray | None
    labels: list              # class names, when y holds class labels
    source: str

    def __len__(self) -> int:
        return len(self.x)

    def first(self, n: int) -> "TestSet":
        return TestSet(self.x[:n], None if self.y is None else self.y[:n], self.labels, self.source)

    def take(self, idx) -> "TestSet":
        """The samples at idx (indices or a boolean mask)."""
        return TestSet(self.x[idx], None if self.y is None else self.y[idx], self.labels, self.source)

    def model_inputs(self, details: dict) -> np.ndarray:
        """The inputs as the model takes them (its shape with a batch axis, its dtype)."""
        return conform_inputs(self.x, details, self.source)

    def kind(self, out_details: dict) -> str:
        """'labels' (a classifier with class labels), 'targets' (an output to match) or
        'none'; a one-line error for a y that is neither."""
        if self.y is None:
            return "none"
        per = _per_sample(out_details)
        numel = int(np.prod(per)) if per else 1
        if is_labels(self.y) and len(_squeezed(per)) == 1 and numel >= 2 and int(self.y.max()) < numel:
            return "labels"
        if _squeezed(self.y.shape[1:]) == _squeezed(per):
            return "targets"
        raise UserError(f"{self.source}: y_test of shape {self.y.shape} is neither class labels (one "
                        f"integer below {numel} a sample) nor targets of the output's shape "
                        f"{per} a sample")

    def targets(self, out_details: dict) -> np.ndarray:
        """y as float targets of the output's shape, one a sample."""
        return np.asarray(self.y, np.float64).reshape(len(self.y), *_per_sample(out_details))

    def class_names(self, out_details: dict) -> list:
        numel = int(np.prod(_per_sample(out_details)))
        return self.labels if len(self.labels) == numel else [str(i) for i in range(numel)]


def _per_sample(details: dict) -> tuple:
    shape = tuple(int(d) for d in details["shape"])
    return shape[1:]


def _squeezed(shape) -> tuple:
    return tuple(int(d) for d in shape if d != 1)


def conform_inputs(x: np.ndarray, details: dict, where: str) -> np.ndarray:
    """x (with or without the batch axis, any rank that holds the model's input) as the
    model's input: (N, *shape) in its dtype. Floats are quantized with the input's scale
    and zero point; values already of its integer type are taken as they are; nothing is
    rescaled. A mismatch is one line with what was expected and what was given."""
    x = np.asarray(x)
    per = _per_sample(details)
    dtype = np.dtype(details["dtype"])
    expected = f"(N, {', '.join(map(str, per))}) {dtype.name}"
    if x.shape[1:] == per:
        pass
    elif x.shape == per:
        x = x[None]
    elif x.ndim >= 1 and _squeezed(x.shape[1:]) == _squeezed(per):
        x = x.reshape(len(x), *per)
    else:
        raise UserError(f"{where}: inputs of shape {x.shape} {x.dtype.name} do not fit the model's "
                        f"input: expected {expected}")
    if x.dtype.kind not in "biuf":
        raise UserError(f"{where}: inputs are {x.dtype.name}; expected {expected}")
    if dtype.kind == "f" or x.dtype.kind == "f":
        if dtype.kind != "f" and not tflite.quant_params(details)[0]:
            raise UserError(f"{where}: the model's {dtype.name} input has no scale to quantize "
                            f"float inputs with; give {dtype.name} values")
        return tflite.to_input(x, details)
    if x.dtype != dtype:
        scale, zp = details.get("quantization", (0.0, 0))
        raise UserError(f"{where}: inputs are {x.dtype.name}, the model takes {dtype.name}: give "
                        f"{dtype.name} values as they are, or floats (quantized with scale "
                        f"{scale:g}, zero point {zp})")
    return x


def random_inputs(details: dict, n: int, seed: int, span=None) -> np.ndarray:
    """n seeded inputs spanning the input type's range: every integer of an integer input;
    for a float input, uniform over `span` (the range a following QUANTIZE can represent),
    else standard normal."""
    rng = np.random.default_rng(seed)
    per = _per_sample(details)
    dtype = np.dtype(details["dtype"])
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return rng.integers(info.min, int(info.max) + 1, (n, *per), dtype=dtype)
    if span is not None:
        return rng.uniform(span[0], span[1], (n, *per)).astype(dtype)
    return rng.standard_normal((n, *per)).astype(dtype)
