// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity ^0.8.28;

import {IPoseidonCommit} from "./IPoseidonCommit.sol";

/// @title PoseidonCommit
/// @notice circomlib's Poseidon with 16 inputs (t = 17) and, over it, the PROTOCOL.md §2 commitment of a packed
///         proof view, so that a view a trainer publishes can be checked against its stored commitment.
/// @dev The permutation is circomlibjs' optimized one (poseidon_opt.js, step by step as market/protocol/poseidon.py):
///      four full rounds (the last mixing with the pre-sparse matrix P), 68 sparse partial rounds, four full rounds.
///      Its 3,026 constants are the code of four data contracts (SSTORE2: a STOP byte, then 32-byte big-endian
///      words; laid out by `constants_blob` in market/chain/poseidon_contract.py: C, M by columns, P by columns,
///      S), whose code hashes the constructor checks; each call copies them into memory once.
contract PoseidonCommit is IPoseidonCommit {
    /// @dev The BN254 scalar field, Poseidon's field.
    uint256 private constant Q = 21888242871839275222246405745257275088548364400416034343698204186575808495617;
    /// @dev Bytes of constants in each of the first three data contracts, after their STOP byte.
    uint256 private constant CHUNK_BYTES = 24575;
    /// @dev Bytes of constants in the last data contract, after its STOP byte.
    uint256 private constant LAST_CHUNK_BYTES = 23107;
    /// @dev Where the calls' memory begins (the constants, then the state, then scratch): fixed, so that the
    ///      permutation addresses the state with constants; the free memory pointer must not be past it (it is
    ///      0x80 on entry; the 28 words between are slack for a compiler that reserves memory for spilled variables).
    uint256 private constant MEMORY_AT = 0x400;
    /// @dev Where M (17 x 17, by columns), P (likewise) and S (68 rounds of 33 words) lie in memory.
    uint256 private constant M_AT = 0x1d80;
    uint256 private constant P_AT = 0x41a0;
    uint256 private constant S_AT = 0x65c0;
    /// @dev Where the copies of the second, third and fourth data contracts begin (CHUNK_BYTES apart).
    uint256 private constant CHUNK1_AT = 0x63ff;
    uint256 private constant CHUNK2_AT = 0xc3fe;
    uint256 private constant CHUNK3_AT = 0x123fd;
    /// @dev The Poseidon state (17 words: capacity, then the 16 inputs) and 17 words of scratch after it; the
    ///      unrolled code below addresses state[j] and scratch[j] as these plus 32 j, as literals.
    uint256 private constant STATE_AT = 0x17e40;
    uint256 private constant TMP_AT = 0x18060;
    /// @dev The end of the calls' memory.
    uint256 private constant MEMORY_END = 0x18280;
    /// @dev Packed elements absorbed per Poseidon16 call (the 16th input is the chain value).
    uint256 private constant BLOCK = 15;
    /// @dev keccak-256 of the four data contracts' code (market/chain/poseidon_contract.py `data_code_hashes`).
    bytes32 private constant HASH0 = 0x0c7da217066f971f5529155f86bf73f04266667fe441a6d7446282d2e087b4eb;
    bytes32 private constant HASH1 = 0xea8678efc136b0413e0c00b5df8ea21faaeb5c9f337576ac8cb70499e15af743;
    bytes32 private constant HASH2 = 0x85f1619432dd27b93bcf1becd48190c567cf19aac6939a7fcb30a342dcaf3593;
    bytes32 private constant HASH3 = 0x469a6fdab1a33d133246e0b98e41fb72adaeb2e8c2eb46e26ea131d39d504270;

    /// @dev The field modulus Q as an immutable: read with one PUSH32, where the optimizer would turn the literal
    ///      into a CODECOPY and an MLOAD at every use.
    uint256 private immutable FIELD;
    /// @dev The data contracts holding the constants, in blob order.
    address private immutable DATA0;
    address private immutable DATA1;
    address private immutable DATA2;
    address private immutable DATA3;

    /// @notice A value width outside 2..32 bits.
    error InvalidWidth(uint256 bits);
    /// @notice `got` packed elements where a view of `count` values needs `expected` = ceil(count / (252 / bits)).
    error ElementCount(uint256 expected, uint256 got);
    /// @notice Packed element `element` has a value lane out of range: `lane` is the first real lane that is 0 or
    ///         padding lane (past the view's end) that is not 0; `lane` = 252 / bits when only bits above every lane
    ///         are set.
    error LaneOutOfRange(uint256 element, uint256 lane);
    /// @notice Data contract `index` at `data` does not hold the expected constants.
    error DataContract(uint256 index, address data);
    /// @notice Memory was allocated past MEMORY_AT before the constants were loaded (a compiler that reserves more
    ///         memory than this contract allows for); `freePointer` is where it ends.
    error MemoryInUse(uint256 freePointer);

    /// @notice Bind the four data contracts deployed from `constants_blob` (market/chain/poseidon_contract.py).
    /// @param data Their addresses, in blob order; each must hold exactly its STOP byte and its constants.
    constructor(address[4] memory data) {
        bytes32[4] memory hashes = [HASH0, HASH1, HASH2, HASH3];
        for (uint256 i; i < 4; ++i) {
            uint256 size = (i == 3 ? LAST_CHUNK_BYTES : CHUNK_BYTES) + 1;
            if (data[i].code.length != size || data[i].codehash != hashes[i]) revert DataContract(i, data[i]);
        }
        FIELD = Q;
        DATA0 = data[0];
        DATA1 = data[1];
        DATA2 = data[2];
        DATA3 = data[3];
    }

    /// @dev The §2 commitment of a checked packed view, with the constants loaded: h_0 = count,
    ///      h_b = Poseidon16([h_(b-1), 15 elements, zero-padded]) over at least one block.
    function _commit(uint256 count, uint256[] calldata elements) private view returns (uint256 h) {
        uint256 n = elements.length;
        h = count;
        uint256 b;
        do {
            uint256 take = n - b < BLOCK ? n - b : BLOCK;
            assembly ("memory-safe") {
                mstore(STATE_AT, 0)
                mstore(add(STATE_AT, 0x20), h)
                let at := add(STATE_AT, 0x40)
                calldatacopy(at, add(elements.offset, shl(5, b)), shl(5, take))
                // Reading past the end of calldata yields zeros: the padding of the last block.
                calldatacopy(add(at, shl(5, take)), calldatasize(), shl(5, sub(BLOCK, take)))
            }
            h = _permute();
            b += BLOCK;
        } while (b < n);
    }

    /// @inheritdoc IPoseidonCommit
    function commitPacked(uint256 count, uint256 bits, uint256[] calldata elements) external view returns (uint256) {
        _checkView(count, bits, elements);
        _loadConstants();
        return _commit(count, elements);
    }

    /// @inheritdoc IPoseidonCommit
    /// @dev Checks both views (as commitPacked), loads the constants once. Lanes hold value + 2^(bits - 1) (PROTOCOL.md
    ///      §2) and are all in range once checked.
    function comparePacked(uint256 count, uint256 bits, uint256[] calldata u, uint256[] calldata w)
        external
        view
        returns (uint256 commitU, uint256 commitW, uint256 dist, uint256 nsqU, uint256 nsqW)
    {
        _checkView(count, bits, u);
        _checkView(count, bits, w);
        _loadConstants();
        commitU = _commit(count, u);
        commitW = _commit(count, w);
        uint256 per = 252 / bits;
        uint256 mask = (1 << bits) - 1;
        int256 off = int256(1 << (bits - 1));
        uint256 left = count; // lanes still to read: per a full element, fewer in the last
        unchecked {
            // bits <= 32 and count < 2^64 lanes (calldata), so no sum can overflow.
            for (uint256 k; k < u.length; ++k) {
                uint256 x = u[k];
                uint256 y = w[k];
                uint256 lanes = left < per ? left : per;
                left -= lanes;
                for (uint256 j; j < lanes; ++j) {
                    int256 a = int256(x & mask) - off;
                    int256 b = int256(y & mask) - off;
                    dist += uint256((a - b) * (a - b));
                    nsqU += uint256(a * a);
                    nsqW += uint256(b * b);
                    x >>= bits;
                    y >>= bits;
                }
            }
        }
    }

    /// @notice circomlib's Poseidon(16) of `inputs` (each taken mod the field), for tests and gas measurement.
    /// @param inputs The 16 inputs; the state's capacity word starts at 0 as in circomlib.
    /// @return The first word of the permuted state.
    function poseidon16(uint256[16] calldata inputs) external view returns (uint256) {
        _loadConstants();
        assembly ("memory-safe") {
            mstore(STATE_AT, 0)
            calldatacopy(add(STATE_AT, 0x20), inputs, 0x200)
        }
        return _permute();
    }

    /// @dev Revert unless `bits` is in 2..32, `elements` has ceil(count / PER) entries (PER = 252 / bits), every
    ///      real lane is in [1, 2^bits - 1] and everything past the view's last lane is 0. Whether a lane is 0 is
    ///      the classic SWAR test (v - ones) & ~v & highs, exact for the lowest zero lane, which is all a yes/no
    ///      needs; a borrow past the top lane falls outside `highs`.
    function _checkView(uint256 count, uint256 bits, uint256[] calldata elements) private pure {
        if (bits < 2 || bits > 32) revert InvalidWidth(bits);
        uint256 per = 252 / bits;
        uint256 n = count / per + (count % per == 0 ? 0 : 1);
        if (elements.length != n) revert ElementCount(n, elements.length);
        uint256 full = 252 - 252 % bits; // PER * bits: the lane bits of a full element
        uint256 left = count * bits; // lane bits still to check (count < 252 * n here)
        unchecked {
            for (uint256 e; e < n; ++e) {
                uint256 width = left < full ? left : full;
                left -= width;
                uint256 ones = ((1 << width) - 1) / ((1 << bits) - 1);
                uint256 v = elements[e];
                if (v >> width != 0 || (v - ones) & ~v & (ones << (bits - 1)) != 0) _badLane(e, v, bits, width / bits);
            }
        }
    }

    /// @dev Revert LaneOutOfRange for element `e` (value `v` with `lanes` real lanes) at its first bad lane.
    function _badLane(uint256 e, uint256 v, uint256 bits, uint256 lanes) private pure {
        uint256 per = 252 / bits;
        uint256 mask = (1 << bits) - 1;
        for (uint256 j; j < per; ++j) {
            uint256 lane = (v >> (j * bits)) & mask;
            if (j < lanes ? lane == 0 : lane != 0) revert LaneOutOfRange(e, j);
        }
        revert LaneOutOfRange(e, per);
    }

    /// @dev Allocate [MEMORY_AT, MEMORY_END) and copy the constants into its start, one EXTCODECOPY per data
    ///      contract. Nothing is allocated before it in these calls, so the free memory pointer is not past it.
    function _loadConstants() private view {
        uint256 free;
        assembly ("memory-safe") {
            free := mload(0x40)
        }
        if (free > MEMORY_AT) revert MemoryInUse(free);
        (address d0, address d1, address d2, address d3) = (DATA0, DATA1, DATA2, DATA3);
        assembly ("memory-safe") {
            mstore(0x40, MEMORY_END)
            extcodecopy(d0, MEMORY_AT, 1, CHUNK_BYTES)
            extcodecopy(d1, CHUNK1_AT, 1, CHUNK_BYTES)
            extcodecopy(d2, CHUNK2_AT, 1, CHUNK_BYTES)
            extcodecopy(d3, CHUNK3_AT, 1, LAST_CHUNK_BYTES)
        }
    }

    /// @dev The Poseidon16 permutation of the state at STATE_AT (capacity word, then the 16 inputs), with the
    ///      constants loaded; the state ends permuted except for the last round, which computes only state[0].
    /// @return out The permuted state's first word.
    function _permute() private view returns (uint256 out) {
        uint256 q = FIELD;
        assembly ("memory-safe") {
            // The unrolled vector code names state[j] = STATE_AT + 32 j and scratch[j] = TMP_AT + 32 j by value.
            /// a^5 mod p.
            function sbox(a, p) -> r {
                let a2 := mulmod(a, a, p)
                r := mulmod(mulmod(a2, a2, p), a, p)
            }
            /// sum_j a[j] * scratch[j] mod p over 17 words; four products (each < p) sum below 2^256 unreduced.
            function dotScratch(a, p) -> r {
                r := mulmod(mload(a), mload(0x18060), p)
                r := addmod(r, add(
                    add(mulmod(mload(add(a, 0x20)), mload(0x18080), p), mulmod(mload(add(a, 0x40)), mload(0x180a0), p)),
                    add(mulmod(mload(add(a, 0x60)), mload(0x180c0), p), mulmod(mload(add(a, 0x80)), mload(0x180e0), p))
                ), p)
                r := addmod(r, add(
                    add(mulmod(mload(add(a, 0xa0)), mload(0x18100), p), mulmod(mload(add(a, 0xc0)), mload(0x18120), p)),
                    add(mulmod(mload(add(a, 0xe0)), mload(0x18140), p), mulmod(mload(add(a, 0x100)), mload(0x18160), p))
                ), p)
                r := addmod(r, add(
                    add(mulmod(mload(add(a, 0x120)), mload(0x18180), p), mulmod(mload(add(a, 0x140)), mload(0x181a0), p)),
                    add(mulmod(mload(add(a, 0x160)), mload(0x181c0), p), mulmod(mload(add(a, 0x180)), mload(0x181e0), p))
                ), p)
                r := addmod(r, add(
                    add(mulmod(mload(add(a, 0x1a0)), mload(0x18200), p), mulmod(mload(add(a, 0x1c0)), mload(0x18220), p)),
                    add(mulmod(mload(add(a, 0x1e0)), mload(0x18240), p), mulmod(mload(add(a, 0x200)), mload(0x18260), p))
                ), p)
            }
            /// scratch[j] = sbox(state[j]) + c[j] mod p for the 17 words: a full round's S-boxes and constants.
            function sboxArk(c, p) {
                mstore(0x18060, addmod(sbox(mload(0x17e40), p), mload(c), p))
                mstore(0x18080, addmod(sbox(mload(0x17e60), p), mload(add(c, 0x20)), p))
                mstore(0x180a0, addmod(sbox(mload(0x17e80), p), mload(add(c, 0x40)), p))
                mstore(0x180c0, addmod(sbox(mload(0x17ea0), p), mload(add(c, 0x60)), p))
                mstore(0x180e0, addmod(sbox(mload(0x17ec0), p), mload(add(c, 0x80)), p))
                mstore(0x18100, addmod(sbox(mload(0x17ee0), p), mload(add(c, 0xa0)), p))
                mstore(0x18120, addmod(sbox(mload(0x17f00), p), mload(add(c, 0xc0)), p))
                mstore(0x18140, addmod(sbox(mload(0x17f20), p), mload(add(c, 0xe0)), p))
                mstore(0x18160, addmod(sbox(mload(0x17f40), p), mload(add(c, 0x100)), p))
                mstore(0x18180, addmod(sbox(mload(0x17f60), p), mload(add(c, 0x120)), p))
                mstore(0x181a0, addmod(sbox(mload(0x17f80), p), mload(add(c, 0x140)), p))
                mstore(0x181c0, addmod(sbox(mload(0x17fa0), p), mload(add(c, 0x160)), p))
                mstore(0x181e0, addmod(sbox(mload(0x17fc0), p), mload(add(c, 0x180)), p))
                mstore(0x18200, addmod(sbox(mload(0x17fe0), p), mload(add(c, 0x1a0)), p))
                mstore(0x18220, addmod(sbox(mload(0x18000), p), mload(add(c, 0x1c0)), p))
                mstore(0x18240, addmod(sbox(mload(0x18020), p), mload(add(c, 0x1e0)), p))
                mstore(0x18260, addmod(sbox(mload(0x18040), p), mload(add(c, 0x200)), p))
            }
            /// One full round: scratch = sbox(state) + c, then state[i] = column i of the matrix at `mat` . scratch.
            function fullRound(c, mat, p) {
                sboxArk(c, p)
                for { let i := 0 } lt(i, 0x220) { i := add(i, 0x20) } {
                    mstore(add(STATE_AT, i), dotScratch(add(mat, mul(i, 17)), p))
                }
            }
            /// One sparse partial round after state[0]'s S-box and constant (x): its 33 words of S at `s` are the
            /// weights of (x, state[1..16]) in the new state[0] (returned), then how x feeds state[1..16].
            function partialRound(s, x, p) -> s0 {
                s0 := mulmod(mload(s), x, p)
                {
                    let v0 := mload(0x17e60)
                    let v1 := mload(0x17e80)
                    let v2 := mload(0x17ea0)
                    let v3 := mload(0x17ec0)
                    s0 := addmod(s0, add(
                        add(mulmod(mload(add(s, 0x20)), v0, p), mulmod(mload(add(s, 0x40)), v1, p)),
                        add(mulmod(mload(add(s, 0x60)), v2, p), mulmod(mload(add(s, 0x80)), v3, p))
                    ), p)
                    mstore(0x17e60, addmod(v0, mulmod(x, mload(add(s, 0x220)), p), p))
                    mstore(0x17e80, addmod(v1, mulmod(x, mload(add(s, 0x240)), p), p))
                    mstore(0x17ea0, addmod(v2, mulmod(x, mload(add(s, 0x260)), p), p))
                    mstore(0x17ec0, addmod(v3, mulmod(x, mload(add(s, 0x280)), p), p))
                }
                {
                    let v0 := mload(0x17ee0)
                    let v1 := mload(0x17f00)
                    let v2 := mload(0x17f20)
                    let v3 := mload(0x17f40)
                    s0 := addmod(s0, add(
                        add(mulmod(mload(add(s, 0xa0)), v0, p), mulmod(mload(add(s, 0xc0)), v1, p)),
                        add(mulmod(mload(add(s, 0xe0)), v2, p), mulmod(mload(add(s, 0x100)), v3, p))
                    ), p)
                    mstore(0x17ee0, addmod(v0, mulmod(x, mload(add(s, 0x2a0)), p), p))
                    mstore(0x17f00, addmod(v1, mulmod(x, mload(add(s, 0x2c0)), p), p))
                    mstore(0x17f20, addmod(v2, mulmod(x, mload(add(s, 0x2e0)), p), p))
                    mstore(0x17f40, addmod(v3, mulmod(x, mload(add(s, 0x300)), p), p))
                }
                {
                    let v0 := mload(0x17f60)
                    let v1 := mload(0x17f80)
                    let v2 := mload(0x17fa0)
                    let v3 := mload(0x17fc0)
                    s0 := addmod(s0, add(
                        add(mulmod(mload(add(s, 0x120)), v0, p), mulmod(mload(add(s, 0x140)), v1, p)),
                        add(mulmod(mload(add(s, 0x160)), v2, p), mulmod(mload(add(s, 0x180)), v3, p))
                    ), p)
                    mstore(0x17f60, addmod(v0, mulmod(x, mload(add(s, 0x320)), p), p))
                    mstore(0x17f80, addmod(v1, mulmod(x, mload(add(s, 0x340)), p), p))
                    mstore(0x17fa0, addmod(v2, mulmod(x, mload(add(s, 0x360)), p), p))
                    mstore(0x17fc0, addmod(v3, mulmod(x, mload(add(s, 0x380)), p), p))
                }
                {
                    let v0 := mload(0x17fe0)
                    let v1 := mload(0x18000)
                    let v2 := mload(0x18020)
                    let v3 := mload(0x18040)
                    s0 := addmod(s0, add(
                        add(mulmod(mload(add(s, 0x1a0)), v0, p), mulmod(mload(add(s, 0x1c0)), v1, p)),
                        add(mulmod(mload(add(s, 0x1e0)), v2, p), mulmod(mload(add(s, 0x200)), v3, p))
                    ), p)
                    mstore(0x17fe0, addmod(v0, mulmod(x, mload(add(s, 0x3a0)), p), p))
                    mstore(0x18000, addmod(v1, mulmod(x, mload(add(s, 0x3c0)), p), p))
                    mstore(0x18020, addmod(v2, mulmod(x, mload(add(s, 0x3e0)), p), p))
                    mstore(0x18040, addmod(v3, mulmod(x, mload(add(s, 0x400)), p), p))
                }
            }

            for { let i := 0 } lt(i, 0x220) { i := add(i, 0x20) } {
                mstore(add(STATE_AT, i), addmod(mload(add(STATE_AT, i)), mload(add(MEMORY_AT, i)), q))
            }
            // Three full rounds with M, then one with P (round constants: 17 words each).
            let c := add(MEMORY_AT, 0x220)
            for { } lt(c, add(MEMORY_AT, 0x880)) { c := add(c, 0x220) } {
                fullRound(c, M_AT, q)
            }
            fullRound(c, P_AT, q)
            c := add(c, 0x220)
            // 68 sparse partial rounds: one round constant and 33 words of S each.
            let s := S_AT
            for { } lt(s, add(S_AT, 0x11880)) { s := add(s, 0x420) } {
                mstore(STATE_AT, partialRound(s, addmod(sbox(mload(STATE_AT), q), mload(c), q), q))
                c := add(c, 0x20)
            }
            // Three full rounds with M, then a last one without round constants, of which only state[0] is needed.
            for { } lt(c, M_AT) { c := add(c, 0x220) } {
                fullRound(c, M_AT, q)
            }
            for { let i := 0 } lt(i, 0x220) { i := add(i, 0x20) } {
                mstore(add(TMP_AT, i), sbox(mload(add(STATE_AT, i)), q))
            }
            out := dotScratch(M_AT, q)
        }
    }
}
