"""The update blob (DESIGN.md "The update blob"): safetensors, never pickle, with a header that binds its context.

Format `fedmarket-update/1`: one tensor per model parameter, named as in the model's parameter layout and
shaped like it, holding the quantized update (PROTOCOL §1) as int32 (int64 is accepted on decode),
written in layout order with sorted metadata so that encoding is deterministic.
The safetensors `__metadata__` carries the header (see `UpdateHeader.to_metadata`); the flat order of the
update (for the proof view and the commitment) is the layout's order, each tensor row-major.
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from market.errors import BlobReason, ConfigError, FedMarketError, InvalidBlob
from market.protocol.commitment import commit_view
from market.protocol.quant import QuantSpec, dequantize, quantize

FORMAT = "fedmarket-update/1"
_DTYPE_SIZES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8,
}
_INT_DTYPES = {"I32": "<i4", "I64": "<i8"}
_FLOAT_DTYPES = {"F16": "<f2", "BF16": "<u2", "F32": "<f4", "F64": "<f8"}
_ADDRESS = re.compile(r"0x[0-9a-f]{40}")
_HASH = re.compile(r"[0-9a-f]{64}")
_UINT = re.compile(r"0|[1-9][0-9]{0,76}")
_HEADER_KEYS = (
    "format", "chain_id", "marketplace", "project_id", "round", "trainer", "model_spec_hash",
    "quant_bits", "quant_scale_log2", "view_offset", "view_length",
)


class Param(Protocol):
    """One entry of a model's parameter layout (market.ml.tasks.params.ParamSlot fits)."""

    @property
    def name(self) -> str: ...

    @property
    def shape(self) -> tuple[int, ...]: ...


@dataclass(frozen=True)
class UpdateHeader:
    """What a blob is for: chain, marketplace, project, round, trainer, model spec, quantization, proof view."""

    chain_id: int
    marketplace: str
    project_id: int
    round: int
    trainer: str
    model_spec_hash: str
    quant: QuantSpec
    view_offset: int
    view_length: int

    def __post_init__(self) -> None:
        """Normalise addresses and the spec hash to lower-case hex; ConfigError if malformed."""
        for name in ("marketplace", "trainer"):
            value = str(getattr(self, name)).lower()
            if not _ADDRESS.fullmatch(value):
                raise ConfigError(f"{name} must be a 0x-prefixed 20-byte hex address, got {getattr(self, name)!r}")
            object.__setattr__(self, name, value)
        spec_hash = str(self.model_spec_hash).lower().removeprefix("0x")
        if not _HASH.fullmatch(spec_hash):
            raise ConfigError(f"model_spec_hash must be 32 bytes of hex, got {self.model_spec_hash!r}")
        object.__setattr__(self, "model_spec_hash", spec_hash)
        for name in ("chain_id", "project_id", "round", "view_offset", "view_length"):
            value = getattr(self, name)
            if type(value) is not int or value < 0:
                raise ConfigError(f"{name} must be a non-negative int, got {value!r}")

    def to_metadata(self) -> dict[str, str]:
        """The safetensors metadata strings (decimal integers, lower-case hex)."""
        return {
            "format": FORMAT, "chain_id": str(self.chain_id), "marketplace": self.marketplace,
            "project_id": str(self.project_id), "round": str(self.round), "trainer": self.trainer,
            "model_spec_hash": self.model_spec_hash, "quant_bits": str(self.quant.bits),
            "quant_scale_log2": str(self.quant.scale_log2), "view_offset": str(self.view_offset),
            "view_length": str(self.view_length),
        }

    @classmethod
    def from_metadata(cls, meta: Mapping[str, str]) -> UpdateHeader:
        """Parse metadata strictly (exact keys, canonical decimals and hex); InvalidBlob('undecodable') otherwise."""
        if set(meta) != set(_HEADER_KEYS) or meta["format"] != FORMAT:
            raise InvalidBlob(BlobReason.UNDECODABLE, f"metadata keys {sorted(meta)} are not a {FORMAT} header")
        ints = {}
        for key in ("chain_id", "project_id", "round", "quant_bits", "quant_scale_log2", "view_offset", "view_length"):
            if not _UINT.fullmatch(meta[key]):
                raise InvalidBlob(BlobReason.UNDECODABLE, f"header field {key}={meta[key][:80]!r} is not a decimal integer")
            ints[key] = int(meta[key])
        if not _HASH.fullmatch(meta["model_spec_hash"]):
            raise InvalidBlob(BlobReason.UNDECODABLE, "header field model_spec_hash is not 64 lower-case hex digits")
        try:
            return cls(
                ints["chain_id"], meta["marketplace"], ints["project_id"], ints["round"], meta["trainer"],
                meta["model_spec_hash"], QuantSpec(ints["quant_bits"], ints["quant_scale_log2"]),
                ints["view_offset"], ints["view_length"],
            )
        except FedMarketError as e:
            raise InvalidBlob(BlobReason.UNDECODABLE, f"bad header: {e}") from None


