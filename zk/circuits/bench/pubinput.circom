// SPDX-License-Identifier: GPL-3.0-or-later
// Measurement circuits for the round proof's public input (zk/hashcost.py, docs/ZK.md "The public
// input"). Each template binds the same round data as PROTOCOL §6 (header, N slots of commitment,
// flag, score, seq) in one way; all of them carry the per-slot range checks that round.circom needs
// whatever the public input is (flag bits, the score's 64 bits, seq's 8 bits: SlotBits), so that
// "template minus Shared(N)" is what the binding itself costs. Never part of a verifier.
pragma circom 2.1.0;

include "circomlib/circuits/poseidon.circom";
include "circomlib/circuits/bitify.circom";
include "circomlib/circuits/comparators.circom";
include "circomlib/circuits/sha256/sha256.circom";

// The range checks round.circom has in every variant: flag in {0..3}, score + 2^63 < 2^64, seq < 2^8.
template SlotBits() {
    signal input flag;
    signal input score;
    signal input seq;
    signal output fb[2];
    signal output sb[64];
    signal output qb[8];
    component f = Num2Bits(2);
    f.in <== flag;
    fb <== f.out;
    component s = Num2Bits(64);
    s.in <== score + (1 << 63);
    sb <== s.out;
    component q = Num2Bits(8);
    q.in <== seq;
    qb <== q.out;
}

// The round data every variant binds (private inputs) and its slot range checks.
template RoundData(N) {
    signal input chainId;
    signal input marketplace;
    signal input projectId;
    signal input round;
    signal input nTrainers;
    signal input vCommit;
    signal input modelPrev;
    signal input modelIn;
    signal input modelOut;
    signal input commitment[N];
    signal input flag[N];
    signal input score[N];
    signal input seq[N];
    signal output fb[N][2];
    signal output sb[N][64];
    signal output qb[N][8];
    component bits[N];
    for (var i = 0; i < N; i++) {
        bits[i] = SlotBits();
        bits[i].flag <== flag[i];
        bits[i].score <== score[i];
        bits[i].seq <== seq[i];
        fb[i] <== bits[i].fb;
        sb[i] <== bits[i].sb;
        qb[i] <== bits[i].qb;
    }
}

// Number of field elements of the packed round data: 2 header words, vCommit, modelPrev, modelIn,
// modelOut, N commitments, one word per 3 slots of (flag, score + 2^63, seq) (74 bits each).
function packedCount(N) {
    return 6 + N + (N + 2) \ 3;
}

// The packed round data: e[0] = chainId | marketplace << 64, e[1] = projectId | round << 64 |
// nTrainers << 96, then the four commitments, the N slot commitments, the slot words. Linear in the
// inputs (no constraints); injective because every packed part is range-checked (SlotBits) or,
// for the header, used nowhere but here, so the packed word is what the statement binds.
template Packed(N) {
    var E = packedCount(N);
    signal input chainId;
    signal input marketplace;
    signal input projectId;
    signal input round;
    signal input nTrainers;
    signal input vCommit;
    signal input modelPrev;
    signal input modelIn;
    signal input modelOut;
    signal input commitment[N];
    signal input flag[N];
    signal input score[N];
    signal input seq[N];
    signal output e[E];
    e[0] <== chainId + marketplace * (1 << 64);
    e[1] <== projectId + round * (1 << 64) + nTrainers * (1 << 96);
    e[2] <== vCommit;
    e[3] <== modelPrev;
    e[4] <== modelIn;
    e[5] <== modelOut;
    for (var i = 0; i < N; i++) { e[6 + i] <== commitment[i]; }
    for (var g = 0; g < (N + 2) \ 3; g++) {
        var w = 0;
        for (var j = 0; j < 3; j++) {
            var i = 3 * g + j;
            if (i < N) {
                w += (flag[i] + (score[i] + (1 << 63)) * 4 + seq[i] * (1 << 66)) * (1 << (74 * j));
            }
        }
        e[6 + N + g] <== w;
    }
}

// Only the shared range checks, and one public output: the baseline every variant is measured against.
template Shared(N) {
    signal input chainId;
    signal input marketplace;
    signal input projectId;
    signal input round;
    signal input nTrainers;
    signal input vCommit;
    signal input modelPrev;
    signal input modelIn;
    signal input modelOut;
    signal input commitment[N];
    signal input flag[N];
    signal input score[N];
    signal input seq[N];
    signal output pub;
    component d = RoundData(N);
    d.chainId <== chainId; d.marketplace <== marketplace; d.projectId <== projectId; d.round <== round;
    d.nTrainers <== nTrainers; d.vCommit <== vCommit; d.modelPrev <== modelPrev; d.modelIn <== modelIn;
    d.modelOut <== modelOut; d.commitment <== commitment; d.flag <== flag; d.score <== score; d.seq <== seq;
    pub <== chainId;
}

