// Seconds for ffjavascript's (snarkjs') G1 inverse FFT on 2^k points, on every core: the group FFT that would turn a
// development key's monomial H points into a zkey's Lagrange ones (docs/ZK.md, key loading).
// Run: node scripts/g1_fft_bench.mjs 17
import { buildBn128 } from "ffjavascript";

const logN = parseInt(process.argv[2] ?? "14", 10);
const curve = await buildBn128();
const { G1, Fr } = curve;
const n = 1 << logN;
const size = G1.F.n8 * 2;
const points = new Uint8Array(n * size);
const g = new Uint8Array(size);
G1.toRprLEM(g, 0, G1.toAffine(G1.g));
for (let i = 0; i < n; i++) points.set(g, i * size);
const distinct = await G1.batchApplyKey(points, Fr.e(3), Fr.e(7), "affine", "affine"); // 3 * 7^i * G: no two equal
const t0 = performance.now();
await G1.ifft(distinct, "affine", "affine");
console.log(JSON.stringify({ points: n, ifft_s: (performance.now() - t0) / 1000 }));
await curve.terminate();
