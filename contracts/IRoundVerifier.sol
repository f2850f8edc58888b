// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity ^0.8.28;

/// @title IRoundVerifier
/// @notice Checks the Groth16 proof of one aggregation round (docs/PROTOCOL.md §6).
/// @dev The marketplace computes the single public input itself from what it stored, so a
///      verifier never sees (and cannot be fooled by) the round's raw data.
interface IRoundVerifier {
    /// @notice Number of trainer slots the circuit hashes into the public input.
    function maxTrainers() external view returns (uint256);

    /// @notice The circuit's settings, compared with the project's at creation: slots N, view length
    ///         d, quantization bits, Multi-Krum f and m, tau_pct, dup_pct, floor_pct and the outlier
    ///         rule (0: Multi-Krum with its screens, PROTOCOL.md §3).
    function settings() external view returns (uint256[9] memory);

    /// @notice True iff `proof` (a.x, a.y, b.x1, b.x0, b.y1, b.y0, c.x, c.y; EVM G2 order)
    ///         is a valid proof for the public input.
    function verifyRound(uint256 publicInput, uint256[8] calldata proof) external view returns (bool);
}
