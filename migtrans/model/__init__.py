"""The MIGTrans network: modality encoders, our own attention with readable maps, the fusion transformer."""

from ._attention import Attention
from ._config import ModelConfig
from ._migtrans import MIGTrans

__all__ = ["Attention", "MIGTrans", "ModelConfig"]
