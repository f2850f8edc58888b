// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity ^0.8.28;

import {IRoundVerifier} from "../../contracts/IRoundVerifier.sol";

/// @title HashCheckVerifier
/// @notice TEST ONLY, never deploy it anywhere else: accepts a "proof" iff proof[0] equals the
///         public input, so tests can check that the marketplace computed the public input of
///         docs/PROTOCOL.md §6 exactly and that a proof bound to another round is refused.
contract HashCheckVerifier is IRoundVerifier {
    uint256 private immutable _slots;

    /// @param slots The number of trainer slots N this fake circuit hashes
    constructor(uint256 slots) {
        _slots = slots;
    }

    /// @inheritdoc IRoundVerifier
    function maxTrainers() external view returns (uint256) {
        return _slots;
    }

    /// @inheritdoc IRoundVerifier
    function verifyRound(uint256 publicInput, uint256[8] calldata proof) external pure returns (bool) {
        return proof[0] == publicInput;
    }
}