@dataclass(frozen=True)
class DecodedUpdate:
    """A validated blob: its header and the quantized update, flat int64 in layout order."""

    header: UpdateHeader
    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]
    flat: torch.Tensor

    def params(self) -> dict[str, torch.Tensor]:
        """The quantized update per parameter (views into `flat`)."""
        sizes = [int(np.prod(s, dtype=np.int64)) for s in self.shapes]
        parts = torch.split(self.flat, sizes)
        return {n: p.view(s) for n, p, s in zip(self.names, parts, self.shapes, strict=True)}

    def view(self) -> torch.Tensor:
        """The proof view: flat indices [view_offset, view_offset + view_length)."""
        h = self.header
        return self.flat[h.view_offset : h.view_offset + h.view_length]

    def commitment(self) -> int:
        """The PROTOCOL §2 commitment to the proof view (what the trainer posts on chain)."""
        h = self.header
        return commit_view(self.flat, h.view_offset, h.view_length, h.quant)

    def dequantized(self) -> torch.Tensor:
        """The flat update back in float32."""
        return dequantize(self.flat, self.header.quant)


def numel(layout: Sequence[Param]) -> int:
    """Number of values in the flat vector of `layout`."""
    return sum(int(np.prod(p.shape, dtype=np.int64)) for p in layout)


def size_cap(layout: Sequence[Param]) -> int:
    """Default largest blob for `layout`: int64 for every value plus room for the JSON header."""
    return 8 * numel(layout) + sum(256 + len(p.name.encode()) + 24 * len(p.shape) for p in layout) + 4096


def _check_names_shapes(shapes: Mapping[str, tuple[int, ...]], layout: Sequence[Param]) -> None:
    """InvalidBlob('wrong_shape') unless `shapes` has exactly the layout's parameters, shaped like it."""
    want = {p.name: tuple(p.shape) for p in layout}
    if set(shapes) != set(want):
        missing, extra = sorted(set(want) - set(shapes)), sorted(set(shapes) - set(want))
        raise InvalidBlob(BlobReason.WRONG_SHAPE, f"missing parameters {missing[:5]}, unexpected {extra[:5]}")
    for name, shape in want.items():
        if tuple(shapes[name]) != shape:
            raise InvalidBlob(BlobReason.WRONG_SHAPE, f"{name} has shape {list(shapes[name])}, expected {list(shape)}")


def _check_view(header: UpdateHeader, layout: Sequence[Param]) -> None:
    """InvalidBlob('wrong_spec') if the proof view does not fit the model."""
    if header.view_offset + header.view_length > numel(layout):
        raise InvalidBlob(BlobReason.WRONG_SPEC, f"proof view ends past the model's {numel(layout)} values")


def _serialize(tensors: Sequence[tuple[str, torch.Tensor]], meta: Mapping[str, str]) -> bytes:
    """A safetensors file written deterministically: sorted metadata, tensors in the given order, 8-byte aligned."""
    header: dict[str, object] = {"__metadata__": dict(sorted(meta.items()))}
    chunks, pos = [], 0
    for name, t in tensors:
        raw = t.numpy().astype("<i4", copy=False).tobytes()
        header[name] = {"dtype": "I32", "shape": list(t.shape), "data_offsets": [pos, pos + len(raw)]}
        chunks.append(raw)
        pos += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(chunks)


def encode(update: Mapping[str, torch.Tensor], header: UpdateHeader, layout: Sequence[Param]) -> bytes:
    """Quantize a float update (local minus global weights, per parameter) and serialise it with `header`.

    The same update and header always give the same bytes, hence the same CID.
    """
    _check_names_shapes({k: tuple(v.shape) for k, v in update.items()}, layout)
    _check_view(header, layout)
    tensors = [(p.name, quantize(update[p.name], header.quant).to("cpu", torch.int32)) for p in layout]
    return _serialize(tensors, header.to_metadata())


def _unique_object(pairs: list[tuple[str, object]]) -> dict[str, object]:
    """json object hook that refuses duplicate keys (they would make the header ambiguous)."""
    out = dict(pairs)
    if len(out) != len(pairs):
        raise ValueError("duplicate key in safetensors header")
    return out


