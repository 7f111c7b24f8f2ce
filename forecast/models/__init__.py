"""Networks: pure ``nn.Module``s mapping ``[B, T_in, C, H, W]`` (and its ``Context``) to ``[B, T_out, C, H, W]``."""

from forecast.models.base import Context, Forecaster, State
from forecast.models.baselines import REFERENCES, Reference, reference_forecasts
from forecast.models.blend import Blend
from forecast.models.cells import ConvGRUCell, ConvLSTMCell, compile_cell
from forecast.models.convlstm import ConvLSTMForecaster
from forecast.models.registry import KINDS, build_network
from forecast.models.stack import ConvRecurrentStack
from forecast.models.stacked_lstm import StackedLSTMForecaster

__all__ = [
    "KINDS",
    "REFERENCES",
    "Blend",
    "Context",
    "ConvGRUCell",
    "ConvLSTMCell",
    "ConvLSTMForecaster",
    "ConvRecurrentStack",
    "Forecaster",
    "Reference",
    "StackedLSTMForecaster",
    "State",
    "build_network",
    "compile_cell",
    "reference_forecasts",
]
