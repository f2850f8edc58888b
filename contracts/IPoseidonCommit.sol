// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity ^0.8.28;

/// @title IPoseidonCommit
/// @notice Published proof views checked on chain: their PROTOCOL.md §2 commitment, for a trainer's cure (PROTOCOL.md
///         §5), and the distance of two, for a replay challenge (PROTOCOL.md §3).
interface IPoseidonCommit {
    /// @notice The PROTOCOL.md §2 commitment of a view of `count` values of `bits` bits (2..32), given as its
    ///         packed field elements; reverts ElementCount / LaneOutOfRange on a malformed element.
    function commitPacked(uint256 count, uint256 bits, uint256[] calldata elements) external view returns (uint256);

    /// @notice The commitments of two views of `count` values of `bits` bits given as packed elements (commitPacked's
    ///         layout and checks), their squared distance |u - w|^2 and their squared norms |u|^2 and |w|^2.
    function comparePacked(uint256 count, uint256 bits, uint256[] calldata u, uint256[] calldata w)
        external
        view
        returns (uint256 commitU, uint256 commitW, uint256 dist, uint256 nsqU, uint256 nsqW);
}
