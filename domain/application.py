"""The eventsourcing Application: load aggregates, call them, save what they decided.

Each command returns the notification-log position of the last event it recorded, so a
caller can wait for the read models to reach it. Nothing here knows how saving is done:
locks, caches, batching and retries on a concurrent change are the host's business
(infra/), which runs each command and, when another writer won a race, runs it again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate

from domain import billing, periods, values
from domain.wallclock import Clock, SystemClock
from domain.contract import Contract
from domain.errors import Conflict, InvalidInput, NotFound
from domain.plans import PlanTerms
from domain.ticket import Ticket

A = TypeVar("A", bound=Aggregate)


class UsageReader(Protocol):
    """Reads the time entries of a contract straight from the event store: (kind, minutes)."""

    def __call__(self, contract_id: str) -> Iterable[tuple[str, int]]: ...


@dataclass(frozen=True)
class Recorded:
    """What a command answers: the aggregate it touched and the last position it wrote."""

    aggregate_id: str
    position: int


def as_id(value: str | UUID) -> UUID:
    """An aggregate id in its one canonical form; text that is no UUID names nothing."""
    if isinstance(value, UUID):
        return value
    try:
        return UUID(str(value))
    except ValueError:
        raise NotFound(f"no such id {str(value)[:64]!r}") from None


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
    snapshotting_intervals = {Contract: 100, Ticket: 100}

    def __init__(
        self,
        catalog: Mapping[str, PlanTerms],
        env: Mapping[str, str] | None = None,
        clock: Clock | None = None,
        usage: UsageReader | None = None,
    ) -> None:
        super().__init__(env=env)
        self._terms: dict[UUID, PlanTerms] = {}
        self.catalog = catalog
        self.clock = clock or SystemClock()
        self.usage = usage

    # -- loading and saving -----------------------------------------------------------------

    def _load(self, cls: type[A], aggregate_id: str | UUID) -> A:
        try:
            aggregate = self.repository.get(as_id(aggregate_id), projector_func=_project)
        except AggregateNotFoundError:
            aggregate = None
        if not isinstance(aggregate, cls):
            raise NotFound(f"no {cls.__name__.lower()} {aggregate_id}")
        return aggregate

    def contract(self, contract_id: str | UUID) -> Contract:
        return self._load(Contract, contract_id)

    def ticket(self, ticket_id: str | UUID) -> Ticket:
        return self._load(Ticket, ticket_id)

    def _recorded(self, aggregate: Aggregate) -> Recorded:
        recordings = self.save(aggregate)
        return Recorded(str(aggregate.id), max(r.notification.id for r in recordings))

    def terms_of(self, contract: Contract) -> PlanTerms:
        """The contract's agreed terms, parsed once (they never change after signing)."""
        terms = self._terms.get(contract.id)
        if terms is None:
            terms = self._terms[contract.id] = PlanTerms.from_dict(contract.terms)
        return terms

    def now(self) -> datetime:
        return self.clock.now()

    # -- contracts ------------------------------------------------------------------------

    def sign_contract(
        self,
        customer: str,
        plan: str,
        starts_on: date | str,
        time_zone: str | None = None,
        holidays: Iterable[str] = (),
        at: datetime | str | None = None,
    ) -> Recorded:
        terms = self.catalog.get(plan)
        if terms is None:
            raise InvalidInput(f"unknown plan {plan[:64]!r}", {"plans": sorted(self.catalog)})
        when = values.effective_at(at, None, self.now())
        holidays = list(holidays)
        return self._recorded(Contract.sign(customer, plan, terms.to_dict(), starts_on, time_zone, holidays, when))

    def add_credits(self, contract_id: str | UUID, credits: int, at: Any = None) -> Recorded:
        contract = self.contract(contract_id)
        contract.add_credits(credits, contract.when(at, self.now()))
        return self._recorded(contract)

    def renew_contract(
        self, contract_id: str | UUID, reason: str | None = None, at: Any = None,
        period_starts_on: date | None = None,
    ) -> Recorded:
        """Start a new period on the day of `at`, or on `period_starts_on` (the renewal pass
        names the anniversary when the contract's last event is later than it)."""
        contract = self.contract(contract_id)
        when = contract.when(at, self.now())
        contract.renew(reason, period_starts_on or periods.local_date(when, contract.time_zone), when)
        return self._recorded(contract)

    def cancel_contract(self, contract_id: str | UUID, reason: str | None = None, at: Any = None) -> Recorded:
        contract = self.contract(contract_id)
        contract.cancel(reason, contract.when(at, self.now()))
        return self._recorded(contract)

    def schedule_maintenance(
        self, contract_id: str | UUID, starts_at: Any, ends_at: Any, reason: str | None = None, at: Any = None
    ) -> Recorded:
        latest = self.now() + values.SCHEDULE_AHEAD
        start, end = values.instant(starts_at, latest), values.instant(ends_at, latest)
        contract = self.contract(contract_id)
        contract.schedule_maintenance(start, end, reason, contract.when(at, self.now()))
        return self._recorded(contract)

    # -- tickets --------------------------------------------------------------------------

    def open_ticket(
        self,
        contract_id: str | UUID,
        title: str,
        reporter: str,
        channel: str | None = None,
        priority: str | None = None,
        category: str | None = None,
        down_since: Any = None,
        at: Any = None,
    ) -> Recorded:
        values.text("title", title, values.MAX_TITLE, required=True)
        values.text("reporter", reporter, values.MAX_NAME, required=True)
        channel = channel or values.DEFAULT_CHANNEL
        priority = values.priority(priority) if priority is not None else None
        category = values.category(category) if category is not None else None
        since = values.instant(down_since) if down_since is not None else None
        contract = self.contract(contract_id)
        contract.require_active()
        terms = self.terms_of(contract)
        if not terms.offers_channel(channel):
            raise InvalidInput(
                f"plan {contract.plan_id} does not offer channel {channel[:64]!r}",
                {"channels": list(terms.channels)},
            )
        when = values.effective_at(at, None, self.now())
        if when < contract.opened_at():
            raise InvalidInput(
                "`at` precedes the signing of the contract",
                {"at": when.isoformat(), "signed_at": contract.opened_at().isoformat()},
            )
        if since is not None and since > when:
            raise InvalidInput("down_since lies after the ticket was opened")
        self._refuse_without_credits(contract, terms)
        ticket = Ticket(str(contract.id), title, reporter, channel, priority, category,
                        since.isoformat() if since else None, when)
        return self._recorded(ticket)

    def credit_balance(self, contract: Contract, terms: PlanTerms) -> int:
        assert terms.credits is not None
        charges = terms.credits.charges
        used = sum(
            billing.credit_charge(charges[kind], minutes)
            for kind, minutes in (self.usage(str(contract.id)) if self.usage else ())
            if kind in charges
        )
        return contract.credits_granted - used

    def _refuse_without_credits(self, contract: Contract, terms: PlanTerms) -> None:
        if terms.credits is None:
            return
        balance = self.credit_balance(contract, terms)
        if balance <= 0:
            raise Conflict(
                "the contract has no credits left: buy a pack before opening a ticket",
                {"balance": balance},
            )

    def classify(self, ticket_id: str | UUID, priority: str, category: str | None = None, at: Any = None) -> Recorded:
        priority = values.priority(priority)
        category = values.category(category) if category is not None else None
        ticket = self.ticket(ticket_id)
        ticket.classify(priority, category, ticket.when(at, self.now()))
        return self._recorded(ticket)

    def respond(self, ticket_id: str | UUID, at: Any = None) -> Recorded:
        ticket = self.ticket(ticket_id)
        ticket.respond(ticket.when(at, self.now()))
        return self._recorded(ticket)

    def pause(self, ticket_id: str | UUID, reason: str | None = None, at: Any = None) -> Recorded:
        ticket = self.ticket(ticket_id)
        ticket.pause(reason, ticket.when(at, self.now()))
        return self._recorded(ticket)

    def resume(self, ticket_id: str | UUID, at: Any = None) -> Recorded:
        ticket = self.ticket(ticket_id)
        ticket.resume(ticket.when(at, self.now()))
        return self._recorded(ticket)

    def restore(self, ticket_id: str | UUID, at: Any = None) -> Recorded:
        ticket = self.ticket(ticket_id)
        ticket.restore(ticket.when(at, self.now()))
        return self._recorded(ticket)

    def resolve(self, ticket_id: str | UUID, reason: str | None = None, at: Any = None) -> Recorded:
        ticket = self.ticket(ticket_id)
        ticket.resolve(reason, ticket.when(at, self.now()))
        return self._recorded(ticket)

    def reopen(self, ticket_id: str | UUID, reason: str | None = None, at: Any = None) -> Recorded:
        ticket = self.ticket(ticket_id)
        ticket.reopen(reason, ticket.when(at, self.now()))
        return self._recorded(ticket)

    def cancel_ticket(self, ticket_id: str | UUID, reason: str | None = None, at: Any = None) -> Recorded:
        ticket = self.ticket(ticket_id)
        ticket.cancel(reason, ticket.when(at, self.now()))
        return self._recorded(ticket)

    def record_time(
        self, ticket_id: str | UUID, minutes: int, kind: str, engineer: str | None = None, at: Any = None
    ) -> Recorded:
        minutes = values.positive_minutes(minutes)
        kind = values.entry_kind(kind)
        ticket = self.ticket(ticket_id)
        contract = self.contract(ticket.contract_id)
        contract.require_active()
        terms = self.terms_of(contract)
        if terms.credits is not None and kind not in terms.credits.charges:
            raise InvalidInput(
                f"plan {contract.plan_id} charges only {sorted(terms.credits.charges)}", {"kind": kind}
            )
        ticket.consume_time(minutes, kind, engineer, ticket.when(at, self.now()))
        return self._recorded(ticket)
