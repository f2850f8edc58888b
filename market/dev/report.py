"""Reports: a demo run's markdown with PNG plots (accuracy, scores and payouts, flags), and a project's markdown."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from market.parties.trust import trust_table
from market.protocol.constants import ETHER

if TYPE_CHECKING:
    from market.dev.demo import DemoRun


def _pyplot() -> ModuleType:
    """matplotlib's pyplot on the file-only Agg backend, imported by the plots alone (the CLI's tables need none of it)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def ether(wei: int) -> str:
    """Wei as ether with 6 decimals, as every table and report shows money."""
    return f"{wei / ETHER:.6f}"


def _short(address: str) -> str:
    """0x1234…abcd."""
    return f"{address[:6]}…{address[-4:]}"


def plot_accuracy(run: DemoRun, path: Path) -> None:
    """Validation accuracy of g(r) per round."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot([r.round for r in run.rounds], [100 * r.accuracy for r in run.rounds], marker="o")
    ax.set_xlabel("round")
    ax.set_ylabel("validation accuracy (%)")
    ax.set_title("global model accuracy")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_payouts(run: DemoRun, path: Path) -> None:
    """Per trainer: total proven score and net payout (out minus in), attackers in red."""
    plt = _pyplot()
    trainers = run.rounds[0].trainers if run.rounds else []
    scores = [sum(max(r.scores[i], 0) for r in run.rounds) for i in range(len(trainers))]
    net = [(run.balances.get(t, {}).get("out", 0) - run.balances.get(t, {}).get("in", 0)) / ETHER for t in trainers]
    colors = ["tab:red" if t in run.attackers else "tab:blue" for t in trainers]
    labels = [_short(t) for t in trainers]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.4))
    a1.bar(labels, scores, color=colors)
    a1.set_title("sum of positive proven scores")
    a2.bar(labels, net, color=colors)
    a2.axhline(0, color="black", linewidth=0.8)
    a2.set_title("net payout (ether; red = attacker)")
    for ax in (a1, a2):
        ax.tick_params(axis="x", rotation=60, labelsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_flags(run: DemoRun, path: Path) -> None:
    """Flags per round and trainer: 0 accepted/absent, 1 outlier, 2 invalid."""
    plt = _pyplot()
    trainers = run.rounds[0].trainers if run.rounds else []
    grid = [[r.flags[i] for r in run.rounds] for i in range(len(trainers))]
    fig, ax = plt.subplots(figsize=(5, 0.4 * len(trainers) + 1.2))
    ax.imshow(grid, cmap="Reds", vmin=0, vmax=2, aspect="auto")
    ax.set_yticks(range(len(trainers)), [_short(t) + (" (attacker)" if t in run.attackers else "") for t in trainers], fontsize=7)
    ax.set_xticks(range(len(run.rounds)), [str(r.round) for r in run.rounds])
    ax.set_xlabel("round")
    ax.set_title("flagged trainers")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(run: DemoRun, out: Path) -> Path:
    """Write report.md and its plots into `out`; returns the markdown's path."""
    out.mkdir(parents=True, exist_ok=True)
    plot_accuracy(run, out / "accuracy.png")
    plot_payouts(run, out / "payouts.png")
    plot_flags(run, out / "flags.png")
    f = run.figures
    lines = [
        "# fedmarket demo report", "",
        f"{f['trainers']} trainers ({f['attackers']} attacking), {f['rounds']} rounds, backend `{f['backend']}`, "
        f"marketplace `{f['marketplace']}`, project {f['project']}, circuit `{f['circuit']}`.", "",
        "| round | accepted | flagged or declined (reason) | val. accuracy | postRound gas | proving s |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in run.rounds:
        accepted = sum(1 for i in r.submitted if r.flags[i] == 0)
        flagged = ", ".join(f"{_short(t)} ({reason.split(':')[0]})" for t, reason in r.reasons.items()) or "-"
        lines.append(f"| {r.round} | {accepted}/{len(r.submitted)} | {flagged} | {100 * r.accuracy:.1f}% | {r.gas:,} | {r.prove_s:.1f} |")
    for d in run.disputed:
        rejected = ", ".join(f"`{_short(t)}`" for i, t in enumerate(d.trainers) if d.flags[i] == 2)
        lines += ["", f"Round {d.round} was first posted with {rejected} rejected (flag 2, the aggregator's unproven "
                      "claim); in the dispute window it cured by publishing its proof view on chain, and the round "
                      "was posted again with it included (the table shows that re-post)."]
    lines += ["", "| party | role | paid in (ether) | taken out (ether) |", "| --- | --- | --- | --- |"]
    for party, money in run.balances.items():
        trainer = bool(run.rounds) and party in run.rounds[0].trainers
        role = "attacker" if party in run.attackers else ("trainer" if trainer else "owner/aggregator")
        lines.append(f"| `{party}` | {role} | {ether(money['in'])} | {ether(money['out'])} |")
    lines += ["", "## Checks", ""] + [f"- {name}: {'PASS' if ok else 'FAIL'}" for name, ok in run.checks.items()]
    lines += trust_lines(trust_table())
    lines += ["", f"Test accuracy: {100 * f['initial_accuracy']:.1f}% at g(0), {100 * f['final_accuracy']:.1f}% at the end.",
              "", "![accuracy](accuracy.png)", "![payouts](payouts.png)", "![flags](flags.png)", ""]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path


def project_markdown(status: dict[str, Any]) -> str:
    """A project's report from its status (`market.parties.owner.project_status`): every round's accuracy,
    flags with their reasons and scores, then every trainer's stake and rewards."""
    lines = [f"# project {status['project']} ({status['state']})", "", "| round | val. accuracy | flagged (reason) | scores |",
             "| --- | --- | --- | --- |"]
    for r in status["history"]:
        reasons = ", ".join(f"`{a[:10]}` ({why.split(':')[0]})" for a, why in r["reasons"].items()) or "-"
        scores = ", ".join(f"{s}" for s in r["scores"].values())
        lines.append(f"| {r['round']} | {100 * (r['val_accuracy'] or 0):.1f}% | {reasons} | {scores} |")
    lines += ["", "| trainer | status | stake | rewards |", "| --- | --- | --- | --- |"]
    lines += [f"| `{t['address']}` | {t['status']} | {ether(t['stake'])} | {ether(t['rewards'])} |" for t in status["trainers"]]
    return "\n".join(lines + trust_lines(status.get("trust", []))) + "\n"


def trust_lines(claims: list[dict[str, Any]]) -> list[str]:
    """The 'what rests on whom' section: each claim of a round, its basis and who could cheat on it."""
    lines = ["", "## What rests on whom", "", "| claim | basis | who could cheat | why |", "| --- | --- | --- | --- |"]
    return lines + [f"| {c['claim']} | {c['basis']} | {c['party']} | {c['note']} |" for c in claims]
