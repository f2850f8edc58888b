// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {IRoundVerifier} from "./IRoundVerifier.sol";
import {IPoseidonCommit} from "./IPoseidonCommit.sol";
import {ReplayChallenge} from "./ReplayChallenge.sol";

/// @title FedMarket
/// @notice A federated-learning marketplace: owners escrow a reward budget, trainers stake and submit
///         committed model updates, a bonded aggregator posts each round's flags and contribution
///         scores with a zero-knowledge proof, and the contract pays by the rules of
///         docs/PROTOCOL.md §5-§7. Many projects live in one contract; every balance is pulled.
///         No claim the proof does not cover moves money: a posted round's budget belongs to its
///         accepted trainers whatever their scores, only a proven dishonest update (flag 1: a low
///         update) is slashed, a proven exclusion from the average (flag 3, a copy included) only goes
///         unpaid, a rejection the proof does not cover (flag 2) stays provisional until its
///         trainer could cure it on chain, and a missed deadline pays the aggregator's bond to the
///         trainers it harmed (PROTOCOL.md §5, §7, Trust model).
/// @dev Money is conserved per asset: the contract's balance of an asset equals the sum, over the
///      projects in that asset, of `budgetLeft + ownerRefund + bondHeld` plus every participant's
///      `stake + rewards`. Nothing moves one party's credited balance to another.
contract FedMarket is ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    /// @notice Lifecycle of a project; `None` marks an id that was never created.
    enum State {
        None,
        Created,
        Open,
        Training,
        Finished,
        Cancelled
    }

    /// @notice A trainer's standing in a project.
    enum Status {
        None,
        Active,
        Ejected
    }

    /// @notice Why a project was cancelled.
    enum CancelReason {
        OwnerCancelled,
        NotEnoughTrainers,
        AggregatorTimeout
    }

    /// @notice What the owner fixes when creating a project (stored packed; never changes).
    /// @param token ERC-20 used for budget, stakes and bond; address(0) for ETH
    /// @param rounds Number of training rounds R (1..MAX_ROUNDS)
    /// @param minTrainers Trainers needed to start (>= 1)
    /// @param maxTrainers Most trainers that may join (<= 256 and <= the verifier's slots)
    /// @param krumF Multi-Krum's assumed number of attackers f (PROTOCOL.md §3); rule 0 needs 2f < maxTrainers
    /// @param krumM Multi-Krum's selection size m (0: n - f); rule 0 needs m <= maxTrainers - f
    /// @param rule Outlier rule: 0 Multi-Krum, 1 FLTrust-cosine
    /// @param quantBits Quantization bit width (PROTOCOL.md §1), 2..32
    /// @param aggregator The bonded aggregator's address
    /// @param openWindow Seconds the aggregator has to open a round after the previous transition
    ///        (MIN_WINDOW..MAX_WINDOW, as the two windows below)
    /// @param submitWindow Seconds trainers have to commit once a round is open, and again to reveal
    ///        (PROTOCOL.md §3: the reveals open when the commits close)
    /// @param postWindow Seconds the aggregator has to post after the reveal window closes
    /// @param verifier Round-proof verifier (IRoundVerifier)
    /// @param joinDeadline Absolute timestamp after which nobody may join (at most MAX_JOIN_DELAY ahead)
    /// @param tauPct Multi-Krum's outlier threshold in percent (0: plain Multi-Krum, which rule 0
    ///        allows only with slashBps = 0: it flags f honest trainers every round)
    /// @param slashBps Share of a slashed trainer's stake (flag 1) taken, in basis points (<= 10000)
    /// @param stake Exact stake each trainer deposits (> 0)
    /// @param aggregatorBond Exact bond the aggregator deposits (> 0; budget + bond <= MAX_AMOUNT)
    /// @param quantScaleLog2 Quantization scale exponent (PROTOCOL.md §1)
    /// @param viewOffset First flat parameter index of the proof view (PROTOCOL.md §2)
    /// @param viewLen Length of the proof view (>= 1)
    /// @param specHash Hash of the task and model specification (the manifest, PROTOCOL.md §8: it
    ///        fixes the validation set's digest)
    /// @param dupPct The copy screen's threshold in percent (PROTOCOL.md §3; 0: off)
    /// @param floorPct The norm floor in percent (PROTOCOL.md §3; 0: off)
    /// @param modelCommit Commitment to g(0)'s proof view in fixed point (PROTOCOL.md §3, §6): the
    ///        first round's proof starts from it
    struct ProjectParams {
        address token;
        uint16 rounds;
        uint16 minTrainers;
        uint16 maxTrainers;
        uint16 krumF;
        uint16 krumM;
        uint8 rule;
        uint8 quantBits;
        address aggregator;
        uint32 openWindow;
        uint32 submitWindow;
        uint32 postWindow;
        IRoundVerifier verifier;
        uint64 joinDeadline;
        uint16 tauPct;
        uint16 slashBps;
        uint128 stake;
        uint128 aggregatorBond;
        uint8 quantScaleLog2;
        uint64 viewOffset;
        uint64 viewLen;
        bytes32 specHash;
        uint16 dupPct;
        uint16 floorPct;
        uint256 modelCommit;
    }

    /// @notice The mutable lifecycle fields of a project, packed in one storage slot.
    /// @param state Current lifecycle state
    /// @param round Latest round opened (0 before the first)
    /// @param roundOpen True between openRound and postRound of `round`
    /// @param nTrainers Trainers joined (slots 0..nTrainers-1)
    /// @param nActive Joined trainers not ejected (only a slashed trainer, flag 1, is ejected)
    /// @param verifierSlots N = verifier.maxTrainers(), read once at creation
    /// @param deadline Training: the openRound deadline while no round is open, else the end of the
    ///        commit window
    /// @param revealWindow Seconds the open round's reveals run past `deadline` (its submitWindow):
    ///        they close at deadline + revealWindow
    /// @param postDeadline The postRound deadline of the open round; while `disputing`, the end of the
    ///        dispute window (the re-post deadline is one postWindow later)
    /// @param disputing True while the open round's post rejected a slot (flag 2) and awaits its
    ///        dispute window (PROTOCOL.md §5): nothing of it is settled yet
    struct Progress {
        State state;
        uint16 round;
        bool roundOpen;
        uint16 nTrainers;
        uint16 nActive;
        uint16 verifierSlots;
        uint64 deadline;
        uint64 postDeadline;
        bool disputing;
        uint32 revealWindow;
    }

    /// @notice A project's money, in its asset.
    /// @param budget Total reward budget escrowed
    /// @param budgetLeft Budget not yet spent: a posted round spends its budget only if it has an
    ///        accepted trainer, else the budget stays here for the later rounds
    /// @param ownerRefund What the owner may withdraw now
    /// @param bondHeld The aggregator's bond while held (0 once withdrawn, or forfeited on a timeout)
    struct Funds {
        uint128 budget;
        uint128 budgetLeft;
        uint128 ownerRefund;
        uint128 bondHeld;
    }

    /// @notice One trainer in one project, packed in one storage slot.
    /// @dev `seq` lives here rather than in per-round storage because commitUpdate already reads
    ///      this slot (it is warm and nonzero): recording the rank costs one warm nonzero write
    ///      (2.9k gas, or 100 when the rank repeats), openRound pays nothing for it, and the slot
    ///      never needs pre-writing. The price is history: a submission in a later round overwrites
    ///      the rank, so only the latest round's ranks are readable on chain (see submissionOrder);
    ///      every rank is also in its UpdateCommitted and UpdateSubmitted events.
    /// @param stake Stake still held for the trainer
    /// @param rewards Credited, unclaimed rewards
    /// @param status None, Active or Ejected
    /// @param slot The trainer's join index
    /// @param seq 0-based rank of the trainer's latest submission in its round (PROTOCOL.md §6);
    ///        meaningful only for a round in which the trainer has a commitment
    struct Participant {
        uint112 stake;
        uint112 rewards;
        Status status;
        uint8 slot;
        uint8 seq;
    }

    /// @notice Per-round data fixed when the round opens.
    /// @dev `pending` is the complement of a submitted-slots bitmap: openRound writes it nonzero
    ///      (the aggregator pays the fresh slot), so each submission is a cheap nonzero write that
    ///      clears one bit, and "every active trainer submitted" is `pending == 0`.
    /// @param vCommit Commitment to the round's validation direction and split step (PROTOCOL §4)
    /// @param pending Bitmap of active slots that have not submitted yet
    struct Round {
        uint256 vCommit;
        uint256 pending;
    }

    /// @notice A posted round whose flag-2 rejections are open to cures (PROTOCOL.md §5).
    /// @param claim keccak256(abi.encode(flags, scores)) of the provisional post
    /// @param rejected Bitmap of the slots rejected (flag 2) and not cured
    /// @param cured Bitmap of the slots whose trainers cured the rejection
    struct Dispute {
        bytes32 claim;
        uint256 rejected;
        uint256 cured;
    }

    /// @notice Everything stored per project: parameters, owner, lifecycle, money, ejected slots, the
    ///         commitment to the latest settled model's proof view (the next round's proof starts
    ///         from it) and the one to the model settled before it (the start of the previous proven
    ///         step, which the scores' novelty is measured against, PROTOCOL.md §3).
    struct Project {
        ProjectParams params;
        address owner;
        Progress progress;
        Funds funds;
        uint256 ejectedMask;
        uint256 model;
        uint256 modelPrev;
    }

    /// @notice BN254 scalar field modulus; commitments are field elements.
    uint256 public constant FIELD_MODULUS =
        21888242871839275222246405745257275088548364400416034343698204186575808495617;
    /// @notice Top bit of a commitment slot that holds a sealed commit not yet revealed. Real
    ///         commitments are below FIELD_MODULUS < 2^254, so a marked value is never one.
    uint256 public constant SEALED_MARK = 1 << 255;
    /// @notice Largest budget, stake or bond in a project (fits the packed participant slot).
    uint256 public constant MAX_AMOUNT = type(uint112).max;
    /// @notice Most trainer slots a verifier may have: scores stay unique while 2^64 D(n) < p, that
    ///         is for n <= 126 accepted updates (PROTOCOL.md §3, docs/ZK.md).
    uint256 public constant MAX_VERIFIER_SLOTS = 126;
    /// @notice Basis-point denominator of `slashBps`.
    uint256 public constant BPS = 10_000;
    /// @notice Most rounds a project may have.
    uint256 public constant MAX_ROUNDS = 1_000;
    /// @notice Shortest open, submit or post window: time for a transaction to land on a busy chain.
    uint256 public constant MIN_WINDOW = 60;
    /// @notice Longest open, submit or post window: how long a stalled round can lock the stakes.
    uint256 public constant MAX_WINDOW = 30 days;
    /// @notice Furthest a join deadline may lie after the project's creation.
    uint256 public constant MAX_JOIN_DELAY = 365 days;
    /// @notice A posted round with excluded slots (flag 3) that accepts at most max(1, N / FEW_ACCEPTED_DIVISOR) of
    ///         its N accepted and excluded slots pays them all equally (PROTOCOL §7). The direction v is the owner's
    ///         word (§4): aimed so that every honest update is against it and only an own account's along it, it
    ///         would otherwise hand that account the round. With the validation gradient the rule accepts more
    ///         (at least 3 of 10 in every round of the eval's runs, scripts/few_accepted.py).
    uint256 public constant FEW_ACCEPTED_DIVISOR = 4;

    /// @notice The contract that recomputes a published view's commitment: cures and replay challenges (PROTOCOL.md
    ///         §2, §3, §5).
    IPoseidonCommit public immutable POSEIDON;
    /// @notice The contract that judges replay challenges (PROTOCOL.md §3), created with this one; only it may take an
    ///         update out of a round.
    ReplayChallenge public immutable REPLAYS;

    /// @notice Number of projects created; ids run from 1 to projectCount.
    uint256 public projectCount;

    /// @dev Projects by id.
    mapping(uint256 pid => Project) private _projects;
    /// @dev One packed slot per (project, trainer): later updates are warm nonzero writes.
    mapping(uint256 pid => mapping(address trainer => Participant)) private _participants;
    /// @dev Trainer address by join index.
    mapping(uint256 pid => mapping(uint256 slot => address)) private _trainerAt;
    /// @dev Validation commitment and pending-slot bitmap per round.
    mapping(uint256 pid => mapping(uint256 round => Round)) private _rounds;
    /// @dev Update commitment per (round, slot); 0 means no submission.
    mapping(uint256 pid => mapping(uint256 round => mapping(uint256 slot => uint256))) private _commitments;
    /// @dev The dispute of a round whose post rejected a slot (flag 2).
    mapping(uint256 pid => mapping(uint256 round => Dispute)) private _disputes;

    /// @notice A project was created; the CIDs (binary CIDv1) are only recorded here.
    event ProjectCreated(
        uint256 indexed pid,
        address indexed owner,
        address indexed aggregator,
        ProjectParams params,
        uint256 budget,
        bytes taskCid,
        bytes modelCid
    );
    /// @notice The owner added `amount` to the budget, now `budget`.
    event Funded(uint256 indexed pid, uint256 amount, uint256 budget);
    /// @notice The aggregator deposited its bond; the project is Open.
    event AggregatorBonded(uint256 indexed pid, address indexed aggregator, uint256 amount);
    /// @notice A trainer joined with its stake and got slot `slot`.
    event TrainerJoined(uint256 indexed pid, address indexed trainer, uint256 slot, uint256 stake);
    /// @notice Training started with `nTrainers`; round 1 must open by `openDeadline`.
    event TrainingStarted(uint256 indexed pid, uint256 nTrainers, uint256 openDeadline);
    /// @notice Round `round` opened with the validation-direction commitment `vCommit`; its commits
    ///         close at `windowEnd`, its reveals one submitWindow later, its post at `postDeadline`.
    event RoundOpened(
        uint256 indexed pid, uint256 indexed round, uint256 vCommit, uint256 windowEnd, uint256 postDeadline
    );
    /// @notice A trainer sealed its update of round `round` (commitUpdate); it was the round's
    ///         submission number `seq` (0-based, PROTOCOL.md §6). The cid and commitment stay
    ///         hidden until UpdateSubmitted reveals them.
    event UpdateCommitted(
        uint256 indexed pid, uint256 indexed round, address indexed trainer, uint256 slot, uint256 seq
    );
    /// @notice A trainer declined round `round` (declineRound): its slot is absent from the round.
    event RoundDeclined(uint256 indexed pid, uint256 indexed round, address indexed trainer, uint256 slot);
    /// @notice A trainer revealed its sealed update of round `round` (revealUpdate); `seq` is the
    ///         rank its commit took (0-based, PROTOCOL.md §6).
    event UpdateSubmitted(
        uint256 indexed pid,
        uint256 indexed round,
        address indexed trainer,
        uint256 slot,
        bytes cid,
        uint256 commitment,
        uint256 seq
    );
    /// @notice The aggregator posted round `round` with a proof that verified.
    event RoundPosted(
        uint256 indexed pid,
        uint256 indexed round,
        bytes modelCid,
        bytes vCid,
        uint256 modelCommit,
        uint8[] flags,
        int64[] scores
    );
    /// @notice The post of round `round` rejected the slots in the bitmap `rejected` (flag 2, the
    ///         aggregator's unproven claim): nothing is settled until `disputeEnd`, by which their
    ///         trainers may cure (PROTOCOL.md §5).
    event RoundDisputable(uint256 indexed pid, uint256 indexed round, uint256 rejected, uint256 disputeEnd);
    /// @notice The trainer in `slot` answered its rejection: the proof view it published hashes to its
    ///         commitment. The aggregator must re-post the round with it included (PROTOCOL.md §5).
    event UpdateCured(uint256 indexed pid, uint256 indexed round, address indexed trainer, uint256 slot);
    /// @notice The update of the trainer in `slot` replays the update of the trainer in `sourceSlot` of round
    ///         `sourceRound` (PROTOCOL.md §3, ReplayChallenge): its commitment is cleared, so the round counts it as
    ///         absent (flag 0, score 0). The trainer is not paid for the round, keeps its whole stake and its slot.
    event UpdateReplayed(
        uint256 indexed pid,
        uint256 indexed round,
        address indexed trainer,
        uint256 slot,
        uint256 sourceRound,
        uint256 sourceSlot
    );
    /// @notice The disputable post of round `round` became final: nobody cured, and it was settled.
    event RoundFinalized(uint256 indexed pid, uint256 indexed round);
    /// @notice The aggregator rejected the update of the trainer in `slot` (flag 2, its claim, not
    ///         proven) and the trainer did not cure it: the trainer is not paid for the round and keeps
    ///         its stake and its slot.
    event UpdateRejected(uint256 indexed pid, uint256 indexed round, address indexed trainer, uint256 slot);
    /// @notice The proof showed the update of the trainer in `slot` is excluded from the average (flag 3:
    ///         by the direction test, or pushed out of Multi-Krum's selected set): the trainer is not
    ///         paid for the round, keeps its whole stake and its slot, and may submit in later rounds.
    event UpdateExcluded(uint256 indexed pid, uint256 indexed round, address indexed trainer, uint256 slot);
    /// @notice The proof showed the update of the trainer in `slot` is not an honest one (flag 1, always
    ///         `flag` = 1: a low update): it lost `amount` of its stake and was ejected.
    event TrainerSlashed(
        uint256 indexed pid, uint256 indexed round, address indexed trainer, uint256 slot, uint8 flag, uint256 amount
    );
    /// @notice The last round was posted.
    event ProjectFinished(uint256 indexed pid);
    /// @notice The project was cancelled.
    event ProjectCancelled(uint256 indexed pid, CancelReason reason);
    /// @notice The aggregator missed a deadline: `amount` of its bond was credited to the rewards of
    ///         `trainer`, one of those the timeout harmed (PROTOCOL.md §7).
    event BondCompensation(uint256 indexed pid, address indexed trainer, uint256 amount);
    /// @notice A trainer claimed its credited rewards.
    event Claimed(uint256 indexed pid, address indexed trainer, uint256 amount);
    /// @notice A trainer withdrew its stake.
    event StakeWithdrawn(uint256 indexed pid, address indexed trainer, uint256 amount);
    /// @notice The owner withdrew its refundable balance.
    event RefundWithdrawn(uint256 indexed pid, address indexed owner, uint256 amount);
    /// @notice The aggregator withdrew its bond.
    event BondWithdrawn(uint256 indexed pid, address indexed aggregator, uint256 amount);

    /// @notice No project has this id.
    error UnknownProject(uint256 pid);
    /// @notice The project is in state `current`; the call needs `expected`.
    error WrongState(uint256 pid, State current, State expected);
    /// @notice Funding is only possible while Created or Open.
    error FundingClosed(uint256 pid, State current);
    /// @notice Cancelling is only possible while Created or Open.
    error NotCancellable(uint256 pid, State current);
    /// @notice The stake stays locked until the project ends or the trainer is ejected.
    error StakeLocked(uint256 pid, State current);
    /// @notice The bond stays locked until the project is Finished or Cancelled.
    error BondLocked(uint256 pid, State current);
    /// @notice Only the project's owner may do this.
    error NotOwner(uint256 pid, address caller);
    /// @notice Only the project's aggregator may do this.
    error NotAggregator(uint256 pid, address caller);
    /// @notice The caller is not a trainer of the project.
    error NotTrainer(uint256 pid, address caller);
    /// @notice The trainer was ejected and may not submit.
    error TrainerEjected(uint256 pid, address trainer);
    /// @notice The address already joined this project.
    error AlreadyJoined(uint256 pid, address trainer);
    /// @notice The project already has its `maxTrainers`.
    error ProjectFull(uint256 pid, uint256 maxTrainers);
    /// @notice Starting needs `minTrainers`; only `joined` joined.
    error NotEnoughTrainers(uint256 pid, uint256 joined, uint256 minTrainers);
    /// @notice Enough trainers joined: only the owner may cancel, and anyone may start.
    error QuorumReached(uint256 pid, uint256 joined, uint256 minTrainers);
    /// @notice The trainer in `slot` already submitted in `round`, or declined it.
    error AlreadySubmitted(uint256 pid, uint256 round, uint256 slot);
    /// @notice The trainer in `slot` has no sealed commit to reveal in `round`.
    error NotCommitted(uint256 pid, uint256 round, uint256 slot);
    /// @notice The revealed cid, commitment and salt do not hash to the trainer's sealed commit.
    error SealMismatch(uint256 pid, uint256 round, uint256 slot);
    /// @notice The round's commit window (commitUpdate, declineRound) or reveal window (revealUpdate)
    ///         closed at `windowEnd`.
    error WindowClosed(uint256 pid, uint256 windowEnd, uint256 nowTs);
    /// @notice A trainer may still commit or reveal until `windowEnd`: the round cannot be posted yet.
    error WindowOpen(uint256 pid, uint256 windowEnd, uint256 nowTs);
    /// @notice Reveals are not open yet: an active slot may still commit until `commitEnd`.
    error CommitsOpen(uint256 pid, uint256 commitEnd, uint256 nowTs);
    /// @notice The deadline `deadline` has passed.
    error DeadlinePassed(uint256 pid, uint256 deadline, uint256 nowTs);
    /// @notice The deadline `deadline` has not passed yet.
    error DeadlineNotPassed(uint256 pid, uint256 deadline, uint256 nowTs);
    /// @notice The call names round `got`; the open (or readable) round is `expected`.
    error WrongRound(uint256 expected, uint256 got);
    /// @notice Submission ranks are kept only for the latest round `latest`; those of earlier
    ///         rounds are in their UpdateSubmitted events.
    error OrderNotKept(uint256 pid, uint256 round, uint256 latest);
    /// @notice No round is open (`round` is the latest one).
    error RoundNotOpen(uint256 pid, uint256 round);
    /// @notice Round `round` is already open.
    error RoundAlreadyOpen(uint256 pid, uint256 round);
    /// @notice The amount sent (or received) was `got`; `expected` was required.
    error WrongAmount(uint256 expected, uint256 got);
    /// @notice Adding zero is not allowed.
    error ZeroAmount();
    /// @notice `amount` exceeds the largest amount `max` a project can hold.
    error AmountTooLarge(uint256 amount, uint256 max);
    /// @notice The project parameter `name` is invalid.
    error InvalidParameter(string name);
    /// @notice The verifier's circuit was built with `verifierValue` for `setting`, the project says
    ///         `projectValue` (for "maxTrainers": the verifier has fewer slots than the project's trainers).
    error VerifierSettingsMismatch(string setting, uint256 projectValue, uint256 verifierValue);
    /// @notice The verifier has more slots than scores stay unique for (MAX_VERIFIER_SLOTS).
    error TooManySlots(uint256 slots, uint256 maxSlots);
    /// @notice The project parameter `name` is `value`; it must lie in [`min`, `max`].
    error OutOfBounds(string name, uint256 value, uint256 min, uint256 max);
    /// @notice A zero stake would let anyone fill every trainer slot for free.
    error ZeroStake();
    /// @notice A zero bond would let the aggregator stall the project at no cost.
    error ZeroBond();
    /// @notice Plain Multi-Krum (tauPct = 0) flags f honest trainers every round: it may not slash.
    error SlashingWithoutThreshold(uint256 slashBps);
    /// @notice Multi-Krum needs an honest majority: 2 krumF < maxTrainers and krumM <= maxTrainers - krumF.
    error NoHonestMajority(uint256 maxTrainers, uint256 krumF, uint256 krumM);
    /// @notice A commitment must be a nonzero BN254 field element.
    error InvalidCommitment(uint256 commitment);
    /// @notice A CID must not be empty.
    error EmptyCid();
    /// @notice An array has `got` entries; it needs `expected` (one per joined trainer).
    error LengthMismatch(uint256 expected, uint256 got);
    /// @notice A flag must be 0, 1, 2 or 3.
    error InvalidFlag(uint256 slot, uint256 flag);
    /// @notice A slot without a submission must have flag 0 and score 0.
    error AbsentSlotNotZero(uint256 slot);
    /// @notice A flagged slot must have score 0.
    error FlaggedSlotScored(uint256 slot, int64 score);
    /// @notice The bond `bond` is below one round's budget `roundBudget`: a missed post could not make
    ///         the round's submitters whole (PROTOCOL.md §7).
    error BondBelowRoundBudget(uint256 bond, uint256 roundBudget);
    /// @notice Round `round` has no disputable post (no flag 2, or not posted yet).
    error NoDispute(uint256 pid, uint256 round);
    /// @notice The trainer in `slot` was not rejected (flag 2) in round `round`, or already cured.
    error NotRejected(uint256 pid, uint256 round, uint256 slot);
    /// @notice The published view does not hash to the commitment of the trainer in `slot`.
    error CureMismatch(uint256 pid, uint256 round, uint256 slot);
    /// @notice Only REPLAYS (the ReplayChallenge this contract created) takes replays out of a round.
    error NotReplayJudge(address caller);
    /// @notice The dispute window is open until `disputeEnd`.
    error DisputeOpen(uint256 pid, uint256 disputeEnd, uint256 nowTs);
    /// @notice A trainer cured in round `round`: only the aggregator's re-post can settle it.
    error CureOutstanding(uint256 pid, uint256 round);
    /// @notice Nobody cured in round `round`: its post is final, settle it with finalizeRound.
    error NothingCured(uint256 pid, uint256 round);
    /// @notice The flags and scores are not those of round `round`'s disputable post.
    error ClaimMismatch(uint256 pid, uint256 round);
    /// @notice A re-post may reject (flag 2) only slots rejected before and not cured; `slot` is not one.
    error NewRejection(uint256 pid, uint256 round, uint256 slot);
    /// @notice The verifier rejected the round's proof.
    error InvalidProof(uint256 pid, uint256 round);
    /// @notice The caller has nothing to withdraw here.
    error NothingToWithdraw();
    /// @notice Sending `amount` wei to `to` failed.
    error TransferFailed(address to, uint256 amount);

    /// @param poseidon The deployed PoseidonCommit that cures are checked with
    constructor(IPoseidonCommit poseidon) {
        if (address(poseidon).code.length == 0) revert InvalidParameter("poseidon");
        POSEIDON = poseidon;
        REPLAYS = new ReplayChallenge(poseidon);
    }

    // ----------------------------------------------------------------------------------------
    // Setup: create, fund, bond, join, start, cancel
    // ----------------------------------------------------------------------------------------

    /// @notice Create a project and escrow its budget (ETH: send exactly `budget`; ERC-20: approve it).
    /// @param params The project's parameters (see ProjectParams)
    /// @param budget The reward budget escrowed now (more can be added with fund)
    /// @param taskCid Binary CIDv1 of the task description (emitted only)
    /// @param modelCid Binary CIDv1 of the initial model g(0) (emitted only)
    /// @return pid The new project's id
    function createProject(
        ProjectParams calldata params,
        uint256 budget,
        bytes calldata taskCid,
        bytes calldata modelCid
    ) external payable nonReentrant returns (uint256 pid) {
        uint16 slots = _checkParams(params);
        if (budget > MAX_AMOUNT) revert AmountTooLarge(budget, MAX_AMOUNT);
        // A trainer's rewards (its budget shares plus a share of a forfeited bond) fit in uint112.
        uint256 held = budget + params.aggregatorBond;
        if (held > MAX_AMOUNT) revert AmountTooLarge(held, MAX_AMOUNT);
        pid = ++projectCount;
        Project storage p = _projects[pid];
        p.params = params;
        p.owner = msg.sender;
        p.progress = Progress(State.Created, 0, false, 0, 0, slots, 0, 0, false, 0);
        p.model = params.modelCommit;
        p.modelPrev = params.modelCommit; // round 1's previous step M(0) - M(-1) is zero
        p.funds = Funds(uint128(budget), uint128(budget), 0, 0);
        emit ProjectCreated(pid, msg.sender, params.aggregator, params, budget, taskCid, modelCid);
        _pull(params.token, budget);
    }

    /// @notice Add `amount` to the budget of a Created or Open project (owner only).
    /// @param pid Project id
    /// @param amount Amount added (ETH: send exactly this)
    function fund(uint256 pid, uint256 amount) external payable nonReentrant {
        Project storage p = _projects[pid];
        State s = _existing(p, pid);
        if (s != State.Created && s != State.Open) revert FundingClosed(pid, s);
        if (msg.sender != p.owner) revert NotOwner(pid, msg.sender);
        if (amount == 0) revert ZeroAmount();
        uint256 budget = uint256(p.funds.budget) + amount;
        uint256 held = budget + p.params.aggregatorBond;
        if (held > MAX_AMOUNT) revert AmountTooLarge(held, MAX_AMOUNT);
        p.funds.budget = uint128(budget);
        p.funds.budgetLeft += uint128(amount);
        emit Funded(pid, amount, budget);
        _pull(p.params.token, amount);
    }

    /// @notice The aggregator deposits its exact bond; the project opens for trainers.
    /// @param pid Project id
    function bond(uint256 pid) external payable nonReentrant {
        Project storage p = _projects[pid];
        _expect(p, pid, State.Created);
        if (msg.sender != p.params.aggregator) revert NotAggregator(pid, msg.sender);
        if (block.timestamp > p.params.joinDeadline) {
            revert DeadlinePassed(pid, p.params.joinDeadline, block.timestamp);
        }
        uint256 amount = p.params.aggregatorBond;
        p.progress.state = State.Open;
        p.funds.bondHeld = uint128(amount);
        emit AggregatorBonded(pid, msg.sender, amount);
        _pull(p.params.token, amount);
    }

    /// @notice Join an Open project with the exact stake; the join index is the trainer's slot.
    /// @param pid Project id
    function join(uint256 pid) external payable nonReentrant {
        Project storage p = _projects[pid];
        Progress memory pr = p.progress;
        if (pr.state != State.Open) _revertState(pid, pr.state, State.Open);
        if (block.timestamp > p.params.joinDeadline) {
            revert DeadlinePassed(pid, p.params.joinDeadline, block.timestamp);
        }
        if (pr.nTrainers >= p.params.maxTrainers) revert ProjectFull(pid, p.params.maxTrainers);
        Participant storage pt = _participants[pid][msg.sender];
        if (pt.status != Status.None) revert AlreadyJoined(pid, msg.sender);
        uint256 stake = p.params.stake;
        uint256 slot = pr.nTrainers;
        _participants[pid][msg.sender] = Participant(uint112(stake), 0, Status.Active, uint8(slot), 0);
        _trainerAt[pid][slot] = msg.sender;
        p.progress.nTrainers = pr.nTrainers + 1;
        p.progress.nActive = pr.nActive + 1;
        emit TrainerJoined(pid, msg.sender, slot, stake);
        _pull(p.params.token, stake);
    }

    /// @notice Start training: the owner once `minTrainers` joined, anyone after the join deadline.
    ///         The budget is final now; the bond must cover one round's budget (PROTOCOL.md §7).
    /// @param pid Project id
    function start(uint256 pid) external nonReentrant {
        Project storage p = _projects[pid];
        _expect(p, pid, State.Open);
        if (msg.sender != p.owner && block.timestamp <= p.params.joinDeadline) {
            revert DeadlineNotPassed(pid, p.params.joinDeadline, block.timestamp);
        }
        uint256 joined = p.progress.nTrainers;
        if (joined < p.params.minTrainers) revert NotEnoughTrainers(pid, joined, p.params.minTrainers);
        uint256 roundBudget = p.funds.budget / p.params.rounds;
        if (p.params.aggregatorBond < roundBudget) revert BondBelowRoundBudget(p.params.aggregatorBond, roundBudget);
        uint256 openDeadline = block.timestamp + p.params.openWindow;
        p.progress.state = State.Training;
        p.progress.deadline = uint64(openDeadline);
        emit TrainingStarted(pid, joined, openDeadline);
    }

    /// @notice Cancel a Created or Open project with full refunds: the owner at any time, anyone
    ///         after the join deadline if fewer than `minTrainers` joined.
    /// @param pid Project id
    function cancel(uint256 pid) external nonReentrant {
        Project storage p = _projects[pid];
        State s = _existing(p, pid);
        if (s != State.Created && s != State.Open) revert NotCancellable(pid, s);
        CancelReason reason = CancelReason.OwnerCancelled;
        if (msg.sender != p.owner) {
            if (block.timestamp <= p.params.joinDeadline) {
                revert DeadlineNotPassed(pid, p.params.joinDeadline, block.timestamp);
            }
            uint256 joined = p.progress.nTrainers;
            if (joined >= p.params.minTrainers) revert QuorumReached(pid, joined, p.params.minTrainers);
            reason = CancelReason.NotEnoughTrainers;
        }
        Funds memory f = p.funds;
        p.funds.ownerRefund = f.ownerRefund + f.budgetLeft;
        p.funds.budgetLeft = 0;
        p.progress.state = State.Cancelled;
        emit ProjectCancelled(pid, reason);
    }

    // ----------------------------------------------------------------------------------------
    // Rounds
    // ----------------------------------------------------------------------------------------

    /// @notice Open the next round with the commitment to its validation direction (aggregator only,
    ///         within `openWindow` of the previous transition).
    /// @param pid Project id
    /// @param vCommit Poseidon commitment to the quantized validation direction and split step (a field element)
    function openRound(uint256 pid, uint256 vCommit) external nonReentrant {
        Project storage p = _projects[pid];
        Progress memory pr = p.progress;
        if (pr.state != State.Training) _revertState(pid, pr.state, State.Training);
        if (msg.sender != p.params.aggregator) revert NotAggregator(pid, msg.sender);
        if (pr.roundOpen) revert RoundAlreadyOpen(pid, pr.round);
        if (block.timestamp > pr.deadline) revert DeadlinePassed(pid, pr.deadline, block.timestamp);
        if (vCommit == 0 || vCommit >= FIELD_MODULUS) revert InvalidCommitment(vCommit);
        uint256 round = pr.round + 1;
        uint32 window = p.params.submitWindow;
        uint256 windowEnd = block.timestamp + window;
        uint256 postDeadline = windowEnd + window + p.params.postWindow;
        _rounds[pid][round] = Round(vCommit, _lowMask(pr.nTrainers) & ~p.ejectedMask);
        pr.round = uint16(round);
        pr.roundOpen = true;
        pr.deadline = uint64(windowEnd);
        pr.postDeadline = uint64(postDeadline);
        pr.revealWindow = window;
        p.progress = pr;
        emit RoundOpened(pid, round, vCommit, windowEnd, postDeadline);
    }

    /// @notice Seal this round's update (PROTOCOL.md §3): once per trainer per round, inside the
    ///         window. The submission's rank in the round (§6) is the rank of this commit, so a
    ///         copier who waits for the reveal to learn the cid always ranks after its victim.
    /// @dev The rank is the number of active slots that already committed. The active slots are
    ///      fixed while a round is open (joins end at start, ejections happen only in postRound),
    ///      openRound wrote exactly them into `pending`, and `nActive` counts them (an ejected slot
    ///      had to submit, so it was active and is counted off once). Hence
    ///      rank = nActive - 1 - popcount(pending after clearing this slot's bit): no extra storage
    ///      read (nActive is in the progress slot already loaded) and no counter to write. The seal
    ///      is kept in the commitment slot with SEALED_MARK set, so revealUpdate's overwrite is a
    ///      cheap nonzero write and no extra storage is needed.
    /// @param pid Project id
    /// @param round The open round
    /// @param seal keccak256(abi.encode(chainid, this, pid, round, trainer, keccak256(cid),
    ///        commitment, salt)), see revealUpdate
    function commitUpdate(uint256 pid, uint256 round, bytes32 seal) external {
        Progress memory pr = _inWindow(pid, round);
        Participant storage record = _participants[pid][msg.sender];
        (uint256 slot, uint256 pending) = _takeSlot(pid, round, record);
        _commitments[pid][round][slot] = SEALED_MARK | (uint256(seal) >> 2);
        uint256 seq = uint256(pr.nActive) - 1 - _popcount(pending);
        record.seq = uint8(seq);
        emit UpdateCommitted(pid, round, msg.sender, slot, seq);
    }

    /// @notice Decline this round instead of submitting, inside its window (PROTOCOL.md §4: the trainer node does
    ///         when the committed v is not the recomputed one, or when its update is against v). The slot is
    ///         absent from the round (flag 0, score 0, no stake moved, no bond compensation) and no longer
    ///         pending, so the round can be posted before its deadline once every other slot has submitted.
    /// @param pid Project id
    /// @param round The open round
    function declineRound(uint256 pid, uint256 round) external {
        _inWindow(pid, round);
        (uint256 slot,) = _takeSlot(pid, round, _participants[pid][msg.sender]);
        emit RoundDeclined(pid, round, msg.sender, slot);
    }

    /// @notice Reveal the update sealed by commitUpdate, once the round's commits are closed: its cid
    ///         and commitment become public and the slot counts as submitted (PROTOCOL.md §3). The
    ///         reveals open when every active slot has committed or declined, or when the commit
    ///         window ends, and run one submitWindow past its end; so no trainer reads another's
    ///         update of the round before its own commit (a free rider cannot submit the mean of
    ///         the round's reveals).
    /// @dev The seal binds chain, contract, project, round and trainer, so a reveal cannot be
    ///      replayed by another trainer or in another round. A slot sealed but never revealed
    ///      counts as absent (flag 0, score 0) in the public input.
    /// @param pid Project id
    /// @param round The open round
    /// @param cid Binary CIDv1 of the update blob
    /// @param commitment Poseidon commitment to the quantized proof view (PROTOCOL.md §2)
    /// @param salt The secret the seal was made with
    function revealUpdate(uint256 pid, uint256 round, bytes calldata cid, uint256 commitment, bytes32 salt)
        external
    {
        _inRevealWindow(pid, round);
        Participant memory pt = _participants[pid][msg.sender];
        if (pt.status == Status.None) revert NotTrainer(pid, msg.sender);
        if (commitment == 0 || commitment >= FIELD_MODULUS) revert InvalidCommitment(commitment);
        if (cid.length == 0) revert EmptyCid();
        mapping(uint256 => uint256) storage cs = _commitments[pid][round];
        uint256 stored = cs[pt.slot];
        if (stored == 0) revert NotCommitted(pid, round, pt.slot);
        if (stored & SEALED_MARK == 0) revert AlreadySubmitted(pid, round, pt.slot);
        bytes32 seal =
            keccak256(abi.encode(block.chainid, address(this), pid, round, msg.sender, keccak256(cid), commitment, salt));
        if (stored != SEALED_MARK | (uint256(seal) >> 2)) revert SealMismatch(pid, round, pt.slot);
        cs[pt.slot] = commitment;
        emit UpdateSubmitted(pid, round, msg.sender, pt.slot, cid, commitment, pt.seq);
    }

    /// @notice Post a round: flags and scores per slot, the new model, the revealed validation
    ///         direction and the proof. Verifies the proof against the public input of
    ///         PROTOCOL.md §6. Without a flag 2 the round settles at once by §7: its budget to the
    ///         accepted trainers, proven dishonest updates (flag 1) slashed and ejected, proven
    ///         exclusions (flag 3) unpaid and nothing more. A post with a flag 2 is provisional: its
    ///         dispute window runs one postWindow, in which rejected trainers may cure; nothing
    ///         settles before it ends (PROTOCOL.md §5). After a cure, the aggregator posts the round
    ///         again (same call) within the next postWindow, with every cured slot unrejected; that
    ///         re-post settles.
    /// @param pid Project id
    /// @param round The open round
    /// @param modelCid Binary CIDv1 of the new global model g(round)
    /// @param vCid Binary CIDv1 of the revealed validation direction
    /// @param modelCommit Commitment to g(round)'s proof view (PROTOCOL.md §3, §6), proven to be the
    ///        average of the accepted updates over the stored g(round - 1)'s
    /// @param flags Per slot: 0 accepted or absent, 1 slashed (proven low update), 2 invalid blob
    ///        (disputable, unpaid), 3 excluded (proven by the direction test or Multi-Krum; unpaid, not slashed)
    /// @param scores Per slot contribution score (0 for absent and flagged slots)
    /// @param proof Groth16 proof in EVM order
    function postRound(
        uint256 pid,
        uint256 round,
        bytes calldata modelCid,
        bytes calldata vCid,
        uint256 modelCommit,
        uint8[] calldata flags,
        int64[] calldata scores,
        uint256[8] calldata proof
    ) external nonReentrant {
        Project storage p = _projects[pid];
        (uint256 input, uint256 accepted, uint256 rejected, bool repost) =
            _checkPost(p, pid, round, modelCommit, flags, scores);
        if (!p.params.verifier.verifyRound(input, proof)) revert InvalidProof(pid, round);
        emit RoundPosted(pid, round, modelCid, vCid, modelCommit, flags, scores);
        if (repost) {
            uint256 fresh = rejected & ~_disputes[pid][round].rejected;
            if (fresh != 0) revert NewRejection(pid, round, _lowestBit(fresh));
            p.progress.disputing = false;
        } else if (rejected != 0) {
            uint256 disputeEnd = block.timestamp + p.params.postWindow;
            _disputes[pid][round] = Dispute(keccak256(abi.encode(modelCommit, flags, scores)), rejected, 0);
            p.progress.disputing = true;
            p.progress.postDeadline = uint64(disputeEnd);
            emit RoundDisputable(pid, round, rejected, disputeEnd);
            return;
        }
        p.modelPrev = p.model;
        p.model = modelCommit;
        _settle(p, pid, round, accepted, flags, scores);
    }

    /// @notice Answer a rejection (flag 2) of the caller's update in a disputable round, inside its
    ///         dispute window: publish the proof view as the packed field elements of PROTOCOL.md §2.
    ///         If they hash to the caller's commitment, the rejection is cured and the aggregator
    ///         must re-post the round with the update included, or miss its deadline and pay its
    ///         bond to the round's submitters (PROTOCOL.md §5, §7). The elements stay readable in
    ///         this transaction's calldata, so the update is available to the aggregator and to all.
    /// @param pid Project id
    /// @param round The open, disputable round
    /// @param elements The packed proof view (ceil(viewLen / (252 / quantBits)) elements)
    function cure(uint256 pid, uint256 round, uint256[] calldata elements) external nonReentrant {
        Project storage p = _projects[pid];
        Progress memory pr = p.progress;
        _checkOpenRound(pid, pr, round);
        if (!pr.disputing) revert NoDispute(pid, round);
        if (block.timestamp > pr.postDeadline) revert DeadlinePassed(pid, pr.postDeadline, block.timestamp);
        Participant memory pt = _participants[pid][msg.sender];
        if (pt.status == Status.None) revert NotTrainer(pid, msg.sender);
        Dispute storage d = _disputes[pid][round];
        uint256 bit = 1 << pt.slot;
        if (d.rejected & bit == 0) revert NotRejected(pid, round, pt.slot);
        uint256 c = POSEIDON.commitPacked(p.params.viewLen, p.params.quantBits, elements);
        if (c != _commitments[pid][round][pt.slot]) revert CureMismatch(pid, round, pt.slot);
        d.rejected &= ~bit;
        d.cured |= bit;
        emit UpdateCured(pid, round, msg.sender, pt.slot);
    }

    /// @notice Take a replayed update out of the open round (PROTOCOL.md §3): only REPLAYS calls it, once it has
    ///         checked the challenge (ReplayChallenge.challengeReplay). The slot's commitment is cleared, so the round
    ///         counts it as absent (flag 0, score 0): not paid, not slashed.
    /// @param pid Project id
    /// @param round The open round, not yet posted
    /// @param slot The replaying slot
    /// @param sourceRound The earlier round of the source
    /// @param sourceSlot The slot whose update of `sourceRound` it replays
    function takeOutReplay(uint256 pid, uint256 round, uint256 slot, uint256 sourceRound, uint256 sourceSlot) external {
        if (msg.sender != address(REPLAYS)) revert NotReplayJudge(msg.sender);
        delete _commitments[pid][round][slot];
        emit UpdateReplayed(pid, round, _trainerAt[pid][slot], slot, sourceRound, sourceSlot);
    }

    /// @notice Settle a disputable round whose window ended without a cure (anyone): the model
    ///         commitment, flags and scores must be those of its post (see the RoundPosted event).
    /// @param pid Project id
    /// @param round The open, disputable round
    /// @param modelCommit The post's model commitment
    /// @param flags The post's flags
    /// @param scores The post's scores
    function finalizeRound(
        uint256 pid,
        uint256 round,
        uint256 modelCommit,
        uint8[] calldata flags,
        int64[] calldata scores
    ) external nonReentrant {
        Project storage p = _projects[pid];
        Progress memory pr = p.progress;
        _checkOpenRound(pid, pr, round);
        if (!pr.disputing) revert NoDispute(pid, round);
        if (block.timestamp <= pr.postDeadline) revert DisputeOpen(pid, pr.postDeadline, block.timestamp);
        Dispute storage d = _disputes[pid][round];
        if (d.cured != 0) revert CureOutstanding(pid, round);
        if (keccak256(abi.encode(modelCommit, flags, scores)) != d.claim) revert ClaimMismatch(pid, round);
        uint256 accepted = 0;
        mapping(uint256 => uint256) storage cs = _commitments[pid][round];
        for (uint256 i; i < flags.length; ++i) {
            uint256 c = cs[i];
            if (flags[i] == 0 && c != 0 && c & SEALED_MARK == 0) accepted |= 1 << i;
        }
        p.progress.disputing = false;
        p.modelPrev = p.model;
        p.model = modelCommit;
        emit RoundFinalized(pid, round);
        _settle(p, pid, round, accepted, flags, scores);
    }

    /// @notice Cancel a Training project whose aggregator missed the openRound or postRound
    ///         deadline, or the re-post after a cure (anyone). A disputable round nobody cured must
    ///         be settled with finalizeRound instead. The bond pays those harmed first
    ///         (PROTOCOL.md §7): after a missed post or re-post, the open round's submitters; after a missed open, every active trainer; equal
    ///         shares credited to their rewards. The floor dust (or the whole bond, when nobody
    ///         qualifies) and the unspent budget, the open round's included, become the owner's
    ///         refund; credited rewards stay claimable and stakes become withdrawable.
    /// @param pid Project id
    function timeout(uint256 pid) external nonReentrant {
        Project storage p = _projects[pid];
        Progress memory pr = p.progress;
        if (pr.state != State.Training) _revertState(pid, pr.state, State.Training);
        uint256 deadline = pr.roundOpen ? pr.postDeadline : pr.deadline;
        if (pr.disputing) deadline += p.params.postWindow;
        if (block.timestamp <= deadline) revert DeadlineNotPassed(pid, deadline, block.timestamp);
        if (pr.disputing && _disputes[pid][pr.round].cured == 0) revert NothingCured(pid, pr.round);
        Funds memory f = p.funds;
        uint256 bondLeft = f.bondHeld - _compensate(p, pid, pr, f.bondHeld);
        p.funds = Funds(f.budget, 0, uint128(f.ownerRefund + f.budgetLeft + bondLeft), 0);
        pr.state = State.Cancelled;
        pr.disputing = false; // the dispute ended with the project; roundOpen still shows where it stalled
        p.progress = pr;
        emit ProjectCancelled(pid, CancelReason.AggregatorTimeout);
    }

    // ----------------------------------------------------------------------------------------
    // Pull payments
    // ----------------------------------------------------------------------------------------

    /// @notice Withdraw the caller's credited rewards (any time).
    /// @param pid Project id
    function claim(uint256 pid) external nonReentrant {
        Participant storage pt = _participants[pid][msg.sender];
        uint256 amount = pt.rewards;
        if (amount == 0) revert NothingToWithdraw();
        pt.rewards = 0;
        emit Claimed(pid, msg.sender, amount);
        _push(_projects[pid].params.token, msg.sender, amount);
    }

    /// @notice Withdraw the caller's stake once the project is Finished or Cancelled, or once ejected.
    /// @param pid Project id
    function withdrawStake(uint256 pid) external nonReentrant {
        Participant storage pt = _participants[pid][msg.sender];
        Status status = pt.status;
        if (status == Status.None) revert NotTrainer(pid, msg.sender);
        State s = _projects[pid].progress.state;
        if (status != Status.Ejected && s != State.Finished && s != State.Cancelled) revert StakeLocked(pid, s);
        uint256 amount = pt.stake;
        if (amount == 0) revert NothingToWithdraw();
        pt.stake = 0;
        emit StakeWithdrawn(pid, msg.sender, amount);
        _push(_projects[pid].params.token, msg.sender, amount);
    }

    /// @notice Withdraw the owner's refundable balance (dust, unspent budget, slashes; any time).
    /// @param pid Project id
    function withdrawRefund(uint256 pid) external nonReentrant {
        Project storage p = _projects[pid];
        _existing(p, pid);
        if (msg.sender != p.owner) revert NotOwner(pid, msg.sender);
        uint256 amount = p.funds.ownerRefund;
        if (amount == 0) revert NothingToWithdraw();
        p.funds.ownerRefund = 0;
        emit RefundWithdrawn(pid, msg.sender, amount);
        _push(p.params.token, msg.sender, amount);
    }

    /// @notice Withdraw the aggregator's bond once Finished, or Cancelled without a timeout.
    /// @param pid Project id
    function withdrawBond(uint256 pid) external nonReentrant {
        Project storage p = _projects[pid];
        State s = _existing(p, pid);
        if (msg.sender != p.params.aggregator) revert NotAggregator(pid, msg.sender);
        if (s != State.Finished && s != State.Cancelled) revert BondLocked(pid, s);
        uint256 amount = p.funds.bondHeld;
        if (amount == 0) revert NothingToWithdraw();
        p.funds.bondHeld = 0;
        emit BondWithdrawn(pid, msg.sender, amount);
        _push(p.params.token, msg.sender, amount);
    }

    // ----------------------------------------------------------------------------------------
    // Views
    // ----------------------------------------------------------------------------------------

    /// @notice Everything stored about a project.
    /// @param pid Project id
    /// @return params The creation parameters
    /// @return owner The owner
    /// @return progress Lifecycle fields
    /// @return funds Money fields
    /// @return ejectedMask Bitmap of ejected slots
    function project(uint256 pid)
        external
        view
        returns (ProjectParams memory params, address owner, Progress memory progress, Funds memory funds, uint256 ejectedMask)
    {
        Project storage p = _projects[pid];
        _existing(p, pid);
        return (p.params, p.owner, p.progress, p.funds, p.ejectedMask);
    }

    /// @notice A round's validation commitment, the bitmap of active slots still expected, and
    ///         the commitments of slots 0..nTrainers-1 (0 where absent, taken out as a replay, or, once the round
    ///         settled, flagged: a settled round keeps its accepted updates' only, the replay sources of §3).
    /// @param pid Project id
    /// @param round Round number, 1..current round
    /// @return vCommit The validation-direction commitment
    /// @return pending Bitmap of slots that were expected and did not submit (yet)
    /// @return commitments One commitment per joined slot
    function roundState(uint256 pid, uint256 round)
        external
        view
        returns (uint256 vCommit, uint256 pending, uint256[] memory commitments)
    {
        Progress memory pr = _readableRound(pid, round);
        Round storage rd = _rounds[pid][round];
        commitments = new uint256[](pr.nTrainers);
        for (uint256 i; i < pr.nTrainers; ++i) {
            uint256 c = _commitments[pid][round][i];
            if (c & SEALED_MARK == 0) commitments[i] = c;
        }
        return (rd.vCommit, rd.pending, commitments);
    }

    /// @notice Each joined slot's 0-based submission rank in `round` (PROTOCOL.md §6), 0 for a slot
    ///         without a commitment in that round (a settled round keeps its accepted slots' only).
    /// @dev Ranks are stored per participant (see Participant), so only the latest round opened is
    ///      readable, open or already posted; an earlier round reverts OrderNotKept (its ranks are
    ///      in the UpdateSubmitted events), a round never opened reverts WrongRound.
    /// @param pid Project id
    /// @param round The latest round opened
    /// @return seqs One rank per joined slot
    function submissionOrder(uint256 pid, uint256 round) external view returns (uint8[] memory seqs) {
        Progress memory pr = _latestRound(pid, round);
        mapping(uint256 => uint256) storage cs = _commitments[pid][round];
        seqs = new uint8[](pr.nTrainers);
        for (uint256 i; i < pr.nTrainers; ++i) {
            uint256 c = cs[i];
            if (c != 0 && c & SEALED_MARK == 0) seqs[i] = uint8(_seqOf(pid, i));
        }
    }

    /// @notice The dispute of round `round`: the claim of its disputable post, the slots rejected and
    ///         not cured, and the slots cured (all zero if its post rejected nobody).
    /// @param pid Project id
    /// @param round Round number, 1..current round
    /// @return The round's dispute record
    function dispute(uint256 pid, uint256 round) external view returns (Dispute memory) {
        _readableRound(pid, round);
        return _disputes[pid][round];
    }

    /// @notice A trainer's packed record (status None if it never joined).
    /// @param pid Project id
    /// @param trainer The trainer's address
    /// @return The participant record
    function participant(uint256 pid, address trainer) external view returns (Participant memory) {
        return _participants[pid][trainer];
    }

    /// @notice The trainer in `slot` (address(0) if the slot is empty).
    /// @param pid Project id
    /// @param slot Join index
    /// @return The trainer's address
    function trainerAt(uint256 pid, uint256 slot) external view returns (address) {
        return _trainerAt[pid][slot];
    }

    /// @notice The public input a proof of `round` must have for these flags and scores
    ///         (PROTOCOL.md §6); reverts like postRound on flags or scores it would refuse.
    /// @dev Only for the latest round opened (it needs the submission ranks, see submissionOrder);
    ///      an earlier round reverts OrderNotKept.
    /// @param pid Project id
    /// @param round The latest round opened
    /// @param modelCommit The new model's commitment
    /// @param flags Per slot flags
    /// @param scores Per slot scores
    /// @return The public input, sha256(data) >> 3
    function roundPublicInput(
        uint256 pid,
        uint256 round,
        uint256 modelCommit,
        uint8[] calldata flags,
        int64[] calldata scores
    ) external view returns (uint256) {
        Progress memory pr = _latestRound(pid, round);
        Project storage p = _projects[pid];
        uint256[3] memory models = [p.modelPrev, p.model, modelCommit];
        (uint256 input,,) = _publicInput(pid, round, _rounds[pid][round].vCommit, models, pr, flags, scores);
        return input;
    }

    /// @notice The commitment to the latest settled model's proof view: g(0)'s until round 1 settles
    ///         (PROTOCOL.md §3, §6).
    /// @param pid Project id
    /// @return The model commitment the next round's proof starts from
    function modelCommitment(uint256 pid) external view returns (uint256) {
        Project storage p = _projects[pid];
        _existing(p, pid);
        return p.model;
    }

    /// @notice The commitment to M(r-2)'s proof view, the start of the previous proven step
    ///         M(r-1) - M(r-2) that the scores' novelty is measured against (PROTOCOL.md §3, §6): the
    ///         model settled before the latest one; g(0)'s until round 2 settles.
    /// @param pid Project id
    /// @return The commitment the next round's proof takes as modelPrev
    function previousModelCommitment(uint256 pid) external view returns (uint256) {
        Project storage p = _projects[pid];
        _existing(p, pid);
        return p.modelPrev;
    }

    // ----------------------------------------------------------------------------------------
    // Internals
    // ----------------------------------------------------------------------------------------

    /// @dev Validate creation parameters; returns the verifier's slot count N.
    function _checkParams(ProjectParams calldata p) private view returns (uint16) {
        if (p.token != address(0) && p.token.code.length == 0) revert InvalidParameter("token");
        if (p.aggregator == address(0)) revert InvalidParameter("aggregator");
        _checkBounds("rounds", p.rounds, 1, MAX_ROUNDS);
        if (p.minTrainers == 0 || p.minTrainers > p.maxTrainers) revert InvalidParameter("minTrainers");
        if (p.maxTrainers > 256) revert InvalidParameter("maxTrainers");
        if (p.krumM > p.maxTrainers) revert InvalidParameter("krumM");
        if (p.rule > 1) revert InvalidParameter("rule");
        if (p.quantBits < 2 || p.quantBits > 32) revert InvalidParameter("quantBits");
        _checkBounds("openWindow", p.openWindow, MIN_WINDOW, MAX_WINDOW);
        _checkBounds("submitWindow", p.submitWindow, MIN_WINDOW, MAX_WINDOW);
        _checkBounds("postWindow", p.postWindow, MIN_WINDOW, MAX_WINDOW);
        _checkBounds("joinDeadline", p.joinDeadline, block.timestamp + 1, block.timestamp + MAX_JOIN_DELAY);
        if (p.slashBps > BPS) revert InvalidParameter("slashBps");
        if (p.viewLen == 0) revert InvalidParameter("viewLen");
        if (p.stake == 0) revert ZeroStake();
        if (p.aggregatorBond == 0) revert ZeroBond();
        if (p.stake > MAX_AMOUNT) revert AmountTooLarge(p.stake, MAX_AMOUNT);
        if (p.aggregatorBond > MAX_AMOUNT) revert AmountTooLarge(p.aggregatorBond, MAX_AMOUNT);
        if (p.rule == 0) {
            if (p.tauPct == 0 && p.slashBps != 0) revert SlashingWithoutThreshold(p.slashBps);
            uint256 f = p.krumF;
            if (2 * f >= p.maxTrainers || p.krumM > p.maxTrainers - f) {
                revert NoHonestMajority(p.maxTrainers, f, p.krumM);
            }
        }
        if (p.modelCommit == 0 || p.modelCommit >= FIELD_MODULUS) revert InvalidParameter("modelCommit");
        if (address(p.verifier).code.length == 0) revert InvalidParameter("verifier");
        uint256[9] memory s = p.verifier.settings();
        if (s[0] > MAX_VERIFIER_SLOTS) revert TooManySlots(s[0], MAX_VERIFIER_SLOTS);
        if (s[0] < p.maxTrainers) revert VerifierSettingsMismatch("maxTrainers", p.maxTrainers, s[0]);
        _sameSetting("viewLen", p.viewLen, s[1]);
        _sameSetting("quantBits", p.quantBits, s[2]);
        _sameSetting("krumF", p.krumF, s[3]);
        _sameSetting("krumM", p.krumM, s[4]);
        _sameSetting("tauPct", p.tauPct, s[5]);
        _sameSetting("dupPct", p.dupPct, s[6]);
        _sameSetting("floorPct", p.floorPct, s[7]);
        _sameSetting("rule", p.rule, s[8]);
        return uint16(s[0]);
    }

    /// @dev Revert VerifierSettingsMismatch unless the project's and the verifier's setting agree.
    function _sameSetting(string memory name, uint256 projectValue, uint256 verifierValue) private pure {
        if (projectValue != verifierValue) revert VerifierSettingsMismatch(name, projectValue, verifierValue);
    }

    /// @dev Revert OutOfBounds unless `lo <= value <= hi`.
    function _checkBounds(string memory name, uint256 value, uint256 lo, uint256 hi) private pure {
        if (value < lo || value > hi) revert OutOfBounds(name, value, lo, hi);
    }

    /// @dev The project's state; reverts UnknownProject for an id never created.
    function _existing(Project storage p, uint256 pid) private view returns (State s) {
        s = p.progress.state;
        if (s == State.None) revert UnknownProject(pid);
    }

    /// @dev Revert unless the project is in `expected`.
    function _expect(Project storage p, uint256 pid, State expected) private view {
        State s = p.progress.state;
        if (s != expected) _revertState(pid, s, expected);
    }

    /// @dev Revert with UnknownProject or WrongState.
    function _revertState(uint256 pid, State current, State expected) private pure {
        if (current == State.None) revert UnknownProject(pid);
        revert WrongState(pid, current, expected);
    }

    /// @dev Revert unless the project is Training with `round` open.
    function _checkOpenRound(uint256 pid, Progress memory pr, uint256 round) private pure {
        if (pr.state != State.Training) _revertState(pid, pr.state, State.Training);
        if (!pr.roundOpen) revert RoundNotOpen(pid, pr.round);
        if (round != pr.round) revert WrongRound(pr.round, round);
    }

    /// @dev The progress of a project whose round `round` is open and still in its commit window
    ///      (commitUpdate, declineRound).
    function _inWindow(uint256 pid, uint256 round) private view returns (Progress memory pr) {
        pr = _projects[pid].progress;
        _checkOpenRound(pid, pr, round);
        if (block.timestamp > pr.deadline) revert WindowClosed(pid, pr.deadline, block.timestamp);
    }

    /// @dev revealUpdate's phase check: round `round` is open, its commits are closed (no active slot
    ///      pending, or the commit window over) and its reveal window is not.
    function _inRevealWindow(uint256 pid, uint256 round) private view {
        Progress memory pr = _projects[pid].progress;
        _checkOpenRound(pid, pr, round);
        uint256 revealEnd = _revealEnd(pr);
        if (block.timestamp > revealEnd) revert WindowClosed(pid, revealEnd, block.timestamp);
        if (!_commitsClosed(pr, _rounds[pid][round])) revert CommitsOpen(pid, pr.deadline, block.timestamp);
    }

    /// @dev Whether the open round's commits are closed: no active slot is pending (each committed or declined),
    ///      or the commit window is over. Reveals and posts both wait for it (PROTOCOL §3).
    function _commitsClosed(Progress memory pr, Round storage rd) private view returns (bool) {
        return block.timestamp > pr.deadline || rd.pending == 0;
    }

    /// @dev The end of the open round's reveal window.
    function _revealEnd(Progress memory pr) private pure returns (uint256) {
        return uint256(pr.deadline) + pr.revealWindow;
    }

    /// @dev postRound's checks (state, round, caller, deadlines, flags and scores); returns the
    ///      round's public input, the bitmaps of its accepted and rejected (flag 2) slots (see
    ///      _publicInput), and whether this is the re-post of a disputable round with a cure: that
    ///      one comes after the dispute window, within one more postWindow.
    function _checkPost(
        Project storage p,
        uint256 pid,
        uint256 round,
        uint256 modelCommit,
        uint8[] calldata flags,
        int64[] calldata scores
    ) private view returns (uint256 input, uint256 accepted, uint256 rejected, bool repost) {
        Progress memory pr = p.progress;
        _checkOpenRound(pid, pr, round);
        if (msg.sender != p.params.aggregator) revert NotAggregator(pid, msg.sender);
        uint256 deadline = pr.postDeadline;
        if (pr.disputing) {
            if (block.timestamp <= deadline) revert DisputeOpen(pid, deadline, block.timestamp);
            if (_disputes[pid][round].cured == 0) revert NothingCured(pid, round);
            deadline += p.params.postWindow;
            repost = true;
        }
        if (block.timestamp > deadline) revert DeadlinePassed(pid, deadline, block.timestamp);
        Round storage rd = _rounds[pid][round];
        if (!_commitsClosed(pr, rd)) revert WindowOpen(pid, pr.deadline, block.timestamp);
        if (modelCommit == 0 || modelCommit >= FIELD_MODULUS) revert InvalidCommitment(modelCommit);
        uint256[3] memory models = [p.modelPrev, p.model, modelCommit];
        (input, accepted, rejected) = _publicInput(pid, round, rd.vCommit, models, pr, flags, scores);
    }

    /// @dev commitUpdate's and declineRound's claim on the caller's slot in an open round: the caller (`record`) is
    ///      an active trainer whose slot is still pending; clears its pending bit. Returns the slot and the
    ///      pending bitmap after clearing.
    function _takeSlot(uint256 pid, uint256 round, Participant storage record)
        private
        returns (uint256 slot, uint256 pending)
    {
        Participant memory pt = record;
        if (pt.status != Status.Active) {
            if (pt.status == Status.None) revert NotTrainer(pid, msg.sender);
            revert TrainerEjected(pid, msg.sender);
        }
        Round storage rd = _rounds[pid][round];
        slot = pt.slot;
        uint256 bit = 1 << slot;
        pending = rd.pending;
        if (pending & bit == 0) revert AlreadySubmitted(pid, round, slot);
        pending &= ~bit;
        rd.pending = pending;
    }

    /// @dev The progress of a project whose round `round` was opened (for the views).
    function _readableRound(uint256 pid, uint256 round) private view returns (Progress memory pr) {
        pr = _projects[pid].progress;
        if (pr.state == State.None) revert UnknownProject(pid);
        if (round == 0 || round > pr.round) revert WrongRound(pr.round, round);
    }

    /// @dev The progress of a project whose latest round opened is `round` (views that need the
    ///      submission ranks).
    function _latestRound(uint256 pid, uint256 round) private view returns (Progress memory pr) {
        pr = _readableRound(pid, round);
        if (round != pr.round) revert OrderNotKept(pid, round, pr.round);
    }

    /// @dev Number of set bits of `x`, for `x` with at most 255 bits set (SWAR: the byte counts,
    ///      each <= 8, summed into the top byte by one multiplication; 256 would wrap to 0).
    function _popcount(uint256 x) private pure returns (uint256 c) {
        assembly ("memory-safe") {
            let m1 := 0x5555555555555555555555555555555555555555555555555555555555555555
            let m2 := 0x3333333333333333333333333333333333333333333333333333333333333333
            let m4 := 0x0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f
            let h01 := 0x0101010101010101010101010101010101010101010101010101010101010101
            x := sub(x, and(shr(1, x), m1))
            x := add(and(x, m2), and(shr(2, x), m2))
            x := and(add(x, shr(4, x)), m4)
            c := shr(248, mul(x, h01))
        }
    }

    /// @dev The recorded submission rank of the trainer in `slot` (its latest submission).
    function _seqOf(uint256 pid, uint256 slot) private view returns (uint256) {
        return _participants[pid][_trainerAt[pid][slot]].seq;
    }

    /// @dev Index of the lowest set bit of a nonzero `x`: the number of bits below it, all set in
    ///      `(x & -x) - 1` (at most 255 of them, as _popcount needs).
    function _lowestBit(uint256 x) private pure returns (uint256) {
        unchecked {
            return _popcount((x & (~x + 1)) - 1);
        }
    }

    /// @dev Bitmap with the low `n` bits set.
    function _lowMask(uint256 n) private pure returns (uint256) {
        return n == 256 ? type(uint256).max : (1 << n) - 1;
    }

    /// @dev PROTOCOL.md §6: check flags and scores against the stored commitments and hash
    ///      chainId || marketplace || pid || round || vCommit || modelPrev || modelIn || modelOut ||
    ///      nTrainers || N slots of (commitment | flag << 254, int64 score, uint8 seq) into one field
    ///      element (170 header bytes, 41 per slot). The buffer
    ///      is allocated once (zeroed, so the slots at or beyond nTrainers stay zero). `round` must
    ///      be the latest round opened: the ranks are read from the participant records. Also
    ///      returns the bitmaps of the accepted slots (flag 0 with a commitment) and of the
    ///      rejected ones (flag 2), PROTOCOL.md §5; `models` is [modelPrev, modelIn, modelOut].
    ///      A slot sealed but not revealed (SEALED_MARK set) counts as absent; while the reveal window
    ///      is open it reverts WindowOpen instead, since its trainer may still reveal (so neither
    ///      postRound nor roundPublicInput can settle a round whose reveals may still come).
    function _publicInput(
        uint256 pid,
        uint256 round,
        uint256 vCommit,
        uint256[3] memory models,
        Progress memory pr,
        uint8[] calldata flags,
        int64[] calldata scores
    ) private view returns (uint256, uint256 accepted, uint256 rejected) {
        bytes memory data;
        {
            // n is scoped here (the loop runs to flags.length, equal to it) to keep the stack shallow.
            uint256 n = pr.nTrainers;
            if (flags.length != n) revert LengthMismatch(n, flags.length);
            if (scores.length != n) revert LengthMismatch(n, scores.length);
            (uint256 modelPrev, uint256 modelIn, uint256 modelOut) = (models[0], models[1], models[2]);
            uint256 len = 170 + 41 * uint256(pr.verifierSlots);
            // One spare word: the 32-byte store of the last score runs 23 bytes past the data.
            data = new bytes(len + 32);
            assembly ("memory-safe") {
                mstore(data, len)
                let q := add(data, 32)
                mstore(q, shl(192, chainid()))
                mstore(add(q, 8), shl(96, address()))
                mstore(add(q, 28), shl(192, pid))
                mstore(add(q, 36), shl(224, round))
                mstore(add(q, 40), vCommit)
                mstore(add(q, 72), modelPrev)
                mstore(add(q, 104), modelIn)
                mstore(add(q, 136), modelOut)
                mstore(add(q, 168), shl(240, n))
            }
        }
        mapping(uint256 => uint256) storage cs = _commitments[pid][round];
        for (uint256 i; i < flags.length; ++i) {
            uint256 c = cs[i];
            if (c & SEALED_MARK != 0) {
                uint256 revealEnd = _revealEnd(pr);
                if (block.timestamp <= revealEnd) revert WindowOpen(pid, revealEnd, block.timestamp);
                c = 0;
            }
            {
                uint256 flag = flags[i];
                int64 score = scores[i];
                if (flag > 3) revert InvalidFlag(i, flag);
                if (c == 0) {
                    if (flag != 0 || score != 0) revert AbsentSlotNotZero(i);
                } else if (flag == 0) {
                    accepted |= 1 << i;
                } else if (score != 0) {
                    revert FlaggedSlotScored(i, score);
                } else if (flag == 2) {
                    rejected |= 1 << i;
                }
                assembly ("memory-safe") {
                    let at := add(add(data, 202), mul(i, 41))
                    mstore(at, or(c, shl(254, flag)))
                    mstore(add(at, 32), shl(192, and(score, 0xffffffffffffffff)))
                }
            }
            // The rank byte follows the score (written after it: the score's store zeroes it).
            if (c != 0) {
                uint256 seq = _seqOf(pid, i);
                assembly ("memory-safe") {
                    mstore8(add(add(data, 242), mul(i, 41)), seq)
                }
            }
        }
        return (uint256(sha256(data)) >> 3, accepted, rejected);
    }

    /// @dev PROTOCOL.md §7: credit the round budget to the accepted slots (`accepted`, a bitmap) by score,
    ///      or, when few are accepted (FEW_ACCEPTED_DIVISOR), equally to the accepted and the excluded ones
    ///      (flag 3: a direction that excludes everyone, such as -v, must not hand the budget back to the
    ///      owner, nor one aimed at an own account hand it the round); slash the proven dishonest
    ///      updates (flag 1), record the rejected (flag 2) and excluded (flag 3) ones, then close the
    ///      round and finish the project after the last one. A round with neither spends nothing: its
    ///      budget stays in budgetLeft, which the last round takes whole.
    function _settle(
        Project storage p,
        uint256 pid,
        uint256 round,
        uint256 accepted,
        uint8[] calldata flags,
        int64[] calldata scores
    ) private {
        Funds memory f = p.funds;
        bool last;
        {
            uint256 rounds = p.params.rounds;
            last = round == rounds;
            uint256 roundBudget = last ? f.budgetLeft : f.budget / rounds;
            (uint256 paid, bool equal) = _paid(accepted, _excluded(flags));
            if (paid != 0) {
                f.budgetLeft -= uint128(roundBudget);
                f.ownerRefund += uint128(_credit(pid, roundBudget, paid, equal, scores));
            }
        }
        (uint256 slashed, uint256 ejected) = _judge(p, pid, round, flags);
        f.ownerRefund += uint128(slashed);
        Progress memory pr = p.progress;
        pr.nActive -= uint16(ejected);
        pr.roundOpen = false;
        if (last) {
            f.ownerRefund += f.budgetLeft;
            f.budgetLeft = 0;
            pr.state = State.Finished;
            emit ProjectFinished(pid);
        } else {
            pr.deadline = uint64(block.timestamp + p.params.openWindow);
        }
        p.funds = f;
        p.progress = pr;
    }

    /// @dev Split `roundBudget` over the paid slots (`paid`, a nonzero bitmap) in proportion to max(score, 0),
    ///      equally when `equal` (few accepted: the excluded are paid too, see FEW_ACCEPTED_DIVISOR) or when no
    ///      such score is positive, each share floored; returns the floor dust, which goes to the owner.
    function _credit(uint256 pid, uint256 roundBudget, uint256 paid, bool equal, int64[] calldata scores)
        private
        returns (uint256 dust)
    {
        (uint256 positive, uint256 count) = _weights(paid, scores);
        if (equal) positive = 0;
        dust = roundBudget;
        for (uint256 i; i < scores.length; ++i) {
            if ((paid >> i) & 1 == 0) continue;
            int64 score = scores[i];
            uint256 reward;
            if (positive == 0) reward = roundBudget / count;
            else if (score > 0) reward = roundBudget * uint256(uint64(score)) / positive;
            if (reward == 0) continue;
            _participants[pid][_trainerAt[pid][i]].rewards += uint112(reward);
            dust -= reward;
        }
    }

    /// @dev The slots a posted round pays (a bitmap) and whether equally: the accepted by score, or, when some are
    ///      excluded and at most max(1, N / FEW_ACCEPTED_DIVISOR) of the N accepted and excluded are accepted
    ///      (few accepted), the accepted and the excluded equally.
    function _paid(uint256 accepted, uint256 excluded) private pure returns (uint256 paid, bool equal) {
        if (excluded == 0) return (accepted, false);
        uint256 nAccepted = _count(accepted);
        uint256 few = (nAccepted + _count(excluded)) / FEW_ACCEPTED_DIVISOR;
        equal = nAccepted <= (few == 0 ? 1 : few);
        paid = equal ? accepted | excluded : accepted;
    }

    /// @dev The number of slots in a bitmap.
    function _count(uint256 slots) private pure returns (uint256 count) {
        for (; slots != 0; slots &= slots - 1) ++count;
    }

    /// @dev The excluded slots (flag 3) as a bitmap (an absent slot cannot carry it: AbsentSlotNotZero); a flagged
    ///      slot's score is 0 (FlaggedSlotScored).
    function _excluded(uint8[] calldata flags) private pure returns (uint256 excluded) {
        for (uint256 i; i < flags.length; ++i) {
            if (flags[i] == 3) excluded |= 1 << i;
        }
    }

    /// @dev The sum of max(score, 0) over the accepted slots, and their number.
    function _weights(uint256 accepted, int64[] calldata scores)
        private
        pure
        returns (uint256 positive, uint256 count)
    {
        for (uint256 i; i < scores.length; ++i) {
            if ((accepted >> i) & 1 == 0) continue;
            ++count;
            if (scores[i] > 0) positive += uint256(uint64(scores[i]));
        }
    }

    /// @dev The consequences of the flags: a proven dishonest update (flag 1: a low update)
    ///      loses `slashBps` of its stake and is ejected; a rejected update (flag 2, the aggregator's
    ///      unproven claim) and a proven exclusion (flag 3: the direction test or Multi-Krum's
    ///      selection) only go unpaid and are recorded. Every flagged slot's commitment is cleared: a copy
    ///      of a trainer's update, excluded, must not be cited as the source of a replay against that
    ///      trainer's next one. Returns the total slashed and the number ejected.
    function _judge(Project storage p, uint256 pid, uint256 round, uint8[] calldata flags)
        private
        returns (uint256 total, uint256 ejected)
    {
        uint256 n = flags.length;
        for (uint256 i; i < n; ++i) {
            uint8 flag = flags[i];
            if (flag == 0) continue;
            delete _commitments[pid][round][i]; // only accepted updates stay replay sources (PROTOCOL.md §3)
            address trainer = _trainerAt[pid][i];
            if (flag == 2) {
                emit UpdateRejected(pid, round, trainer, i);
                continue;
            }
            if (flag == 3) {
                emit UpdateExcluded(pid, round, trainer, i);
                continue;
            }
            Participant storage pt = _participants[pid][trainer];
            uint256 stake = pt.stake;
            uint256 amount = stake * p.params.slashBps / BPS;
            pt.stake = uint112(stake - amount);
            pt.status = Status.Ejected;
            p.ejectedMask |= 1 << i;
            total += amount;
            ++ejected;
            emit TrainerSlashed(pid, round, trainer, i, flag, amount);
        }
    }

    /// @dev On an aggregator timeout, credit `bondHeld` in equal floored shares to those it harmed:
    ///      the open round's submitters after a missed post or re-post (active slots that committed
    ///      and revealed; not those that declined), every
    ///      active trainer after a missed open. Returns the total credited (0 when nobody qualifies).
    function _compensate(Project storage p, uint256 pid, Progress memory pr, uint256 bondHeld)
        private
        returns (uint256 paid)
    {
        uint256 n = pr.nTrainers;
        uint256 harmed = _lowMask(n) & ~p.ejectedMask;
        if (pr.roundOpen) harmed &= ~_rounds[pid][pr.round].pending;
        uint256 count;
        for (uint256 i; i < n; ++i) {
            if ((harmed >> i) & 1 == 0) continue;
            // A seal never revealed is no submission (the window closed before the post was due), nor is a
            // declined round (no commitment).
            uint256 c = pr.roundOpen ? _commitments[pid][pr.round][i] : 1;
            if (c == 0 || c & SEALED_MARK != 0) harmed &= ~(1 << i);
            else ++count;
        }
        if (count == 0) return 0;
        uint256 share = bondHeld / count;
        if (share == 0) return 0;
        for (uint256 i; i < n; ++i) {
            if ((harmed >> i) & 1 == 0) continue;
            address trainer = _trainerAt[pid][i];
            _participants[pid][trainer].rewards += uint112(share);
            emit BondCompensation(pid, trainer, share);
        }
        paid = share * count;
    }

    /// @dev Take `amount` of `token` from the caller: ETH must be sent exactly; ERC-20 is pulled
    ///      with safeTransferFrom and must arrive in full (no fee-on-transfer tokens).
    function _pull(address token, uint256 amount) private {
        if (token == address(0)) {
            if (msg.value != amount) revert WrongAmount(amount, msg.value);
            return;
        }
        if (msg.value != 0) revert WrongAmount(0, msg.value);
        if (amount == 0) return;
        IERC20 t = IERC20(token);
        uint256 before = t.balanceOf(address(this));
        t.safeTransferFrom(msg.sender, address(this), amount);
        uint256 received = t.balanceOf(address(this)) - before;
        if (received != amount) revert WrongAmount(amount, received);
    }

    /// @dev Pay `amount` of `token` to `to` (the last step of every withdrawal).
    function _push(address token, address to, uint256 amount) private {
        if (token == address(0)) {
            (bool ok,) = to.call{value: amount}("");
            if (!ok) revert TransferFailed(to, amount);
        } else {
            IERC20(token).safeTransfer(to, amount);
        }
    }
}
