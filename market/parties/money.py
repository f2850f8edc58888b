"""A project's money from the chain alone: what each party paid in and took out (its events), what the contract
still owes (its state), and whether the two agree to the wei."""

from __future__ import annotations

from dataclasses import dataclass

from market.chain.marketplace import Marketplace

#: The events that move a project's money: event -> (the party's argument, None for the owner; the amount's
#: argument; whether the money goes into the contract).
MONEY_EVENTS = {
    "ProjectCreated": ("owner", "budget", True), "Funded": (None, "amount", True),
    "AggregatorBonded": ("aggregator", "amount", True), "TrainerJoined": ("trainer", "stake", True),
    "Claimed": ("trainer", "amount", False), "StakeWithdrawn": ("trainer", "amount", False),
    "RefundWithdrawn": ("owner", "amount", False), "BondWithdrawn": ("aggregator", "amount", False),
}


def money_events(market: Marketplace, pid: int, from_block: int) -> dict[str, dict[str, int]]:
    """Per money event of MONEY_EVENTS, per party: the wei it moved, one event query each (since `from_block`)."""
    owner = market.project(pid).owner
    out: dict[str, dict[str, int]] = {}
    for name, (who, key, _) in MONEY_EVENTS.items():
        sums = out.setdefault(name, {})
        for e in market.events(name, pid, from_block=from_block):
            party = e.args[who] if who else owner
            sums[party] = sums.get(party, 0) + int(e.args[key])
    return out


def by_party(events: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    """Per party: the wei it paid into the project and took out, from `money_events`' sums."""
    out: dict[str, dict[str, int]] = {}
    for name, sums in events.items():
        into = MONEY_EVENTS[name][2]
        for party, amount in sums.items():
            out.setdefault(party, {"in": 0, "out": 0})["in" if into else "out"] += amount
    return out


def money_by_party(market: Marketplace, pid: int, from_block: int) -> dict[str, dict[str, int]]:
    """Per party: the wei it paid into the project and took out, summed from the project's events."""
    return by_party(money_events(market, pid, from_block))


def owed(market: Marketplace, pid: int) -> int:
    """What the contract still holds for the project by its state: the budget left, the owner's refund, the bond, and
    every trainer's stake and unclaimed rewards."""
    project = market.project(pid)
    parts = [market.participant(pid, t) for t in market.trainers(pid)]
    return project.budget_left + project.owner_refund + project.bond_held + sum(p.stake + p.rewards for p in parts)


@dataclass(frozen=True)
class MoneyTable:
    """A project's money: per money event and party the wei moved, per party in and out (events), the totals, and
    what the contract owes (state). It is conserved when everything paid in is either paid out or still owed, to the
    wei."""

    by_event: dict[str, dict[str, int]]
    parties: dict[str, dict[str, int]]
    paid_in: int
    paid_out: int
    owed: int

    @property
    def conserved(self) -> bool:
        """In == out + owed."""
        return self.paid_in == self.paid_out + self.owed


def money_table(market: Marketplace, pid: int, from_block: int) -> MoneyTable:
    """Project `pid`'s money table, from its events (since `from_block`, its creation) and its state."""
    events = money_events(market, pid, from_block)
    parties = by_party(events)
    return MoneyTable(events, parties, sum(p["in"] for p in parties.values()), sum(p["out"] for p in parties.values()),
                      owed(market, pid))