// (a) PROTOCOL §6 today: sha256 over the 170 + 41 N data bytes, top 253 bits; the same bit
// decompositions as round.circom (header words, Num2Bits_strict of each 254-bit commitment).
template ShaInput(N) {
    signal input chainId;
    signal input marketplace;
    signal input projectId;
    signal input round;
    signal input nTrainers;
    signal input vCommit;
    signal input modelPrev;
    signal input modelIn;
    signal input modelOut;
    signal input commitment[N];
    signal input flag[N];
    signal input score[N];
    signal input seq[N];
    signal output pub;
    component d = RoundData(N);
    d.chainId <== chainId; d.marketplace <== marketplace; d.projectId <== projectId; d.round <== round;
    d.nTrainers <== nTrainers; d.vCommit <== vCommit; d.modelPrev <== modelPrev; d.modelIn <== modelIn;
    d.modelOut <== modelOut; d.commitment <== commitment; d.flag <== flag; d.score <== score; d.seq <== seq;

    var NB = 8 * (170 + 41 * N);
    component sha = Sha256(NB);
    var pos = 0;
    component bChain = Num2Bits(64);
    bChain.in <== chainId;
    for (var b = 63; b >= 0; b--) { sha.in[pos] <== bChain.out[b]; pos++; }
    component bMarket = Num2Bits(160);
    bMarket.in <== marketplace;
    for (var b = 159; b >= 0; b--) { sha.in[pos] <== bMarket.out[b]; pos++; }
    component bProject = Num2Bits(64);
    bProject.in <== projectId;
    for (var b = 63; b >= 0; b--) { sha.in[pos] <== bProject.out[b]; pos++; }
    component bRound = Num2Bits(32);
    bRound.in <== round;
    for (var b = 31; b >= 0; b--) { sha.in[pos] <== bRound.out[b]; pos++; }
    component bWord[4];
    for (var w = 0; w < 4; w++) { bWord[w] = Num2Bits_strict(); }
    bWord[0].in <== vCommit;
    bWord[1].in <== modelPrev;
    bWord[2].in <== modelIn;
    bWord[3].in <== modelOut;
    for (var w = 0; w < 4; w++) {
        sha.in[pos] <== 0; pos++;
        sha.in[pos] <== 0; pos++;
        for (var b = 253; b >= 0; b--) { sha.in[pos] <== bWord[w].out[b]; pos++; }
    }
    component bN = Num2Bits(16);
    bN.in <== nTrainers;
    for (var b = 15; b >= 0; b--) { sha.in[pos] <== bN.out[b]; pos++; }
    component bC[N];
    for (var i = 0; i < N; i++) {
        bC[i] = Num2Bits_strict();
        bC[i].in <== commitment[i];
        sha.in[pos] <== d.fb[i][1]; pos++;
        sha.in[pos] <== d.fb[i][0]; pos++;
        for (var b = 253; b >= 0; b--) { sha.in[pos] <== bC[i].out[b]; pos++; }
        sha.in[pos] <== 1 - d.sb[i][63]; pos++;
        for (var b = 62; b >= 0; b--) { sha.in[pos] <== d.sb[i][b]; pos++; }
        for (var b = 7; b >= 0; b--) { sha.in[pos] <== d.qb[i][b]; pos++; }
    }
    var acc253 = 0;
    for (var b = 0; b < 253; b++) { acc253 += sha.out[b] * (1 << (252 - b)); }
    pub <== acc253;
}

// (b) A Poseidon chain over the packed data, as PROTOCOL §2 chains a view: h_0 = E (the element
// count), h_b = Poseidon(W)([h_(b-1), the next W - 1 elements, zero-padded]); pub = the last h.
template PoseidonInput(N, W) {
    var E = packedCount(N);
    var NBLK = (E + W - 2) \ (W - 1);
    signal input chainId;
    signal input marketplace;
    signal input projectId;
    signal input round;
    signal input nTrainers;
    signal input vCommit;
    signal input modelPrev;
    signal input modelIn;
    signal input modelOut;
    signal input commitment[N];
    signal input flag[N];
    signal input score[N];
    signal input seq[N];
    signal output pub;
    component d = RoundData(N);
    d.chainId <== chainId; d.marketplace <== marketplace; d.projectId <== projectId; d.round <== round;
    d.nTrainers <== nTrainers; d.vCommit <== vCommit; d.modelPrev <== modelPrev; d.modelIn <== modelIn;
    d.modelOut <== modelOut; d.commitment <== commitment; d.flag <== flag; d.score <== score; d.seq <== seq;
    component p = Packed(N);
    p.chainId <== chainId; p.marketplace <== marketplace; p.projectId <== projectId; p.round <== round;
    p.nTrainers <== nTrainers; p.vCommit <== vCommit; p.modelPrev <== modelPrev; p.modelIn <== modelIn;
    p.modelOut <== modelOut; p.commitment <== commitment; p.flag <== flag; p.score <== score; p.seq <== seq;
    component h[NBLK];
    for (var b = 0; b < NBLK; b++) {
        h[b] = Poseidon(W);
        if (b == 0) { h[b].inputs[0] <== E; } else { h[b].inputs[0] <== h[b - 1].out; }
        for (var k = 1; k < W; k++) {
            var idx = (W - 1) * b + k - 1;
            if (idx < E) { h[b].inputs[k] <== p.e[idx]; } else { h[b].inputs[k] <== 0; }
        }
    }
    pub <== h[NBLK - 1].out;
}

