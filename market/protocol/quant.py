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


def model_spec(spec: QuantSpec) -> QuantSpec:
    """The global model's proof view in fixed point (PROTOCOL §3): the updates' scale, 8 bits wider, at most
    24 bits so that float32 holds every value exactly."""
    return QuantSpec(bits=min(spec.bits + 8, 24), scale_log2=spec.scale_log2)


def to_fixed(x: torch.Tensor, spec: QuantSpec) -> torch.Tensor:
    """`x * 2**scale_log2` as int64, exactly: QuantizationError unless every value is on that grid and
    within `spec.qmax` (a model view the previous round's §3 average or the owner's `snap` produced)."""
    xd = x.detach().to(torch.float64).reshape(-1) * float(2**spec.scale_log2)
    if not bool(torch.isfinite(xd).all()):
        raise QuantizationError("the model's view holds NaN or Inf values")
    q = torch.round(xd)
    if not bool(torch.equal(q, xd)):
        raise QuantizationError(f"the model's view is not on the 2**-{spec.scale_log2} grid of PROTOCOL §3")
    if q.numel() and float(q.abs().max()) > spec.qmax:
        raise QuantizationError(f"the model's view exceeds {spec.qmax} / 2**{spec.scale_log2} in magnitude")
    return q.to(torch.int64)


def snap_view(g: torch.Tensor, view: tuple[int, int], spec: QuantSpec) -> torch.Tensor:
    """A copy of the flat model `g` (float32) whose proof view is rounded half-even to `model_spec(spec)`'s grid:
    the owner's g(0) (PROTOCOL §3). QuantizationError for NaN, Inf or a value out of range (never clipped)."""
    out = g.detach().to(torch.float32).reshape(-1).clone()
    lo, hi = view[0], view[0] + view[1]
    out[lo:hi] = _snap(out[lo:hi], model_spec(spec))
    return out


def _snap(x: torch.Tensor, spec: QuantSpec) -> torch.Tensor:
    """`x` rounded half-even to the 2**-scale_log2 grid as float32; QuantizationError beyond `spec.qmax`."""
    xd = x.detach().to(torch.float64)
    if not bool(torch.isfinite(xd).all()):
        raise QuantizationError("the model holds NaN or Inf values")
    q = torch.round(xd * float(2**spec.scale_log2))
    if q.numel() and float(q.abs().max()) > spec.qmax:
        raise QuantizationError(f"the model's view exceeds {spec.qmax} / 2**{spec.scale_log2} in magnitude")
    return dequantize(q.to(torch.int64), spec).reshape(x.shape)
