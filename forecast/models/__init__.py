"""Networks: pure ``nn.Module``s mapping ``[B, T_in, C, H, W]`` to ``[B, T_out, C, H, W]``."""

from forecast.models.base import Forecaster, State
from forecast.models.baselines import Climatology, Persistence
from forecast.models.cells import ConvGRUCell, ConvLSTMCell, compile_cell
from forecast.models.convlstm import ConvLSTMForecaster
from forecast.models.registry import KINDS, build_network
from forecast.models.stack import ConvRecurrentStack
from forecast.models.stacked_lstm import StackedLSTMForecaster

__all__ = [
    "KINDS",
    "Climatology",
    "ConvGRUCell",
    "ConvLSTMCell",
    "ConvLSTMForecaster",
    "ConvRecurrentStack",
    "Forecaster",
    "Persistence",
    "StackedLSTMForecaster",
    "State",
    "build_network",
    "compile_cell",
]
