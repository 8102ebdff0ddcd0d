"""Model store and batch model: native format, atomic versions, checksums, validation on load."""

from __future__ import annotations

import numpy as np
import pytest

from models.adapters.directory_blobs import DirectoryBlobStore
from models.batch import BatchModelError, feature_matrix, load_batch_model
from models.market import FEATURES, MarketSimulator
from models.store import METADATA_FILE, MODEL_FILE, ModelStore, ModelStoreError
from models.training import TrainConfig, train_batch_model


@pytest.fixture(scope="module")
def trained():
    return train_batch_model(MarketSimulator(seed=1).frame(3000), FEATURES, TrainConfig())


def test_saved_version_loads_and_predicts_like_the_trained_booster(tmp_path, trained):
    store = ModelStore(DirectoryBlobStore(tmp_path))
    version = store.save(trained.model_bytes(), trained.metadata)
    assert store.versions() == [version]
    assert not any(p.name.startswith(".staging") for p in tmp_path.iterdir())
    model = load_batch_model(store, version, FEATURES)
    rows = [o["features"] for o in MarketSimulator(seed=2).outcomes(50)]
    matrix = feature_matrix(rows, FEATURES)
    np.testing.assert_allclose(model.predict(matrix), trained.model.predict_proba(matrix))
    metadata = store.load(version).metadata
    assert metadata["model_format"] == "xgboost-ubj" and len(metadata["sha256"]) == 64
    assert metadata["features"] == list(FEATURES)


def test_tampered_model_file_fails_its_checksum(tmp_path, trained):
    store = ModelStore(DirectoryBlobStore(tmp_path))
    version = store.save(trained.model_bytes(), trained.metadata)
    path = tmp_path / version / MODEL_FILE
    data = bytearray(path.read_bytes())
    data[100] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(BatchModelError, match="fails its checksum"):
        load_batch_model(store, version, FEATURES)


def test_truncated_model_with_matching_checksum_is_still_refused(tmp_path, trained):
    store = ModelStore(DirectoryBlobStore(tmp_path))
    version = store.save(trained.model_bytes()[:500], trained.metadata)
    with pytest.raises(BatchModelError, match="not a valid XGBoost model"):
        load_batch_model(store, version, FEATURES)


def test_feature_mismatch_and_missing_versions_are_refused(tmp_path, trained):
    store = ModelStore(DirectoryBlobStore(tmp_path))
    version = store.save(trained.model_bytes(), trained.metadata)
    with pytest.raises(BatchModelError, match="trained on features"):
        load_batch_model(store, version, (*FEATURES[:-1], "other"))
    with pytest.raises(ModelStoreError, match="not found"):
        store.load("20990101T000000000000Z-0badf00d")
    (tmp_path / version / METADATA_FILE).write_text("{broken")
    with pytest.raises(ModelStoreError, match="unreadable"):
        store.load(version)


@pytest.mark.parametrize(
    "name",
    [
        "/abs/pathZ-1",
        "../outsideZ-1",
        "20260101T120000123456Z-1a2b3c4d/../../x",
        "20260101T120000123456Z-1A2B3C4D",
        "20260101T120000123456Z-1a2b3c4d\n",
        "",
        ".deleting-20260101T120000123456Z-1a2b3c4d",
    ],
)
def test_version_names_that_could_escape_the_store_are_refused(tmp_path, trained, name):
    store = ModelStore(DirectoryBlobStore(tmp_path / "store"))
    version = store.save(trained.model_bytes(), trained.metadata)
    outside = tmp_path / "outsideZ-1"
    outside.mkdir()
    (outside / MODEL_FILE).write_bytes(b"x")
    with pytest.raises(ModelStoreError, match="is not a model version name"):
        store.load(name)
    with pytest.raises(BatchModelError):
        load_batch_model(store, name, FEATURES)
    store.delete(name)
    assert outside.is_dir() and store.versions() == [version]
