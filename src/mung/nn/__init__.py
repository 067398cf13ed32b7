"""Network blocks shared by the speaker and music models (as timm's ``layers``)."""

from mung.nn.pooling import SelfAttentivePooling, attentive_statistics
from mung.nn.se import SEBasicBlock, SEGate

__all__ = ["SEBasicBlock", "SEGate", "SelfAttentivePooling", "attentive_statistics"]
