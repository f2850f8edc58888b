"""The errors fedmarket raises on purpose: one tree, shaped like ape's, whose branch says what to do about it.

    FedMarketError
    ├── ConfigError             a setting, file or parameter is wrong: fix the input
    │   ├── KeysNotInstalled    no round-circuit keys here for a project's settings (names the command)
    │   ├── TooManySlots        a round circuit beyond 126 slots, where scores stop being unique
    │   ├── DataMismatch        a trainer's data does not fit the project's schema (features, classes)
    │   ├── UpdateClipped       an update would clip more than 1% of its values at the project's scale
    │   └── UnsupportedChain    a chain lacks opcodes the contracts need (names them and the chain id)
    ├── ToolchainError          an external tool is missing or failed
    │   └── CompileError
    ├── TransientError          a node did not answer: the only branch the daemons retry
    │   ├── ChainUnavailable    (also a ChainError)
    │   └── StorageUnavailable  (also a StorageError; market.storage's NodeUnreachable is one)
    ├── ContractRevert          the contract refused: deterministic, a retry repeats it
    ├── ChainError              the chain answered, but not as asked
    ├── StorageError            content missing, malformed or not matching its CID
    │                           (market.storage adds ContentMismatch and ContentTooLarge,
    │                           market.parties.context adds ManifestMismatch under ContentMismatch)
    ├── InvalidBlob             an update blob was rejected; `reason` is a BlobReason
    ├── QuantizationError
    ├── ProofError
    │   ├── VerifierMismatch    a project's verifier is not the one its settings and the keys here make
    │   └── InsecureKeys        development keys on a chain that may hold value (names the chain id)
    ├── AggregationError
    └── AuditMismatch           a re-derived round differs from what was posted (names round, slot, field)

The two unavailable errors also sit under their layer's error, so that code handling "any storage
failure" (a blob that cannot be fetched is rejected as `unavailable`) keeps catching StorageError,
while a daemon retries only what is a TransientError.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import IntEnum, StrEnum

#: An Ethereum address as fedmarket takes one: 0x and 40 hex digits (the CLI, revert arguments).
ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


class FedMarketError(Exception):
    """Root of every error fedmarket raises deliberately."""


class ConfigError(FedMarketError):
    """A setting, file or parameter is missing or malformed."""


class ToolchainError(FedMarketError):
    """An external tool (node, solc, anvil, circom, snarkjs, js-ipfs) is missing or failed."""


class CompileError(ToolchainError):
    """Solidity or circom compilation failed; the message names file and line."""


class TransientError(FedMarketError):
    """A chain or storage node refused the connection or did not answer in time; a later retry may succeed."""


class ChainError(FedMarketError):
    """The chain answered, but not as expected (no bytecode, no such event, no time travel)."""


class ChainUnavailable(TransientError, ChainError):
    """The chain node could not be reached, or a request or transaction did not complete in time."""


class StorageError(FedMarketError):
    """Storage failed: content missing from the store, a malformed CID, or content that does not match its CID."""


class StorageUnavailable(TransientError, StorageError):
    """The storage node could not be reached or did not answer in time."""


def solidity_name(member: IntEnum) -> str:
    """A Python enum member as its Solidity spelling: State.TRAINING -> Training, OWNER_CANCELLED -> OwnerCancelled."""
    return "".join(word.capitalize() for word in member.name.split("_"))


def show_value(value: object) -> str:
    """One decoded revert argument as people read it: enums by name, addresses and numbers bare, text quoted."""
    if isinstance(value, IntEnum):
        return solidity_name(value)
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, str) and not ADDRESS.fullmatch(value):
        return repr(value)
    return str(value)


class ContractRevert(FedMarketError):
    """The contract refused a transaction or call; deterministic, so retrying repeats it.

    `name` is the custom error's name, `args_by_name` its decoded arguments by their ABI names
    (enum arguments as IntEnum members) and `hint` what the user can do about it, if anything.
    """

    def __init__(self, name: str, args_by_name: Mapping[str, object] | None = None, message: str = "",
                 hint: str | None = None) -> None:
        self.name = name
        self.args_by_name = dict(args_by_name or {})
        self.hint = hint
        shown = ", ".join(f"{key}={show_value(value)}" for key, value in self.args_by_name.items())
        super().__init__(message or f"{name}({shown})")

    @property
    def error_args(self) -> tuple[object, ...]:
        """The decoded arguments in ABI order."""
        return tuple(self.args_by_name.values())


class BlobReason(StrEnum):
    """Why the aggregator rejects a submitted update (flag 2, PROTOCOL.md §5 and §8); values are the report's codes."""

    CID_MISMATCH = "cid_mismatch"
    UNAVAILABLE = "unavailable"
    UNDECODABLE = "undecodable"
    WRONG_CHAIN = "wrong_chain"
    WRONG_CONTRACT = "wrong_contract"
    WRONG_PROJECT = "wrong_project"
    WRONG_ROUND = "wrong_round"
    WRONG_TRAINER = "wrong_trainer"
    WRONG_SPEC = "wrong_spec"
    WRONG_SHAPE = "wrong_shape"
    WRONG_DTYPE = "wrong_dtype"
    NOT_FINITE = "not_finite"
    OUT_OF_RANGE = "out_of_range"
    TOO_LARGE = "too_large"
    COMMITMENT_MISMATCH = "commitment_mismatch"


