"""Commitments to quantized updates (docs/PROTOCOL.md §2): offsets packed per field element, Poseidon(16) chained."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from market.errors import QuantizationError
from market.protocol.poseidon import poseidon
from market.protocol.quant import QuantSpec, model_spec, to_fixed

BLOCK = 15  # field elements absorbed per Poseidon16 call (the 16th input is the chain value)
_PACK_ROWS = 4096  # field elements packed per numpy pass (bounds temporary memory)


def per_element(spec: QuantSpec) -> int:
    """Quantized values per field element: 252 // bits."""
    return 252 // spec.bits


def _offsets(q: torch.Tensor | Sequence[int] | np.ndarray, spec: QuantSpec) -> np.ndarray:
    """`q + 2**(bits-1)` as a flat uint64 array; QuantizationError unless every |q| <= qmax."""
    if isinstance(q, torch.Tensor):
        if q.dtype.is_floating_point or q.dtype.is_complex or q.dtype == torch.bool:
            raise QuantizationError(f"commitments take integer tensors, got {q.dtype}")
        arr = q.detach().to("cpu", torch.int64).reshape(-1).numpy()
    else:
        arr = np.asarray(q)
        if arr.size and arr.dtype.kind not in "iu":
            raise QuantizationError(f"commitments take integers, got {arr.dtype}")
        if arr.dtype.kind == "u" and arr.size and int(arr.max()) > spec.qmax:
            raise QuantizationError(f"values must lie in [-{spec.qmax}, {spec.qmax}]")
        arr = arr.astype(np.int64).reshape(-1)
    if arr.size and (int(arr.min()) < -spec.qmax or int(arr.max()) > spec.qmax):
        raise QuantizationError(f"values must lie in [-{spec.qmax}, {spec.qmax}]")
    return (arr + spec.offset).astype("<u8")


def pack(q: torch.Tensor | Sequence[int] | np.ndarray, spec: QuantSpec) -> list[int]:
    """Field elements `e = sum_j o[j] * 2**(bits*j)` over chunks of `per_element` offsets (last one zero-padded)."""
    o = _offsets(q, spec)
    per, bits = per_element(spec), spec.bits
    out: list[int] = []
    for start in range(0, o.size, per * _PACK_ROWS):
        seg = o[start : start + per * _PACK_ROWS]
        rows = -(-seg.size // per)
        padded = np.zeros(rows * per, dtype="<u8")
        padded[: seg.size] = seg
        # Little-endian bits of each value, `bits` of them, concatenated per element, then re-packed to bytes.
        value_bits = np.unpackbits(padded.view(np.uint8).reshape(-1, 8), axis=1, bitorder="little")[:, :bits]
        packed = np.packbits(value_bits.reshape(rows, per * bits), axis=1, bitorder="little")
        out.extend(int.from_bytes(row.tobytes(), "little") for row in packed)
    return out


def unpack(elements: Sequence[int], count: int, spec: QuantSpec) -> torch.Tensor:
    """The inverse of `pack`: `count` quantized values (int64) from their field elements; QuantizationError
    unless there are exactly ceil(count / per_element) of them, each lane holds an offset in
    [1, 2**bits - 1] and the last element's padding lanes are zero (what a cure publishes, PROTOCOL.md §5)."""
    per, bits = per_element(spec), spec.bits
    need = -(-count // per)
    if len(elements) != need:
        raise QuantizationError(f"{count} values take {need} packed elements, got {len(elements)}")
    mask = (1 << bits) - 1
    out = np.empty(count, dtype=np.int64)
    for k, e in enumerate(elements):
        lanes = min(per, count - k * per)
        if e < 0 or e >> (bits * lanes):
            raise QuantizationError(f"packed element {k} has bits beyond its {lanes} lanes")
        for j in range(lanes):
            o = (e >> (bits * j)) & mask
            if o == 0:
                raise QuantizationError(f"packed element {k}, lane {j}: offset 0 is outside the quantization range")
            out[k * per + j] = o - spec.offset
    return torch.from_numpy(out)


def commit_elements(elements: Sequence[int], count: int) -> int:
    """`h_0 = count`, `h_b = Poseidon16([h_(b-1), 15 elements])` over zero-padded blocks; at least one block."""
    h = count
    for start in range(0, max(len(elements), 1), BLOCK):
        block = list(elements[start : start + BLOCK])
        h = poseidon([h, *block, *([0] * (BLOCK - len(block)))])
    return h


def commit(q: torch.Tensor | Sequence[int] | np.ndarray, spec: QuantSpec) -> int:
    """The PROTOCOL §2 commitment to the flat quantized vector `q`."""
    elements = pack(q, spec)
    return commit_elements(elements, int(np.asarray(q).size) if not isinstance(q, torch.Tensor) else q.numel())


def commit_view(q: torch.Tensor, offset: int, length: int, spec: QuantSpec) -> int:
    """The commitment to the proof view `q.flatten()[offset : offset + length]`."""
    flat = q.reshape(-1)
    if offset < 0 or length < 0 or offset + length > flat.numel():
        raise QuantizationError(f"view [{offset}, {offset + length}) is outside the {flat.numel()} values")
    return commit(flat[offset : offset + length], spec)


def commit_directions(v: torch.Tensor, h: torch.Tensor, spec: QuantSpec) -> int:
    """A round's vCommit (PROTOCOL §4): the §2 commitment of v followed by the split step h, one vector of 2d values."""
    if tuple(v.shape) != tuple(h.shape) or v.dim() != 1:
        raise QuantizationError(f"v and h must be vectors of one length (got {tuple(v.shape)} and {tuple(h.shape)})")
    return commit(torch.cat([v, h]), spec)


def model_view(g: torch.Tensor, view: tuple[int, int], spec: QuantSpec) -> torch.Tensor:
    """The global model's proof view `g.flatten()[offset : offset + length]` in fixed point (`model_spec(spec)`,
    PROTOCOL §3); QuantizationError unless it is on the grid and in range."""
    flat = g.reshape(-1)
    offset, length = view
    if offset < 0 or length < 0 or offset + length > flat.numel():
        raise QuantizationError(f"view [{offset}, {offset + length}) is outside the {flat.numel()} values")
    return to_fixed(flat[offset : offset + length], model_spec(spec))


def commit_model(g: torch.Tensor, view: tuple[int, int], spec: QuantSpec) -> int:
    """The §2 commitment to the model's fixed-point proof view, at `model_spec(spec)`'s width: the chain's and the
    round proof's model commitment (PROTOCOL §3, §6)."""
    return commit(model_view(g, view, spec), model_spec(spec))
