"""The chain layer: one `Chain` over the in-process EVM (eth-tester/py-evm) or any JSON-RPC node.

Transactions are signed locally (no node-held keys), sent with explicit gas, and a revert is
raised as `ContractRevert` carrying the custom error's name, its arguments by name (enums by
member) and a hint. A node that cannot be reached or does not answer in time raises
`ChainUnavailable`, the one chain error worth retrying.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, cast

import requests
from eth_abi import decode as abi_decode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from eth_utils import function_signature_to_4byte_selector, is_checksum_formatted_address
from hexbytes import HexBytes
from web3 import EthereumTesterProvider, HTTPProvider, Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.exceptions import ContractCustomError, ContractLogicError, TimeExhausted, Web3RPCError
from web3.types import BlockIdentifier, RPCEndpoint, RPCResponse, TxParams, TxReceipt, Wei

from market.errors import ADDRESS, ChainError, ChainUnavailable, ConfigError, ContractRevert, TransientError
from market.toolchain.solc import ContractArtifact

#: The development mnemonic anvil uses; the in-process chain funds the same accounts.
DEV_MNEMONIC = "test test test test test test test test test test test junk"
DEV_BALANCE_WEI = 10_000 * 10**18
DEV_ACCOUNTS = 10
GAS_LIMIT = 30_000_000
RECEIPT_TIMEOUT_S = 120
_PANIC = {0x01: "assert", 0x11: "arithmetic overflow", 0x12: "division by zero", 0x32: "array index out of bounds"}
#: HTTP statuses of a node or proxy that is overloaded or restarting (worth a retry, unlike other HTTP errors).
_BUSY_HTTP = {429, 502, 503, 504}
#: How nodes refuse a transaction whose sender cannot pay for it: geth, anvil and others; eth-tester.
_UNAFFORDABLE = ("insufficient funds", "cannot afford txn")

Account.enable_unaudited_hdwallet_features()


def checksummed(address: str, what: str) -> ChecksumAddress:
    """`address` in EIP-55 form; ConfigError naming `what` (an option, a file's key) when it is not 0x and 40 hex
    digits, or when its mixed capitals are not its checksum (a mistyped digit)."""
    if not ADDRESS.fullmatch(address):
        raise ConfigError(f"{what}: {address!r} is not an address (0x followed by 40 hex digits)")
    if is_checksum_formatted_address(address) and not Web3.is_checksum_address(address):
        raise ConfigError(f"{what}: {address} fails its EIP-55 checksum (mixed capitals that do not match: a typo?)")
    return Web3.to_checksum_address(address)


def dev_accounts(n: int = DEV_ACCOUNTS) -> list[LocalAccount]:
    """The first `n` development accounts of DEV_MNEMONIC (the same as anvil's)."""
    return [Account.from_mnemonic(DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}") for i in range(n)]


@dataclass(frozen=True)
class _ErrorSpec:
    """One custom error of a registered ABI: its name and, per input, the ABI type, name and internalType."""

    name: str
    types: tuple[str, ...]
    names: tuple[str, ...]
    internal: tuple[str, ...]


class _Provider(HTTPProvider):
    """HTTPProvider whose refused connections, timeouts and busy answers raise ChainUnavailable.

    web3 has already retried the idempotent methods a few times by then; what is left is for the caller
    (a daemon retries on its next poll).
    """

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        """One JSON-RPC request; ChainUnavailable when the node does not answer."""
        try:
            return super().make_request(method, params)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise ChainUnavailable(f"no answer from the chain node at {self.endpoint_uri} ({method}): {exc}") from None
        except requests.HTTPError as exc:
            if exc.response is None or exc.response.status_code not in _BUSY_HTTP:
                raise
            raise ChainUnavailable(f"the chain node at {self.endpoint_uri} is busy ({method}): {exc}") from None


def _error_signature(item: dict[str, Any]) -> str:
    """`Name(type1,type2)` of an ABI error entry (tuples flattened to their canonical form)."""

    def canonical(inp: dict[str, Any]) -> str:
        if inp["type"].startswith("tuple"):
            inner = ",".join(canonical(c) for c in inp["components"])
            return f"({inner}){inp['type'][5:]}"
        return str(inp["type"])

    return f"{item['name']}({','.join(canonical(i) for i in item.get('inputs', []))})"


class Chain:
    """A connection to one chain with funded local accounts, deploy, transact, call and time travel."""

    def __init__(self, w3: Web3, accounts: Sequence[LocalAccount], backend: str) -> None:
        self.w3 = w3
        self.accounts = list(accounts)
        self.backend = backend
        self.chain_id = int(w3.eth.chain_id)
        self._errors: dict[bytes, _ErrorSpec] = {}
        self._enums: dict[str, type[IntEnum]] = {}
        self._hints: dict[str, str] = {}

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def in_process(cls, n_accounts: int = DEV_ACCOUNTS) -> Chain:
        """A fresh in-process chain (eth-tester with py-evm) funding the development accounts."""
        from eth_tester import PyEVMBackend

        from market.chain.tester import ReceiptKeepingTester

        accounts = dev_accounts(n_accounts)
        state = {
            bytes.fromhex(a.address[2:]): {"balance": DEV_BALANCE_WEI, "nonce": 0, "code": b"", "storage": {}}
            for a in accounts
        }
        params = PyEVMBackend.generate_genesis_params(overrides={"gas_limit": GAS_LIMIT})
        tester = ReceiptKeepingTester(PyEVMBackend(genesis_parameters=params, genesis_state=state))
        return cls(Web3(EthereumTesterProvider(tester)), accounts, "eth-tester")

    @classmethod
    def connect(cls, url: str, accounts: Sequence[LocalAccount] | None = None, timeout: float = 30.0) -> Chain:
        """Connect to a JSON-RPC endpoint; `accounts` default to the development accounts.

        ChainUnavailable if nothing answers at `url`, ChainError if what answers is not a chain node.
        """
        # The chain id is asked before every call and transaction (web3's validation); an endpoint's never changes,
        # so it alone is cached (blocks are not: a revert to a snapshot re-mines their numbers).
        w3 = Web3(_Provider(url, request_kwargs={"timeout": timeout}, cache_allowed_requests=True,
                            cacheable_requests={RPCEndpoint("eth_chainId")}))
        try:
            w3.eth.get_block_number()
        except ChainUnavailable as exc:
            raise ChainUnavailable(f"cannot reach a chain at {url}: {exc}") from None
        except Exception as exc:
            raise ChainError(f"cannot reach a chain at {url}: {exc}") from None
        return cls(w3, accounts if accounts is not None else dev_accounts(), "rpc")

    # -- errors ---------------------------------------------------------------------------------
    def register_abi(self, abi: Iterable[dict[str, Any]], enums: Mapping[str, type[IntEnum]] | None = None,
                     hints: Mapping[str, str] | None = None) -> None:
        """Learn the custom errors of an ABI so that reverts decode to their names and named arguments.

        `enums` maps an input's internalType (`enum FedMarket.State`) to the IntEnum its values decode
        to, `hints` an error's name to what the user can do about it; both add to what is known.
        """
        self._enums.update(enums or {})
        self._hints.update(hints or {})
        for item in abi:
            if item.get("type") == "error":
                signature = _error_signature(item)
                inputs = item.get("inputs", [])
                self._errors[function_signature_to_4byte_selector(signature)] = _ErrorSpec(
                    name=item["name"],
                    types=tuple(_split_types(signature[signature.index("(") + 1 : -1])),
                    names=tuple(inp.get("name") or f"arg{i}" for i, inp in enumerate(inputs)),
                    internal=tuple(inp.get("internalType", "") for inp in inputs),
                )

    def decode_revert(self, data: bytes | str | None) -> ContractRevert:
        """Turn revert data into a ContractRevert naming the error, its arguments and the hint for it."""
        raw = bytes.fromhex(data[2:] if data.startswith("0x") else data) if isinstance(data, str) else (data or b"")
        if len(raw) < 4:
            return ContractRevert("Revert", {}, "reverted without data (out of gas or a failed precompile?)")
        selector, body = raw[:4], raw[4:]
        if selector == bytes.fromhex("08c379a0"):
            (reason,) = abi_decode(["string"], body)
            return ContractRevert("Error", {"reason": reason}, f"reverted: {reason}")
        if selector == bytes.fromhex("4e487b71"):
            (code,) = abi_decode(["uint256"], body)
            return ContractRevert("Panic", {"code": code}, f"panic 0x{code:02x} ({_PANIC.get(code, 'unknown')})")
        if selector in self._errors:
            spec = self._errors[selector]
            values = abi_decode(list(spec.types), body) if spec.types else ()
            args = {name: self._typed(t, internal, value)
                    for name, t, internal, value in zip(spec.names, spec.types, spec.internal, values, strict=True)}
            return ContractRevert(spec.name, args, hint=self._hints.get(spec.name))
        return ContractRevert("UnknownError", {"data": raw.hex()}, f"reverted with unknown error 0x{raw[:4].hex()}")

    def _typed(self, abi_type: str, internal: str, value: Any) -> Any:
        """A decoded argument as Python shows it best: addresses checksummed, registered enums as members."""
        if abi_type == "address":
            return Web3.to_checksum_address(value)
        if internal in self._enums:
            return self._enums[internal](value)
        return value

    def _revert_from(self, exc: Exception) -> ContractRevert | None:
        """Extract revert data from a web3 exception, or None if it is not a revert."""
        if isinstance(exc, (ContractCustomError, ContractLogicError)):
            data = exc.data
            if isinstance(data, dict):
                data = data.get("data")
            if isinstance(data, str) and data.startswith("0x"):
                return self.decode_revert(data)
            return ContractRevert("Error", {"reason": str(exc)}, str(exc))
        raw = _tester_revert_data(exc)
        if isinstance(raw, bytes):
            return self.decode_revert(raw)
        if isinstance(raw, str):
            return ContractRevert("Error", {"reason": raw}, f"reverted: {raw}")
        if isinstance(exc, Web3RPCError) and "revert" in str(exc).lower():
            return ContractRevert("Error", {"reason": str(exc)}, str(exc))
        return None

    # -- contracts ------------------------------------------------------------------------------
    def contract(self, address: str, artifact: ContractArtifact, enums: Mapping[str, type[IntEnum]] | None = None,
                 hints: Mapping[str, str] | None = None) -> Contract:
        """A web3 contract object for a deployed contract; `enums` and `hints` as for `register_abi`. ChainError
        if no code is deployed at `address` on this chain (a wrong address or chain would fail later, on a call)."""
        checked = checksummed(address, f"{artifact.name} address")
        if not self.w3.eth.get_code(checked):
            raise ChainError(f"no contract at {checked} on chain {self.chain_id} (expected {artifact.name}): "
                             "check the address, --rpc and --deployment")
        self.register_abi(artifact.abi, enums, hints)
        return self.w3.eth.contract(address=checked, abi=artifact.abi)

    def deploy(
        self, artifact: ContractArtifact, *args: Any, sender: LocalAccount | None = None, gas: int = 12_000_000
    ) -> Contract:
        """Deploy `artifact` with constructor `args`; returns the bound contract."""
        if not artifact.bytecode:
            raise ChainError(f"{artifact.name} has no bytecode (abstract contract or interface?)")
        self.register_abi(artifact.abi)
        factory = self.w3.eth.contract(abi=artifact.abi, bytecode="0x" + artifact.bytecode)
        receipt = self._send(factory.constructor(*args), sender or self.accounts[0], 0, gas)
        address = receipt["contractAddress"]
        if not address:
            raise ChainError(f"deploying {artifact.name} produced no contract address")
        return self.w3.eth.contract(address=address, abi=artifact.abi)

    def create(self, init_code: bytes, sender: LocalAccount, gas: int | None = None) -> TxReceipt:
        """Send one contract creation (gas estimated unless given) and return its receipt."""
        try:
            if gas is None:
                gas = int(self.w3.eth.estimate_gas({"from": sender.address, "data": HexBytes(init_code)}))
            tx = {**self._tx_params(sender, 0, gas), "data": init_code}
            tx_hash = self.w3.eth.send_raw_transaction(sender.sign_transaction(tx).raw_transaction)
        except Exception as exc:
            refused = self._refused(exc, sender, 0, 0)  # the fee is not known here: the message leaves it out
            if refused is None:
                raise
            raise refused from None
        return self._receipt(tx_hash)

    def deploy_code(self, init_code: bytes, sender: LocalAccount) -> str:
        """Deploy raw creation code that has no ABI (e.g. an SSTORE2 data contract); returns the new address."""
        receipt = self.create(init_code, sender)
        if receipt["status"] != 1 or not receipt["contractAddress"]:
            raise ChainError(f"deploying {len(init_code)} bytes of creation code failed")
        return str(receipt["contractAddress"])

    def transact(
        self, fn: ContractFunction, sender: LocalAccount, value: int = 0, gas: int | None = None
    ) -> TxReceipt:
        """Sign and send `fn` from `sender`; raises ContractRevert with the decoded error on revert."""
        if gas is None:
            gas = self.estimate(fn, sender, value)
        return self._send(fn, sender, value, gas)

    def estimate(self, fn: ContractFunction, sender: LocalAccount, value: int = 0) -> int:
        """Gas estimate with a margin; a revert during estimation raises ContractRevert."""
        try:
            estimate = fn.estimate_gas({"from": sender.address, "value": Wei(value)})
        except TransientError:
            raise
        except Exception as exc:
            revert = self._revert_from(exc)
            if revert is None:
                raise self._refused(exc, sender, value, 0) or ChainError(f"gas estimation failed: {exc}") from None
            raise revert from None
        return min(GAS_LIMIT, int(estimate * 1.25) + 20_000)

    def call(self, fn: ContractFunction, sender: LocalAccount | None = None, block: BlockIdentifier = "latest") -> Any:
        """eth_call `fn`; a revert raises ContractRevert."""
        tx: TxParams = {"from": (sender or self.accounts[0]).address}
        try:
            return fn.call(tx, block_identifier=block)
        except Exception as exc:
            revert = self._revert_from(exc)
            if revert is None:
                raise
            raise revert from None

    def _send(self, fn: Any, sender: LocalAccount, value: int, gas: int) -> TxReceipt:
        """Build, sign, send and wait; on a failed receipt replay the call to name the error."""
        tx_params = self._tx_params(sender, value, gas)
        try:
            tx = fn.build_transaction(tx_params)
            signed = sender.sign_transaction(tx)
            tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        except Exception as exc:
            revert = self._revert_from(exc)
            if revert is not None:
                raise revert from None
            refused = self._refused(exc, sender, value, gas * tx_params["maxFeePerGas"])
            if refused is None:
                raise
            raise refused from None
        receipt = self._receipt(tx_hash)
        if receipt["status"] != 1:
            raise self._replay_failure(tx, receipt)
        return receipt

    def _refused(self, exc: Exception, sender: LocalAccount, value: int, max_gas_cost: int) -> ChainError | None:
        """The node's refusal of a transaction that the sender cannot pay for, as a ChainError naming the account, its
        balance and what the transaction needs; None for any other exception."""
        if not any(text in str(exc).lower() for text in _UNAFFORDABLE):
            return None
        balance = self.balance(sender.address)
        return ChainError(f"{sender.address} holds {balance / 1e18:.6g} ether ({balance} wei): not enough for the "
                          f"{value / 1e18:.6g} ether this transaction sends plus its gas"
                          + (f" (up to {max_gas_cost / 1e18:.6g} ether)" if max_gas_cost else "") + "; fund the account")

    def _receipt(self, tx_hash: HexBytes) -> TxReceipt:
        """Wait for a sent transaction's receipt; ChainUnavailable if it is not mined in time."""
        try:
            return self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=RECEIPT_TIMEOUT_S)
        except TimeExhausted:
            raise ChainUnavailable(f"transaction {Web3.to_hex(tx_hash)} was not mined within {RECEIPT_TIMEOUT_S} s") from None

    def gas_used(self, tx_hash: str) -> int:
        """The gas a mined transaction used, from its receipt."""
        return int(self.w3.eth.get_transaction_receipt(tx_hash)["gasUsed"])  # type: ignore[arg-type]

    def _replay_failure(self, tx: dict[str, Any], receipt: TxReceipt) -> ContractRevert:
        """Re-run a failed transaction as a call on its parent block to recover the revert data."""
        call = cast(TxParams, {k: tx[k] for k in ("from", "to", "data", "value", "gas") if k in tx})
        try:
            self.w3.eth.call(call, block_identifier=receipt["blockNumber"] - 1)
        except TransientError:
            raise
        except Exception as exc:
            revert = self._revert_from(exc)
            if revert is not None:
                return revert
        if receipt["gasUsed"] >= tx["gas"]:
            return ContractRevert("OutOfGas", {"gas": tx["gas"]}, f"transaction ran out of gas ({tx['gas']})")
        return ContractRevert("Revert", {}, "transaction reverted without data")

    def _tx_params(self, sender: LocalAccount, value: int, gas: int) -> dict[str, Any]:
        """Nonce, chain id and EIP-1559 fees for a transaction from `sender`."""
        base_fee = int(self.w3.eth.get_block("latest").get("baseFeePerGas", 0) or 0)
        tip = 10**9
        return {
            "from": sender.address,
            "value": value,
            "gas": gas,
            "nonce": self.w3.eth.get_transaction_count(sender.address, "pending"),
            "chainId": self.chain_id,
            "maxFeePerGas": 2 * base_fee + tip,
            "maxPriorityFeePerGas": tip,
        }

    def transfer(self, sender: LocalAccount, to: str, value: int) -> TxReceipt:
        """Send `value` wei of ether from `sender` to `to`."""
        tx = {**self._tx_params(sender, value, 21_000), "to": Web3.to_checksum_address(to)}
        receipt = self._receipt(self.w3.eth.send_raw_transaction(sender.sign_transaction(tx).raw_transaction))
        if receipt["status"] != 1:
            raise ChainError(f"transfer of {value} wei to {to} failed")
        return receipt

    # -- state and time -------------------------------------------------------------------------
    def balance(self, address: str) -> int:
        """Ether balance in wei."""
        return int(self.w3.eth.get_balance(Web3.to_checksum_address(address)))

    def now(self) -> int:
        """Timestamp of the latest block."""
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def mine(self) -> None:
        """Mine one empty block."""
        if self.backend == "eth-tester":
            self._tester().mine_blocks(1)
        else:
            self.w3.provider.make_request(RPCEndpoint("evm_mine"), [])

    def time_travel(self, seconds: int) -> None:
        """Advance chain time by `seconds` and mine a block (test and devnet chains only). With `seconds <= 0` (a
        target time already past: on anvil chain time follows the clock, so a slow step can outrun a window) it only
        mines the block; anvil refuses a negative increase."""
        seconds = int(seconds)
        if self.backend == "eth-tester":
            tester = self._tester()
            if seconds > 0:
                tester.time_travel(self.now() + seconds)
            tester.mine_blocks(1)
        else:
            if seconds > 0:
                response = self.w3.provider.make_request(RPCEndpoint("evm_increaseTime"), [seconds])
                if "error" in response:
                    raise ChainError(f"this node does not support time travel: {response['error']}")
            self.w3.provider.make_request(RPCEndpoint("evm_mine"), [])

    def snapshot(self) -> Any:
        """Take a state snapshot (test chains)."""
        if self.backend == "eth-tester":
            return self._tester().take_snapshot()
        return self.w3.provider.make_request(RPCEndpoint("evm_snapshot"), [])["result"]

    def revert(self, snapshot_id: Any) -> None:
        """Return to a snapshot taken with `snapshot()`."""
        if self.backend == "eth-tester":
            self._tester().revert_to_snapshot(snapshot_id)
        else:
            self.w3.provider.make_request(RPCEndpoint("evm_revert"), [snapshot_id])

    def _tester(self) -> Any:
        """The eth-tester object behind the in-process provider."""
        return self.w3.provider.ethereum_tester  # type: ignore[attr-defined]


def _tester_revert_data(exc: BaseException) -> bytes | str | None:
    """The revert data eth-tester puts in its TransactionFailed: raw bytes, or a reason it already decoded."""
    seen: BaseException | None = exc
    while seen is not None:
        if type(seen).__name__ == "TransactionFailed" and seen.args:
            arg = seen.args[0]
            if isinstance(arg, bytes):
                return arg
            text = str(arg).removeprefix("execution reverted: ")
            if text.startswith(("b'", 'b"')):
                value = ast.literal_eval(text)
                if isinstance(value, bytes):
                    return value
            elif str(arg).startswith("execution reverted: "):
                return text
        seen = seen.__context__ or seen.__cause__
    return None


def _split_types(types: str) -> list[str]:
    """Split a canonical type list at top-level commas (tuples keep their inner commas)."""
    parts, depth, current = [], 0, ""
    for ch in types:
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
            continue
        depth += ch == "("
        depth -= ch == ")"
        current += ch
    if current:
        parts.append(current)
    return parts
