"""The eventsourcing Application: load aggregates, call them, save what they decided.

Each command returns the notification-log position of the last event it recorded, so a
caller can wait for the read models to reach it. A concurrent change to the same aggregate
(a version conflict in the store) makes the command run again on fresh state, a few times,
before it is refused as a conflict.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
import threading
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from domain import billing, values
from domain.clock import Clock, SystemClock
from domain.contract import Contract
from domain.errors import ConcurrentChange, Conflict, InvalidInput, NotFound
from domain.plans import PlanTerms
from domain.ticket import Ticket

RETRIES = 5
A = TypeVar("A", bound=Aggregate)


class UsageReader(Protocol):
    """Reads the time entries of a contract straight from the event store: (kind, minutes)."""

    def __call__(self, contract_id: str) -> Iterable[tuple[str, int]]: ...


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


class Committer(Protocol):
    """Saves the aggregates one command changed and returns their recordings."""

    def __call__(self, *aggregates: Aggregate) -> list[Any]: ...


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
        # Cached aggregates are handed out without a copy: commands on one aggregate are
        # serialised by a lock, and one whose save fails is evicted (see _attempt).
        super().__init__(env={"AGGREGATE_CACHE_MAXSIZE": "20000", "DEEPCOPY_FROM_AGGREGATE_CACHE": "n",
                              **(env or {})})
        self._terms: dict[UUID, PlanTerms] = {}
        self.commit: Committer = self.save
        self._locks = [threading.Lock() for _ in range(256)]
        self.catalog = catalog
        self.clock = clock or SystemClock()
        self.usage = usage

    # -- plumbing -------------------------------------------------------------------------

    def _load(self, cls: type[A], aggregate_id: str | UUID) -> A:
        try:
            uid = aggregate_id if isinstance(aggregate_id, UUID) else UUID(str(aggregate_id))
            aggregate = self.repository.get(uid, projector_func=_project)
        except (ValueError, AggregateNotFoundError):
            raise NotFound(f"no {cls.__name__.lower()} {aggregate_id}") from None
        if not isinstance(aggregate, cls):
            raise NotFound(f"no {cls.__name__.lower()} {aggregate_id}")
        return aggregate

    def contract(self, contract_id: str | UUID) -> Contract:
        return self._load(Contract, contract_id)

    def ticket(self, ticket_id: str | UUID) -> Ticket:
        return self._load(Ticket, ticket_id)

    def _run(self, decide: Callable[[], Aggregate | tuple[Aggregate, ...]], key: str | None = None) -> Recorded:
        """Run `decide` (load, call, return what changed) and save; retry on a version clash.

        Commands on one aggregate queue behind a lock in this process, so they do not race
        each other; the retry covers races with other processes.
        """
        if key is None:
            return self._attempt(decide)
        with self._locks[hash(key) % len(self._locks)]:
            return self._attempt(decide)

    def _attempt(self, decide: Callable[[], Aggregate | tuple[Aggregate, ...]]) -> Recorded:
        for _ in range(RETRIES):
            changed = decide()
            aggregates = changed if isinstance(changed, tuple) else (changed,)
            try:
                recordings = self.commit(*aggregates)
            except IntegrityError:
                self._evict(aggregates)
                continue
            except BaseException:
                self._evict(aggregates)
                raise
            position = max(r.notification.id for r in recordings)
            return Recorded(str(aggregates[0].id), position)
        raise ConcurrentChange("the aggregate kept changing under this command; try again")

    def _evict(self, aggregates: tuple[Aggregate, ...]) -> None:
        """Forget aggregates a failed save left changed in memory: reload them next time."""
        cache = self.repository.cache
        for aggregate in aggregates:
            if cache is not None:
                try:
                    cache.get(aggregate.id, evict=True)
                except KeyError:
                    pass

    def terms_of(self, contract: Contract) -> PlanTerms:
        """The contract's agreed terms, parsed once (they never change after signing)."""
        terms = self._terms.get(contract.id)
        if terms is None:
            terms = self._terms[contract.id] = PlanTerms.from_dict(contract.terms)
        return terms

    def _now(self) -> datetime:
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
            raise InvalidInput(f"unknown plan {plan!r}", {"plans": sorted(self.catalog)})
        when = values.effective_at(at, None, self._now())
        return self._run(
            lambda: Contract.sign(
                customer, plan, terms.to_dict(), starts_on, time_zone, list(holidays), when
            )
        )

    def _on_contract(self, contract_id: str, act: Callable[[Contract, datetime], None], at: Any) -> Recorded:
        def decide() -> Contract:
            contract = self.contract(contract_id)
            act(contract, contract.when(at, self._now()))
            return contract

        return self._run(decide, contract_id)

    def add_credits(self, contract_id: str, credits: int, at: Any = None) -> Recorded:
        return self._on_contract(contract_id, lambda c, w: c.add_credits(credits, w), at)

    def renew_contract(
        self, contract_id: str, reason: str | None = None, at: Any = None,
        period_starts_on: date | None = None,
    ) -> Recorded:
        """Start a new period on the day of `at`, or on `period_starts_on` (the renewal pass
        names the anniversary when the contract's last event is later than it)."""
        return self._on_contract(
            contract_id,
            lambda c, w: c.renew(reason, period_starts_on or values.local_date(w, c.time_zone), w),
            at,
        )

    def cancel_contract(self, contract_id: str, reason: str | None = None, at: Any = None) -> Recorded:
        return self._on_contract(contract_id, lambda c, w: c.cancel(reason, w), at)

    def schedule_maintenance(
        self, contract_id: str, starts_at: Any, ends_at: Any, reason: str | None = None, at: Any = None
    ) -> Recorded:
        start, end = values.instant(starts_at), values.instant(ends_at)
        return self._on_contract(contract_id, lambda c, w: c.schedule_maintenance(start, end, reason, w), at)

    # -- tickets --------------------------------------------------------------------------

    def open_ticket(
        self,
        contract_id: str,
        title: str,
        reporter: str,
        channel: str | None = None,
        priority: str | None = None,
        category: str | None = None,
        down_since: Any = None,
        at: Any = None,
    ) -> Recorded:
        if not title.strip() or not reporter.strip():
            raise InvalidInput("title and reporter must not be empty")
        channel = channel or values.DEFAULT_CHANNEL
        priority = values.priority(priority) if priority is not None else None
        category = values.category(category) if category is not None else None
        since = values.instant(down_since) if down_since is not None else None
        contract = self.contract(contract_id)
        contract.require_active()
        terms = self.terms_of(contract)
        if not terms.offers_channel(channel):
            raise InvalidInput(
                f"plan {contract.plan_id} does not offer channel {channel!r}",
                {"channels": list(terms.channels)},
            )
        when = values.effective_at(at, None, self._now())
        if when < contract.opened_at():
            raise InvalidInput(
                "`at` precedes the signing of the contract",
                {"at": when.isoformat(), "signed_at": contract.opened_at().isoformat()},
            )
        if since is not None and since > when:
            raise InvalidInput("down_since lies after the ticket was opened")
        self._refuse_without_credits(contract, terms)
        return self._run(
            lambda: Ticket(
                str(contract.id),
                title,
                reporter,
                channel,
                priority,
                category,
                since.isoformat() if since else None,
                when,
            )
        )

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

    def _on_ticket(self, ticket_id: str, act: Callable[[Ticket, datetime], None], at: Any) -> Recorded:
        def decide() -> Ticket:
            ticket = self.ticket(ticket_id)
            act(ticket, ticket.when(at, self._now()))
            return ticket

        return self._run(decide, ticket_id)

    def classify(self, ticket_id: str, priority: str, category: str | None = None, at: Any = None) -> Recorded:
        priority = values.priority(priority)
        category = values.category(category) if category is not None else None
        return self._on_ticket(ticket_id, lambda t, w: t.classify(priority, category, w), at)

    def respond(self, ticket_id: str, at: Any = None) -> Recorded:
        return self._on_ticket(ticket_id, lambda t, w: t.respond(w), at)

    def pause(self, ticket_id: str, reason: str | None = None, at: Any = None) -> Recorded:
        return self._on_ticket(ticket_id, lambda t, w: t.pause(reason, w), at)

    def resume(self, ticket_id: str, at: Any = None) -> Recorded:
        return self._on_ticket(ticket_id, lambda t, w: t.resume(w), at)

    def restore(self, ticket_id: str, at: Any = None) -> Recorded:
        return self._on_ticket(ticket_id, lambda t, w: t.restore(w), at)

    def resolve(self, ticket_id: str, reason: str | None = None, at: Any = None) -> Recorded:
        return self._on_ticket(ticket_id, lambda t, w: t.resolve(reason, w), at)

    def reopen(self, ticket_id: str, reason: str | None = None, at: Any = None) -> Recorded:
        return self._on_ticket(ticket_id, lambda t, w: t.reopen(reason, w), at)

    def cancel_ticket(self, ticket_id: str, reason: str | None = None, at: Any = None) -> Recorded:
        return self._on_ticket(ticket_id, lambda t, w: t.cancel(reason, w), at)

    def record_time(
        self, ticket_id: str, minutes: int, kind: str, engineer: str | None = None, at: Any = None
    ) -> Recorded:
        minutes = values.positive_minutes(minutes)
        kind = values.entry_kind(kind)

        def act(ticket: Ticket, when: datetime) -> None:
            contract = self.contract(ticket.contract_id)
            contract.require_active()
            terms = self.terms_of(contract)
            if terms.credits is not None and kind not in terms.credits.charges:
                raise InvalidInput(
                    f"plan {contract.plan_id} charges only {sorted(terms.credits.charges)}",
                    {"kind": kind},
                )
            ticket.consume_time(minutes, kind, engineer, when)

        return self._on_ticket(ticket_id, act, at)
