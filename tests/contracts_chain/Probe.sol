// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity ^0.8.28;

/// @notice Test-only contract exercising revert decoding and time in the chain layer tests.
contract Probe {
    error TooSmall(uint256 given, uint256 minimum);
    error Named(string label, address who);

    uint256 public stored;

    function set(uint256 value) external {
        if (value < 10) revert TooSmall(value, 10);
        stored = value;
    }

    function named() external view {
        revert Named("probe", msg.sender);
    }

    function legacy() external pure {
        require(false, "plain reason");
    }

    function panic(uint256 x) external pure returns (uint256) {
        return 10 / x;
    }

    function now_() external view returns (uint256) {
        return block.timestamp;
    }
}
