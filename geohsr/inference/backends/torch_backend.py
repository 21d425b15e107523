"""The model run by torch on CPU or CUDA, fp32 or under autocast."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import nn

from geohsr.inference.export import ExportableCore, finish, pad_input

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

    def __init__(
        self, model: nn.Module, *, precision: str = "fp32", cuda_graphs: bool = True
    ) -> None:
        self.model = model
        self.precision = precision
        self.device = next(iter(model.buffers()), torch.zeros(())).device
        self.graphs = None
        if self.device.type == "cuda" and cuda_graphs:
            self.graphs = CudaGraphs(model, self.device, self._precision_context)

    def forward(self, batch: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """``(N, 3, h, w)`` float32 -> ``(N, 31, h, w)`` float32, C-contiguous (copied into
        ``out`` when given)."""
        result = self._forward(batch)
        if out is None:
            return result
        np.copyto(out, result)
        return out

    def _forward(self, batch: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(self.device)
        if self.graphs is not None:
            y = self.graphs.run(x)
            if y is not None:
                return to_host(y)
        x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), self._precision_context():
            y = self.model(x)
            if self.device.type == "cuda":  # the layout change on the GPU, not the CPU
                y = y.float().contiguous()
        return to_host(y.float())

    @contextmanager
    def _precision_context(self) -> Iterator[None]:
        """Autocast to the reduced precision, or strict fp32 (no TF32) on CUDA."""
        dtype = AUTOCAST_DTYPES.get(self.precision)
        with (
            strict_fp32(self.device.type == "cuda" and dtype is None),
            torch.autocast(
                self.device.type,
                dtype=dtype or torch.float32,
                enabled=dtype is not None,
                cache_enabled=False,  # CUDA graphs capture the casts, so nothing is cached
            ),
        ):
            yield


class CudaGraphs:
    """The model's traceable core (:class:`~geohsr.inference.export.ExportableCore`) captured
    as a CUDA graph per input shape and replayed: one launch instead of hundreds of kernel
    launches from Python, which other busy threads of the scene pass (blending, writing)
    slowed several-fold through the GIL. The input is padded outside the graph and the
    metamer projection (:func:`~geohsr.inference.export.finish`, data-dependent) runs
    eagerly, as for OpenVINO. Shapes that fail to capture, and any beyond
    :attr:`MAX_SHAPES`, run eagerly (``run`` returns None)."""

    MAX_SHAPES = 4

    def __init__(self, model: nn.Module, device: torch.device, precision_context) -> None:
        self.model = model
        self.device = device
        self.core = ExportableCore(model).eval()
        self.precision_context = precision_context
        self._captured: dict[tuple[int, ...], tuple[torch.Tensor, Any, torch.Tensor] | None] = {}

    def run(self, rgb: torch.Tensor) -> torch.Tensor | None:
        """``rgb`` ``(N, 3, h, w)`` float32 on the GPU -> ``(N, 31, h, w)`` float32,
        contiguous, or None where this shape runs eagerly."""
        with torch.inference_mode():
            padded, (top, left) = pad_input(rgb)
            captured = self._graph(tuple(padded.shape))
            if captured is None:
                return None
            static_in, graph, static_out = captured
            static_in.copy_(padded)
            graph.replay()
            height, width = rgb.shape[-2:]
            spectra = static_out[..., top : top + height, left : left + width].float().clone()
            with self.precision_context():
                return finish(self.model, spectra, rgb).float().contiguous()

    def _graph(self, shape: tuple[int, ...]):
        if shape not in self._captured:
            if len(self._captured) >= self.MAX_SHAPES:
                return None
            try:
                self._captured[shape] = self._capture(shape)
            except RuntimeError:  # an operation that cannot be captured: run eagerly
                self._captured[shape] = None
        return self._captured[shape]

    def _capture(self, shape: tuple[int, ...]):
        device = self.device
        static_in = torch.zeros(shape, device=device).contiguous(memory_format=torch.channels_last)
        stream = torch.cuda.Stream(device)
        stream.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(stream), self.precision_context():
            for _ in range(2):  # warm-up: cuDNN and cuBLAS choose and allocate first
                self.core(static_in)
        torch.cuda.current_stream(device).wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph), self.precision_context():
            static_out = self.core(static_in)
        return static_in, graph, static_out


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


def to_host(y: torch.Tensor) -> np.ndarray:
    """``(N, C, h, w)`` float32 tensor on any device -> C-contiguous numpy array
    (:func:`channels_first`). A CUDA tensor is copied into page-locked (pinned) host memory:
    the H200 check measured 4.3 GB/s for torch's copy into pageable memory against 54.7
    GB/s into pinned, and the model's outputs (260 MB per 8 x 512² batch) waited on it.
    Each call gets its own block from torch's caching pinned-memory allocator, so arrays
    returned earlier are never overwritten; a block goes back to the cache when its array
    is freed."""
    if y.device.type != "cuda":
        return channels_first(y.cpu())
    host = torch.empty(y.shape, dtype=y.dtype, pin_memory=True)
    host.copy_(y, non_blocking=True)
    torch.cuda.current_stream(y.device).synchronize()
    return channels_first(host)


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
