"""The eventsourcing Application: load aggregates, call them, save what they decided.

Callers hand it commands (domain/commands.py) through `handle`; the methods named after the
commands (`open_ticket`, `classify`...) build the command from plain arguments and hand it
on, for code and tests that prefer a call. Each event a command records names the command's
actor (who asked: domain/actors.py), stamped on it before it is saved. Each command returns the notification-log
position of the last event it recorded, so a caller can wait for the read models to reach
it. Nothing here knows how saving is done: locks, caches, batching and retries on a
concurrent change are the host's business (infra/), which runs each command and, when
another writer won a race, runs it again. What the ledger knows of a contract's usage comes
through a port, `UsageReader`, which the host implements on the stored events.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate

from domain import billing, periods, values
from domain.actors import SYSTEM, Actor
from domain.commands import (
    BuyCredits,
    CancelContract,
    CancelTicket,
    ClassifyTicket,
    Command,
    EraseContract,
    ExportContract,
    Open,
    Pause,
    RecordTime,
    RenewContract,
    Reopen,
    Resolve,
    Respond,
    Restore,
    Resume,
    ScheduleMaintenance,
    Sign,
    as_id,
)
from domain.contract import Contract
from domain.errors import Conflict, InvalidInput, NotFound
from domain.plans import PlanTerms
from domain.ticket import Ticket
from domain.wallclock import Clock, SystemClock

A = TypeVar("A", bound=Aggregate)
C = TypeVar("C", bound=Command)
Id = str | UUID

__all__ = ["Recorded", "TicketingApplication", "UsageReader", "as_id"]


class UsageReader(Protocol):
    """The port the credit check asks: how many time entries of each (kind, minutes) are
    recorded on the tickets of a contract. Counts, not the entries themselves, because that
    is all a charge depends on (domain/billing.py), and counts a host can keep up to date as
    entries are recorded, rather than read the contract's whole history on every check."""

    def __call__(self, contract_id: str) -> billing.Usage: ...


@dataclass(frozen=True)
class Recorded:
    """What a command answers: the aggregate it touched and the last position it wrote."""

    aggregate_id: str
    position: int


def _project(aggregate: Any, events: Iterable[Any]) -> Any:
    """Replay events onto an aggregate. The library's default asserts a runtime-checkable
    Protocol per event, which costs more than the replay itself on Python 3.11."""
    for domain_event in events:
        aggregate = domain_event.mutate(aggregate)
    return aggregate


