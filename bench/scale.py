"""Costs as history grows: the same questions asked of event stores of different sizes.

Workload: a store per size (`--events`, a comma list, default 100,000 and 1,000,000), each in
an embedded PostgreSQL of its own, all running at once. Every figure is taken of all the
stores in alternation, never of one size after the other: on a shared machine whose speed
drifts by a factor of two within the hour, only figures taken side by side can be compared.
- write: events recorded through the application's own saving (`HostedApplication.save`, as
  the API's commands are: checked against their Avro schemas, personal fields sealed under
  their contract's key, hash-chained, group-committed), 200 tickets per transaction, the
  contracts signed through the application; each batch goes to the store furthest behind in
  its own workload, and each store's rate is taken over the time spent on its own batches.
  Within a store the contracts' batches are interleaved, as a real history's are. Then VACUUM
  ANALYZE.
  * history: a crm-experts/platinum contract with 2,000 tickets of 5 events each (opened,
    classified, responded, time recorded, resolved): 10,001 events;
  * sla: a crm-experts/platinum contract with 5,000 such tickets, all opened in November 2026;
  * credits: a dolibarr/credits contract holding 1,000,000 credits and 1,000 tickets of 10
    time entries each (10,000 entries); beside it, one of the same plan with no entries;
  * filler: contracts of 1,000 such tickets (crm-experts/gold, bpm/business, datacrm/standard
    with every tenth ticket an outage, system-down and restored, sf-partner/silver) until the
    store holds the size.
- per projection, the stores in turn from the smallest to the largest and back (the smaller
  ones measured before and after the larger, their two runs summed), and for each store
  read+decode then rebuild, one right after the other (so that both rates are taken under the
  same load of the machine):
  * read+decode: the store read in pages of 5,000 by `select_notifications` and decoded as a
    rebuild decodes them (`ApplicationHost.published`: envelopes, personal fields opened), and
    nothing else;
  * rebuild: the projection rebuilt from the store by the code of `ticketing rebuild P`
    (infra/postgres/rebuild.py: prepare, fill, switch into the live tables, which the API then
    reads). The fill's rate is set beside the read+decode rate before it; the switch is timed
    apart.
- over HTTP, against a `ticketing api` per store (one uvicorn worker each, in its own process),
  sequential keep-alive requests after one warm-up, each request asked of every store in turn:
  `GET /contracts/{id}/history` of the history contract (10), `GET /contracts/{id}/sla?month=
  2026-11` of the sla contract (20), `POST /tickets` on the credit contract with 10,000
  entries and on the one with none (500 each).
Printed: each figure as it is measured, with the machine's load average then, and one table
with a column per size and the ratio of the largest size's rate to the smallest's, flagging a
rate that falls by more than 20 % and a rebuild whose fill reaches less than 50 % of the
read+decode rate (the exit status is then 1).
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psycopg
from rich.progress import Progress

from bench.stats import summary
from domain.actors import SYSTEM
from domain.ticket import Ticket
from infra.postgres import rebuild
from infra.postgres.store import ApplicationHost
from infra.process import embedded, wiring
from infra.registry import PROJECTIONS
from infra.settings import Settings
from tests.processes import Processes

Figures = dict[str, dict[str, Any]]  # row name -> a `bench.stats.summary` row
TICKETS_PER_BATCH = 200
FILLER_TICKETS = 1_000
FILLER_PLANS = ("crm-experts/gold", "bpm/business", "datacrm/standard", "sf-partner/silver")
SIGNED = datetime(2026, 10, 1, tzinfo=UTC)
MONTH = "2026-11"
NOVEMBER = datetime(2026, 11, 1, 12, tzinfo=UTC)
HISTORY_REQUESTS, SLA_REQUESTS, OPEN_REQUESTS = 10, 20, 500  # a request of a few ms: enough that a stall or two do not set the rate
FALL = 0.8  # a rate may not fall below this share of the smallest store's
OF_READ = 0.5  # a rebuild's fill must reach this share of the read+decode rate
ACTOR = SYSTEM.as_json()
T = TypeVar("T")


# -- the workload ----------------------------------------------------------------------------

@dataclass
class Stream:
    """One contract's tickets, written in batches: `batch(k)` builds the k-th batch's tickets."""

    name: str
    batches: int
    batch: Callable[[int], list[Ticket]]
    done: int = 0


def standard(cid: str, title: str, at: datetime, outage: bool = False) -> Ticket:
    """Opened, classified (or, for an outage, restored), responded, time recorded, resolved."""
    if outage:
        ticket = Ticket(cid, title, "reporter@example.org", "portal", "P1", "system-down",
                        (at - timedelta(minutes=5)).isoformat(), at)
    else:
        ticket = Ticket(cid, title, "reporter@example.org", "portal", None, None, None, at)
        ticket.classify("P3", "incident", at + timedelta(minutes=2))
    ticket.respond(at + timedelta(minutes=15))
    if outage:
        ticket.restore(at + timedelta(minutes=50))
    ticket.consume_time(30, "work", "engineer one", at + timedelta(minutes=45))
    ticket.resolve("fixed by a patch", at + timedelta(hours=2))
    return ticket


def with_entries(cid: str, title: str, at: datetime, entries: int = 10) -> Ticket:
    """Opened, responded, `entries` queries of 15 minutes, resolved: 10 + 3 events."""
    ticket = Ticket(cid, title, "reporter@example.org", "portal", None, None, None, at)
    ticket.respond(at + timedelta(minutes=5))
    for k in range(entries):
        ticket.consume_time(15, "query", "engineer one", at + timedelta(minutes=10 + 10 * k))
    ticket.resolve("answered", at + timedelta(hours=3))
    return ticket


def spread(cid: str, tickets: int, start: datetime, span: timedelta,
           make: Callable[[str, str, datetime, int], Ticket]) -> Callable[[int], list[Ticket]]:
    """Batches of a contract's `tickets`, opened evenly over `span` from `start`."""
    step = span / tickets

    def batch(k: int) -> list[Ticket]:
        first = k * TICKETS_PER_BATCH
        return [make(cid, f"ticket {n}", start + step * n, n) for n in range(first, min(first + TICKETS_PER_BATCH, tickets))]
    return batch


