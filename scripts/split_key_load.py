"""Issue 14 item 4: a development key's load and proof, whole (dev.pk) and split (zk.g2split), in one run.

For one case (n, d; the bench's rule): the seconds to load each key in a fresh process, and two proofs with each,
every proof checked with py-ecc. Builds the case if needed (zk.build.dev_setup).

Run: `.venv/bin/python scripts/split_key_load.py 8 650` (default n = 2, d = 4). With `--g2-sum` it times only the
split key's Node child (zk/js/g2sum.mjs) on the case's witness instead, reading the bases in `zk.g2split.CHUNK`
chunks and all at once: wall and CPU seconds, peak memory (for a large case such as 16 5130, whose whole dev.pk
takes minutes to load).
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
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


def g2_sum_alone(out: Path, wtns: Path, chunk: int) -> dict[str, float]:
    """The Node child's wall and CPU seconds and peak resident memory (MiB: its own VmHWM, polled, since getrusage's
    maxrss also counts this process, which the child was forked from), run alone with `chunk`."""
    before, t0, peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter(), 0
    child = subprocess.Popen(g2split.b2_sum_command(out, wtns, chunk), stdout=subprocess.DEVNULL)
    status = Path(f"/proc/{child.pid}/status")
    while child.poll() is None:
        try:
            lines = status.read_text().splitlines()
        except OSError:  # exited since poll()
            break
        for line in lines:
            if line.startswith("VmHWM:"):
                peak_kib = max(peak_kib, int(line.split()[1]))
        time.sleep(0.05)
    if child.wait():
        raise SystemExit(f"the G2 sum failed (exit {child.returncode})")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return {"chunk": chunk, "wall_s": round(time.perf_counter() - t0, 2), "cpu_s": round(cpu, 2),
            "peak_mib": round(peak_kib / 1024, 1)}


def main() -> None:
    """Print one JSON object: per key, load seconds, proof seconds and whether each proof verifies (or, with
    --g2-sum, the Node child's figures)."""
    g2_sum_only = "--g2-sum" in sys.argv
    args = [a for a in sys.argv[1:] if a != "--g2-sum"]
    n, d = (int(x) for x in args[:2]) if len(args) > 1 else (2, 4)
    p = CircuitParams(n=n, d=d, **CASE_RULE)
    out = dev_setup(p)
    g2split.ensure_split(out)
    vk = VerifyingKey.load(out / "verification_key.json")
    w = _witness(p, RoundContext(1, "0x" + "11" * 20, 1, 1, p.n), *_round_data(p))
    res: dict[str, object] = {"n": n, "d": d}
    with tempfile.TemporaryDirectory() as tmp:
        wtns = Path(tmp) / "w.wtns"
        compute_witness(out, w.inputs, wtns)
        if g2_sum_only:
            count = (out / g2split.B2_BASES).stat().st_size // 128
            print(json.dumps({**res, "bases": count, "g2_sum": [g2_sum_alone(out, wtns, c) for c in (g2split.CHUNK, count)]}))
            return
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
