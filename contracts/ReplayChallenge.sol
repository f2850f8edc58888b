// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity ^0.8.28;

import {IPoseidonCommit} from "./IPoseidonCommit.sol";
import {FedMarket} from "./FedMarket.sol";

/// @title ReplayChallenge
/// @notice Takes a replayed update out of a fedmarket round (PROTOCOL.md §3). Anyone publishes two proof views: the
///         update in a slot of the open round and another trainer's update of one of the REPLAY_LOOKBACK rounds
///         before. If they hash to the two stored commitments and lie near each other (within REPLAY_PCT, or along one
///         line within LINE_PCT), the marketplace clears the first: the round counts it as absent, so it is not paid, not slashed, and no earlier submission
///         of it can make its source's author's next update a copy. A source that was itself taken out has no
///         commitment left: a challenged replay of a trainer's update cannot be cited against that trainer's later
///         ones.
/// @dev FedMarket's constructor creates this contract (MARKET is its creator), which keeps the marketplace's code
///      within EIP-170; it reads the project and the commitments through the marketplace's views.
contract ReplayChallenge {
    /// @notice An update within REPLAY_PCT percent of another trainer's update of a recent round, in squared
    ///         distance over the smaller squared norm (100 |u - w|^2 <= REPLAY_PCT min(|u|^2, |w|^2)), is a replay.
    ///         Honest updates of different trainers lay at least 1.0 apart across consecutive rounds of the eval's
    ///         clean runs (scripts/replays.py), a replay with noise of a quarter of its norm about 0.06.
    uint256 public constant REPLAY_PCT = 25;
    /// @notice An update along another's line at any scale is a replay too: <u, w> > 0 and
    ///         100 <u, w>^2 >= LINE_PCT |u|^2 |w|^2 (a copy shrunk to 0.6 lies 0.44 away in REPLAY_PCT's measure, about
    ///         where its author's next update lies as honest norms shrink). Honest updates of different trainers
    ///         reached a squared cosine of 0.81 when each trainer's data is nearly one class (scripts/replays.py --alpha).
    uint256 public constant LINE_PCT = 90;
    /// @notice A source is an update of one of the REPLAY_LOOKBACK rounds before the challenged one. The aggregator
    ///         node searches the same rounds before it proves, so no challenge can come after its own and change the
    ///         round it proved.
    uint256 public constant REPLAY_LOOKBACK = 4;

    /// @notice The marketplace whose rounds this contract judges (its creator).
    FedMarket public immutable MARKET;
    /// @notice The contract that recomputes the views' commitments and their distance (PROTOCOL.md §2).
    IPoseidonCommit public immutable POSEIDON;

    /// @notice Round `round` of project `pid` is not open for challenges: only the open round, before its post.
    error ChallengeClosed(uint256 pid, uint256 round);
    /// @notice A source round must be one of the REPLAY_LOOKBACK rounds before the challenged round `round`.
    error SourceRoundOutOfRange(uint256 round, uint256 sourceRound);
    /// @notice A replay challenge must name another trainer's update as the source.
    error SelfReplay(uint256 slot);
    /// @notice Slot `slot` holds no revealed update in round `round` (none, a seal only, or taken out as a replay).
    error NoRevealedUpdate(uint256 pid, uint256 round, uint256 slot);
    /// @notice The published view does not hash to the commitment of slot `slot` in round `round`.
    error ViewMismatch(uint256 pid, uint256 round, uint256 slot);
    /// @notice The two updates lie neither within REPLAY_PCT nor along one line within LINE_PCT (`dist` = |u - w|^2,
    ///         `nsq` = |u|^2, `sourceNsq` = |w|^2).
    error NotAReplay(uint256 pid, uint256 round, uint256 slot, uint256 dist, uint256 nsq, uint256 sourceNsq);

    /// @param poseidon The marketplace's PoseidonCommit
    constructor(IPoseidonCommit poseidon) {
        MARKET = FedMarket(msg.sender);
        POSEIDON = poseidon;
    }

    /// @notice Take the update in `slot` out of the open round `round` as a replay of the update in `sourceSlot` of
    ///         the earlier round `sourceRound` (anyone, before the round's post): FedMarket emits UpdateReplayed.
    /// @param pid Project id
    /// @param round The open round, not yet posted
    /// @param slot The challenged slot
    /// @param sourceRound An earlier round, round - REPLAY_LOOKBACK..round - 1
    /// @param sourceSlot Another slot, whose update of round `sourceRound` is the source
    /// @param elements The packed proof view of `slot` in `round` (PROTOCOL.md §2)
    /// @param sourceElements The packed proof view of `sourceSlot` in `sourceRound`
    function challengeReplay(
        uint256 pid,
        uint256 round,
        uint256 slot,
        uint256 sourceRound,
        uint256 sourceSlot,
        uint256[] calldata elements,
        uint256[] calldata sourceElements
    ) external {
        (FedMarket.ProjectParams memory params,, FedMarket.Progress memory pr,,) = MARKET.project(pid);
        if (pr.state != FedMarket.State.Training || !pr.roundOpen || round != pr.round || pr.disputing) {
            revert ChallengeClosed(pid, round);
        }
        if (slot == sourceSlot) revert SelfReplay(slot);
        uint256 c = _revealed(pid, round, slot);
        if (sourceRound >= round || sourceRound + REPLAY_LOOKBACK < round) revert SourceRoundOutOfRange(round, sourceRound);
        uint256 source = _revealed(pid, sourceRound, sourceSlot);
        (uint256 commit, uint256 sourceCommit, uint256 dist, uint256 nu, uint256 nw) =
            POSEIDON.comparePacked(params.viewLen, params.quantBits, elements, sourceElements);
        if (commit != c) revert ViewMismatch(pid, round, slot);
        if (sourceCommit != source) revert ViewMismatch(pid, sourceRound, sourceSlot);
        if (!_near(dist, nu, nw)) revert NotAReplay(pid, round, slot, dist, nu, nw);
        MARKET.takeOutReplay(pid, round, slot, sourceRound, sourceSlot);
    }

    /// @dev Whether u lies near w, from |u - w|^2, |u|^2 and |w|^2 (aggregator.rules.replay.near): within REPLAY_PCT
    ///      of the smaller squared norm, or 2 <u, w> = |u|^2 + |w|^2 - |u - w|^2 > 0 with
    ///      100 (2 <u, w>)^2 >= 4 LINE_PCT |u|^2 |w|^2. The norms are below 2^96 (calldata bounds the lanes, each
    ///      below 2^62), so no product overflows.
    function _near(uint256 dist, uint256 nu, uint256 nw) private pure returns (bool) {
        if (100 * dist <= REPLAY_PCT * (nu < nw ? nu : nw)) return true;
        if (nu + nw <= dist) return false;
        uint256 twiceIp = nu + nw - dist;
        return 100 * twiceIp * twiceIp >= 4 * LINE_PCT * nu * nw;
    }

    /// @dev The revealed commitment of `slot` in `round` (FedMarket.roundState: 0 for none, a seal or a replay taken
    ///      out); NoRevealedUpdate when there is none. Round 0 has none.
    function _revealed(uint256 pid, uint256 round, uint256 slot) private view returns (uint256 c) {
        if (round != 0) {
            (,, uint256[] memory commitments) = MARKET.roundState(pid, round);
            if (slot < commitments.length) c = commitments[slot];
        }
        if (c == 0) revert NoRevealedUpdate(pid, round, slot);
    }
}