def batches(tickets: int) -> int:
    return -(-tickets // TICKETS_PER_BATCH)


@dataclass
class Contracts:
    history: str
    sla: str
    credits: str
    credits_empty: str


def sign(store: ApplicationHost, plan: str, customer: str, credits: int = 0) -> str:
    app = store.app
    cid = app.sign_contract(customer, plan, SIGNED.date(), at=SIGNED).aggregate_id
    if credits:
        app.add_credits(cid, credits, at=SIGNED)
    return cid


def streams(store: ApplicationHost, size: int) -> tuple[Contracts, list[Stream]]:
    """Sign the contracts; the streams of their tickets, the filler's sized to fill the store."""
    two_months = timedelta(days=60)
    contracts = Contracts(sign(store, "crm-experts/platinum", "History Ltd"), sign(store, "crm-experts/platinum", "Busy Ltd"),
                          sign(store, "dolibarr/credits", "Credits Ltd", 1_000_000),
                          sign(store, "dolibarr/credits", "Fresh Credits Ltd", 1_000_000))
    out = [
        Stream("history", batches(2_000), spread(contracts.history, 2_000, SIGNED, two_months,
                                                lambda c, t, at, n: standard(c, t, at))),
        Stream("sla", batches(5_000), spread(contracts.sla, 5_000, NOVEMBER, timedelta(days=28),
                                            lambda c, t, at, n: standard(c, t, at))),
        Stream("credits", batches(1_000), spread(contracts.credits, 1_000, SIGNED, two_months,
                                                lambda c, t, at, n: with_entries(c, t, at))),
    ]
    written = store.head() + 2_000 * 5 + 5_000 * 5 + 1_000 * 13
    filler = max(0, size - written) // 5
    for i in range(-(-filler // FILLER_TICKETS)):
        plan = FILLER_PLANS[i % len(FILLER_PLANS)]
        cid = sign(store, plan, f"Filler {i}")
        tickets = min(FILLER_TICKETS, filler - i * FILLER_TICKETS)
        outages = plan.startswith("datacrm/")
        out.append(Stream(f"filler {i}", batches(tickets), spread(
            cid, tickets, SIGNED, two_months, lambda c, t, at, n, o=outages: standard(c, t, at, o and n % 10 == 0))))
    return contracts, out


def interleaved(all_streams: list[Stream]) -> Iterator[Stream]:
    """Each stream's next batch in turn, every stream spread evenly over the whole run (the
    special contracts' events lie among the filler's, as a real history's do)."""
    queue = [((0.5 / s.batches), i, s) for i, s in enumerate(all_streams) if s.batches]
    heapq.heapify(queue)
    while queue:
        _, i, stream = heapq.heappop(queue)
        yield stream
        stream.done += 1
        if stream.done < stream.batches:
            heapq.heappush(queue, ((stream.done + 0.5) / stream.batches, i, stream))


@dataclass
class Writer:
    """One store being written: its workload's batches in order, and the time spent on them."""

    size: int
    store: ApplicationHost
    contracts: Contracts
    steps: Iterator[Stream]
    batches: int
    spent: float  # seconds spent writing this store (signing its contracts included)
    marks: list[tuple[float, int]] = field(default_factory=list)  # (spent, events in the store)
    done: int = 0


def write(targets: list[tuple[int, str]]) -> dict[int, tuple[Contracts, dict[str, Any]]]:
    """Every store's workload (size, database URL), written through the application's saving
    in alternation: each step writes a batch to the store furthest behind in its own workload,
    so that every store's rate is taken over the same stretch of the machine's time (a machine
    that slows halfway slows them all alike). The rates of the first and the last tenth of a
    store's events say whether writing slows as it fills."""
    writers = []
    for size, url in targets:
        store = wiring.event_store(Settings(database_url=url))
        started = time.perf_counter()
        contracts, all_streams = streams(store, size)
        spent = time.perf_counter() - started
        writers.append(Writer(size, store, contracts, interleaved(all_streams), sum(s.batches for s in all_streams),
                              spent, [(spent, store.head())]))
    try:
        with rebuild.bars() as progress:
            tasks = {w.size: progress.add_task(f"write {w.size:,} events", total=w.size, completed=w.store.head())
                     for w in writers}
            while busy := [w for w in writers if w.done < w.batches]:
                w = min(busy, key=lambda w: w.done / w.batches)
                started = time.perf_counter()
                stream = next(w.steps)
                tickets = stream.batch(stream.done)
                for ticket in tickets:
                    for pending in ticket.pending_events:
                        object.__setattr__(pending, "actor", ACTOR)  # as `TicketingApplication._recorded` stamps it
                written = len(w.store.app.save(*tickets))
                w.spent += time.perf_counter() - started
                w.done += 1
                w.marks.append((w.spent, w.marks[-1][1] + written))
                progress.advance(tasks[w.size], written)
        out = {}
        for w in writers:
            first, last = tenths(w.marks)
            out[w.size] = w.contracts, summary(
                "write through the application", w.store.head(), w.spent, load=load(),
                first_tenth=f"{first:,.0f}/s", last_tenth=f"{last:,.0f}/s")
        return out
    finally:
        for w in writers:
            w.store.close()


def tenths(marks: list[tuple[float, int]]) -> tuple[float, float]:
    """From (time, events written so far) marks: the rates of the first and the last tenth."""
    (start, written), (end, total) = marks[0], marks[-1]
    early = next(m for m in marks if m[1] - written >= (total - written) / 10)
    late = [m for m in marks if total - m[1] >= (total - written) / 10][-1]
    return (early[1] - written) / (early[0] - start), (total - late[1]) / (end - late[0])


def vacuum(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


# -- the measurements ------------------------------------------------------------------------

def load() -> float:
    """The machine's load average over the last minute, as a figure is taken: on a shared
    machine, other work slows every figure, and this says how much there was."""
    return round(os.getloadavg()[0], 1)


def read_and_decode(store: ApplicationHost, progress: Progress, name: str) -> tuple[int, float]:
    """The store read and decoded as a rebuild from the store reads it, and nothing more: the
    events decoded and the seconds taken."""
    head = store.head()
    task = progress.add_task(name, total=head)
    count, start = 0, 1
    started = time.perf_counter()
    while start <= head:
        page = store.recorder.select_notifications(start=start, limit=rebuild.PAGE, stop=head)
        if not page:
            break
        count += len(store.published(page))
        start = page[-1].id + 1
        progress.update(task, completed=start - 1)
    return count, time.perf_counter() - started


def rebuild_once(settings: Settings, store: ApplicationHost, spec: Any, progress: Progress) -> tuple[int, float, float]:
    """One projection rebuilt as `ticketing rebuild P` rebuilds it: fill from the store, then
    switch into the live tables (which the API then reads). The events applied, the fill's
    seconds and the switch's."""
    url = settings.database_url or ""
    job = rebuild.Rebuild(spec, store, url, settings.events_topic, settings.partitions)
    with rebuild.alone(url, spec):
        job.prepare("store")
        started = time.perf_counter()
        job.fill(job.target("store"), progress)
        filled = time.perf_counter() - started
        job.switch(datetime.now(UTC), progress)
        switched = time.perf_counter() - started - filled
    rebuild.drop_old(url, spec)
    return job.applied, filled, switched


def in_turn(sizes: list[int]) -> list[int]:
    """The order the stores are measured in: smallest to largest and back, so that the smaller
    ones are measured before and after the larger (a machine that slows or speeds up meanwhile
    moves every size's figure alike)."""
    return sizes + sizes[-2::-1]


def rebuild_all(stores: dict[int, tuple[Settings, ApplicationHost]], progress: Progress) -> dict[int, list[dict[str, Any]]]:
    """Per projection and store, in turn (`in_turn`): a read+decode pass, then the rebuild, one
    right after the other, so that both rates are taken under the same load of the machine.
    A store measured twice for a projection has its two runs summed."""
    rows: dict[int, list[dict[str, Any]]] = {size: [] for size in stores}
    for name, spec in PROJECTIONS.items():
        runs: dict[int, list[tuple[int, float, int, float, float, float]]] = {size: [] for size in stores}
        for size in in_turn(sorted(stores)):
            settings, store = stores[size]
            read = read_and_decode(store, progress, f"{size:,}: read+decode, then rebuild {name}")
            runs[size].append((*read, *rebuild_once(settings, store, spec, progress), load()))
        for size, done in runs.items():
            read_count, read_s, applied, filled, switched = (sum(run[k] for run in done) for k in range(5))
            loads = sum(run[5] for run in done) / len(done)
            print(f"-- {size:,} events, {len(done)} run(s):", flush=True)
            rows[size].append(summary(f"read+decode the store, then rebuild {name}:", read_count, read_s,
                                      load=round(loads, 1)))
            share = (applied / filled) / (read_count / read_s)
            rows[size].append(summary(f"  rebuild {name} from the store", applied, filled, of_read=f"{100 * share:.0f}%",
                                      switch_s=round(switched / len(done), 2), load=round(loads, 1)))
    return rows


def in_alternation(name: str, count: int, requests: dict[int, Callable[[], httpx.Response]],
                   check: Callable[[Any], Any]) -> dict[int, dict[str, Any]]:
    """`count` requests to each store's API, one after another and alternating between the
    stores (each request to one store is followed by the same request to the next), after one
    warm-up each whose answer `check` asserts on. Per store: its rate over the time its own
    requests took, and their latencies."""
    latencies: dict[int, list[float]] = {size: [] for size in requests}
    for request in requests.values():
        first = request()
        assert first.status_code in (200, 201), first.text
        check(first.json())
    for _ in range(count):
        for size, request in requests.items():
            sent = time.perf_counter()
            answer = request()
            latencies[size].append((time.perf_counter() - sent) * 1000)
            assert answer.status_code in (200, 201), answer.text
    return {size: summary(f"{name} [{size:,}]", count, sum(taken) / 1000, taken, unit="requests/s", load=load())
            for size, taken in latencies.items()}


def over_http(apis: dict[int, tuple[str, Contracts]]) -> dict[int, list[dict[str, Any]]]:
    """The HTTP questions, each asked of every store's API in alternation."""
    clients = {size: httpx.Client(base_url=base, timeout=120) for size, (base, _) in apis.items()}
    contracts = {size: found for size, (_, found) in apis.items()}
    try:
        def each(make: Callable[[httpx.Client, Contracts], httpx.Response]) -> dict[int, Callable[[], httpx.Response]]:
            return {size: (lambda c=c, found=contracts[size]: make(c, found)) for size, c in clients.items()}

        def opening(pick: Callable[[Contracts], str]) -> Callable[[httpx.Client, Contracts], httpx.Response]:
            return lambda c, found: c.post("/tickets", json={"contract_id": pick(found), "title": "scale",
                                                             "reporter": "bench"})

        def events(count: int) -> Callable[[Any], None]:
            def check(answer: Any) -> None:
                assert len(answer["events"]) == count, len(answer["events"])
            return check

        def opened(answer: Any) -> None:
            assert answer["ticket_id"], answer

        def tickets(answer: Any) -> None:
            assert answer["tickets"] == 5_000, answer["tickets"]

        asked = [
            in_alternation("GET history, contract of 10,001 events", HISTORY_REQUESTS,
                           each(lambda c, found: c.get(f"/contracts/{found.history}/history")), events(10_001)),
            in_alternation(f"GET sla report {MONTH}, 5,000 tickets", SLA_REQUESTS,
                           each(lambda c, found: c.get(f"/contracts/{found.sla}/sla", params={"month": MONTH})), tickets),
            in_alternation("POST /tickets, credits, 10,000 entries", OPEN_REQUESTS,
                           each(opening(lambda found: found.credits)), opened),
            in_alternation("POST /tickets, credits, no entries", OPEN_REQUESTS,
                           each(opening(lambda found: found.credits_empty)), opened),
        ]
        return {size: [{**by_size[size], "benchmark": by_size[size]["benchmark"].rsplit(" [", 1)[0]} for by_size in asked]
                for size in apis}
    finally:
        for c in clients.values():
            c.close()


def serve(settings: Settings) -> Processes:
    """`ticketing api` in a process of its own, answering (its /health says 503 here: no relay,
    no runners and no broker run in this bench, and none are needed to answer)."""
    procs = Processes(settings)
    procs.start_as("api", ["api"])
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(f"{procs.base_url}/health", timeout=5)
            return procs
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                procs.stop_all()
                raise
            time.sleep(0.2)


def apart(call: Callable[..., T], *args: Any) -> T:
    """`call(*args)` in a fresh Python process, its answer returned here."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as process:
        return process.submit(call, *args).result()


def measure(sizes: list[int]) -> dict[int, Figures]:
    """A store per size, from nothing, each in an embedded PostgreSQL of its own, all running at
    once: written in alternation, then every figure taken of all of them in turn."""
    dirs = {size: Path(tempfile.mkdtemp(prefix=f"ticketing-scale-{size}-")) for size in sizes}
    settings: dict[int, Settings] = {}
    try:
        for size, data in dirs.items():
            url = embedded.start_postgres(data)
            wiring.setup_database(url)
            settings[size] = Settings(data_dir=data, http_port=embedded.free_port(), database_url=url)
        # Written in a process of its own: what writing leaves in memory (caches, a large heap
        # for the collector to walk) would slow the reads and rebuilds of the process after it.
        written = apart(write, [(size, settings[size].database_url or "") for size in sizes])
        rows = {size: [written[size][1]] for size in sizes}
        for found in settings.values():
            vacuum(found.database_url or "")
        stores = {size: (found, wiring.event_store(found)) for size, found in settings.items()}
        try:
            with rebuild.bars() as progress:
                for size, rebuilt in rebuild_all(stores, progress).items():
                    rows[size] += rebuilt
        finally:
            for _, store in stores.values():
                store.close()
        for found in settings.values():
            vacuum(found.database_url or "")
        procs = {size: serve(found) for size, found in settings.items()}
        try:
            asked = over_http({size: (procs[size].base_url, written[size][0]) for size in sizes})
            for size in sizes:
                rows[size] += asked[size]
        finally:
            for running in procs.values():
                running.stop_all()
        return {size: {row["benchmark"]: row for row in rows[size]} for size in sizes}
    finally:
        for data in dirs.values():
            embedded.stop_postgres(data)
            shutil.rmtree(data, ignore_errors=True)


# -- the table ---------------------------------------------------------------------------------

def flags(results: dict[int, Figures], name: str) -> list[str]:
    """What is wrong with one row: its rate at the largest store falls by more than 20 % from
    the smallest's; a rebuild's fill below 50 % of read+decode at some size."""
    sizes = sorted(results)
    found = []
    first, last = results[sizes[0]].get(name), results[sizes[-1]].get(name)
    if first and last and len(sizes) > 1 and last["rate"] < FALL * first["rate"]:
        found.append(f"rate falls {100 * (1 - last['rate'] / first['rate']):.0f}%")
    for size in sizes:
        row = results[size].get(name)
        if row and "of_read" in row and float(row["of_read"].rstrip("%")) < 100 * OF_READ:
            found.append(f"below 50% of read+decode at {size:,}")
    return found


def cell(row: dict[str, Any] | None) -> str:
    if row is None:
        return "-"
    if "p50_ms" in row:
        return f"p50 {row['p50_ms']:,.1f} / p99 {row['p99_ms']:,.1f} ms"
    text = f"{row['rate']:,.0f}/s"
    return f"{text} ({row['of_read']})" if "of_read" in row else text


def table(results: dict[int, Figures]) -> str:
    """A column per store size, the ratio of the largest size's rate to the smallest's, flags."""
    sizes = sorted(results)
    names = list(dict.fromkeys(n for size in sizes for n in results[size]))
    loads = [[row["load"] for row in results[size].values() if "load" in row] for size in sizes]
    load_label = "load average while measuring (mean)"
    width = max(len(n) for n in [*names, load_label])
    head = f"{'events in the store':<{width}}" + "".join(f" {size:>30,}" for size in sizes)
    if len(sizes) > 1:
        head += f" {'largest/smallest':>18}"
    lines = [head]
    for name in names:
        line = f"{name:<{width}}" + "".join(f" {cell(results[size].get(name)):>30}" for size in sizes)
        first, last = results[sizes[0]].get(name), results[sizes[-1]].get(name)
        if len(sizes) > 1:
            ratio = f"{last['rate'] / first['rate']:.2f}x" if first and last else "-"
            line += f" {ratio:>18}"
        wrong = flags(results, name)
        lines.append(line + (f"  << {'; '.join(wrong)}" if wrong else ""))
    if all(loads):
        lines.append(f"{load_label:<{width}}"
                     + "".join(f" {sum(found) / len(found):>30.1f}" for found in loads))
    rule = "=" * len(head)
    return "\n".join([rule, *lines, rule])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.splitlines()[0])
    parser.add_argument("--events", default="100000,1000000", help="store sizes, a comma list (default: %(default)s)")
    args = parser.parse_args(argv)
    sizes = sorted(int(s) for s in args.events.split(",") if s.strip())
    print(__doc__)
    results = apart(measure, sizes)  # in a fresh process, as the write is
    print("\nrates (events/s, or requests/s for the HTTP rows) and latencies, per store size; ratio: largest/smallest rate")
    print(table(results))
    return 1 if any(flags(results, n) for n in itertools.chain.from_iterable(results.values())) else 0


if __name__ == "__main__":
    sys.exit(main())
