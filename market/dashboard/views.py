"""What the dashboard shows, read from the chain and storage alone: the market's projects, one project's rounds,
trainers and money, and one trainer's history across projects. Plain dicts, so that the page and /api share them."""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import asdict
from typing import Any

from market.chain.client import checksummed
from market.chain.marketplace import Marketplace
from market.parties.context import ProjectContext, load_context
from market.parties.listing import MarketListing
from market.parties.money import money_table
from market.parties.owner import project_status
from market.protocol.public_input import FLAG_ACCEPTED, FLAG_EXCLUDED, FLAG_INVALID, FLAG_OUTLIER
from market.storage import Storage

#: How a round's decision reads on the page (PROTOCOL.md §3, §5): flag -> word.
FLAG_WORDS = {FLAG_ACCEPTED: "accepted", FLAG_OUTLIER: "slashed", FLAG_INVALID: "rejected blob", FLAG_EXCLUDED: "excluded"}


def _sums(market: Marketplace, name: str, pid: int, since: int) -> dict[str, int]:
    """Per trainer: the amounts of one money event of project `pid`."""
    out: dict[str, int] = defaultdict(int)
    for e in market.events(name, pid, from_block=since):
        out[e.args["trainer"]] += int(e.args["amount"])
    return out


def settled_posts(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One post per round, the one that settled it: a cured round's re-post replaces its provisional post."""
    by_round: dict[int, dict[str, Any]] = {}
    for post in history:
        by_round[post["round"]] = post  # posts come in chain order
    return [by_round[r] for r in sorted(by_round)]


def decision(trainer: str, flag: int, reason: str) -> dict[str, Any]:
    """One decision as the page reads it: the flag's word, then the aggregator's reason unless it already starts so."""
    word = FLAG_WORDS.get(flag, f"flag {flag}")
    text = reason if reason.startswith(word) else f"{word} ({reason})" if reason else word
    return {"trainer": trainer, "flag": flag, "word": word, "reason": reason, "text": text}


def round_rows(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The round table: per settling post its accuracy, counts, every decision other than "accepted" with the
    aggregator's reason, the scores, the post's gas and the aggregator's proving time."""
    rows = []
    for post in settled_posts(history):
        submitted = [t for t, d in post["decisions"].items() if d != "absent"]
        decisions = [decision(t, f, post["reasons"].get(t, "")) for t, f in post["flags"].items()
                     if t in submitted and f != FLAG_ACCEPTED]
        rows.append({
            "round": post["round"], "val_accuracy": post["val_accuracy"], "submitted": len(submitted),
            "accepted": sum(post["flags"][t] == FLAG_ACCEPTED for t in submitted), "decisions": decisions,
            "scores": post["scores"], "flags": post["flags"], "basis": post["decisions"], "gas": post["gas"],
            "prove_s": post["prove_s"],
            "disputed": post["dispute_end"] is not None or bool(post["cured"]), "cured": post["cured"],
            "reposted": sum(p["round"] == post["round"] for p in history) > 1, "model_cid": post["model_cid"],
        })
    return rows


class DashboardData:
    """The dashboard's reads of one marketplace and its storage; a project's immutable context is loaded once."""

    def __init__(self, market: Marketplace, storage: Storage) -> None:
        self.market, self.storage = market, storage
        self._contexts: dict[int, ProjectContext] = {}
        self._lock = threading.Lock()

    def context(self, pid: int) -> ProjectContext:
        """Project `pid`'s context (its manifest fetched and checked against the chain), cached."""
        with self._lock:
            if pid not in self._contexts:
                self._contexts[pid] = load_context(self.market, self.storage, pid)
            return self._contexts[pid]

    def projects(self) -> list[dict[str, Any]]:
        """Every project as `fedmarket projects --json` lists it."""
        return [listing.as_json() for listing in MarketListing(self.market, self.storage).listings()]

    def project(self, pid: int) -> dict[str, Any]:
        """One project: its status, the round table, per trainer its decisions, scores and money, and the money table
        with its conservation check."""
        ctx = self.context(pid)
        status = project_status(self.market, self.storage, pid, ctx)
        since = ctx.created.block_number
        rounds = round_rows(status["history"])
        money = money_table(self.market, pid, since)
        claimed, withdrawn = money.by_event["Claimed"], money.by_event["StakeWithdrawn"]
        slashed = _sums(self.market, "TrainerSlashed", pid, since)  # slashed stake stays in the contract: not money out
        trainers = []
        for t in status["trainers"]:
            a = t["address"]
            flags = [r["flags"][a] for r in rounds if r["basis"].get(a, "absent") != "absent"]
            trainers.append({**t, "claimed": claimed.get(a, 0), "paid": claimed.get(a, 0) + t["rewards"],
                             "slashed": slashed[a], "stake_withdrawn": withdrawn.get(a, 0),
                             "score_total": sum(r["scores"][a] for r in rounds),
                             "rounds": {FLAG_WORDS[f]: flags.count(f) for f in FLAG_WORDS}})
        return {
            **{k: v for k, v in status.items() if k != "history"}, "rounds_table": rounds, "trainers": trainers,
            "money": {**asdict(money), "conserved": money.conserved}, "token": "ETH" if ctx.params.is_eth else ctx.params.token,
        }

    def trainer(self, address: str) -> dict[str, Any]:
        """One trainer's history on this marketplace: per project it joined, its slot, standing, per round its
        decision, reason and score, and its money (stake, claimed, unclaimed, slashed). ConfigError (a 404 page) for
        a path that is no address."""
        checksummed(address, "trainer")
        projects = []
        for pid in range(1, self.market.project_count() + 1):
            joined = [t for t in self.market.trainers(pid) if t.lower() == address.lower()]
            if not joined:
                continue
            data = self.project(pid)
            a = joined[0]
            me = next(t for t in data["trainers"] if t["address"] == a)
            history = [{"round": r["round"], "flag": r["flags"][a], "score": r["scores"][a], "basis": r["basis"][a],
                        "word": FLAG_WORDS.get(r["flags"][a], "?") if r["basis"][a] != "absent" else "absent",
                        "reason": next((d["reason"] for d in r["decisions"] if d["trainer"] == a), "")}
                       for r in data["rounds_table"]]
            projects.append({"pid": pid, "task": data["task"], "state": data["state"], "trainer": me, "rounds": history})
        return {"address": address, "projects": projects}
