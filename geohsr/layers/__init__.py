"""Building blocks of the models, one block per module (timm style)."""

from geohsr.layers.act import make_act
from geohsr.layers.attention import SelfAttention
from geohsr.layers.conv import conv_bn_act, wn_conv, wn_conv_relu
from geohsr.layers.resnet import BasicBlock, Bottleneck, make_shortcut
from geohsr.layers.upsample import PixelShuffleICNR, icnr_

__all__ = [
    "BasicBlock",
    "Bottleneck",
    "PixelShuffleICNR",
    "SelfAttention",
    "conv_bn_act",
    "icnr_",
    "make_act",
    "make_shortcut",
    "wn_conv",
    "wn_conv_relu",
]
