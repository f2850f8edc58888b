"""The in-process chain's node: eth-tester (py-evm) that keeps mined receipts, imported only by `Chain.in_process`."""

from __future__ import annotations

import copy
from typing import Any

from eth_tester import EthereumTester
from hexbytes import HexBytes


class ReceiptKeepingTester(EthereumTester):
    """eth-tester that keeps the receipts of mined transactions until a revert.

    Its `get_logs` rebuilds the receipt of every transaction in every block it scans (about 7 ms each in py-evm),
    and a project's event queries scan the same blocks again and again: most of the in-process chain's time went
    there. A mined receipt cannot change until `revert_to_snapshot`, which forgets them all.
    """

    def __init__(self, backend: Any) -> None:
        super().__init__(backend)
        self._receipts: dict[str, dict[str, Any]] = {}

    def get_transaction_receipt(self, transaction_hash: Any) -> Any:
        """The receipt, kept once its transaction is mined; each caller gets its own copy."""
        key = HexBytes(transaction_hash).hex().lower().removeprefix("0x")
        kept = self._receipts.get(key)
        if kept is None:
            kept = super().get_transaction_receipt(transaction_hash)
            if kept.get("block_number") is None:
                return kept
            self._receipts[key] = kept
        return copy.deepcopy(kept)

    def revert_to_snapshot(self, snapshot_id: Any) -> None:
        """Revert, forgetting the kept receipts (a transaction may be mined again, in another block)."""
        self._receipts.clear()
        super().revert_to_snapshot(snapshot_id)
