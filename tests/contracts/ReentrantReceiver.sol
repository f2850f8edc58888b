// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity ^0.8.28;

import {FedMarket} from "../../contracts/FedMarket.sol";

/// @title ReentrantReceiver
/// @notice TEST ONLY: a party (trainer, owner or aggregator) that re-enters the marketplace when
///         it receives ETH. It records what the re-entry returned and then either swallows it
///         (so the outer payment goes through) or makes the payment fail.
contract ReentrantReceiver {
    /// @notice Which marketplace call the receiver makes on receiving ETH.
    enum Attack {
        None,
        Claim,
        WithdrawStake,
        WithdrawRefund,
        WithdrawBond,
        RejectPayment
    }

    FedMarket public immutable market;
    Attack public attack;
    uint256 public attackPid;
    /// @notice How many times ETH arrived.
    uint256 public received;
    /// @notice True if a re-entrant call succeeded (must never happen).
    bool public reentered;
    /// @notice Revert data of the last re-entrant call.
    bytes public lastError;

    constructor(FedMarket market_) {
        market = market_;
    }

    /// @notice Choose the re-entrant call made on the next payment.
    function setAttack(Attack attack_, uint256 pid) external {
        attack = attack_;
        attackPid = pid;
    }

    /// @notice Forward any call to the marketplace with `value` (lets the receiver act as a party).
    function act(bytes calldata data, uint256 value) external payable returns (bytes memory) {
        (bool ok, bytes memory ret) = address(market).call{value: value}(data);
        if (!ok) {
            assembly {
                revert(add(ret, 32), mload(ret))
            }
        }
        return ret;
    }

    receive() external payable {
        received += 1;
        Attack a = attack;
        if (a == Attack.None) return;
        if (a == Attack.RejectPayment) revert("payment rejected");
        bytes memory data;
        if (a == Attack.Claim) data = abi.encodeCall(FedMarket.claim, (attackPid));
        else if (a == Attack.WithdrawStake) data = abi.encodeCall(FedMarket.withdrawStake, (attackPid));
        else if (a == Attack.WithdrawRefund) data = abi.encodeCall(FedMarket.withdrawRefund, (attackPid));
        else data = abi.encodeCall(FedMarket.withdrawBond, (attackPid));
        (bool ok, bytes memory ret) = address(market).call(data);
        if (ok) reentered = true;
        lastError = ret;
    }
}

/// @title GasProbe
/// @notice TEST/BENCH ONLY: measures the gas a verifier's verifyRound call takes from a caller,
///         cold account access included, the way FedMarket.postRound calls it.
contract GasProbe {
    /// @notice Gas used by `verifier.verifyRound(publicInput, proof)` and its result.
    function measure(address verifier, uint256 publicInput, uint256[8] calldata proof)
        external
        view
        returns (uint256 gasUsed, bool ok)
    {
        uint256 before = gasleft();
        (bool success, bytes memory ret) =
            verifier.staticcall(abi.encodeWithSignature("verifyRound(uint256,uint256[8])", publicInput, proof));
        gasUsed = before - gasleft();
        ok = success && ret.length == 32 && abi.decode(ret, (bool));
    }
}
