"""One root exception for everything fedmarket raises on purpose; subclasses say what went wrong."""

from __future__ import annotations


class FedMarketError(Exception):
    """Root of every error fedmarket raises deliberately."""


class ConfigError(FedMarketError):
    """A setting, file or parameter is missing or malformed."""


class ToolchainError(FedMarketError):
    """An external tool (node, solc, anvil, circom, snarkjs, js-ipfs) is missing or failed."""


class CompileError(ToolchainError):
    """Solidity or circom compilation failed; the message names file and line."""


class ChainError(FedMarketError):
    """The chain could not be reached or answered unexpectedly."""


class ContractRevert(ChainError):
    """A transaction or call reverted. `name` is the custom error's name, `args` its decoded arguments."""

    def __init__(self, name: str, args: tuple[object, ...] = (), message: str = "") -> None:
        self.name = name
        self.error_args = tuple(args)
        text = message or f"{name}({', '.join(repr(a) for a in args)})"
        super().__init__(text)


class StorageError(FedMarketError):
    """Storage (IPFS or the local content store) failed, or content did not match its CID."""


class InvalidBlob(FedMarketError):
    """An update blob was rejected; `reason` is a short machine-readable code."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        super().__init__(f"{reason}: {detail}" if detail else reason)


class QuantizationError(FedMarketError):
    """A tensor cannot be quantized (NaN or Inf values, wrong dtype)."""


class ProofError(FedMarketError):
    """A proof could not be made, or did not verify."""


class AggregationError(FedMarketError):
    """Inputs to an aggregation rule are malformed or exceed its exactness bounds."""
