// SPDX-License-Identifier: GPL-3.0-or-later
// Measurement circuit for a proven validation direction (zk/vgradcost.py; README Limits): v as minus the
// sparsemax loss's gradient of a linear model (weights W, bias b) on a committed validation split (X, Y), at the
// model's fixed-point view, normalised so that max |v| = qmax. The split would stay secret; the round proof
// would then check v instead of every trainer recomputing it from a published split. Never part of a verifier:
// it measures what that statement change costs before round.circom takes it on.
//
// Integers throughout (zk/vgradcost.py's `direction` is the reference, bit for bit):
//   Z[n][c] = sum_f X[n][f] W[c][f] + BS b[c]                 (logits at the scale K = T * scale(Z))
//   sparsemax of Z[n] / K: support S (prover's hint s), k = |S|, theta = sum_S Z - K, and for each class
//     k Z[c] - theta > 0 in S, <= 0 out of it; P[c] = s[c] (k Z[c] - theta) = k K p[c]
//   D[n][c] = P[c] (L / k) - Y[n][c] K L = K L (p[c] - y[c]), L = lcm(1..C) (the prover's hint m = L / k)
//   g = -[D^T X, BS D^T 1]: minus the gradient, times N K L and X's scale
//   M = max |g_j| (> 0), v_j = floor((2 qmax g_j + M) / (2 M))
pragma circom 2.1.0;

include "circomlib/circuits/bitify.circom";

// One validation row: the sparsemax of Z / K against the one-hot label Y, as D = K L (p - y).
template SparsemaxRow(C, ZB, K, L) {
    signal input Z[C];
    signal input Y[C];
    signal input s[C];  // the support, the prover's hint (checked)
    signal input m;     // L / |support|, the prover's hint (checked)
    signal output D[C];

    signal sz[C];
    var k = 0;
    var sumS = 0;
    for (var c = 0; c < C; c++) {
        s[c] * (s[c] - 1) === 0;
        sz[c] <== s[c] * Z[c];
        k += s[c];
        sumS += sz[c];
    }
    m * k === L;  // also rules out an empty support
    var theta = sumS - K;
    signal kz[C];
    signal su[C];
    signal P[C];
    component side[C];
    for (var c = 0; c < C; c++) {
        kz[c] <== k * Z[c];
        // in the support: kz - theta - 1 >= 0; out of it: theta - kz >= 0
        su[c] <== s[c] * (2 * (kz[c] - theta) - 1);
        side[c] = Num2Bits(ZB);
        side[c].in <== su[c] - (kz[c] - theta);
        P[c] <== s[c] * (kz[c] - theta);
        D[c] <== P[c] * m - Y[c] * (K * L);
    }
}

template VDirection(N, C, F, XB, ZB, GB, K, L, BS, QMAX) {
    signal input X[N][F];   // the split's features, XB-bit integers (committed by the owner)
    signal input Y[N][C];   // one-hot labels
    signal input W[C][F];   // the model's view (range-checked where round.circom unpacks it)
    signal input b[C];
    signal input s[N][C];   // hints: each row's sparsemax support
    signal input m[N];      //        and L / |support|
    signal input pick[C * (F + 1)];  // hint: one-hot, a coordinate where |g| is largest
    signal input Mx;        // hint: max |g|
    signal input Mxinv;     // hint: 1 / Mx
    signal input v[C * (F + 1)];     // the claimed direction

    component xr[N][F];
    for (var n = 0; n < N; n++) {
        var ones = 0;
        for (var f = 0; f < F; f++) {
            xr[n][f] = Num2Bits(XB);
            xr[n][f].in <== X[n][f];
        }
        for (var c = 0; c < C; c++) {
            Y[n][c] * (Y[n][c] - 1) === 0;
            ones += Y[n][c];
        }
        ones === 1;
    }

    signal xw[N][C][F];
    component row[N];
    for (var n = 0; n < N; n++) {
        row[n] = SparsemaxRow(C, ZB, K, L);
        for (var c = 0; c < C; c++) {
            var z = BS * b[c];
            for (var f = 0; f < F; f++) {
                xw[n][c][f] <== X[n][f] * W[c][f];
                z += xw[n][c][f];
            }
            row[n].Z[c] <== z;
            row[n].Y[c] <== Y[n][c];
            row[n].s[c] <== s[n][c];
        }
        row[n].m <== m[n];
    }

    signal dx[N][C][F];
    signal g[C * (F + 1)];
    for (var c = 0; c < C; c++) {
        var bias = 0;
        for (var f = 0; f < F; f++) {
            var acc = 0;
            for (var n = 0; n < N; n++) {
                dx[n][c][f] <== row[n].D[c] * X[n][f];
                acc += dx[n][c][f];
            }
            g[c * (F + 1) + f] <== -acc;
        }
        for (var n = 0; n < N; n++) {
            bias += row[n].D[c];
        }
        g[c * (F + 1) + F] <== -BS * bias;
    }

    // Mx = max |g_j| > 0: every |g_j| <= Mx, and g_pick = +-Mx
    Mx * Mxinv === 1;
    var picked = 0;
    var count = 0;
    signal pg[C * (F + 1)];
    component lo[C * (F + 1)];
    component hi[C * (F + 1)];
    component r0[C * (F + 1)];
    component r1[C * (F + 1)];
    signal mv[C * (F + 1)];
    for (var j = 0; j < C * (F + 1); j++) {
        pick[j] * (pick[j] - 1) === 0;
        count += pick[j];
        pg[j] <== pick[j] * g[j];
        picked += pg[j];
        lo[j] = Num2Bits(GB);
        lo[j].in <== Mx - g[j];
        hi[j] = Num2Bits(GB);
        hi[j].in <== Mx + g[j];
        // v_j = floor((2 qmax g_j + Mx) / (2 Mx)): 0 <= 2 qmax g_j + Mx - 2 Mx v_j < 2 Mx
        mv[j] <== Mx * v[j];
        r0[j] = Num2Bits(GB + 1);
        r0[j].in <== 2 * QMAX * g[j] + Mx - 2 * mv[j];
        r1[j] = Num2Bits(GB + 1);
        r1[j].in <== 2 * Mx - 1 - (2 * QMAX * g[j] + Mx - 2 * mv[j]);
    }
    count === 1;
    signal sq;
    sq <== picked * picked;
    sq === Mx * Mx;
}
