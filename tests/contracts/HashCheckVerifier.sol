// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity ^0.8.28;

import {IRoundVerifier} from "../../contracts/IRoundVerifier.sol";

/// @title HashCheckVerifier
/// @notice TEST ONLY, never deploy it anywhere else: accepts a "proof" iff proof[0] equals the
///         public input, so tests can check that the marketplace computed the public input of
///         docs/PROTOCOL.md §6 exactly and that a proof bound to another round is refused.
///         Its settings are whatever the test last set (setSettings), so that one instance serves
///         projects with any parameters.
contract HashCheckVerifier is IRoundVerifier {
    uint256[9] private _settings;

    /// @param slots The number of trainer slots N this fake circuit hashes
    constructor(uint256 slots) {
        _settings[0] = slots;
    }

    /// @notice Set what settings() answers (the slots stay those of the constructor).
    function setSettings(uint256[9] calldata s) external {
        uint256 slots = _settings[0];
        _settings = s;
        _settings[0] = slots;
    }

    /// @inheritdoc IRoundVerifier
    function maxTrainers() external view returns (uint256) {
        return _settings[0];
    }

    /// @inheritdoc IRoundVerifier
    function settings() external view returns (uint256[9] memory) {
        return _settings;
    }

    /// @inheritdoc IRoundVerifier
    function verifyRound(uint256 publicInput, uint256[8] calldata proof) external pure returns (bool) {
        return proof[0] == publicInput;
    }
}
