"""Model families of the batch model: one small contract (:mod:`.contract`), a decorator
registry (:mod:`.registry`), and one module per family (XGBoost, LightGBM, CatBoost, a
scikit-learn logistic baseline). Importing this package registers every family; the heavy
libraries of the optional ones are imported only when such a family is used."""

from models.families import catboost_family, lightgbm_family, logistic_family, xgboost_family
from models.families.contract import (
    FamilyUnavailableError,
    FitConfig,
    FitData,
    FittedModel,
    ModelFamily,
    ModelLoadError,
    Progress,
)
from models.families.registry import (
    UnknownFamilyError,
    family,
    family_for_format,
    family_names,
    register_family,
)

__all__ = [
    "FamilyUnavailableError",
    "FitConfig",
    "FitData",
    "FittedModel",
    "ModelFamily",
    "ModelLoadError",
    "Progress",
    "UnknownFamilyError",
    "catboost_family",
    "family",
    "family_for_format",
    "family_names",
    "lightgbm_family",
    "logistic_family",
    "register_family",
    "xgboost_family",
]
