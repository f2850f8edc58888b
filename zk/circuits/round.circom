// SPDX-License-Identifier: GPL-3.0-or-later
// One aggregation round of fedmarket, proven with Groth16 (docs/PROTOCOL.md §2, §3, §5, §6; docs/ZK.md).
//
// Template parameters (compile-time, so part of the verifying key):
//   N       trainer slots (= verifier.maxTrainers())
//   D       proof-view length of every update and of v (the commitments' h_0)
//   BITS    quantization width; every value is range-checked to [0, 2^BITS) in offset form
//   F, M    Multi-Krum's f and m (m = 0: m_eff = max(1, n0 - f))
//   TAU     tau_pct (0: plain Multi-Krum)
// Single public signal: PROTOCOL §6's publicInput = sha256(data) >> 3.
pragma circom 2.1.0;

include "circomlib/circuits/poseidon.circom";
include "circomlib/circuits/bitify.circom";
include "circomlib/circuits/comparators.circom";
include "circomlib/circuits/sha256/sha256.circom";

// Number of bits needed to write x (x >= 0, compile time).
function bitlen(x) {
    var n = 0;
    var y = x;
    while (y > 0) { n++; y = y \ 2; }
    return n;
}

function gcd(a, b) {
    var x = a;
    var y = b;
    while (y > 0) { var t = x % y; x = y; y = t; }
    return x;
}

// lcm(1..n), the Q of PROTOCOL §3.
function lcmUpTo(n) {
    var q = 1;
    for (var i = 2; i <= n; i++) { q = q * i \ gcd(q, i); }
    return q;
}

// Asserts 0 <= in < 2^n (in the integers, for inputs known to be below p - 2^n).
template Range(n) {
    signal input in;
    component b = Num2Bits(n);
    b.in <== in;
}

// PROTOCOL §2: range-checks D offset values to BITS bits and returns their Poseidon(16) chain.
template Commit(D, BITS) {
    signal input o[D];
    signal output out;

    var PER = 252 \ BITS;
    var NELEM = (D + PER - 1) \ PER;
    var NBLK = NELEM == 0 ? 1 : (NELEM + 14) \ 15;

    component rc[D];
    for (var k = 0; k < D; k++) { rc[k] = Range(BITS); rc[k].in <== o[k]; }

    component h[NBLK];
    for (var b = 0; b < NBLK; b++) {
        h[b] = Poseidon(16);
        if (b == 0) { h[b].inputs[0] <== D; } else { h[b].inputs[0] <== h[b - 1].out; }
        for (var e = 0; e < 15; e++) {
            var idx = 15 * b + e;
            var lc = 0;
            for (var j = 0; j < PER; j++) {
                if (idx * PER + j < D) { lc += o[idx * PER + j] * (1 << (BITS * j)); }
            }
            h[b].inputs[1 + e] <== lc;
        }
    }
    out <== h[NBLK - 1].out;
}

// One-hot decoding of 0 <= x <= n: e[c] = (x == c).
template OneHot(n) {
    signal input x;
    signal output e[n + 1];
    component eq[n + 1];
    for (var c = 0; c <= n; c++) {
        eq[c] = IsEqual();
        eq[c].in[0] <== x;
        eq[c].in[1] <== c;
        e[c] <== eq[c].out;
    }
}

