"""Issue 14, the 12-bit option: does a project lose accuracy at 12-bit quantization?

Runs the eval's clean simulation (aggregator.eval.evaluate.simulate: digits, 10 non-IID trainers, 10 rounds, no
attacker) at 16 bits (scale 2^-12, the default) and at the given width with about the same clip (8.0: 7.9998 and
7.996 at 12 bits, so about the same clip rate), per seed, and prints the final and per-round test accuracy of
each. Run:
`.venv/bin/python scripts/quant_bits_accuracy.py --bits 12 --seeds 0,1,2`.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace

import aggregator.eval.evaluate as evaluate
from aggregator.eval.evaluate import EvalConfig, simulate
from market.protocol.manifest import RuleConfig
from market.protocol.quant import QuantSpec


def main() -> None:
    """One JSON line per seed: both widths' final accuracy and curves, and whether the curves are equal."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bits", type=int, default=12)
    parser.add_argument("--seeds", default="0,1,2")
    args = parser.parse_args()
    base = QuantSpec()
    narrow = QuantSpec(bits=args.bits, scale_log2=base.scale_log2 - (base.bits - args.bits))
    for seed in map(int, args.seeds.split(",")):
        curves = {}
        for spec in (base, narrow):
            cfg = replace(EvalConfig(seed=seed, workers=1), spec=spec)
            task, parts = evaluate._setup(cfg)
            curves[spec.bits] = [round(a, 4) for a in simulate(task, parts, RuleConfig(), None, [], cfg).curve]
        finals = {f"accuracy_{b}bit": c[-1] for b, c in curves.items()}
        print(json.dumps({"seed": seed, "clip": {base.bits: base.clip, narrow.bits: narrow.clip}, **finals,
                          "same_curve": curves[base.bits] == curves[narrow.bits], "curves": curves}), flush=True)


if __name__ == "__main__":
    main()