class TicketingApplication(Application[UUID]):
    """Contracts and tickets, recorded as events."""

    name = "ticketing"
    # Long-lived contracts and busy tickets load from a snapshot plus the events after it.
    snapshotting_intervals = {Contract: 100, Ticket: 100}  # noqa: RUF012 - the library reads this class attribute

    def __init__(
        self,
        catalog: Mapping[str, PlanTerms],
        env: Mapping[str, str] | None = None,
        clock: Clock | None = None,
        usage: UsageReader | None = None,
    ) -> None:
        super().__init__(env=env)
        self.catalog = catalog
        self.clock = clock or SystemClock()
        self.usage = usage

    # -- loading and saving -----------------------------------------------------------------

    def _load(self, cls: type[A], aggregate_id: Id) -> A:
        try:
            aggregate = self.repository.get(as_id(aggregate_id), projector_func=_project)
        except AggregateNotFoundError:
            aggregate = None
        if not isinstance(aggregate, cls):
            raise NotFound(f"no {cls.__name__.lower()} {aggregate_id}")
        return aggregate

    def contract(self, contract_id: Id) -> Contract:
        return self._load(Contract, contract_id)

    def ticket(self, ticket_id: Id) -> Ticket:
        return self._load(Ticket, ticket_id)

    def _recorded(self, aggregate: Aggregate, actor: Actor) -> Recorded:
        """Save what the aggregate decided, each new event naming who asked for it. The actor
        is set beside the event's own fields (not one of them: the aggregates' methods never
        see it, and replay passes each method only the fields it takes); the mapper stores
        every attribute of an event, so it comes back with the event."""
        recorded_actor = actor.as_json()
        for pending in aggregate.pending_events:
            object.__setattr__(pending, "actor", recorded_actor)  # events are frozen once built
        recordings = self.save(aggregate)
        return Recorded(str(aggregate.id), max(r.notification.id for r in recordings))

    def terms_of(self, contract: Contract) -> PlanTerms:
        """The contract's agreed terms (a host may cache them: they never change after signing)."""
        return PlanTerms.from_dict(contract.terms)

    def now(self) -> datetime:
        return self.clock.now()

    # -- commands ---------------------------------------------------------------------------

    def handle(self, command: Command) -> Recorded:
        """Run one command: load the aggregate, call it, save what it decided."""
        handler = _HANDLERS.get(type(command))
        if handler is None:
            raise TypeError(f"no handler for {type(command).__name__}")
        return handler(self, command)

    def _sign_contract(self, c: Sign) -> Recorded:
        terms = self.catalog.get(c.plan)
        if terms is None:
            raise InvalidInput(f"unknown plan {c.plan[:64]!r}", {"plans": sorted(self.catalog)})
        when = values.effective_at(c.at, None, self.now())
        holidays = [h.isoformat() for h in c.holidays]
        return self._recorded(Contract.sign(c.customer, c.plan, terms.to_dict(), c.starts_on, c.time_zone,
                                            holidays, when), c.actor)

    def _add_credits(self, c: BuyCredits) -> Recorded:
        contract = self.contract(c.contract_id)
        contract.add_credits(c.credits, contract.when(c.at, self.now()))
        return self._recorded(contract, c.actor)

    def _renew_contract(self, c: RenewContract) -> Recorded:
        contract = self.contract(c.contract_id)
        when = contract.when(c.at, self.now())
        contract.renew(c.reason, c.period_starts_on or periods.local_date(when, contract.time_zone), when)
        return self._recorded(contract, c.actor)

    def _cancel_contract(self, c: CancelContract) -> Recorded:
        contract = self.contract(c.contract_id)
        contract.cancel(c.reason, contract.when(c.at, self.now()))
        return self._recorded(contract, c.actor)

    def _schedule_maintenance(self, c: ScheduleMaintenance) -> Recorded:
        latest = self.now() + values.SCHEDULE_AHEAD
        start, end = values.instant(c.starts_at, latest), values.instant(c.ends_at, latest)
        contract = self.contract(c.contract_id)
        contract.schedule_maintenance(start, end, c.reason, contract.when(c.at, self.now()))
        return self._recorded(contract, c.actor)

    def _export_contract(self, c: ExportContract) -> Recorded:
        contract = self.contract(c.contract_id)
        contract.record_export(c.format, self.now())
        return self._recorded(contract, c.actor)

    def _erase_contract(self, c: EraseContract) -> Recorded:
        contract = self.contract(c.contract_id)
        contract.erase(c.reason, self.now())
        return self._recorded(contract, c.actor)

    def _open_ticket(self, c: Open) -> Recorded:
        contract = self.contract(c.contract_id)
        contract.require_active()
        terms = self.terms_of(contract)
        channel = c.channel or values.DEFAULT_CHANNEL
        if not terms.offers_channel(channel):
            raise InvalidInput(
                f"plan {contract.plan_id} does not offer channel {channel[:64]!r}",
                {"channels": list(terms.channels)},
            )
        when = values.effective_at(c.at, None, self.now())
        if when < contract.opened_at():
            raise InvalidInput(
                "`at` precedes the signing of the contract",
                {"at": when.isoformat(), "signed_at": contract.opened_at().isoformat()},
            )
        if c.down_since is not None and c.down_since > when:
            raise InvalidInput("down_since lies after the ticket was opened")
        self._refuse_without_credits(contract, terms)
        since = c.down_since.isoformat() if c.down_since else None
        ticket = Ticket(str(contract.id), c.title, c.reporter, channel, c.priority, c.category, since, when)
        return self._recorded(ticket, c.actor)

    def credit_balance(self, contract: Contract, terms: PlanTerms) -> int:
        """The credits left, by the one rule the ledger also counts with (domain/billing.py)."""
        assert terms.credits is not None
        usage = self.usage(str(contract.id)) if self.usage else {}
        return billing.credit_balance(contract.credits_granted, terms.credits.charges, usage)

    def _refuse_without_credits(self, contract: Contract, terms: PlanTerms) -> None:
        if terms.credits is None:
            return
        balance = self.credit_balance(contract, terms)
        if balance <= 0:
            raise Conflict(
                "the contract has no credits left: buy a pack before opening a ticket",
                {"balance": balance},
            )

    def _classify(self, c: ClassifyTicket) -> Recorded:
        ticket = self.ticket(c.ticket_id)
        ticket.classify(c.priority, c.category, ticket.when(c.at, self.now()))
        return self._recorded(ticket, c.actor)

    def _record_time(self, c: RecordTime) -> Recorded:
        ticket = self.ticket(c.ticket_id)
        contract = self.contract(ticket.contract_id)
        contract.require_active()
        terms = self.terms_of(contract)
        if terms.credits is not None and c.kind not in terms.credits.charges:
            raise InvalidInput(
                f"plan {contract.plan_id} charges only {sorted(terms.credits.charges)}", {"kind": c.kind}
            )
        ticket.consume_time(c.minutes, c.kind, c.engineer, ticket.when(c.at, self.now()))
        return self._recorded(ticket, c.actor)

    def _ticket_step(self, c: Respond | Resume | Restore) -> Recorded:
        ticket = self.ticket(c.ticket_id)
        step = {Respond: ticket.respond, Resume: ticket.resume, Restore: ticket.restore}[type(c)]
        step(ticket.when(c.at, self.now()))
        return self._recorded(ticket, c.actor)

    def _ticket_step_because(self, c: Pause | Resolve | Reopen | CancelTicket) -> Recorded:
        ticket = self.ticket(c.ticket_id)
        step = {Pause: ticket.pause, Resolve: ticket.resolve, Reopen: ticket.reopen,
                CancelTicket: ticket.cancel}[type(c)]
        step(c.reason, ticket.when(c.at, self.now()))
        return self._recorded(ticket, c.actor)

    # -- the same commands as calls, for scripts and tests: loose input, parsed here ----------
    # Each takes the caller as the keyword `actor` (the system's when not given).

    def sign_contract(
        self, customer: str, plan: str, starts_on: date | str, time_zone: str | None = None,
        holidays: Iterable[date | str] = (), at: When = None, *, actor: Actor = SYSTEM,
    ) -> Recorded:
        return self.handle(Sign(customer=customer, plan=plan, starts_on=values.iso_date(starts_on), time_zone=time_zone,
                                holidays=tuple(values.iso_date(d) for d in holidays), at=_at(at), actor=actor))

    def add_credits(self, contract_id: Id, credits: int, at: When = None, *, actor: Actor = SYSTEM) -> Recorded:
        return self.handle(BuyCredits(as_id(contract_id), credits, _at(at), actor=actor))

    def renew_contract(self, contract_id: Id, reason: str | None = None, at: When = None,
                       period_starts_on: date | None = None, *, actor: Actor = SYSTEM) -> Recorded:
        return self.handle(RenewContract(as_id(contract_id), reason, _at(at), period_starts_on, actor=actor))

    def cancel_contract(self, contract_id: Id, reason: str | None = None, at: When = None, *,
                        actor: Actor = SYSTEM) -> Recorded:
        return self.handle(CancelContract(as_id(contract_id), reason, _at(at), actor=actor))

    def schedule_maintenance(self, contract_id: Id, starts_at: datetime | str, ends_at: datetime | str,
                             reason: str | None = None, at: When = None, *, actor: Actor = SYSTEM) -> Recorded:
        return self.handle(ScheduleMaintenance(as_id(contract_id), values.instant(starts_at), values.instant(ends_at),
                                               reason, _at(at), actor=actor))

    def export_contract(self, contract_id: Id, format: str, *, actor: Actor = SYSTEM) -> Recorded:
        return self.handle(ExportContract(as_id(contract_id), format, actor=actor))

    def erase_contract(self, contract_id: Id, reason: str | None = None, *, actor: Actor = SYSTEM) -> Recorded:
        return self.handle(EraseContract(as_id(contract_id), reason, actor=actor))

    def open_ticket(self, contract_id: Id, title: str, reporter: str, channel: str | None = None,
                    priority: str | None = None, category: str | None = None,
                    down_since: When = None, at: When = None, *, actor: Actor = SYSTEM) -> Recorded:
        return self.handle(Open(contract_id=as_id(contract_id), title=title, reporter=reporter, channel=channel,
                                priority=None if priority is None else values.priority(priority),
                                category=None if category is None else values.category(category),
                                down_since=_at(down_since), at=_at(at), actor=actor))

    def classify(self, ticket_id: Id, priority: str, category: str | None = None, at: When = None, *,
                 actor: Actor = SYSTEM) -> Recorded:
        return self.handle(ClassifyTicket(as_id(ticket_id), values.priority(priority),
                                          None if category is None else values.category(category), _at(at),
                                          actor=actor))

    def record_time(self, ticket_id: Id, minutes: int, kind: str, engineer: str | None = None,
                    at: When = None, *, actor: Actor = SYSTEM) -> Recorded:
        return self.handle(RecordTime(as_id(ticket_id), minutes, values.entry_kind(kind), engineer, _at(at),
                                      actor=actor))

    def respond(self, ticket_id: Id, at: When = None, *, actor: Actor = SYSTEM) -> Recorded:
        return self.handle(Respond(as_id(ticket_id), _at(at), actor=actor))

    def resume(self, ticket_id: Id, at: When = None, *, actor: Actor = SYSTEM) -> Recorded:
        return self.handle(Resume(as_id(ticket_id), _at(at), actor=actor))

    def restore(self, ticket_id: Id, at: When = None, *, actor: Actor = SYSTEM) -> Recorded:
        return self.handle(Restore(as_id(ticket_id), _at(at), actor=actor))

    def pause(self, ticket_id: Id, reason: str | None = None, at: When = None, *,
              actor: Actor = SYSTEM) -> Recorded:
        return self.handle(Pause(as_id(ticket_id), reason, _at(at), actor=actor))

    def resolve(self, ticket_id: Id, reason: str | None = None, at: When = None, *,
                actor: Actor = SYSTEM) -> Recorded:
        return self.handle(Resolve(as_id(ticket_id), reason, _at(at), actor=actor))

    def reopen(self, ticket_id: Id, reason: str | None = None, at: When = None, *,
               actor: Actor = SYSTEM) -> Recorded:
        return self.handle(Reopen(as_id(ticket_id), reason, _at(at), actor=actor))

    def cancel_ticket(self, ticket_id: Id, reason: str | None = None, at: When = None, *,
                      actor: Actor = SYSTEM) -> Recorded:
        return self.handle(CancelTicket(as_id(ticket_id), reason, _at(at), actor=actor))


When = datetime | str | None


def _at(value: When) -> datetime | None:
    return None if value is None else values.instant(value)


_HANDLERS: dict[type[Command], Callable[[TicketingApplication, Any], Recorded]] = {
    Sign: TicketingApplication._sign_contract,
    BuyCredits: TicketingApplication._add_credits,
    RenewContract: TicketingApplication._renew_contract,
    CancelContract: TicketingApplication._cancel_contract,
    ScheduleMaintenance: TicketingApplication._schedule_maintenance,
    ExportContract: TicketingApplication._export_contract,
    EraseContract: TicketingApplication._erase_contract,
    Open: TicketingApplication._open_ticket,
    ClassifyTicket: TicketingApplication._classify,
    RecordTime: TicketingApplication._record_time,
    **dict.fromkeys((Respond, Resume, Restore), TicketingApplication._ticket_step),
    **dict.fromkeys((Pause, Resolve, Reopen, CancelTicket), TicketingApplication._ticket_step_because),
}