// The round statement; see the header and docs/ZK.md for what each block proves.
template RoundProof(N, D, BITS, F, M, TAU) {
    var OFF = 1 << (BITS - 1);
    var DB = 2 * BITS + bitlen(D);              // dist(i, j) < 2^DB
    var KB = DB + bitlen(N);                    // krum(i) < 2^KB
    var CB = KB + bitlen(N) + 1;                // composite keys krum * N + i
    var TB = KB + 7 + bitlen(TAU);              // 100 * krum and TAU * s_ref
    var QN = lcmUpTo(N);
    var RB = bitlen(N * (N - 1) * QN);          // remainders < D_n

    signal output pub;

    signal input chainId;
    signal input marketplace;
    signal input projectId;
    signal input round;
    signal input nTrainers;
    signal input vCommit;
    signal input v[D];                          // offset form
    signal input commitment[N];
    signal input flag[N];
    signal input score[N];                      // signed, as field elements
    signal input u[N][D];                       // offset form; zeros for empty and invalid slots
    signal input nb[N][N];                      // Krum neighbour masks
    signal input kth[N];                        // k-th smallest distance of each valid slot
    signal input sel[N];                        // Multi-Krum selection
    signal input ref[N];                        // the m_eff-th selected slot (one-hot)
    signal input rem[N];                        // score remainders

    // ---- v binds to vCommit ----
    component vc = Commit(D, BITS);
    for (var k = 0; k < D; k++) { vc.o[k] <== v[k]; }
    vc.out === vCommit;

    // ---- slot status: present, flag in {0,1,2}, valid = present and flag != 2 ----
    signal present[N];
    signal isTwo[N];
    signal valid[N];
    signal f01[N];
    component cz[N];
    component uc[N];
    for (var i = 0; i < N; i++) {
        cz[i] = IsZero();
        cz[i].in <== commitment[i];
        present[i] <== 1 - cz[i].out;
        f01[i] <== flag[i] * (flag[i] - 1);
        f01[i] * (flag[i] - 2) === 0;
        isTwo[i] <== f01[i] / 2;
        valid[i] <== present[i] * (1 - isTwo[i]);
        cz[i].out * flag[i] === 0;              // absent: flag 0 (score 0 follows below)
        uc[i] = Commit(D, BITS);
        for (var k = 0; k < D; k++) { uc[i].o[k] <== u[i][k]; }
        (uc[i].out - commitment[i]) * valid[i] === 0;
    }
    var n0 = 0;
    for (var i = 0; i < N; i++) { n0 += valid[i]; }
    component hot0 = OneHot(N);
    hot0.x <== n0;
    var kk = 0;
    var meff = 0;
    var hasRef = 0;
    for (var c = 0; c <= N; c++) {
        var kc = c - F - 2 < c - 1 ? c - F - 2 : c - 1;
        if (kc < 0) { kc = 0; }
        var mc = M > 0 ? M : (c - F > 1 ? c - F : 1);
        if (mc > c) { mc = c; }
        kk += hot0.e[c] * kc;
        meff += hot0.e[c] * mc;
        hasRef += hot0.e[c] * (mc > 0 ? 1 : 0);
    }

    // ---- pairwise squared distances ----
    signal dist[N][N];
    signal dsq[N][N][D];
    signal vp[N][N];
    for (var i = 0; i < N; i++) {
        for (var j = i + 1; j < N; j++) {
            var acc = 0;
            for (var k = 0; k < D; k++) {
                dsq[i][j][k] <== (u[i][k] - u[j][k]) * (u[i][k] - u[j][k]);
                acc += dsq[i][j][k];
            }
            dist[i][j] <== acc;
            dist[j][i] <== acc;
            vp[i][j] <== valid[i] * valid[j];
            vp[j][i] <== vp[i][j];
        }
    }

    // ---- krum(i) = sum of the k smallest dist(i, j): mask nb, threshold kth ----
    signal krum[N];
    signal nbd[N][N];
    signal w[N][N];
    signal xg[N][N];
    signal kv[N];
    component rcmp[N][N];
    for (var i = 0; i < N; i++) {
        var cnt = 0;
        var ks = 0;
        nb[i][i] === 0;
        for (var j = 0; j < N; j++) {
            if (j != i) {
                nb[i][j] * (nb[i][j] - 1) === 0;
                nb[i][j] * (1 - vp[i][j]) === 0;
                cnt += nb[i][j];
                nbd[i][j] <== nb[i][j] * dist[i][j];
                ks += nbd[i][j];
                // nb = 1: dist <= kth; nb = 0: dist >= kth (only between valid slots)
                w[i][j] <== nb[i][j] * (kth[i] - dist[i][j]);
                xg[i][j] <== vp[i][j] * (dist[i][j] - kth[i] + 2 * w[i][j]);
                rcmp[i][j] = Range(DB + 1);
                rcmp[i][j].in <== xg[i][j];
            }
        }
        kv[i] <== kk * valid[i];
        cnt === kv[i];
        krum[i] <== ks;
    }

    // ---- selection: the m_eff smallest keys krum * N + i; ref is the largest of them ----
    var selCount = 0;
    var refCount = 0;
    var tKey = 0;
    var refIdx = 0;
    signal refKey[N];
    for (var i = 0; i < N; i++) {
        sel[i] * (sel[i] - 1) === 0;
        sel[i] * (1 - valid[i]) === 0;
        ref[i] * (ref[i] - 1) === 0;
        ref[i] * (1 - sel[i]) === 0;
        selCount += sel[i];
        refCount += ref[i];
        refKey[i] <== ref[i] * (krum[i] * N + i);
        tKey += refKey[i];
        refIdx += ref[i] * i;
    }
    selCount === meff;
    refCount === hasRef;
    signal T;
    T <== tKey;
    signal sRef;
    sRef <== (T - refIdx) / N;
    signal ya[N];
    signal yb[N];
    component rsel[N];
    for (var i = 0; i < N; i++) {
        ya[i] <== sel[i] * (T - krum[i] * N - i);
        yb[i] <== (valid[i] - sel[i]) * (krum[i] * N + i - T - 1);
        rsel[i] = Range(CB);
        rsel[i].in <== ya[i] + yb[i];
    }

    // ---- outliers, flags, accepted set ----
    signal outlier[N];
    signal acc[N];
    component gt[N];
    for (var i = 0; i < N; i++) {
        if (TAU == 0) {
            outlier[i] <== valid[i] - sel[i];
        } else {
            gt[i] = LessThan(TB);
            gt[i].in[0] <== TAU * sRef;
            gt[i].in[1] <== 100 * krum[i];
            outlier[i] <== (valid[i] - sel[i]) * gt[i].out;
        }
        flag[i] - 2 * isTwo[i] === outlier[i];  // flag 1 exactly for the outliers
        acc[i] <== valid[i] - outlier[i];
    }

    // ---- scores: first-order Shapley, floor(N_i / D_n) ----
    signal a[N];
    signal prod[N][D];
    for (var i = 0; i < N; i++) {
        var s = 0;
        for (var k = 0; k < D; k++) {
            prod[i][k] <== (v[k] - OFF) * (u[i][k] - OFF);
            s += prod[i][k];
        }
        a[i] <== s;
    }
    var nAcc = 0;
    for (var i = 0; i < N; i++) { nAcc += acc[i]; }
    component hot1 = OneHot(N);
    hot1.x <== nAcc;
    var c1 = 0;
    var c2 = 0;
    var dn = 0;
    for (var c = 0; c <= N; c++) {
        var q = lcmUpTo(c);
        var p = 0;
        for (var t = 2; t <= c; t++) { p += q \ t; }
        c1 += hot1.e[c] * (c >= 2 ? (c - 1) * q : (c == 1 ? 1 : 0));
        c2 += hot1.e[c] * (c >= 2 ? p : 0);
        dn += hot1.e[c] * (c >= 2 ? c * (c - 1) * q : 1);
    }
    signal C1;
    signal C2;
    signal DN;
    C1 <== c1;
    C2 <== c2;
    DN <== dn;
    var sumA = 0;
    signal aa[N];
    for (var i = 0; i < N; i++) { aa[i] <== acc[i] * a[i]; sumA += aa[i]; }
    signal S;
    S <== sumA;
    signal t1[N];
    signal t2[N];
    signal t3[N];
    signal num[N];
    signal qd[N];
    component rr[N];
    component rd[N];
    component sb[N];
    for (var i = 0; i < N; i++) {
        t1[i] <== C1 * aa[i];
        t2[i] <== nAcc * aa[i];
        t3[i] <== C2 * (t2[i] - S);
        num[i] <== acc[i] * (t1[i] + t3[i]);
        qd[i] <== score[i] * DN;
        num[i] === qd[i] + rem[i];
        rr[i] = Range(RB);
        rr[i].in <== rem[i];
        rd[i] = Range(RB);
        rd[i].in <== DN - 1 - rem[i];
        sb[i] = Num2Bits(64);                   // score is an int64 (also its bits below)
        sb[i].in <== score[i] + (1 << 63);
    }

    // ---- public input: sha256 over PROTOCOL §6's data, top 253 bits ----
    var NB = 8 * (8 + 20 + 8 + 4 + 32 + 2 + 40 * N);
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
    component bV = Num2Bits_strict();
    bV.in <== vCommit;
    sha.in[pos] <== 0; pos++;
    sha.in[pos] <== 0; pos++;
    for (var b = 253; b >= 0; b--) { sha.in[pos] <== bV.out[b]; pos++; }
    component bN = Num2Bits(16);
    bN.in <== nTrainers;
    for (var b = 15; b >= 0; b--) { sha.in[pos] <== bN.out[b]; pos++; }
    component bC[N];
    for (var i = 0; i < N; i++) {
        bC[i] = Num2Bits_strict();
        bC[i].in <== commitment[i];
        sha.in[pos] <== isTwo[i]; pos++;        // flag << 254, flag in {0,1,2}
        sha.in[pos] <== flag[i] - 2 * isTwo[i]; pos++;
        for (var b = 253; b >= 0; b--) { sha.in[pos] <== bC[i].out[b]; pos++; }
        sha.in[pos] <== 1 - sb[i].out[63]; pos++;  // two's complement sign bit
        for (var b = 62; b >= 0; b--) { sha.in[pos] <== sb[i].out[b]; pos++; }
    }
    var acc253 = 0;
    for (var b = 0; b < 253; b++) { acc253 += sha.out[b] * (1 << (252 - b)); }
    pub <== acc253;
}
