"""Data sets: idx parsing, the search path, users' .npz files, one-line errors."""
import gzip
import struct

import numpy as np
import pytest
from esptiny.errors import UserError
from esptiny.stages import data


def write_idx(path, array):
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def fake_fashion(folder, n_train=12, n_test=5, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {"x_train": rng.integers(0, 256, (n_train, 28, 28)), "y_train": rng.integers(0, 10, n_train),
              "x_test": rng.integers(0, 256, (n_test, 28, 28)), "y_test": rng.integers(0, 10, n_test)}
    for key, name in data.FASHION_FILES.items():
        write_idx(folder / name, arrays[key])
    return arrays


def test_idx_round_trip(tmp_path):
    arrays = fake_fashion(tmp_path)
    got = data.read_idx(tmp_path / data.FASHION_FILES["x_train"])
    assert got.shape == (12, 28, 28)
    assert np.array_equal(got, arrays["x_train"])


def test_data_dir_wins_over_env(tmp_path, monkeypatch):
    a = fake_fashion(tmp_path / "a", n_train=12, seed=1)
    fake_fashion(tmp_path / "b", n_train=7, seed=2)
    monkeypatch.setenv("ESPTINY_DATA", str(tmp_path / "b"))
    ds = data.load(data_dir=str(tmp_path / "a"), download=False)
    assert ds.x_train.shape == (12, 28, 28, 1)
    assert ds.x_train.dtype == np.float32 and ds.x_train.max() <= 1.0
    assert np.allclose(ds.x_train[..., 0] * 255, a["x_train"])
    assert ds.labels == data.FASHION_LABELS
    assert ds.source.startswith("--data-dir")
    ds = data.load(download=False)  # falls to $ESPTINY_DATA
    assert len(ds.x_train) == 7 and ds.source.startswith("$ESPTINY_DATA")


def test_nothing_found_names_every_place(tmp_path, monkeypatch):
    monkeypatch.setenv("ESPTINY_DATA", str(tmp_path / "env"))
    monkeypatch.setattr(data, "KERAS_CACHE", tmp_path / "keras")
    monkeypatch.setattr(data, "DEBIAN_DIR", tmp_path / "debian")
    with pytest.raises(UserError) as e:
        data.load(data_dir=str(tmp_path / "dd"), download=False)
    msg = str(e.value)
    assert "\n" not in msg
    for place in ("dd", "env", "keras", "debian", "--data"):
        assert place in msg


def test_corrupt_idx_is_a_user_error(tmp_path):
    fake_fashion(tmp_path)
    (tmp_path / data.FASHION_FILES["y_test"]).write_bytes(b"not gzip at all")
    with pytest.raises(UserError, match="not a valid idx file"):
        data.load(data_dir=str(tmp_path), download=False)


def test_truncated_idx_is_a_user_error(tmp_path):
    arrays = fake_fashion(tmp_path)
    path = tmp_path / data.FASHION_FILES["x_test"]
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(raw[:-10]))
    with pytest.raises(UserError, match="data bytes"):
        data.read_idx(path)
    # the other files are intact and read back as written
    np.testing.assert_array_equal(data.read_idx(tmp_path / data.FASHION_FILES["y_test"]), arrays["y_test"])


def test_npz(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "d.npz"
    np.savez(path, x_train=rng.random((20, 8, 8, 3)).astype(np.float32), y_train=rng.integers(0, 3, 20),
             x_test=rng.random((6, 8, 8, 3)).astype(np.float32), y_test=rng.integers(0, 3, 6),
             labels=np.array(["a", "b", "c"]))
    ds = data.load(str(path))
    assert ds.input_shape == (8, 8, 3) and ds.num_classes == 3 and ds.labels == ["a", "b", "c"]
    sub = ds.subset(train=5, test=2)
    assert len(sub.x_train) == 5 and len(sub.y_test) == 2


def test_npz_missing_array(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, x_train=np.zeros((2, 4, 4)), y_train=np.zeros(2))
    with pytest.raises(UserError, match="missing array.*x_test, y_test"):
        data.load(str(path))


def test_spec_round_trip(tmp_path):
    fake_fashion(tmp_path, n_train=12, n_test=5)
    s = data.spec(data_dir=str(tmp_path), train_limit=4, test_limit=3)
    ds = data.from_spec(s)
    assert len(ds.x_train) == 4 and len(ds.x_test) == 3
