// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity ^0.8.28;

import {IRoundVerifier} from "../IRoundVerifier.sol";

/// @notice The Groth16 verifier generated from a round circuit's verifying key (zk/onchain.py).
interface IGroth16Verifier {
    function verifyProof(
        uint256[2] calldata a,
        uint256[2][2] calldata b,
        uint256[2] calldata c,
        uint256[1] calldata input
    ) external view returns (bool);
}

/// @title RoundVerifier
/// @notice IRoundVerifier over a generated Groth16 verifier with one public input (docs/ZK.md).
/// @dev The verifier runs with a fixed gas allowance that covers its pairing. A caller that
///      cannot give that much is refused with a revert, never answered `false`: otherwise
///      eth_estimateGas would settle on a budget in which the pairing precompile fails.
contract RoundVerifier is IRoundVerifier {
    /// @notice Gas forwarded to the Groth16 verifier (4-pair pairing + one ecMul, ~210k used).
    uint256 public constant VERIFY_GAS = 320_000;

    /// @notice The generated Groth16 verifier.
    IGroth16Verifier public immutable groth16;
    uint256 private immutable _slots;
    /// @notice The circuit's other parameters (docs/PROTOCOL.md §3): view length d, bits,
    ///         Multi-Krum f and m, tau_pct, the copy threshold dup_pct and the norm floor floor_pct.
    uint256 public immutable viewLen;
    uint256 public immutable quantBits;
    uint256 public immutable krumF;
    uint256 public immutable krumM;
    uint256 public immutable tauPct;
    uint256 public immutable dupPct;
    uint256 public immutable floorPct;

    /// @notice The outlier rule the round circuit proves: 0, Multi-Krum with its screens.
    uint256 public constant RULE = 0;

    /// @notice Fewer than VERIFY_GAS (plus the 1/64 the EVM keeps back) is left for the check.
    error VerifierGasTooLow(uint256 left, uint256 needed);

    /// @param verifier The generated verifier of the circuit's verifying key
    /// @param circuit The circuit's parameters: slots N, view length d, bits, f, m, tau_pct,
    ///        dup_pct, floor_pct
    constructor(IGroth16Verifier verifier, uint256[8] memory circuit) {
        groth16 = verifier;
        (_slots, viewLen, quantBits) = (circuit[0], circuit[1], circuit[2]);
        (krumF, krumM, tauPct) = (circuit[3], circuit[4], circuit[5]);
        (dupPct, floorPct) = (circuit[6], circuit[7]);
    }

    /// @inheritdoc IRoundVerifier
    function maxTrainers() external view returns (uint256) {
        return _slots;
    }

    /// @inheritdoc IRoundVerifier
    function settings() external view returns (uint256[9] memory) {
        return [_slots, viewLen, quantBits, krumF, krumM, tauPct, dupPct, floorPct, RULE];
    }

    /// @inheritdoc IRoundVerifier
    function verifyRound(uint256 publicInput, uint256[8] calldata p) external view returns (bool) {
        uint256 needed = VERIFY_GAS + VERIFY_GAS / 63 + 5_000;
        if (gasleft() < needed) revert VerifierGasTooLow(gasleft(), needed);
        // Malformed points make the generated verifier revert: a rejected proof, not an error.
        try groth16.verifyProof{gas: VERIFY_GAS}(
            [p[0], p[1]], [[p[2], p[3]], [p[4], p[5]]], [p[6], p[7]], [publicInput]
        ) returns (bool ok) {
            return ok;
        } catch {
            return false;
        }
    }
}
