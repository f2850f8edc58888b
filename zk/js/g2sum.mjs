// sum_i w_i * B2_i over BN254's G2, for zk/g2split.py: the G2 half of a Groth16 proof's B, beside groth16py.
// argv: ffjavascript's entry file, the bases (n points of 128 bytes: x.c0 x.c1 y.c0 y.c1, little-endian Montgomery,
// zeros for the point at infinity) and a .wtns witness (its first n values are the scalars).
// Prints {"x": [c0, c1], "y": [c0, c1], "infinity": bool} with decimal coordinates.
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

const [ffjavascript, basesPath, wtnsPath] = process.argv.slice(2);
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

let bases, values;
try {
  bases = new Uint8Array(readFileSync(basesPath));
  values = witness(wtnsPath);
  if (values.byteLength < bases.byteLength / 4) {
    throw new Error(`the witness has ${values.byteLength / 32} values, the key ${bases.byteLength / 128} wires`);
  }
} catch (error) {
  console.error(error.message); // one line for the caller's ProofError
  process.exit(1);
}
const curve = await buildBn128();
try {
  const scalars = new Uint8Array(values.subarray(0, bases.byteLength / 4));
  const sum = curve.G2.toAffine(await curve.G2.multiExpAffine(bases, scalars));
  const [x, y] = curve.G2.toObject(sum);
  console.log(JSON.stringify({ x: x.map(String), y: y.map(String), infinity: curve.G2.isZero(sum) }));
} finally {
  await curve.terminate();
}