def _parse_container(blob: bytes) -> tuple[dict[str, str], dict[str, tuple[str, tuple[int, ...], int, int]], int]:
    """Split a safetensors file into metadata, {name: (dtype, shape, begin, end)} and the data start; strict."""
    if len(blob) < 8:
        raise InvalidBlob(BlobReason.UNDECODABLE, "shorter than a safetensors header")
    (n,) = struct.unpack_from("<Q", blob)
    if n > len(blob) - 8:
        raise InvalidBlob(BlobReason.UNDECODABLE, f"header length {n} exceeds the blob")
    try:
        header = json.loads(blob[8 : 8 + n].decode("utf-8"), object_pairs_hook=_unique_object)
    except (ValueError, RecursionError) as exc:
        raise InvalidBlob(BlobReason.UNDECODABLE, f"header is not JSON: {str(exc)[:200]}") from None
    if not isinstance(header, dict):
        raise InvalidBlob(BlobReason.UNDECODABLE, "header is not a JSON object")
    meta = header.pop("__metadata__", None)
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise InvalidBlob(BlobReason.UNDECODABLE, "missing or malformed __metadata__")
    entries: dict[str, tuple[str, tuple[int, ...], int, int]] = {}
    for name, e in header.items():
        if not (isinstance(e, dict) and set(e) == {"dtype", "shape", "data_offsets"}
                and e["dtype"] in _DTYPE_SIZES and isinstance(e["shape"], list)
                and all(type(d) is int and d >= 0 for d in e["shape"])
                and isinstance(e["data_offsets"], list) and len(e["data_offsets"]) == 2
                and all(type(o) is int and o >= 0 for o in e["data_offsets"])):
            raise InvalidBlob(BlobReason.UNDECODABLE, f"malformed tensor entry {name[:80]!r}")
        begin, end = e["data_offsets"]
        if end - begin != int(np.prod(e["shape"], dtype=object)) * _DTYPE_SIZES[e["dtype"]]:
            raise InvalidBlob(BlobReason.UNDECODABLE, f"tensor {name[:80]!r} has the wrong byte length")
        entries[name] = (e["dtype"], tuple(e["shape"]), begin, end)
    pos = 0
    for _, _, begin, end in sorted(entries.values(), key=lambda x: (x[2], x[3])):
        if begin != pos:
            raise InvalidBlob(BlobReason.UNDECODABLE, "tensor data overlaps or leaves holes")
        pos = end
    if pos != len(blob) - 8 - n:
        raise InvalidBlob(BlobReason.UNDECODABLE, "tensor data does not fill the blob")
    return meta, entries, 8 + n


def _check_header(got: UpdateHeader, expected: UpdateHeader) -> None:
    """InvalidBlob naming the first header field that differs from what the chain says it must be."""
    for field, reason in (
        ("chain_id", BlobReason.WRONG_CHAIN), ("marketplace", BlobReason.WRONG_CONTRACT),
        ("project_id", BlobReason.WRONG_PROJECT), ("round", BlobReason.WRONG_ROUND),
        ("trainer", BlobReason.WRONG_TRAINER), ("model_spec_hash", BlobReason.WRONG_SPEC),
        ("quant", BlobReason.WRONG_SPEC), ("view_offset", BlobReason.WRONG_SPEC), ("view_length", BlobReason.WRONG_SPEC),
    ):
        if getattr(got, field) != getattr(expected, field):
            raise InvalidBlob(reason, f"{field} is {getattr(got, field)!r}, expected {getattr(expected, field)!r}")


def decode(
    blob: bytes, expected: UpdateHeader, layout: Sequence[Param], max_size: int | None = None
) -> DecodedUpdate:
    """Parse and check a blob against the expected header and layout; InvalidBlob(reason) is the only error."""
    cap = size_cap(layout) if max_size is None else max_size
    if len(blob) > cap:
        raise InvalidBlob(BlobReason.TOO_LARGE, f"{len(blob)} bytes, cap {cap}")
    blob = bytes(blob)
    meta, entries, data_start = _parse_container(blob)
    header = UpdateHeader.from_metadata(meta)
    _check_header(header, expected)
    _check_view(header, layout)
    _check_names_shapes({k: e[1] for k, e in entries.items()}, layout)

    def values(name: str, dtype: str) -> np.ndarray:
        _, shape, begin, _ = entries[name]
        count = int(np.prod(shape, dtype=np.int64))
        return np.frombuffer(blob, dtype=dtype, count=count, offset=data_start + begin)

    for p in layout:
        kind = entries[p.name][0]
        if kind in _FLOAT_DTYPES:
            raw = values(p.name, _FLOAT_DTYPES[kind])
            floats = (raw.astype(np.uint32) << 16).view(np.float32) if kind == "BF16" else raw
            if not np.isfinite(floats).all():
                raise InvalidBlob(BlobReason.NOT_FINITE, f"{p.name} holds NaN or Inf ({kind})")
    for p in layout:
        if entries[p.name][0] not in _INT_DTYPES:
            raise InvalidBlob(BlobReason.WRONG_DTYPE, f"{p.name} is {entries[p.name][0]}, expected I32 or I64")
    qmax = header.quant.qmax
    flat = np.empty(numel(layout), dtype=np.int64)
    pos = 0
    for p in layout:
        v = values(p.name, _INT_DTYPES[entries[p.name][0]])
        if v.size and (int(v.min()) < -qmax or int(v.max()) > qmax):
            raise InvalidBlob(BlobReason.OUT_OF_RANGE, f"{p.name} has values outside [-{qmax}, {qmax}]")
        flat[pos : pos + v.size] = v
        pos += v.size
    return DecodedUpdate(header, tuple(p.name for p in layout), tuple(tuple(p.shape) for p in layout),
                         torch.from_numpy(flat))
