"""The MIGTrans network: modality encoders, our own attention with readable maps, the fusion transformer."""

from ._attention import Attention
from ._config import ModelConfig
from ._migtrans import MIGTrans
from ._prior import LinearPrior

__all__ = ["Attention", "LinearPrior", "MIGTrans", "ModelConfig"]
