"""Issue 14 item 4: a development key's load and proof, whole (dev.pk) and split (zk.g2split), in one run.

For one case (n, d; the bench's rule): the seconds to load each key in a fresh process, and two proofs with each,
every proof checked with py-ecc. Builds the case if needed (zk.build.dev_setup).

Run: `.venv/bin/python scripts/split_key_load.py 8 650` (default n = 2, d = 4).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from zk import g2split
from zk.bench import CASE_RULE, _round_data, _witness
from zk.build import CircuitParams, dev_setup
from zk.prover import Proof, compute_witness
from zk.verifier import VerifyingKey, verify
from zk.witness import RoundContext

#: A fresh process: load the key at argv[1] the way zk.prover does (whole or split), then prove twice.
CHILD = """
import json, sys, time
from pathlib import Path
import groth16py
from zk import g2split
from zk.prover import Proof
out, wtns, whole = Path(sys.argv[1]), sys.argv[2], sys.argv[3] == "whole"
t0 = time.perf_counter()
pk = groth16py.ProvingKey.load(str(out / ("dev.pk" if whole else g2split.G1_KEY)))
res = {"load_s": time.perf_counter() - t0, "proofs": []}
for i in range(2):
    t0 = time.perf_counter()
    child = None if whole else g2split.start_b2_sum(out, Path(wtns))
    words = Proof.from_bytes(groth16py.prove_wtns(pk, wtns)).words
    if child is not None:
        words = g2split.add_to_b(words, g2split.b2_sum(child))
    res["proofs"].append({"s": time.perf_counter() - t0, "words": [str(w) for w in words]})
print(json.dumps(res))
"""


def main() -> None:
    """Print one JSON object: per key, load seconds, proof seconds and whether each proof verifies."""
    n, d = (int(x) for x in sys.argv[1:3]) if len(sys.argv) > 2 else (2, 4)
    p = CircuitParams(n=n, d=d, **CASE_RULE)
    out = dev_setup(p)
    g2split.ensure_split(out)
    vk = VerifyingKey.load(out / "verification_key.json")
    w = _witness(p, RoundContext(1, "0x" + "11" * 20, 1, 1, p.n), *_round_data(p))
    res: dict[str, object] = {"n": n, "d": d}
    with tempfile.TemporaryDirectory() as tmp:
        wtns = Path(tmp) / "w.wtns"
        compute_witness(out, w.inputs, wtns)
        for kind in ("whole", "split"):
            got = json.loads(subprocess.run([sys.executable, "-c", CHILD, str(out), str(wtns), kind], check=True,
                                            capture_output=True, text=True).stdout.strip().splitlines()[-1])
            res[f"{kind}_load_s"] = round(got["load_s"], 2)
            res[f"{kind}_prove_s"] = [round(x["s"], 2) for x in got["proofs"]]
            res[f"{kind}_verifies"] = [verify(vk, Proof(tuple(int(v) for v in x["words"])), [w.public_input])
                                      for x in got["proofs"]]
    print(json.dumps(res))


if __name__ == "__main__":
    main()
