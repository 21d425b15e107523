"""Building blocks: shapes, identity at init, and the published layer details."""

import pytest
import torch
from torch import nn

from geohsr.layers import (
    BasicBlock,
    Bottleneck,
    PixelShuffleICNR,
    SelfAttention,
    conv_bn_act,
    make_act,
    wn_conv,
)


def test_make_act_builds_torch_mish_and_relu():
    assert isinstance(make_act("mish"), nn.Mish)
    assert isinstance(make_act("relu"), nn.ReLU)
    with pytest.raises(ValueError, match="mish"):
        make_act("swish")


def test_conv_bn_act_has_no_conv_bias_and_zero_bn_option():
    layer = conv_bn_act(4, 8, 3, stride=2, zero_bn=True)
    conv, bn, act = layer
    assert conv.bias is None and conv.stride == (2, 2)
    assert torch.all(bn.weight == 0)
    assert isinstance(act, nn.Mish)
    assert layer(torch.rand(1, 4, 9, 9)).shape == (1, 8, 5, 5)


def test_wn_conv_keeps_initial_weight_and_has_g_and_v():
    torch.manual_seed(0)
    conv = wn_conv(4, 6, 3)
    g = conv.parametrizations.weight.original0
    v = conv.parametrizations.weight.original1
    assert g.shape == (6, 1, 1, 1) and v.shape == (6, 4, 3, 3)
    torch.testing.assert_close(conv.weight, v)
    assert conv.bias is not None and torch.all(conv.bias == 0)


@pytest.mark.parametrize("block, expansion", [(BasicBlock, 1), (Bottleneck, 4)])
@pytest.mark.parametrize("avg_down", [True, False])
def test_residual_block_shapes(block, expansion, avg_down):
    layer = block(8, 4, stride=2, avg_down=avg_down)
    assert layer(torch.rand(2, 8, 9, 11)).shape == (2, 4 * expansion, 5, 6)


def test_resnet_d_shortcut_is_avgpool_then_1x1_conv():
    layer = BasicBlock(8, 16, stride=2, avg_down=True)
    pool, proj = layer.shortcut
    assert isinstance(pool, nn.AvgPool2d) and pool.ceil_mode
    assert proj[0].kernel_size == (1, 1) and proj[0].stride == (1, 1)


def test_residual_block_starts_as_activation_of_shortcut():
    layer = BasicBlock(8, 8, act="relu").eval()
    x = torch.randn(1, 8, 6, 6)
    torch.testing.assert_close(layer(x), torch.relu(x))


def test_self_attention_starts_as_identity_and_uses_spectral_norm():
    layer = SelfAttention(16)
    assert layer.query.weight.shape == (2, 16, 1) and layer.value.weight.shape == (16, 16, 1)
    assert layer.query.bias is None
    assert hasattr(layer.query.parametrizations, "weight")
    x = torch.randn(2, 16, 5, 7)
    torch.testing.assert_close(layer(x), x)


def test_self_attention_mixes_positions_once_gamma_is_set():
    layer = SelfAttention(16)
    with torch.no_grad():
        layer.gamma.fill_(1.0)
    x = torch.randn(1, 16, 4, 4)
    x2 = x.clone()
    x2[..., 0, 0] += 1.0
    # a change at one pixel reaches the others through attention
    assert not torch.allclose(layer(x)[..., 3, 3], layer(x2)[..., 3, 3])


def test_self_attention_equals_the_sagan_formula():
    """The fused attention computes SAGAN's beta = softmax_i(q_i . k_j), out = gamma v beta + x."""
    layer = SelfAttention(16).eval()
    with torch.no_grad():
        layer.gamma.fill_(0.7)
        x = torch.randn(2, 16, 5, 6)
        flat = x.flatten(2)
        q, k, v = layer.query(flat), layer.key(flat), layer.value(flat)
        beta = torch.softmax(torch.bmm(q.transpose(1, 2), k), dim=1)
        expected = (0.7 * torch.bmm(v, beta) + flat).view(x.shape)
        torch.testing.assert_close(layer(x), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("blur", [True, False])
def test_pixel_shuffle_icnr_doubles_size(blur):
    layer = PixelShuffleICNR(8, 4, blur=blur)
    assert layer(torch.rand(1, 8, 5, 7)).shape == (1, 4, 10, 14)


def test_blur_is_replication_pad_and_2x2_average():
    layer = PixelShuffleICNR(4, blur=True)
    pad, pool = layer.blur
    assert isinstance(pad, nn.ReplicationPad2d) and pad.padding == (1, 0, 1, 0)
    assert isinstance(pool, nn.AvgPool2d) and pool.kernel_size == 2 and pool.stride == 1
