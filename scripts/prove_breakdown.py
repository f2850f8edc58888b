"""Issue 14: where groth16py's proof time goes, by query, and what a second groth16py process could take over.

groth16py 0.2.0 proves on one core (docs/ZK.md). A proof is the witness map (the QAP's FFTs, over a domain of the
next power of two above the constraints) and five multi-scalar multiplications: A over `a_query`, B over
`b_g1_query` and `b_g2_query` (already summed beside it in Node, zk.g2split), and C over `l_query` and `h_query`.
This script times one case's proof with the split key as zk.prover loads it, then with some G1 queries at infinity
(their terms cost nothing, the rest is unchanged; those proofs are wrong, only timed), twice each in one process:

- `all`: the split key; `no_h`: `h_query` at infinity; `no_abl`: `a_query`, `b_g1_query`, `l_query` at infinity;
  `map_only`: all four, so what is left is the witness map and the fixed work.
- Shares: the H MSM is `all - no_h`, the A, B1 and L MSMs `all - no_abl`, the witness map `map_only`.
- `two_process_bound`: a second groth16py process could prove the H term alone (with alpha, beta and delta at
  infinity its C is exactly the H sum), but it must redo the witness map, so the better of two cores is at least
  `max(no_h, no_abl)` against `all`.

Measured (2026-12-04, n = 4, d = 650, machine otherwise idle): all 6.55 s, map_only 3.03 s, no_h 3.91 s, no_abl
5.62 s: the witness map is 46% of a proof, the H MSM 40%, and the A, B1 and L MSMs, whose scalars are mostly
range-check bits, 14%. So a second process would save at most 14% (5.62 s against 6.55 s), less the Node child's
G2 sum that already runs on the second core. Run: `.venv/bin/python scripts/prove_breakdown.py 4 650` (any built case).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import groth16py

from zk import g2split
from zk.bench import CASE_RULE, _round_data, _witness
from zk.build import CircuitParams, dev_setup
from zk.prover import compute_witness
from zk.witness import RoundContext

#: Each timed key: which G1 queries are put at infinity in the split key.
VARIANTS = {"all": (), "no_h": ("h_query",), "no_abl": ("a_query", "b_g1_query", "l_query"),
            "map_only": ("a_query", "b_g1_query", "l_query", "h_query")}


def main() -> None:
    """Print one JSON object: per variant its two proof times, then the shares and the two-process bound."""
    n, d = (int(x) for x in sys.argv[1:3]) if len(sys.argv) > 2 else (4, 650)
    p = CircuitParams(n=n, d=d, **CASE_RULE)
    out = dev_setup(p)
    g2split.ensure_split(out)
    raw = (out / g2split.G1_KEY).read_bytes()
    w = _witness(p, RoundContext(1, "0x" + "11" * 20, 1, 1, p.n), *_round_data(p))
    timed: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        wtns, key_path = Path(tmp) / "w.wtns", Path(tmp) / "variant.pk"
        compute_witness(out, w.inputs, wtns)
        for name, queries in VARIANTS.items():
            key = bytearray(raw)
            for q in queries:
                g2split.at_infinity(key, q)
            key_path.write_bytes(key)
            pk = groth16py.ProvingKey.load(str(key_path))
            times = []
            for _ in range(2):
                t0 = time.perf_counter()
                groth16py.prove_wtns(pk, str(wtns))
                times.append(round(time.perf_counter() - t0, 2))
            timed[name] = times
            del pk
    best = {name: min(times) for name, times in timed.items()}
    res: dict[str, object] = {"n": n, "d": d, **timed}
    res["share_h_msm"] = round((best["all"] - best["no_h"]) / best["all"], 3)
    res["share_abl_msm"] = round((best["all"] - best["no_abl"]) / best["all"], 3)
    res["share_witness_map"] = round(best["map_only"] / best["all"], 3)
    res["two_process_bound_s"] = max(best["no_h"], best["no_abl"])
    print(json.dumps(res))


if __name__ == "__main__":
    main()
