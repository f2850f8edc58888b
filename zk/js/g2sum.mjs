// sum_i w_i * B2_i over BN254's G2, for zk/g2split.py: the G2 half of a Groth16 proof's B, beside groth16py.
// argv: ffjavascript's entry file, the bases (n points of 128 bytes: x.c0 x.c1 y.c0 y.c1, little-endian Montgomery,
// zeros for the point at infinity), a .wtns witness (its first n values are the scalars) and the points per chunk.
// Reads the bases a chunk at a time: ffjavascript's multiexp of all of them at once peaked at 4.4 GB for
// 3 million points (n = 16, d = 5,130), in chunks of 65,536 at 0.4 GB and no slower (docs/ZK.md).
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
const curve = await buildBn128();
try {
  const buf = new Uint8Array(CHUNK * 128);
  let sum = curve.G2.zero;
  for (let i = 0; i < count; i += CHUNK) {
    const m = Math.min(CHUNK, count - i);
    readSync(fd, buf, 0, m * 128, i * 128);
    const scalars = new Uint8Array(values.subarray(i * 32, (i + m) * 32));
    sum = curve.G2.add(sum, await curve.G2.multiExpAffine(buf.subarray(0, m * 128), scalars));
  }
  sum = curve.G2.toAffine(sum);
  const [x, y] = curve.G2.toObject(sum);
  console.log(JSON.stringify({ x: x.map(String), y: y.map(String), infinity: curve.G2.isZero(sum) }));
} finally {
  closeSync(fd);
  await curve.terminate();
}
