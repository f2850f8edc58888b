"""Fixed-point quantization of model updates (docs/PROTOCOL.md §1), identical on CPU and GPU."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from market.errors import QuantizationError, UpdateClipped


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


#: Most a trainer may clip: an update that `quantize` would clip on more than this fraction of its values is refused.
MAX_CLIP_RATE = 0.01
#: Headroom of a scale chosen from the owner's trial round (`fit_scale_log2`): the trial update times this
#: clips nothing, so trainers whose updates are up to 4x the owner's (more data, another share) clip nothing either.
UPDATE_MARGIN = 4.0
#: The global model's headroom at that scale: the trial model times this fits `model_spec`, since weights grow over rounds.
MODEL_MARGIN = 64.0


def clip_rate(x: torch.Tensor, spec: QuantSpec) -> float:
    """The fraction of `x`'s values that `quantize(x, spec)` would clip to +-qmax (0.0 for an empty tensor)."""
    xd = x.detach().to(torch.float64).reshape(-1)
    if not xd.numel():
        return 0.0
    return float((torch.round(xd * float(2**spec.scale_log2)).abs() > spec.qmax).sum()) / xd.numel()


def fit_scale_log2(update: torch.Tensor, model: torch.Tensor, bits: int = 16) -> int:
    """The largest scale_log2 (finest grid) at which UPDATE_MARGIN x the owner's trial `update` clips nothing at
    `bits` and MODEL_MARGIN x the trial `model`'s view fits `model_spec`; QuantizationError if none does (0 is coarsest)."""
    if not (torch.isfinite(update).all() and torch.isfinite(model).all()):
        raise QuantizationError("the trial round produced NaN or Inf values")
    need_u = UPDATE_MARGIN * float(update.detach().abs().max()) if update.numel() else 0.0
    need_m = MODEL_MARGIN * float(model.detach().abs().max()) if model.numel() else 0.0
    for scale in range(63, -1, -1):
        spec = QuantSpec(bits, scale)
        if need_u <= spec.clip and need_m <= model_spec(spec).clip:
            return scale
    raise QuantizationError(f"updates of magnitude {need_u / UPDATE_MARGIN:.4g} do not fit {bits}-bit fixed point even "
                            "at scale_log2 = 0: standardize the features, lower the learning rate, or raise [quant] bits")


def refuse_clipping(update: torch.Tensor, spec: QuantSpec, what: str) -> float:
    """`update`'s clip rate at `spec`; UpdateClipped, saying what to change, when it exceeds MAX_CLIP_RATE."""
    rate = clip_rate(update, spec)
    if rate > MAX_CLIP_RATE:
        raise UpdateClipped(
            f"{what} would clip {100 * rate:.2f}% of its values (at most {100 * MAX_CLIP_RATE:g}% allowed) at the "
            f"project's [quant] scale_log2 = {spec.scale_log2}, whose range is +-{spec.clip:g}; its largest value is "
            f"{float(update.detach().abs().max()):.4g}. Not submitted: check that your data has the project's columns and "
            "units (an own-data project standardises them as its manifest says), or ask the owner for a project with a "
            "smaller scale_log2 (each step down doubles the range) or preprocess = \"standardize\"")
    return rate
