"""Fixed-point quantization of model updates (docs/PROTOCOL.md §1), identical on CPU and GPU."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from market.errors import QuantizationError


@dataclass(frozen=True)
class QuantSpec:
    """Signed fixed point: `bits` wide with `scale_log2` fractional bits."""

    bits: int = 16
    scale_log2: int = 12

    def __post_init__(self) -> None:
        if not 2 <= self.bits <= 32:
            raise QuantizationError(f"bits must be in 2..32, got {self.bits}")
        if not 0 <= self.scale_log2 < 64:
            raise QuantizationError(f"scale_log2 must be in 0..63, got {self.scale_log2}")

    @property
    def qmax(self) -> int:
        """Largest magnitude of a quantized value."""
        return 2 ** (self.bits - 1) - 1

    @property
    def offset(self) -> int:
        """Added to a quantized value to make it non-negative for packing."""
        return 2 ** (self.bits - 1)

    @property
    def clip(self) -> float:
        """Largest magnitude representable before clipping."""
        return self.qmax / 2**self.scale_log2


def quantize(x: torch.Tensor, spec: QuantSpec) -> torch.Tensor:
    """Clip and round `x` to int64 fixed point; NaN or Inf is an error, never clipped."""
    if not torch.is_floating_point(x):
        raise QuantizationError(f"expected a floating-point tensor, got {x.dtype}")
    xd = x.detach().to(torch.float64)
    if not bool(torch.isfinite(xd).all()):
        raise QuantizationError("tensor holds NaN or Inf values")
    q = torch.round(xd * float(2**spec.scale_log2))
    return q.clamp_(-spec.qmax, spec.qmax).to(torch.int64)


def dequantize(q: torch.Tensor, spec: QuantSpec) -> torch.Tensor:
    """Fixed point back to float32."""
    return (q.to(torch.float64) / float(2**spec.scale_log2)).to(torch.float32)
