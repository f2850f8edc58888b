// SPDX-License-Identifier: GPL-3.0-or-later
// One aggregation round of fedmarket, proven with Groth16 (docs/PROTOCOL.md §2, §3, §5, §6; docs/ZK.md).
//
// Template parameters (compile-time, so part of the verifying key):
//   N       trainer slots (= verifier.maxTrainers())
//   D       proof-view length of every update, of v and of h (the updates' commitments' h_0)
//   BITS    quantization width; every value is range-checked to [0, 2^BITS) in offset form
//   F, M    Multi-Krum's f and m (m = 0: m_eff = max(1, n0 - f))
//   TAU     tau_pct (0: plain Multi-Krum)
//   DUP     dup_pct of the copy rule (0: no copy constraints at all)
//   FLOOR   floor_pct of the norm floor (0: no floor constraints at all)
// Flags (PROTOCOL §5): 0 accepted or absent, 1 slashed (a low update), 2 invalid blob (the aggregator's
// claim), 3 excluded (a copy, within the public span of v, the last step and the split step h, against v, or a
// Multi-Krum outlier).
// The public-span screen's threshold PUB and fixed-point bits RK are protocol constants (set where it is proven).
// N <= 126: scores stay unique (2^64 D(n) < p, PROTOCOL §3); asserted at compile time.
// The model's view is fixed point MB = min(BITS + 8, 24) bits wide (PROTOCOL §3's average).
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

// PROTOCOL §3 copy test of slot i against slot j: seq_j < seq_i and 100 * dist(i, j) < DUP * nsq(j),
// for a valid pair (vpair = valid_i * valid_j). seq < 2^8 and dist, nsq < 2^DB (range-checked or
// built from range-checked values by the caller), so both comparators see operands below their width:
// 100 * dist < 2^(DB + 7), DUP * nsq < 2^(DB + bitlen(DUP)). Both outputs are forced (Num2Bits).
template CopyOf(DB, DUP) {
    signal input vpair;
    signal input seqI;
    signal input seqJ;
    signal input dist;
    signal input nsqJ;
    signal output out;
    component earlier = LessThan(8);
    earlier.in[0] <== seqJ;
    earlier.in[1] <== seqI;
    component close = LessThan(DB + 7 + bitlen(DUP));
    close.in[0] <== 100 * dist;
    close.in[1] <== DUP * nsqJ;
    signal e;
    e <== vpair * earlier.out;
    out <== e * close.out;
}

