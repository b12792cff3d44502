"""Data sets: Fashion-MNIST from idx files (with a search path), or a user's .npz."""
from __future__ import annotations

import gzip
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UserError

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
    """Images as float32 in [0, 1] with a channel axis (N, H, W, C); labels as int64."""
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    labels: list
    source: str

    @property
    def input_shape(self) -> tuple:
        return tuple(self.x_train.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    def subset(self, train: int | None = None, test: int | None = None) -> "Dataset":
        return Dataset(self.x_train[:train], self.y_train[:train], self.x_test[:test],
                       self.y_test[:test], self.labels, self.source)


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
    def images(x):
        x = np.asarray(x)
        if x.ndim == 3:
            x = x[..., None]
        x = x.astype(np.float32)
        return x / 255.0 if x.max(initial=0) > 1.0 else x
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


def load_npz(path) -> Dataset:
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in FASHION_FILES if k not in z.files]
            if missing:
                raise UserError(f"{path}: missing array(s) {', '.join(missing)}; "
                                "an .npz needs x_train, y_train, x_test, y_test")
            arrays = {k: z[k] for k in FASHION_FILES}
            labels = [str(s) for s in z["labels"]] if "labels" in z.files else None
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: not a readable .npz ({e})") from None
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim not in (3, 4) or len(x) != len(y) or len(x) == 0:
            raise UserError(f"{path}: x_{split} must be (N, H, W[, C]) with one label per image")
    classes = int(max(arrays["y_train"].max(), arrays["y_test"].max())) + 1
    return _normalise(arrays, labels or [str(i) for i in range(classes)], str(path))


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
