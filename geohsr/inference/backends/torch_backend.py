"""The model run by torch on CPU or CUDA, fp32 or under autocast."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

#: autocast dtype of each reduced precision
AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
#: rows of a channels-last output transposed at a time (a block fits in the CPU cache)
TRANSPOSE_ROWS = 8


class TorchBackend:
    """``model`` (prepared, channels-last, on its device) at ``precision`` (``fp32``,
    ``bf16`` or ``fp16``: autocast; the output is float32 either way). ``fp32`` on CUDA is
    IEEE fp32: TensorFloat-32 convolutions and matrix products (cuDNN's default) are off
    while the model runs, see :func:`strict_fp32`."""

    name = "torch"

    def __init__(self, model: nn.Module, *, precision: str = "fp32") -> None:
        self.model = model
        self.precision = precision
        self.device = next(iter(model.buffers()), torch.zeros(())).device

    def forward(self, batch: np.ndarray) -> np.ndarray:
        """``(N, 3, h, w)`` float32 -> ``(N, 31, h, w)`` float32, C-contiguous."""
        x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(self.device)
        x = x.contiguous(memory_format=torch.channels_last)
        dtype = AUTOCAST_DTYPES.get(self.precision)
        with (
            torch.inference_mode(),
            strict_fp32(self.device.type == "cuda" and dtype is None),
            torch.autocast(
                self.device.type, dtype=dtype or torch.float32, enabled=dtype is not None
            ),
        ):
            y = self.model(x)
            if self.device.type == "cuda":  # the layout change on the GPU, not the CPU
                y = y.float().contiguous()
        return channels_first(y.float().cpu())


@contextmanager
def strict_fp32(enabled: bool) -> Iterator[None]:
    """Within the block, CUDA convolutions and matrix products in IEEE fp32, not
    TensorFloat-32 (10-bit mantissa; cuDNN uses it for convolutions by default). On an
    H200 TF32 convolutions put the shipped model 0.65 % (mean relative) from the CPU's
    fp32 output (``benchmarks/gpu_check.sh``). Process-wide torch flags, restored after."""
    if not enabled:
        yield
        return
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def channels_first(y: torch.Tensor) -> np.ndarray:
    """``(N, C, h, w)`` float32 C-contiguous copy (or view) of CPU tensor ``y`` in any memory
    format. A channels-last one is transposed :data:`TRANSPOSE_ROWS` rows at a time:
    about 3x faster than numpy's whole-array copy (0.11 s against 0.30 s for three 512 x
    512 x 31 windows on one thread here), which showed as 15 % of a small model's time."""
    if y.is_contiguous():
        return y.numpy()
    if not y.is_contiguous(memory_format=torch.channels_last):
        return np.ascontiguousarray(y.numpy())
    nhwc = y.permute(0, 2, 3, 1).numpy()  # (N, h, w, C), contiguous
    out = np.empty(tuple(y.shape), np.float32)
    for n in range(nhwc.shape[0]):
        for row in range(0, nhwc.shape[1], TRANSPOSE_ROWS):
            rows = slice(row, row + TRANSPOSE_ROWS)
            out[n, :, rows] = nhwc[n, rows].transpose(2, 0, 1)
    return out