// (c) No hash: the packed elements are the public inputs.
template PlainInput(N) {
    var E = packedCount(N);
    signal input chainId;
    signal input marketplace;
    signal input projectId;
    signal input round;
    signal input nTrainers;
    signal input vCommit;
    signal input modelPrev;
    signal input modelIn;
    signal input modelOut;
    signal input commitment[N];
    signal input flag[N];
    signal input score[N];
    signal input seq[N];
    signal output pub[E];
    component d = RoundData(N);
    d.chainId <== chainId; d.marketplace <== marketplace; d.projectId <== projectId; d.round <== round;
    d.nTrainers <== nTrainers; d.vCommit <== vCommit; d.modelPrev <== modelPrev; d.modelIn <== modelIn;
    d.modelOut <== modelOut; d.commitment <== commitment; d.flag <== flag; d.score <== score; d.seq <== seq;
    component p = Packed(N);
    p.chainId <== chainId; p.marketplace <== marketplace; p.projectId <== projectId; p.round <== round;
    p.nTrainers <== nTrainers; p.vCommit <== vCommit; p.modelPrev <== modelPrev; p.modelIn <== modelIn;
    p.modelOut <== modelOut; p.commitment <== commitment; p.flag <== flag; p.score <== score; p.seq <== seq;
    pub <== p.e;
}

// (d) Fold: the contract keeps acc = Poseidon(5)(e[0], e[1], vCommit, modelPrev, modelIn) from
// openRound and, at each reveal, acc = Poseidon(3)(acc, slot, commitment) in reveal order. Public:
// acc, modelOut and the slot words. The prover names the reveal order privately (pos[s][i] = 1 iff
// slot i was the s-th reveal); each step takes at most one slot, each present slot is taken exactly
// once, so the chain is the contract's only if every slot holds its own commitment (Poseidon).
template FoldInput(N) {
    var NW = (N + 2) \ 3;
    signal input chainId;
    signal input marketplace;
    signal input projectId;
    signal input round;
    signal input nTrainers;
    signal input vCommit;
    signal input modelPrev;
    signal input modelIn;
    signal input modelOut;
    signal input commitment[N];
    signal input flag[N];
    signal input score[N];
    signal input seq[N];
    signal input pos[N][N];
    signal output pub[2 + NW];
    component d = RoundData(N);
    d.chainId <== chainId; d.marketplace <== marketplace; d.projectId <== projectId; d.round <== round;
    d.nTrainers <== nTrainers; d.vCommit <== vCommit; d.modelPrev <== modelPrev; d.modelIn <== modelIn;
    d.modelOut <== modelOut; d.commitment <== commitment; d.flag <== flag; d.score <== score; d.seq <== seq;
    component p = Packed(N);
    p.chainId <== chainId; p.marketplace <== marketplace; p.projectId <== projectId; p.round <== round;
    p.nTrainers <== nTrainers; p.vCommit <== vCommit; p.modelPrev <== modelPrev; p.modelIn <== modelIn;
    p.modelOut <== modelOut; p.commitment <== commitment; p.flag <== flag; p.score <== score; p.seq <== seq;

    // present_i = commitment_i != 0 (round.circom has this IsZero already; here it is counted).
    component cz[N];
    signal present[N];
    for (var i = 0; i < N; i++) {
        cz[i] = IsZero();
        cz[i].in <== commitment[i];
        present[i] <== 1 - cz[i].out;
    }
    component seed = Poseidon(5);
    seed.inputs[0] <== p.e[0];
    seed.inputs[1] <== p.e[1];
    seed.inputs[2] <== vCommit;
    seed.inputs[3] <== modelPrev;
    seed.inputs[4] <== modelIn;
    signal pc[N][N];
    signal taken[N];
    signal acc[N + 1];
    signal slotAt[N];
    signal commitAt[N];
    component step[N];
    acc[0] <== seed.out;
    for (var i = 0; i < N; i++) {
        var col = 0;
        for (var s = 0; s < N; s++) { col += pos[s][i]; }
        col === present[i];
    }
    for (var s = 0; s < N; s++) {
        var row = 0;
        var slot = 0;
        var c = 0;
        for (var i = 0; i < N; i++) {
            pos[s][i] * (pos[s][i] - 1) === 0;
            pc[s][i] <== pos[s][i] * commitment[i];
            row += pos[s][i];
            slot += pos[s][i] * i;
            c += pc[s][i];
        }
        taken[s] <== row;
        taken[s] * (taken[s] - 1) === 0;
        slotAt[s] <== slot;
        commitAt[s] <== c;
        step[s] = Poseidon(3);
        step[s].inputs[0] <== acc[s];
        step[s].inputs[1] <== slotAt[s];
        step[s].inputs[2] <== commitAt[s];
        acc[s + 1] <== acc[s] + taken[s] * (step[s].out - acc[s]);
    }
    pub[0] <== acc[N];
    pub[1] <== modelOut;
    for (var g = 0; g < NW; g++) { pub[2 + g] <== p.e[6 + N + g]; }
}
