"""The update blob: round trip, safetensors compatibility, strict parsing, and a decoder fuzz (InvalidBlob only)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import safetensors.torch
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from market.errors import ConfigError, InvalidBlob, QuantizationError
from market.protocol.blob import UpdateHeader, decode, encode, size_cap
from market.protocol.quant import QuantSpec, quantize


@dataclass(frozen=True)
class Slot:
    """A parameter-layout entry (what market.ml.tasks.params.layout yields)."""

    name: str
    shape: tuple[int, ...]


LAYOUT = (Slot("fc1.weight", (4, 3)), Slot("fc1.bias", (4,)), Slot("head.weight", (2, 4)), Slot("head.bias", (2,)))
HEADER = UpdateHeader(
    chain_id=31337, marketplace="0x" + "Ab" * 20, project_id=3, round=2, trainer="0x" + "12" * 20,
    model_spec_hash="0x" + "5e" * 32, quant=QuantSpec(16, 12), view_offset=16, view_length=10,
)


def update(seed: int = 0, scale: float = 1.0) -> dict[str, torch.Tensor]:
    """A float update shaped like LAYOUT."""
    g = torch.Generator().manual_seed(seed)
    return {s.name: torch.randn(s.shape, generator=g) * scale for s in LAYOUT}


def raw_blob(tensors: dict[str, tuple[str, tuple[int, ...], bytes]], meta: dict[str, str] | None) -> bytes:
    """A safetensors file assembled by hand: {name: (dtype, shape, data)} plus metadata."""
    header: dict[str, object] = {} if meta is None else {"__metadata__": meta}
    data, pos = b"", 0
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [pos, pos + len(raw)]}
        data, pos = data + raw, pos + len(raw)
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


def int_tensors(dtype: str = "I32", fill: int = 1, header: UpdateHeader = HEADER) -> bytes:
    """A hand-made blob with every parameter filled with `fill` as `dtype`."""
    np_dtype = {"I32": "<i4", "I64": "<i8", "I16": "<i2", "F32": "<f4", "F64": "<f8"}[dtype]
    tensors = {s.name: (dtype, s.shape, np.full(s.shape, fill, dtype=np_dtype).tobytes()) for s in LAYOUT}
    return raw_blob(tensors, header.to_metadata())


def test_roundtrip_and_safetensors_compatibility(tmp_path: Path) -> None:
    up = update()
    blob = encode(up, HEADER, LAYOUT)
    dec = decode(blob, HEADER, LAYOUT)
    assert dec.header == HEADER and dec.header.marketplace == "0x" + "ab" * 20
    want = torch.cat([quantize(up[s.name], HEADER.quant).reshape(-1) for s in LAYOUT])
    assert torch.equal(dec.flat, want) and dec.flat.dtype == torch.int64
    assert torch.equal(dec.view(), want[16:26])
    assert all(torch.equal(dec.params()[s.name], quantize(up[s.name], HEADER.quant)) for s in LAYOUT)
    assert torch.allclose(dec.dequantized(), torch.cat([up[s.name].reshape(-1) for s in LAYOUT]), atol=2**-12)
    assert encode(up, HEADER, LAYOUT) == blob  # deterministic: same update, same bytes, same CID
    loaded = safetensors.torch.load(blob)
    assert all(torch.equal(loaded[s.name].long(), dec.params()[s.name]) for s in LAYOUT)
    assert loaded["fc1.weight"].dtype == torch.int32 and set(loaded) == {s.name for s in LAYOUT}
    path = tmp_path / "u.safetensors"
    path.write_bytes(blob)
    with safetensors.safe_open(str(path), "pt") as f:
        assert f.metadata() == HEADER.to_metadata()


def test_int64_blobs_are_accepted() -> None:
    dec = decode(int_tensors("I64", -7), HEADER, LAYOUT)
    assert int(dec.flat.min()) == int(dec.flat.max()) == -7


def test_encode_refuses_bad_updates() -> None:
    up = update()
    up["fc1.bias"] = torch.tensor([0.0, float("nan"), 0.0, 0.0])
    with pytest.raises(QuantizationError):
        encode(up, HEADER, LAYOUT)
    with pytest.raises(InvalidBlob, match="wrong_shape"):
        encode({k: v for k, v in update().items() if k != "head.bias"}, HEADER, LAYOUT)
    with pytest.raises(InvalidBlob, match="wrong_spec"):
        encode(update(), dataclasses.replace(HEADER, view_length=100), LAYOUT)
    with pytest.raises(ConfigError):
        dataclasses.replace(HEADER, trainer="0x12")


def test_large_updates_are_clipped_not_rejected() -> None:
    dec = decode(encode(update(scale=1e6), HEADER, LAYOUT), HEADER, LAYOUT)
    assert int(dec.flat.abs().max()) == HEADER.quant.qmax


@pytest.mark.parametrize(
    "meta_change",
    [{"round": "02"}, {"round": "-1"}, {"chain_id": " 1"}, {"quant_bits": "99"}, {"format": "other/1"},
     {"extra": "1"}, {"model_spec_hash": "AB" * 32}, {"trainer": "0x12"}],
)
def test_header_is_parsed_strictly(meta_change: dict[str, str]) -> None:
    meta = {**HEADER.to_metadata(), **meta_change}
    blob = raw_blob({s.name: ("I32", s.shape, bytes(4 * int(np.prod(s.shape)))) for s in LAYOUT}, meta)
    with pytest.raises(InvalidBlob) as e:
        decode(blob, HEADER, LAYOUT)
    assert e.value.reason == "undecodable"


def test_container_is_parsed_strictly() -> None:
    good = int_tensors()
    (n,) = struct.unpack_from("<Q", good)
    header = json.loads(good[8 : 8 + n])
    cases = []
    overlap = json.loads(json.dumps(header))
    overlap["fc1.bias"]["data_offsets"] = [0, 16]
    cases.append(overlap)
    boolean = json.loads(json.dumps(header))
    boolean["head.bias"]["shape"] = [True, True]
    cases.append(boolean)
    unknown = json.loads(json.dumps(header))
    unknown["head.bias"]["dtype"] = "Q7"
    cases.append(unknown)
    for h in cases:
        text = json.dumps(h).encode()
        with pytest.raises(InvalidBlob, match="undecodable"):
            decode(struct.pack("<Q", len(text)) + text + good[8 + n :], HEADER, LAYOUT)
    dup = good[8 : 8 + n].replace(b'"fc1.bias"', b'"fc1.weight"', 1)
    with pytest.raises(InvalidBlob, match="undecodable"):
        decode(good[:8] + dup + good[8 + n :], HEADER, LAYOUT)
    for blob in (b"", good[:7], good[:-1], good + b"\0", struct.pack("<Q", 2**63) + good[8:]):
        with pytest.raises(InvalidBlob, match=r"undecodable|too_large"):
            decode(blob, HEADER, LAYOUT)


def test_size_cap_is_checked_first() -> None:
    blob = encode(update(), HEADER, LAYOUT)
    assert len(blob) < size_cap(LAYOUT)
    with pytest.raises(InvalidBlob, match="too_large"):
        decode(blob, HEADER, LAYOUT, max_size=len(blob) - 1)
    with pytest.raises(InvalidBlob, match="too_large"):
        decode(b"\0" * (size_cap(LAYOUT) + 1), HEADER, LAYOUT)


GOOD = encode(update(), HEADER, LAYOUT)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fuzz_decoder_raises_only_invalid_blob(data: st.DataObject) -> None:
    kind = data.draw(st.sampled_from(["bytes", "mutate", "header"]))
    if kind == "bytes":
        blob = data.draw(st.binary(max_size=2000))
    elif kind == "mutate":
        blob = bytearray(GOOD)
        for _ in range(data.draw(st.integers(1, 8))):
            blob[data.draw(st.integers(0, len(blob) - 1))] = data.draw(st.integers(0, 255))
        blob = bytes(blob[: data.draw(st.integers(0, len(blob)))]) if data.draw(st.booleans()) else bytes(blob)
    else:
        json_values = st.recursive(
            st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=20),
            lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
            max_leaves=12,
        )
        entry = st.fixed_dictionaries({
            "dtype": st.sampled_from(["I32", "I64", "F32", "F16", "BF16", "U8", "I16", "BOOL", "XX"]),
            "shape": st.lists(st.integers(-2, 6), max_size=3),
            "data_offsets": st.lists(st.integers(-2, 200), min_size=0, max_size=3),
        })
        names = st.sampled_from([s.name for s in LAYOUT] + ["other"])
        header = data.draw(st.dictionaries(names, entry | json_values, max_size=5))
        if data.draw(st.booleans()):
            metas = st.just(HEADER.to_metadata()) | st.dictionaries(st.text(max_size=10), st.text(max_size=10))
            header["__metadata__"] = data.draw(metas | json_values)
        text = json.dumps(header).encode()
        blob = struct.pack("<Q", len(text)) + text + data.draw(st.binary(max_size=300))
    with contextlib.suppress(InvalidBlob):
        decode(blob, HEADER, LAYOUT)
