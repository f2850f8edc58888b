// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity ^0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title TestToken
/// @notice TEST ONLY: an ERC-20 anyone can mint, for budgets, stakes and bonds in tests.
contract TestToken is ERC20 {
    constructor() ERC20("Test Token", "TEST") {}

    /// @notice Mint `amount` to `to`.
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }
}

/// @title FeeToken
/// @notice TEST ONLY: an ERC-20 that burns 1% of every transfer, which the marketplace must refuse.
contract FeeToken is ERC20 {
    constructor() ERC20("Fee Token", "FEE") {}

    /// @notice Mint `amount` to `to`.
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    /// @dev Burn 1% of each transfer between two accounts.
    function _update(address from, address to, uint256 value) internal override {
        if (from != address(0) && to != address(0)) {
            uint256 fee = value / 100;
            super._update(from, address(0), fee);
            value -= fee;
        }
        super._update(from, to, value);
    }
}

/// @title FalseToken
/// @notice TEST ONLY: an ERC-20 whose transferFrom returns false instead of reverting.
contract FalseToken is ERC20 {
    constructor() ERC20("False Token", "NOPE") {}

    /// @notice Mint `amount` to `to`.
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    /// @dev Always fails quietly.
    function transferFrom(address, address, uint256) public pure override returns (bool) {
        return false;
    }
}
