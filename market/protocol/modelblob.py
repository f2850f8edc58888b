"""Global-model and validation-direction blobs: safetensors with a small typed header (never pickle).

The global model g(r) is stored flat (float32, the task's parameter order) with the round's
report (flags with reasons, scores, accuracy) as JSON metadata, so that anyone holding the
CID posted on chain can re-check the round. The validation direction v is stored as int64.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import safetensors.torch
import torch

from market.errors import InvalidBlob

MODEL_FORMAT = "fedmarket-model/1"
DIRECTION_FORMAT = "fedmarket-direction/2"


@dataclass(frozen=True)
class ModelBlob:
    """A decoded global model: flat float32 weights, its project, round and report."""

    project_id: int
    round: int
    spec_hash: str
    weights: torch.Tensor
    report: dict[str, Any]


def encode_model(weights: torch.Tensor, project_id: int, round_: int, spec_hash: str, report: dict[str, Any]) -> bytes:
    """Serialise g(round) with its header and report."""
    meta = {
        "format": MODEL_FORMAT, "project_id": str(project_id), "round": str(round_), "spec_hash": spec_hash,
        "report": json.dumps(report, sort_keys=True, default=str),
    }
    return safetensors.torch.save({"weights": weights.detach().to("cpu", torch.float32).contiguous()}, metadata=meta)


def _load(raw: bytes, fmt: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Parse a safetensors blob and check its format tag; InvalidBlob('undecodable') otherwise."""
    try:
        tensors = safetensors.torch.load(raw)
        meta = json.loads(raw[8 : 8 + int.from_bytes(raw[:8], "little")]).get("__metadata__") or {}
    except Exception as exc:
        raise InvalidBlob("undecodable", f"not a safetensors blob: {str(exc)[:200]}") from None
    if meta.get("format") != fmt:
        raise InvalidBlob("undecodable", f"expected a {fmt} blob, got format {meta.get('format')!r}")
    return tensors, meta


def decode_model(raw: bytes, numel: int, spec_hash: str | None = None) -> ModelBlob:
    """Parse g(r); checks the size, finiteness and (if given) the spec hash."""
    tensors, meta = _load(raw, MODEL_FORMAT)
    weights = tensors.get("weights")
    if weights is None or weights.dtype != torch.float32 or tuple(weights.shape) != (numel,):
        raise InvalidBlob("wrong_shape", f"model weights must be float32 of shape ({numel},)")
    if not bool(torch.isfinite(weights).all()):
        raise InvalidBlob("not_finite", "model weights hold NaN or Inf")
    if spec_hash is not None and meta.get("spec_hash") != spec_hash:
        raise InvalidBlob("wrong_spec", f"model is for spec {meta.get('spec_hash')!r}, expected {spec_hash!r}")
    try:
        report = json.loads(meta.get("report", "{}"))
        return ModelBlob(int(meta["project_id"]), int(meta["round"]), meta["spec_hash"], weights, report)
    except (KeyError, ValueError) as exc:
        raise InvalidBlob("undecodable", f"model header: {exc}") from None


def encode_direction(v: torch.Tensor, h: torch.Tensor, project_id: int, round_: int) -> bytes:
    """Serialise a round's revealed public directions: the quantized validation direction v and split step h (§4)."""
    meta = {"format": DIRECTION_FORMAT, "project_id": str(project_id), "round": str(round_)}
    return safetensors.torch.save({"v": v.detach().to("cpu", torch.int64).contiguous(),
                                   "h": h.detach().to("cpu", torch.int64).contiguous()}, metadata=meta)


def decode_direction(raw: bytes, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Parse a round's revealed (v, h) of `length` values each."""
    tensors, _ = _load(raw, DIRECTION_FORMAT)
    pair = tensors.get("v"), tensors.get("h")
    for name, x in zip("vh", pair):
        if x is None or x.dtype != torch.int64 or tuple(x.shape) != (length,):
            raise InvalidBlob("wrong_shape", f"direction {name} must be int64 of shape ({length},)")
    return pair  # type: ignore[return-value]
