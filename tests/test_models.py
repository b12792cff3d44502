"""Model builders: the sizes the issue sets, and loading users' models."""
import pytest
from esptiny.errors import UserError
from esptiny.stages import models


def test_cnn_stays_under_100k_parameters():
    m = models.build("cnn", (28, 28, 1), 10)
    assert m.count_params() == 98_778  # <= 100K, batch-norm statistics included
    assert m.output_shape == (None, 10)


def test_mlp_is_the_seed_model():
    m = models.build("mlp", (28, 28, 1), 10)
    assert [type(layer).__name__ for layer in m.layers] == ["Flatten", "Dense", "Dense"]
    assert m.count_params() == 784 * 128 + 128 + 128 * 10 + 10


def test_unknown_model_and_missing_file(tmp_path):
    with pytest.raises(UserError, match="unknown model 'resnet'"):
        models.build("resnet", (28, 28, 1), 10)
    with pytest.raises(UserError, match="no such model file"):
        models.load_keras(tmp_path / "none.keras")
