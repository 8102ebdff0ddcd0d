"""The model-family contract, run for every registered family (a new family is tested by
adding it to the registry): fit with early stopping, batch predictions, a native artifact that
round-trips through the store and scores identically, contributions, importance."""

from __future__ import annotations

from typing import get_args

import numpy as np
import pytest

from config.settings import RetrainSettings
from models.adapters.directory_blobs import DirectoryBlobStore
from models.batch import BatchModelError, load_batch_model
from models.families import (
    FamilyUnavailableError,
    FitConfig,
    FitData,
    UnknownFamilyError,
    family,
    family_names,
    register_family,
)
from models.families.lightgbm_family import LightGBMFamily
from models.market import FEATURES, MarketSimulator
from models.store import ModelStore, ModelStoreError
from models.training import TrainConfig, train_batch_model

FAMILIES = family_names()


def _data(seed: int, n: int) -> FitData:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 5))
    p = 1 / (1 + np.exp(-(1.5 * x[:, 0] - x[:, 1] + 0.5 * x[:, 2] * x[:, 3])))
    return FitData(x, (rng.random(n) < p).astype(np.float64))


@pytest.fixture(scope="module")
def fitted():
    train, valid = _data(1, 3000), _data(2, 800)
    config = FitConfig(threads=1, rounds=200)
    return {name: family(name).fit(train, valid, config) for name in FAMILIES}


def test_every_family_is_registered_and_selectable_in_the_settings():
    assert set(FAMILIES) == {"xgboost", "lightgbm", "catboost", "logistic"}
    assert set(get_args(RetrainSettings.model_fields["family"].annotation)) == set(FAMILIES)
    with pytest.raises(UnknownFamilyError, match="known: catboost, lightgbm, logistic, xgboost"):
        family("randomforest")


@pytest.mark.parametrize("name", FAMILIES)
def test_a_family_learns_and_stops_early(fitted, name):
    model = fitted[name]
    test = _data(3, 2000)
    p = model.predict_proba(test.matrix)
    assert p.shape == (2000,) and p.dtype == np.float64 and ((p > 0) & (p < 1)).all()
    loss = -np.mean(test.labels * np.log(p) + (1 - test.labels) * np.log(1 - p))
    base = test.labels.mean()
    base_loss = -(base * np.log(base) + (1 - base) * np.log(1 - base))
    assert loss < base_loss - 0.1
    assert 1 <= model.rounds < 200 or name == "logistic"
    assert model.family == name
    assert model.describe() == {"rounds": model.rounds, "parameters": model.params}
    assert model.predict_proba(test.matrix[:0]).shape == (0,)


@pytest.mark.parametrize("name", FAMILIES)
def test_contributions_add_up_to_the_log_odds_and_importance_covers_every_feature(fitted, name):
    model = fitted[name]
    x = _data(4, 300).matrix
    contributions = model.contributions(x)
    assert contributions.shape == (300, 6)
    p = model.predict_proba(x)
    np.testing.assert_allclose(contributions.sum(axis=1), np.log(p / (1 - p)), atol=1e-4)
    kind, importance = model.importance()
    assert kind and importance.shape == (5,) and (importance >= 0).all()
    assert importance.argmax() == 0  # x0 carries the most signal


@pytest.mark.parametrize("name", FAMILIES)
def test_a_fixed_number_of_rounds_without_validation(name):
    model = family(name).fit(_data(1, 1000), None, FitConfig(threads=1, rounds=17))
    assert model.rounds == (1 if name == "logistic" else 17)


@pytest.mark.parametrize("name", FAMILIES)
def test_every_family_round_trips_through_the_store_and_scores_identically(tmp_path, name):
    frame = MarketSimulator(seed=5).frame(3000)
    trained = train_batch_model(frame, FEATURES, TrainConfig(family=name, threads=1))
    assert trained.metadata["family"] == name
    assert set(trained.metadata["explanation"]["mean_abs_shap"]) == set(FEATURES)
    store = ModelStore(DirectoryBlobStore(tmp_path))
    kind = trained.family
    version = trained.save_to(store)
    assert (tmp_path / version / kind.model_file).exists()
    loaded = load_batch_model(store, version, FEATURES)
    assert loaded.family == name
    matrix = MarketSimulator(seed=6).frame(500)[list(FEATURES)].to_numpy(np.float64)
    np.testing.assert_array_equal(loaded.predict(matrix), trained.model.predict_proba(matrix))
    store.delete(version)
    assert store.versions() == [] and not (tmp_path / version / kind.model_file).exists()


@pytest.mark.parametrize("name", FAMILIES)
def test_bytes_that_are_not_a_model_of_the_family_are_refused(tmp_path, name):
    kind = family(name)
    store = ModelStore(DirectoryBlobStore(tmp_path))
    metadata = {"features": ["a"], "family": name}
    version = store.save(b"\x00 not a model", metadata, kind.model_file, kind.model_format)
    with pytest.raises(BatchModelError, match=f"not a valid {kind.title} model"):
        load_batch_model(store, version, ["a"])


def test_a_missing_extra_is_one_line_naming_it(monkeypatch, tmp_path):
    monkeypatch.setattr(LightGBMFamily, "library", "lightgbm_not_installed")
    with pytest.raises(FamilyUnavailableError) as caught:
        train_batch_model(MarketSimulator(seed=1).frame(500), FEATURES, TrainConfig("lightgbm"))
    assert str(caught.value) == (
        "model family 'lightgbm' needs lightgbm_not_installed: pip install 'streamlearn[lightgbm]'"
    )
    store = ModelStore(DirectoryBlobStore(tmp_path))
    version = store.save(b"tree", {"features": ["a"]}, "model.txt", "lightgbm-text")
    with pytest.raises(BatchModelError, match=r"cannot be loaded here: .*streamlearn\[lightgbm\]"):
        load_batch_model(store, version, ["a"])


def test_a_model_file_name_cannot_leave_its_version(tmp_path):
    store = ModelStore(DirectoryBlobStore(tmp_path))
    with pytest.raises(ModelStoreError, match="not a model file name"):
        store.save(b"x", {}, "../../etc/passwd", "xgboost-ubj")
    version = store.save(b"x", {}, "model.ubj", "xgboost-ubj")
    meta_path = tmp_path / version / "metadata.json"
    meta_path.write_text(meta_path.read_text().replace('"model.ubj"', '"../model.ubj"'))
    with pytest.raises(ModelStoreError, match="bad model file"):
        store.load(version)


def test_a_family_name_is_registered_once():
    class Impostor(LightGBMFamily):
        pass

    with pytest.raises(ValueError, match="registered twice"):
        register_family(Impostor)