// The round statement; see the header and docs/ZK.md for what each block proves.
template RoundProof(N, D, BITS, F, M, TAU, DUP, FLOOR) {
    assert(N <= 126);
    var OFF = 1 << (BITS - 1);
    var MB = BITS + 8 < 24 ? BITS + 8 : 24;     // model view width (PROTOCOL §3)
    var DB = 2 * BITS + bitlen(D);              // dist(i, j) < 2^DB, nsq(i) <= D 2^(2 BITS - 2) < 2^DB
    var KB = DB + bitlen(N);                    // krum(i) < 2^KB
    var CB = KB + bitlen(N) + 1;                // composite keys krum * N + i
    var TB = KB + 7 + bitlen(TAU);              // 100 * krum and TAU * s_ref
    var NK = DB + bitlen(N) + 1;                // norm keys nsq * N + i
    var FB = DB + 7 + bitlen(FLOOR);            // 100 * nsq(i) and FLOOR * nsq(med)
    var QN = lcmUpTo(N);
    var RB = bitlen(N * (N - 1) * QN);          // remainders < D_n

    signal output pub;

    signal input chainId;
    signal input marketplace;
    signal input projectId;
    signal input round;
    signal input nTrainers;
    signal input vCommit;
    signal input modelPrev;                     // commitment to g(r-2)'s view: the previous step starts there
    signal input modelIn;                       // commitment to g(r-1)'s view (MB-bit offset form)
    signal input modelOut;                      // commitment to g(r)'s view
    signal input v[D];                          // offset form
    signal input h[D];                          // the split step (PROTOCOL §4), offset form
    signal input mPrev[D];                      // g(r-2)'s view, fixed point, MB-bit offset form
    signal input mIn[D];                        // g(r-1)'s view, fixed point, MB-bit offset form
    signal input mOut[D];                       // g(r)'s view
    signal input mRem[D];                       // remainders of the average's floor division
    signal input commitment[N];
    signal input flag[N];
    signal input score[N];                      // signed, as field elements
    signal input seq[N];                        // submission ranks (PROTOCOL §6), 0 for absent slots
    signal input u[N][D];                       // offset form; zeros for empty and invalid slots
    signal input nb[N][N];                      // Krum neighbour masks (Krum members only)
    signal input kth[N];                        // k-th smallest distance of each Krum member
    signal input sel[N];                        // Multi-Krum selection
    signal input ref[N];                        // the m_eff-th selected slot (one-hot)
    signal input med[N];                        // the lower median of C by squared norm (one-hot; FLOOR > 0)
    signal input amed[N];                       // the median cap's slot: accepted a of rank |A| \ 2 (one-hot)
    signal input rem[N];                        // score remainders
    signal input nov[N];                        // novel inner products a'_i (signed, as field elements)
    signal input nrem[N];                       // their remainders
    signal input res[N];                        // public-span residual shares, RK-bit fixed point (PROTOCOL §3)
    signal input rres[N];                       // their remainders
    signal input pmed[N];                       // the lower median of the screened updates by residual (one-hot)

    // ---- v and h bind to vCommit: the §2 commitment of the 2D values v then h (PROTOCOL §4) ----
    component vc = Commit(2 * D, BITS);
    for (var k = 0; k < D; k++) { vc.o[k] <== v[k]; vc.o[D + k] <== h[k]; }
    vc.out === vCommit;

    // ---- v is normalised (PROTOCOL §4): some |v_k| = 2^(BITS-1) - 1, i.e. offset 1 or 2^BITS - 1, so v != 0 ----
    signal vEdge[D];
    signal vAll[D];
    for (var k = 0; k < D; k++) {
        vEdge[k] <== (v[k] - 1) * (v[k] - (2 * OFF - 1));
        if (k == 0) { vAll[k] <== vEdge[k]; } else { vAll[k] <== vAll[k - 1] * vEdge[k]; }
    }
    vAll[D - 1] === 0;

    // ---- slot status: present, flag = fb0 + 2 fb1 in {0,1,2,3}, valid = present and flag != 2 ----
    signal present[N];
    signal fb0[N];
    signal fb1[N];
    signal isTwo[N];
    signal slashF[N];
    signal exclF[N];
    signal valid[N];
    component cz[N];
    component uc[N];
    component fbits[N];
    for (var i = 0; i < N; i++) {
        cz[i] = IsZero();
        cz[i].in <== commitment[i];
        present[i] <== 1 - cz[i].out;
        fbits[i] = Num2Bits(2);
        fbits[i].in <== flag[i];
        fb0[i] <== fbits[i].out[0];
        fb1[i] <== fbits[i].out[1];
        exclF[i] <== fb0[i] * fb1[i];           // flag 3
        isTwo[i] <== fb1[i] - exclF[i];         // flag 2
        slashF[i] <== fb0[i] - exclF[i];        // flag 1
        valid[i] <== present[i] * (1 - isTwo[i]);
        cz[i].out * flag[i] === 0;              // absent: flag 0 (score 0 follows below)
        cz[i].out * seq[i] === 0;               // absent: seq 0 (seq < 2^8: bSeq in the hash block)
        uc[i] = Commit(D, BITS);
        for (var k = 0; k < D; k++) { uc[i].o[k] <== u[i][k]; }
        (uc[i].out - commitment[i]) * valid[i] === 0;
    }

    // ---- pairwise squared distances ----
    signal dist[N][N];
    signal dsq[N][N][D];
    for (var i = 0; i < N; i++) {
        for (var j = i + 1; j < N; j++) {
            var acc = 0;
            for (var k = 0; k < D; k++) {
                dsq[i][j][k] <== (u[i][k] - u[j][k]) * (u[i][k] - u[j][k]);
                acc += dsq[i][j][k];
            }
            dist[i][j] <== acc;
            dist[j][i] <== acc;
        }
    }

    // ---- squared norms nsq(i) = sum (u - OFF)^2 (D constraints per slot; the screens use them) ----
    var nsq[N];
    signal usq[N][D];
    for (var i = 0; i < N; i++) {
        nsq[i] = 0;
        for (var k = 0; k < D; k++) {
            usq[i][k] <== (u[i][k] - OFF) * (u[i][k] - OFF);
            nsq[i] += usq[i][k];
        }
    }

    // ---- copies: dup(i) = OR_j valid_i valid_j (seq_j < seq_i) (100 dist(i, j) < DUP nsq(j)) ----
    // The OR is "sum of the N - 1 pair bits != 0" (IsZero; the sum is < N, no wrap-around).
    // cin = valid and not a copy: the set C. dup(i) <= valid(i), so cin is linear.
    signal dup[N];
    signal cin[N];
    if (DUP > 0) {
        signal vp[N][N];
        component cpy[N][N];
        component anyCopy[N];
        for (var i = 0; i < N; i++) {
            for (var j = i + 1; j < N; j++) { vp[i][j] <== valid[i] * valid[j]; }
        }
        for (var i = 0; i < N; i++) {
            var cnt = 0;
            for (var j = 0; j < N; j++) {
                if (j != i) {
                    cpy[i][j] = CopyOf(DB, DUP);
                    if (j > i) { cpy[i][j].vpair <== vp[i][j]; } else { cpy[i][j].vpair <== vp[j][i]; }
                    cpy[i][j].seqI <== seq[i];
                    cpy[i][j].seqJ <== seq[j];
                    cpy[i][j].dist <== dist[i][j];
                    cpy[i][j].nsqJ <== nsq[j];
                    cnt += cpy[i][j].out;
                }
            }
            anyCopy[i] = IsZero();
            anyCopy[i].in <== cnt;
            dup[i] <== 1 - anyCopy[i].out;
        }
    } else {
        for (var i = 0; i < N; i++) { dup[i] <== 0; }
    }
    for (var i = 0; i < N; i++) { cin[i] <== valid[i] - dup[i]; }

    // ---- norm floor: med = the lower median of C by key nsq * N + i (hint, one-hot), proven by
    // counting: exactly (|C| - 1) \ 2 members of C have a smaller key (keys are distinct, so this
    // pins one element). low(i) = cin(i) (100 nsq(i) < FLOOR nsq(med)). kf = cin - low.
    // Keys < N (2^DB + 1) <= 2^NK; 100 nsq < 2^(DB + 7) and FLOOR nsq(med) < 2^(DB + bitlen(FLOOR)).
    signal low[N];
    signal kin[N];
    if (FLOOR > 0) {
        var c = 0;
        for (var i = 0; i < N; i++) { c += cin[i]; }
        component hotC = OneHot(N);
        hotC.x <== c;
        var rank = 0;
        for (var t = 1; t <= N; t++) { rank += hotC.e[t] * ((t - 1) \ 2); }
        var medCount = 0;
        var medKey = 0;
        var medIdx = 0;
        signal medKeyPart[N];
        for (var i = 0; i < N; i++) {
            med[i] * (med[i] - 1) === 0;
            med[i] * (1 - cin[i]) === 0;
            medCount += med[i];
            medKeyPart[i] <== med[i] * (nsq[i] * N + i);
            medKey += medKeyPart[i];
            medIdx += med[i] * i;
        }
        medCount === 1 - hotC.e[0];             // one median when C is not empty, else none
        signal keyMed;
        keyMed <== medKey;
        signal nsqMed;
        nsqMed <== (keyMed - medIdx) / N;       // = nsq(med) (0 when C is empty)
        component smaller[N];
        component under[N];
        signal isSmaller[N];
        var nSmaller = 0;
        for (var i = 0; i < N; i++) {
            smaller[i] = LessThan(NK);
            smaller[i].in[0] <== nsq[i] * N + i;
            smaller[i].in[1] <== keyMed;
            isSmaller[i] <== cin[i] * smaller[i].out;
            nSmaller += isSmaller[i];
            under[i] = LessThan(FB);
            under[i].in[0] <== 100 * nsq[i];
            under[i].in[1] <== FLOOR * nsqMed;
            low[i] <== cin[i] * under[i].out;
        }
        nSmaller === rank;
    } else {
        for (var i = 0; i < N; i++) { low[i] <== 0; }
    }
    signal kf[N];
    for (var i = 0; i < N; i++) { kf[i] <== cin[i] - low[i]; }

    // ---- a_i = <v, u_i> (the direction test and the scores) ----
    // |a| < 2^AB, so a + SH in (0, 2^(AB+1)): comparisons below never wrap around.
    var AB = 2 * BITS + bitlen(D);
    var SH = 1 << AB;
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

    // ---- the previous proven step s = mIn - mPrev (PROTOCOL §3): ss = <s, s>, vs = <v, s>, su_i = <s, u_i>.
    // |s_k| < 2^MB, so ss < 2^SB. ----
    var SB = 2 * MB + bitlen(D);
    component mpc = Commit(D, MB);
    signal sk[D];
    signal ssq[D];
    signal vsk[D];
    signal vvk[D];
    signal usk[N][D];
    var ssAcc = 0;
    var vsAcc = 0;
    var vvAcc = 0;
    for (var k = 0; k < D; k++) {
        mpc.o[k] <== mPrev[k];
        sk[k] <== mIn[k] - mPrev[k];
        ssq[k] <== sk[k] * sk[k];
        ssAcc += ssq[k];
        vsk[k] <== (v[k] - OFF) * sk[k];
        vsAcc += vsk[k];
        vvk[k] <== (v[k] - OFF) * (v[k] - OFF);
        vvAcc += vvk[k];
    }
    mpc.out === modelPrev;
    signal ss;
    ss <== ssAcc;
    signal vs;
    vs <== vsAcc;
    signal vv;
    vv <== vvAcc;
    signal su[N];
    for (var i = 0; i < N; i++) {
        var acs = 0;
        for (var k = 0; k < D; k++) {
            usk[i][k] <== (u[i][k] - OFF) * sk[k];
            acs += usk[i][k];
        }
        su[i] <== acs;
    }

    // ---- the split step h (PROTOCOL §4): hh, vh, sh and hu_i = <h, u_i> (|h_k| < 2^(BITS-1), as v's) ----
    signal hhk[D];
    signal vhk[D];
    signal shk[D];
    signal uhk[N][D];
    var hhAcc = 0;
    var vhAcc = 0;
    var shAcc = 0;
    for (var k = 0; k < D; k++) {
        hhk[k] <== (h[k] - OFF) * (h[k] - OFF);
        hhAcc += hhk[k];
        vhk[k] <== (v[k] - OFF) * (h[k] - OFF);
        vhAcc += vhk[k];
        shk[k] <== sk[k] * (h[k] - OFF);
        shAcc += shk[k];
    }
    signal hh;
    hh <== hhAcc;
    signal vh;
    vh <== vhAcc;
    signal sh;
    sh <== shAcc;
    signal hu[N];
    for (var i = 0; i < N; i++) {
        var ach = 0;
        for (var k = 0; k < D; k++) {
            uhk[i][k] <== (u[i][k] - OFF) * (h[k] - OFF);
            ach += uhk[i][k];
        }
        hu[i] <== ach;
    }

    // ---- public-span screen (PROTOCOL §3; aggregator/rules/screen.py span_basis, PUBLIC_PCT, RESIDUAL_BITS): the
    // basis is v, then s if det2 = det(v, s) = vv ss - vs^2 != 0, then h if det3 = det(v, s, h) != 0; when det2 = 0,
    // {v, h} if e2 = vv hh - vh^2 != 0, else {v}. With the basis's Gram determinant dS and adjugate S (3 x 3 in
    // (v, s, h) order, zeros for the vectors left out) and c_i = (a_i, su_i, hu_i): q_i = dS nsq(i) and num_i = q_i -
    // c_i^T S c_i, the Gram determinant of the basis and u_i (>= 0). res_i = floor(2^RK num_i / q_i) (2^RK when
    // q_i = 0): res q + rres = num 2^RK, 0 <= rres < q. dS < 2^DTB and q < 2^QB; every product stays below
    // 2^(QB + RK + 2) << p. pmed is the lower median of the set of kf by the key res * N + i (one-hot hint, proven
    // by counting as the floor's); pubF(i) = kf(i) (100 res_i < PUB res(pmed)).
    var PUB = 40;
    var RK = 20;
    var VB = 2 * BITS + bitlen(D);              // vv, hh < 2^VB
    var DTB = 2 * VB + SB;
    var QB = DTB + DB;
    assert(QB + RK + 2 < 252);
    var PK = RK + 2 + bitlen(N);
    signal vvss;
    vvss <== vv * ss;
    signal vs2;
    vs2 <== vs * vs;
    signal det;
    det <== vvss - vs2;                         // det2, the adjugate's (h, h) entry
    signal sh2;
    sh2 <== sh * sh;
    signal adj00;
    adj00 <== ss * hh - sh2;
    signal vh2;
    vh2 <== vh * vh;
    signal e2;
    e2 <== vv * hh - vh2;                       // the adjugate's (s, s) entry
    signal adjA;
    adjA <== vh * sh;
    signal adj01;
    adj01 <== adjA - vs * hh;
    signal adjB;
    adjB <== vs * sh;
    signal adj02;
    adj02 <== adjB - ss * vh;
    signal adjC;
    adjC <== vs * vh;
    signal adj12;
    adj12 <== adjC - vv * sh;
    signal d3a;
    d3a <== vv * adj00;
    signal d3b;
    d3b <== vs * adj01;
    signal det3;
    det3 <== d3a + d3b + vh * adj02;
    component detZero = IsZero();
    detZero.in <== det;
    component det3Zero = IsZero();
    det3Zero.in <== det3;
    component e2Zero = IsZero();
    e2Zero.in <== e2;
    signal w1;                                  // {v, s, h}
    w1 <== (1 - detZero.out) * (1 - det3Zero.out);
    signal w2;                                  // {v, s}
    w2 <== 1 - detZero.out - w1;
    signal w3;                                  // {v, h}
    w3 <== detZero.out * (1 - e2Zero.out);
    signal w4;                                  // {v}
    w4 <== detZero.out - w3;
    signal dS1;
    dS1 <== w1 * det3;
    signal dS2;
    dS2 <== w2 * det;
    signal dS3;
    dS3 <== w3 * e2;
    signal dS;
    dS <== dS1 + dS2 + dS3 + w4 * vv;
    signal S00a;
    S00a <== w1 * adj00;
    signal S00b;
    S00b <== w2 * ss;
    signal S00c;
    S00c <== w3 * hh;
    signal S00;
    S00 <== S00a + S00b + S00c + w4;
    signal S11a;
    S11a <== w1 * e2;
    signal S11;
    S11 <== S11a + w2 * vv;
    signal S22a;
    S22a <== w1 * det;
    signal S22;
    S22 <== S22a + w3 * vv;
    signal S01a;
    S01a <== w1 * adj01;
    signal S01;
    S01 <== S01a - w2 * vs;
    signal S02a;
    S02a <== w1 * adj02;
    signal S02;
    S02 <== S02a - w3 * vh;
    signal S12;
    S12 <== w1 * adj12;
    signal a2[N];
    signal su2[N];
    signal hu2[N];
    signal asu[N];
    signal ahu[N];
    signal suhu[N];
    signal pj0[N];
    signal pj1[N];
    signal pj2[N];
    signal pj3[N];
    signal pj4[N];
    signal pj5[N];
    signal pq[N];
    signal pnum[N];
    signal resq[N];
    component qZero[N];
    component resR[N];
    component rresR[N];
    component rresLt[N];
    for (var i = 0; i < N; i++) {
        a2[i] <== a[i] * a[i];
        su2[i] <== su[i] * su[i];
        hu2[i] <== hu[i] * hu[i];
        asu[i] <== a[i] * su[i];
        ahu[i] <== a[i] * hu[i];
        suhu[i] <== su[i] * hu[i];
        pj0[i] <== S00 * a2[i];
        pj1[i] <== S11 * su2[i];
        pj2[i] <== S22 * hu2[i];
        pj3[i] <== S01 * asu[i];
        pj4[i] <== S02 * ahu[i];
        pj5[i] <== S12 * suhu[i];
        pq[i] <== dS * nsq[i];
        pnum[i] <== pq[i] - (pj0[i] + pj1[i] + pj2[i] + 2 * (pj3[i] + pj4[i] + pj5[i]));
        qZero[i] = IsZero();
        qZero[i].in <== pq[i];
        resq[i] <== res[i] * pq[i];
        resq[i] + rres[i] === pnum[i] * (1 << RK);
        (res[i] - (1 << RK)) * qZero[i].out === 0;
        resR[i] = Range(RK + 1);
        resR[i].in <== res[i];
        rresR[i] = Range(QB);
        rresR[i].in <== rres[i];
        rresLt[i] = LessThan(QB + 1);
        rresLt[i].in[0] <== rres[i];
        rresLt[i].in[1] <== pq[i] + qZero[i].out;
        rresLt[i].out === 1;
    }
    signal pubF[N];
    signal kg[N];
    var pC = 0;
    for (var i = 0; i < N; i++) { pC += kf[i]; }
    component hotP = OneHot(N);
    hotP.x <== pC;
    var pRank = 0;
    for (var t = 1; t <= N; t++) { pRank += hotP.e[t] * ((t - 1) \ 2); }
    var pCount = 0;
    var pKey = 0;
    var pIdx = 0;
    signal pKeyPart[N];
    for (var i = 0; i < N; i++) {
        pmed[i] * (pmed[i] - 1) === 0;
        pmed[i] * (1 - kf[i]) === 0;
        pCount += pmed[i];
        pKeyPart[i] <== pmed[i] * (res[i] * N + i);
        pKey += pKeyPart[i];
        pIdx += pmed[i] * i;
    }
    pCount === 1 - hotP.e[0];               // one median when the set is not empty, else none
    signal keyP;
    keyP <== pKey;
    signal resMed;
    resMed <== (keyP - pIdx) / N;           // = res(pmed) (0 when the set is empty)
    component pSmaller[N];
    component pUnder[N];
    signal pIsSmaller[N];
    var pSmallerCount = 0;
    for (var i = 0; i < N; i++) {
        pSmaller[i] = LessThan(PK);
        pSmaller[i].in[0] <== res[i] * N + i;
        pSmaller[i].in[1] <== keyP;
        pIsSmaller[i] <== kf[i] * pSmaller[i].out;
        pSmallerCount += pIsSmaller[i];
        pUnder[i] = LessThan(RK + 9);
        pUnder[i].in[0] <== 100 * res[i];
        pUnder[i].in[1] <== PUB * resMed;
        pubF[i] <== kf[i] * pUnder[i].out;
        kg[i] <== kf[i] - pubF[i];
    }
    pSmallerCount === pRank;

    // ---- direction test: against(i) = kg(i) (a_i <= 0); kin = kg - against: the set K of Multi-Krum ----
    signal against[N];
    component notUp[N];
    for (var i = 0; i < N; i++) {
        notUp[i] = LessThan(AB + 1);
        notUp[i].in[0] <== a[i] + SH;
        notUp[i].in[1] <== SH + 1;
        against[i] <== kg[i] * notUp[i].out;
        kin[i] <== kg[i] - against[i];
    }

    // ---- Multi-Krum over K (valid, not a copy, not low): n0 = |K|, k(n0), m_eff(n0) from one-hot tables ----
    signal kp[N][N];                            // both in K
    for (var i = 0; i < N; i++) {
        for (var j = i + 1; j < N; j++) {
            kp[i][j] <== kin[i] * kin[j];
            kp[j][i] <== kp[i][j];
        }
    }
    // k = min(k(nJ), max(n0 - 1, 0)) and m_eff = max(1, n0 - (nJ - m(nJ))) (0 when K is empty), with the table
    // values of nJ = nTrainers, the joined trainers (PROTOCOL §3): the updates the screens take out and the
    // trainers who keep theirs or are away leave k and the unselected places as they are; one LessThan each.
    var n0 = 0;
    for (var i = 0; i < N; i++) { n0 += kin[i]; }
    component hotJ = OneHot(N);
    hotJ.x <== nTrainers;
    component hot0 = OneHot(N);
    hot0.x <== n0;
    var kt = 0;
    var mt = 0;
    for (var c = 0; c <= N; c++) {
        var kc = c - F - 2 < c - 1 ? c - F - 2 : c - 1;
        if (kc < 0) { kc = 0; }
        var mc = M > 0 ? M : (c - F > 1 ? c - F : 1);
        if (mc > c) { mc = c; }
        kt += hotJ.e[c] * kc;
        mt += hotJ.e[c] * mc;
    }
    signal nm1;
    nm1 <== n0 - 1 + hot0.e[0];                 // max(n0 - 1, 0)
    component kLess = LessThan(bitlen(N) + 1);
    kLess.in[0] <== kt;
    kLess.in[1] <== nm1 + 1;
    signal kPick;
    kPick <== kLess.out * (kt - nm1);
    signal kk;
    kk <== nm1 + kPick;                         // min(k(nJ), max(n0 - 1, 0))
    signal mx;
    mx <== n0 + mt - nTrainers;                 // n0 - (nJ - m(nJ)), in (-N, N]
    component mLow = LessThan(bitlen(N) + 2);
    mLow.in[0] <== mx + N;
    mLow.in[1] <== N + 1;                       // mx <= 0
    signal mPick;
    mPick <== mLow.out * (1 - hot0.e[0] - mx);
    signal meff;
    meff <== mx + mPick;                        // max(1, mx) when K is not empty, else 0
    component noRef = IsZero();
    noRef.in <== meff;
    var hasRef = 1 - noRef.out;

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
                nb[i][j] * (1 - kp[i][j]) === 0;
                cnt += nb[i][j];
                nbd[i][j] <== nb[i][j] * dist[i][j];
                ks += nbd[i][j];
                // nb = 1: dist <= kth; nb = 0: dist >= kth (only between members of K)
                w[i][j] <== nb[i][j] * (kth[i] - dist[i][j]);
                xg[i][j] <== kp[i][j] * (dist[i][j] - kth[i] + 2 * w[i][j]);
                rcmp[i][j] = Range(DB + 1);
                rcmp[i][j].in <== xg[i][j];
            }
        }
        kv[i] <== kk * kin[i];
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
        sel[i] * (1 - kin[i]) === 0;
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
        yb[i] <== (kin[i] - sel[i]) * (krum[i] * N + i - T - 1);
        rsel[i] = Range(CB);
        rsel[i].in <== ya[i] + yb[i];
    }

    // ---- Krum outliers: in K, not selected, and (TAU == 0 or 100 krum(i) > TAU s_ref) ----
    signal krumOut[N];
    component gt[N];
    for (var i = 0; i < N; i++) {
        if (TAU == 0) {
            krumOut[i] <== kin[i] - sel[i];
        } else {
            gt[i] = LessThan(TB);
            gt[i].in[0] <== TAU * sRef;
            gt[i].in[1] <== 100 * krum[i];
            krumOut[i] <== (kin[i] - sel[i]) * gt[i].out;
        }
    }

    // ---- outliers, flags, accepted set ----
    // copy, low, public, against and Krum outlier are mutually exclusive: a copy is outside C (cin = 0, so
    // low = 0), a copy or a low update has kf = 0 (so pubF = 0), a public one has kg = 0 (so against = 0), and
    // none of them is in K (kin = 0, so sel = 0 and krumOut = 0). Low updates are slashed (flag 1); copies and the others are excluded (flag 3):
    // rounds are sealed, so the later of two near-copies need not have copied (a replay of its author's last
    // update, committed first, makes an honest update the later one; PROTOCOL §3).
    signal outlier[N];
    signal acc[N];
    for (var i = 0; i < N; i++) {
        slashF[i] === low[i];
        exclF[i] === dup[i] + pubF[i] + against[i] + krumOut[i];
        outlier[i] <== slashF[i] + exclF[i];
        acc[i] <== valid[i] - outlier[i];
    }

    // ---- novelty (PROTOCOL §3): with ss, vs and su_i above, nov_i = floor((ss a_i - vs su_i) / ss), a_i when
    // ss = 0 (divisor dv = ss + [ss = 0]). |nov| <= |a| + |v||u| < 2^AB (Cauchy-Schwarz), range-checked, so
    // nov dv + nrem = numerator holds in the integers (all terms < 2^(SB + AB + 1) << p). ----
    component ssZero = IsZero();
    ssZero.in <== ss;
    signal dv;
    dv <== ss + ssZero.out;
    signal nt1[N];
    signal nt2[N];
    signal nt3[N];
    component nvr[N];
    component nrLo[N];
    component nrHi[N];
    for (var i = 0; i < N; i++) {
        nt1[i] <== ss * a[i];
        nt2[i] <== vs * su[i];
        nt3[i] <== ssZero.out * a[i];
        nov[i] * dv + nrem[i] === nt1[i] - nt2[i] + nt3[i];
        nvr[i] = Range(AB + 1);
        nvr[i].in <== nov[i] + SH;
        nrLo[i] = Range(SB);
        nrLo[i].in <== nrem[i];
        nrHi[i] = Range(SB);
        nrHi[i].in <== dv - 1 - nrem[i];
    }

    // ---- scores: first-order Shapley of the capped novel inner products, floor(N_i / D_n) ----
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
    // ---- median cap (PROTOCOL §3): amed = the accepted slot of rank |A| \ 2 by key (nov + SH) N + i, pinned by
    // counting (exactly that many accepted keys below it; keys are distinct); every accepted nov above nov(amed) is
    // capped at it. |nov| < 2^AB, so nov + SH in (0, 2^(AB+1)) and keys < 2^(AB+1) N: no wrap-around. ----
    var AK = AB + 2 + bitlen(N);
    var aRank = 0;
    for (var t = 1; t <= N; t++) { aRank += hot1.e[t] * (t \ 2); }
    var amCount = 0;
    var amKey = 0;
    var amIdx = 0;
    signal amKeyPart[N];
    for (var i = 0; i < N; i++) {
        amed[i] * (amed[i] - 1) === 0;
        amed[i] * (1 - acc[i]) === 0;
        amCount += amed[i];
        amKeyPart[i] <== amed[i] * ((nov[i] + SH) * N + i);
        amKey += amKeyPart[i];
        amIdx += amed[i] * i;
    }
    amCount === 1 - hot1.e[0];                  // one median when A is not empty, else none
    signal keyAM;
    keyAM <== amKey;
    signal aCap;
    aCap <== (keyAM - amIdx) / N - SH;          // a(amed) (-SH when A is empty: then nothing is capped)
    component aBelow[N];
    component aOver[N];
    signal isBelow[N];
    signal cut[N];
    signal ac[N];
    var nBelow = 0;
    for (var i = 0; i < N; i++) {
        aBelow[i] = LessThan(AK);
        aBelow[i].in[0] <== (nov[i] + SH) * N + i;
        aBelow[i].in[1] <== keyAM;
        isBelow[i] <== acc[i] * aBelow[i].out;
        nBelow += isBelow[i];
        aOver[i] = LessThan(AB + 2);
        aOver[i].in[0] <== aCap + SH;
        aOver[i].in[1] <== nov[i] + SH;
        cut[i] <== aOver[i].out * (nov[i] - aCap);
        ac[i] <== nov[i] - cut[i];              // min(nov_i, nov(amed))
    }
    nBelow === aRank;

    var sumA = 0;
    signal aa[N];
    for (var i = 0; i < N; i++) { aa[i] <== acc[i] * ac[i]; sumA += aa[i]; }
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

    // ---- the new model's view (PROTOCOL §3): mOut = mIn + floor(sum_A u / |A|), mIn = mOut when A is empty ----
    // sig_k = sum_i acc_i (u_ik - OFF); with nA = max(|A|, 1): (mOut_k - mIn_k) nA + mRem_k = sig_k,
    // 0 <= mRem_k < nA. |sig| < N 2^BITS, |mOut - mIn| < 2^MB: no wrap-around, so this is the integer floor.
    component mic = Commit(D, MB);
    component moc = Commit(D, MB);
    signal nA;
    nA <== nAcc + hot1.e[0];
    signal accU[N][D];
    signal step[D];
    signal stepN[D];
    component rmLo[D];
    component rmHi[D];
    for (var k = 0; k < D; k++) {
        mic.o[k] <== mIn[k];
        moc.o[k] <== mOut[k];
        var sig = 0;
        for (var i = 0; i < N; i++) {
            accU[i][k] <== acc[i] * (u[i][k] - OFF);
            sig += accU[i][k];
        }
        step[k] <== mOut[k] - mIn[k];
        stepN[k] <== step[k] * nA;
        stepN[k] + mRem[k] === sig;
        rmLo[k] = Range(bitlen(N));
        rmLo[k].in <== mRem[k];
        rmHi[k] = Range(bitlen(N));
        rmHi[k].in <== nA - 1 - mRem[k];
    }
    mic.out === modelIn;
    moc.out === modelOut;

    // ---- public input: sha256 over PROTOCOL §6's data, top 253 bits ----
    var NB = 8 * (8 + 20 + 8 + 4 + 32 + 32 + 32 + 32 + 2 + 41 * N);
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
    component bMPrev = Num2Bits_strict();
    bMPrev.in <== modelPrev;
    sha.in[pos] <== 0; pos++;
    sha.in[pos] <== 0; pos++;
    for (var b = 253; b >= 0; b--) { sha.in[pos] <== bMPrev.out[b]; pos++; }
    component bMIn = Num2Bits_strict();
    bMIn.in <== modelIn;
    sha.in[pos] <== 0; pos++;
    sha.in[pos] <== 0; pos++;
    for (var b = 253; b >= 0; b--) { sha.in[pos] <== bMIn.out[b]; pos++; }
    component bMOut = Num2Bits_strict();
    bMOut.in <== modelOut;
    sha.in[pos] <== 0; pos++;
    sha.in[pos] <== 0; pos++;
    for (var b = 253; b >= 0; b--) { sha.in[pos] <== bMOut.out[b]; pos++; }
    component bN = Num2Bits(16);
    bN.in <== nTrainers;
    for (var b = 15; b >= 0; b--) { sha.in[pos] <== bN.out[b]; pos++; }
    component bC[N];
    component bSeq[N];
    for (var i = 0; i < N; i++) {
        bC[i] = Num2Bits_strict();
        bC[i].in <== commitment[i];
        sha.in[pos] <== fb1[i]; pos++;          // flag << 254, flag in {0,1,2,3}
        sha.in[pos] <== fb0[i]; pos++;
        for (var b = 253; b >= 0; b--) { sha.in[pos] <== bC[i].out[b]; pos++; }
        sha.in[pos] <== 1 - sb[i].out[63]; pos++;  // two's complement sign bit
        for (var b = 62; b >= 0; b--) { sha.in[pos] <== sb[i].out[b]; pos++; }
        bSeq[i] = Num2Bits(8);                  // uint8 seq_i: also its range check
        bSeq[i].in <== seq[i];
        for (var b = 7; b >= 0; b--) { sha.in[pos] <== bSeq[i].out[b]; pos++; }
    }
    var acc253 = 0;
    for (var b = 0; b < 253; b++) { acc253 += sha.out[b] * (1 << (252 - b)); }
    pub <== acc253;
}
