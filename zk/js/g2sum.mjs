// sum_i w_i * B2_i over BN254's G2, for zk/g2split.py: the G2 half of a Groth16 proof's B, beside groth16py.
// argv: ffjavascript's entry file, the bases (n points of 128 bytes: x.c0 x.c1 y.c0 y.c1, little-endian Montgomery,
// zeros for the point at infinity), a .wtns witness (its first n values are the scalars) and the points per chunk.
// Reads the bases a chunk at a time, so that its memory does not grow with the circuit (docs/ZK.md), and runs on
// one thread (ffjavascript's singleThread): groth16py proves on one core, and this sum fits on another beside it.
// Most terms are free or cheap: a circuit's witness is mostly range-check bits (0 or 1), and many wires have no
// B term (a base at infinity). So each chunk drops the terms with a zero scalar or a base at infinity and sends
// the rest to three multiexps by the scalar's width (1, 8 or 32 bytes): ffjavascript's Pippenger runs one window
// pass per few bits of the scalar's width. A scalar above r / 2 is a small negative one (a signed update value,
// r - |x|): it goes in as |x| with its base negated.
// Prints {"x": [c0, c1], "y": [c0, c1], "infinity": bool} with decimal coordinates.
import { closeSync, fstatSync, openSync, readFileSync, readSync } from "node:fs";
import { pathToFileURL } from "node:url";

const [ffjavascript, basesPath, wtnsPath, chunkArg] = process.argv.slice(2);
const { buildBn128 } = await import(pathToFileURL(ffjavascript).href);

/** The witness values of a .wtns file (section 2) and their byte size. */
function witness(path) {
  const raw = readFileSync(path);
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  if (raw.subarray(0, 4).toString("latin1") !== "wtns") throw new Error(`${path} is not a .wtns file`);
  let off = 12, n8 = 0, values = null;
  for (let s = view.getUint32(8, true); s > 0; s--) {
    const type = view.getUint32(off, true), size = Number(view.getBigUint64(off + 4, true));
    off += 12;
    if (type === 1) n8 = view.getUint32(off, true);
    if (type === 2) values = raw.subarray(off, off + size);
    off += size;
  }
  if (n8 !== 32 || values === null) throw new Error(`${path} has no 32-byte witness section`);
  return values;
}

const CHUNK = Number(chunkArg);

let fd, count, values;
try {
  if (!(Number.isInteger(CHUNK) && CHUNK > 0)) throw new Error(`chunk size ${chunkArg} is not a positive integer`);
  fd = openSync(basesPath, "r");
  count = fstatSync(fd).size / 128;
  values = witness(wtnsPath);
  if (!Number.isInteger(count)) throw new Error(`${basesPath} is not a whole number of 128-byte G2 points`);
  if (values.byteLength < count * 32) {
    throw new Error(`the witness has ${values.byteLength / 32} values, the key ${count} wires`);
  }
} catch (error) {
  console.error(error.message); // one line for the caller's ProofError
  process.exit(1);
}
const WIDTHS = [1, 8, 32];

/** The byte width class (an index into WIDTHS) of the 32-byte little-endian scalar at `at`, or -1 for zero. */
function widthClass(scalars, at) {
  for (let b = 31; b >= 0; b--) if (scalars[at + b] !== 0) return WIDTHS.findIndex((w) => b < w);
  return -1;
}

/** Whether base `i` of a chunk is ffjavascript's zero encoding of the point at infinity. */
function isInfinity(buf, i) {
  for (let b = i * 128; b < (i + 1) * 128; b++) if (buf[b] !== 0) return false;
  return true;
}

/** The 32-byte little-endian integer at `at` of `bytes`. */
function readInt(bytes, at) {
  let x = 0n;
  for (let b = 31; b >= 0; b--) x = (x << 8n) | BigInt(bytes[at + b]);
  return x;
}

const curve = await buildBn128(true);
const HALF_R = curve.r / 2n;
try {
  const size = Math.min(CHUNK, count);
  const buf = new Uint8Array(size * 128);
  const groups = WIDTHS.map((w) => ({ w, bases: new Uint8Array(size * 128), scalars: new Uint8Array(size * w), m: 0 }));
  let sum = curve.G2.zero;
  for (let i = 0; i < count; i += size) {
    const m = Math.min(size, count - i);
    readSync(fd, buf, 0, m * 128, i * 128);
    for (const g of groups) g.m = 0;
    for (let j = 0; j < m; j++) {
      let scalar = values, at = (i + j) * 32, c = widthClass(scalar, at), negate = false;
      if (c < 0 || isInfinity(buf, j)) continue;
      if (c === WIDTHS.length - 1 && readInt(scalar, at) > HALF_R) { // r - w, as Fr.neg gives it
        [scalar, at, negate] = [curve.Fr.neg(scalar.subarray(at, at + 32)), 0, true];
        c = widthClass(scalar, 0);
      }
      const g = groups[c];
      g.bases.set(buf.subarray(j * 128, (j + 1) * 128), g.m * 128);
      if (negate) g.bases.set(curve.F2.neg(g.bases.subarray(g.m * 128 + 64, (g.m + 1) * 128)), g.m * 128 + 64); // -y
      g.scalars.set(scalar.subarray(at, at + g.w), g.m * g.w);
      g.m++;
    }
    for (const g of groups) {
      if (g.m === 0) continue;
      const part = await curve.G2.multiExpAffine(g.bases.subarray(0, g.m * 128), g.scalars.slice(0, g.m * g.w));
      sum = curve.G2.add(sum, part);
    }
  }
  sum = curve.G2.toAffine(sum);
  const [x, y] = curve.G2.toObject(sum);
  console.log(JSON.stringify({ x: x.map(String), y: y.map(String), infinity: curve.G2.isZero(sum) }));
} finally {
  closeSync(fd);
  await curve.terminate();
}
