// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity ^0.8.28;

/// @title IPoseidonCommit
/// @notice The PROTOCOL.md §2 commitment computed on chain, for a trainer's cure (PROTOCOL.md §5).
interface IPoseidonCommit {
    /// @notice The PROTOCOL.md §2 commitment of a view of `count` values of `bits` bits (2..32), given as its
    ///         packed field elements; reverts ElementCount / LaneOutOfRange on a malformed element.
    function commitPacked(uint256 count, uint256 bits, uint256[] calldata elements) external view returns (uint256);
}
