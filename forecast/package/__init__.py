"""The trained model as one folder: card, weights and arrays, saved and loaded in one place (no Lightning)."""

from forecast.package.card import FORMAT_VERSION, ModelCard, NetworkSpec, Selection
from forecast.package.io import ARRAY_NAMES, ModelPackage, load_card, load_package, save_package

__all__ = ["ARRAY_NAMES", "FORMAT_VERSION", "ModelCard", "ModelPackage", "NetworkSpec", "Selection", "load_card",
           "load_package", "save_package"]