class InvalidBlob(FedMarketError):
    """A blob was rejected; `reason` is its BlobReason and `detail` what exactly was wrong."""

    def __init__(self, reason: BlobReason | str, detail: str = "") -> None:
        self.reason = BlobReason(reason)
        self.detail = detail
        super().__init__(f"{self.reason}: {detail}" if detail else str(self.reason))


class QuantizationError(FedMarketError):
    """A tensor cannot be quantized (NaN or Inf values, wrong dtype)."""


class ProofError(FedMarketError):
    """A proof could not be made, or did not verify."""


class KeysNotInstalled(ConfigError):
    """No round-circuit keys are installed in `folder` for a project's circuit settings; the message says how to install them."""

    def __init__(self, folder: str, message: str) -> None:
        self.folder = folder
        super().__init__(message)


class TooManySlots(ConfigError):
    """A round circuit with `slots` trainer slots: above MAX_SLOTS (126) a second (score, remainder) pair would verify,
    since 2^64 D(n) exceeds the field (PROTOCOL §3; the circuit asserts it and FedMarket refuses such a verifier)."""

    MAX_SLOTS = 126

    def __init__(self, slots: int) -> None:
        self.slots = slots
        super().__init__(f"a round circuit has at most {self.MAX_SLOTS} slots, where contribution scores stay unique; "
                         f"got {slots}")


class DataMismatch(ConfigError):
    """A trainer's data does not fit its project's data schema (feature count, labels outside the classes);
    raised before the trainer stakes or sends anything."""


class UpdateClipped(ConfigError):
    """A trainer's update would clip more than the allowed fraction of its values at the project's quantization
    scale; the trainer refuses to submit it rather than send a silently clipped update."""


class UnsupportedChain(ConfigError):
    """Chain `chain_id` does not run the opcodes in `missing`, which the compiled contracts use (evmVersion cancun):
    deploying there would make contracts that fail at their first call."""

    def __init__(self, chain_id: int, missing: list[str]) -> None:
        self.chain_id, self.missing = chain_id, missing
        super().__init__(f"chain {chain_id} does not support the opcodes {', '.join(missing)}, which the marketplace's "
                         "contracts use (evmVersion cancun): deploy to a chain with the Cancun upgrade")


class VerifierMismatch(ProofError):
    """A project's round verifier is not the one its circuit settings and the locally installed keys make, so
    its proofs may prove another circuit: `what` names the setting or the code that differs, `detail` how."""

    def __init__(self, what: str, detail: str) -> None:
        self.what, self.detail = what, detail
        super().__init__(f"{what}: {detail}")


class InsecureKeys(ProofError):
    """A project's verifier checks proofs against development keys, which their maker can forge, on chain
    `chain_id`, which may hold value (not a local development chain)."""

    def __init__(self, chain_id: int, message: str) -> None:
        self.chain_id = chain_id
        super().__init__(message)


class AggregationError(FedMarketError):
    """Inputs to an aggregation rule are malformed or exceed its exactness bounds."""


class AuditMismatch(FedMarketError):
    """`fedmarket audit` re-derived a round and it differs from what was posted: `round`, `slot` (None for a
    round-wide field such as the proof, the model or v) and `field` name where, `detail` how."""

    def __init__(self, round_: int, slot: int | None, field: str, detail: str) -> None:
        self.round, self.slot, self.field, self.detail = round_, slot, field, detail
        where = f"round {round_}" + (f", slot {slot}" if slot is not None else "") + f", field {field}"
        super().__init__(f"{where}: {detail}")
