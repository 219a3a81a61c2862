"""`ticketing dead-letters` on a real PostgreSQL and broker: the events a runner parked are
listed with the reason and the event; a retry applies one exactly once when the rules accept it
now, in its place among its contract's later events (its rows as a clean run gives them), keeps
it parked with the new reason when it fails again, refuses one that stands for no consumed
store event, and never races the live runner; a discard keeps the record with who and why.
Poison is made by a CHECK constraint on a read-model table of the test's own, and the "fix" is
dropping it."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from domain.ticket import Ticket
from infra.postgres import execute_file, leases, rebuild
from infra.postgres.checkpoints import headers_json, switch_lock
from infra.postgres.dead_letters import StoreEvents
from infra.postgres.store import ApplicationHost
from infra.process import cli, wiring
from infra.registry import PROJECTIONS
from infra.settings import Settings
from tests.integration.helpers import (
    checkpoint,
    clean_rebuild,
    drive,
    eventually,
    make_runner,
    message,
    parked,
    read_model,
    relay_from_here,
    relay_until,
    tickets_schema,
    unique,
)


class Case:
    """A topic and a ticket-list schema of the test's own, whose table refuses titles `poison`
    and time entries over 1,000 minutes (until `fix`), with a relay and a runner on them."""

    def __init__(self, servers: Settings, store: ApplicationHost) -> None:
        self.servers, self.store = servers, store
        self.url = servers.database_url or ""
        self.topic, self.schema = unique("events"), tickets_schema(self.url)
        self.sql(f"ALTER TABLE {self.schema}.tickets ADD CONSTRAINT no_poison"
                 " CHECK (title <> 'poison' AND minutes <= 1000)")
        self.relay = relay_from_here(servers, store, self.topic)
        self.cid = str(store.app.sign_contract("Dead Letters Ltd", "crm-experts/platinum", "2026-01-01").aggregate_id)

    def sql(self, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.url, autocommit=True) as conn:
            cur = conn.execute(query, params)
            return cur.fetchall() if cur.description else []

    def ticket(self, title: str, *minutes: int, resolve: bool = False) -> Ticket:
        now = self.store.app.clock.now()
        ticket = Ticket(self.cid, title, "ops", "portal", "P2", None, None, now)
        for m in minutes:
            ticket.consume_time(m, "work", None, now)
        if resolve:
            ticket.resolve("fixed", now)
        self.store.app.save(ticket)
        return ticket

    def more_time(self, ticket_id: Any, minutes: int) -> None:
        ticket = self.store.app.repository.get(ticket_id)
        ticket.consume_time(minutes, "work", None, self.store.app.clock.now())
        self.store.app.save(ticket)

    def consume(self) -> None:
        """Relay everything, and run the runner until it consumed it."""
        head = self.store.head()
        relay_until(self.relay, head)
        runner = make_runner(self.servers, self.schema, self.topic)
        runner.resume()
        drive(runner.step, lambda: checkpoint(self.url, self.schema, self.topic) >= head)
        runner.close()

    def fix(self) -> None:
        self.sql(f"ALTER TABLE {self.schema}.tickets DROP CONSTRAINT no_poison")

    def letters(self) -> list[dict[str, Any]]:
        with psycopg.connect(self.url) as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
            return cur.execute(f"SELECT * FROM {self.schema}.dead_letter ORDER BY id").fetchall()

    def applied(self) -> int:
        rows = self.sql(f"SELECT applied FROM {self.schema}.tally WHERE topic = %s", (self.topic,))
        return int(rows[0][0])

    def clean(self, *tickets: Ticket) -> dict[str, dict[str, Any]]:
        """What a clean run gives for these tickets, straight from the store."""
        built = clean_rebuild(self.store, upto=self.store.head())
        return {str(t.id): built[str(t.id)] for t in tickets}

    def close(self) -> None:
        self.relay.close()


@pytest.fixture
def case(servers: Settings, store: ApplicationHost, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("DATABASE_URL", servers.database_url or "")
    # The CLI would configure the process's logs onto this test's captured (then closed) output.
    monkeypatch.setattr(cli.logs, "configure", lambda *_, **__: None)
    made = Case(servers, store)
    yield made
    made.close()


def ticketing(case: Case, *argv: str) -> int:
    """`ticketing dead-letters ...` on the case's projection tables."""
    return cli.main(["dead-letters", *argv, "--projection", "tickets", "--schema", case.schema])


def model(case: Case, *tickets: Ticket) -> dict[str, dict[str, Any]]:
    rows = read_model(case.url, case.schema)
    return {str(t.id): rows[str(t.id)] for t in tickets if str(t.id) in rows}


def test_a_parked_event_is_listed_with_its_reason_and_its_event(case: Case, capsys: pytest.CaptureFixture[str]) -> None:
    case.ticket("fine", 10)
    bad = case.ticket("poison", 20)
    case.consume()
    ((position, reason),) = parked(case.url, case.schema)
    assert "no_poison" in reason
    capsys.readouterr()
    assert ticketing(case, "list") == 0
    table = capsys.readouterr().out
    assert "tickets:1" in table and "Ticket.Opened" in table and str(bad.id) in table and "no_poison" in table
    assert ticketing(case, "list", "--json") == 0
    (record,) = json.loads(capsys.readouterr().out)
    assert (record["ref"], record["position"], record["status"], record["attempts"]) == ("tickets:1", position,
                                                                                          "parked", 1)
    event = record["event"]
    assert (event["decoded"], event["type"], event["aggregate_id"], event["title"]) == (True, "Ticket.Opened",
                                                                                        str(bad.id), "poison")
    assert event["contract_id"] == case.cid and event["position"] == position


def test_a_retry_that_fails_again_keeps_it_parked_with_the_new_reason_and_exits_non_zero(
    case: Case, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = case.ticket("poison", 20)
    case.consume()
    applied = case.applied()
    capsys.readouterr()
    assert ticketing(case, "retry", "1") == 1
    assert "failed (still parked)" in capsys.readouterr().out
    (letter,) = case.letters()
    assert (letter["status"], letter["attempts"]) == ("parked", 2)
    assert letter["reason"].startswith("retry failed:") and "no_poison" in letter["reason"]
    assert letter["retried_at"] is not None and letter["settled_at"] is None
    assert model(case, bad) == {} and case.applied() == applied


def test_a_retry_once_the_rule_accepts_it_applies_it_and_its_tickets_later_events_exactly_once(
    case: Case, capsys: pytest.CaptureFixture[str]
) -> None:
    fine = case.ticket("fine", 10)
    bad = case.ticket("poison", 20, 30, resolve=True)  # its time and resolution find no row: ignored
    case.consume()
    assert model(case, bad) == {}
    applied = case.applied()
    case.fix()
    capsys.readouterr()
    assert ticketing(case, "retry", "--all", "--by", "ana") == 0
    out = capsys.readouterr().out
    assert "tickets:1" in out and "applied in its place among the 7 events of contract" in out
    assert model(case, fine, bad) == case.clean(fine, bad)
    assert model(case, bad)[str(bad.id)]["minutes"] == 50
    assert case.applied() == applied + 1
    (letter,) = case.letters()
    assert (letter["status"], letter["settled_by"], letter["attempts"]) == ("applied", "ana", 2)
    assert ticketing(case, "retry", "tickets:1") == 1, "an applied dead letter is not applied again"
    assert "already applied" in capsys.readouterr().out
    assert model(case, bad)[str(bad.id)]["minutes"] == 50 and case.applied() == applied + 1
    assert ticketing(case, "list") == 0 and "tickets:1" not in capsys.readouterr().out


def test_a_retry_places_the_event_in_store_order_among_the_later_events_its_row_took(
    case: Case, capsys: pytest.CaptureFixture[str]
) -> None:
    t = case.ticket("fine", 10, 5000, 20, resolve=True)  # 5,000 minutes is refused; 20 and the resolution apply
    other = case.ticket("fine too", 7)
    case.consume()
    assert model(case, t)[str(t.id)]["minutes"] == 30
    case.fix()
    capsys.readouterr()
    assert ticketing(case, "retry", "--all") == 0
    assert model(case, t, other) == case.clean(t, other)
    assert (model(case, t)[str(t.id)]["minutes"], model(case, t)[str(t.id)]["status"]) == (5030, "resolved")
    assert [(d["status"], d["attempts"]) for d in case.letters()] == [("applied", 2)]


def test_several_parked_events_of_one_contract_retried_together_are_all_applied_in_store_order(
    case: Case, capsys: pytest.CaptureFixture[str]
) -> None:
    first = case.ticket("fine", 10, 5000, 20)  # its 5,000 minutes are parked
    second = case.ticket("poison", 30)  # its opening is parked, its time passed over
    case.consume()
    assert len(parked(case.url, case.schema)) == 2
    case.fix()
    capsys.readouterr()
    assert ticketing(case, "retry", "2", "1") == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in out] == ["tickets:1", "tickets:2"], "in store-position order"
    assert model(case, first, second) == case.clean(first, second)
    assert [model(case, t)[str(t.id)]["minutes"] for t in (first, second)] == [5030, 30]


def test_a_dead_letter_that_cannot_stand_for_a_consumed_store_event_is_refused_and_left_as_it_was(
    case: Case, capsys: pytest.CaptureFixture[str]
) -> None:
    fine = case.ticket("fine", 10)
    case.consume()
    events = StoreEvents(case.store)
    opened, consumed = events.event_at(case.store.head() - 1), case.store.head()
    assert opened is not None and opened.type == "Ticket.Opened"
    _, value, headers = message(opened)
    park = (f"INSERT INTO {case.schema}.dead_letter (topic, partition, kafka_offset, position, reason, value, headers)"
            " VALUES (%s, 0, 0, %s, 'test', %s, %s)")
    for position in (None, consumed + 1, consumed):  # no position; one never consumed; not the message's event
        case.sql(park, (case.topic, position, value, Jsonb(headers_json(headers))))
    capsys.readouterr()
    assert ticketing(case, "retry", "--all") == 1
    out = capsys.readouterr().out
    assert "refused (still parked): its position" in out and "never trusted" in out
    assert "refused (still parked): it names no store position" in out
    assert f"refused (still parked): its message was Ticket.Opened of {fine.id}" in out
    assert [(d["status"], d["attempts"], d["reason"]) for d in case.letters()] == [("parked", 1, "test")] * 3


def test_a_discard_records_who_and_why_and_hides_it_from_the_list(
    case: Case, capsys: pytest.CaptureFixture[str]
) -> None:
    case.ticket("poison")
    case.ticket("poison")
    case.consume()
    capsys.readouterr()
    with pytest.raises(SystemExit):  # the reason is required
        ticketing(case, "discard", "1")
    assert ticketing(case, "discard", "1", "--reason", "a test ticket", "--by", "bea") == 0
    assert "discarded by bea" in capsys.readouterr().out
    first, second = case.letters()
    assert (first["status"], first["settled_by"], first["settled_why"]) == ("discarded", "bea", "a test ticket")
    assert first["settled_at"] is not None and second["status"] == "parked"
    assert ticketing(case, "list", "--json") == 0
    assert [r["id"] for r in json.loads(capsys.readouterr().out)] == [2]
    assert ticketing(case, "list", "--all", "--json") == 0
    assert [(r["id"], r["status"]) for r in json.loads(capsys.readouterr().out)] == [(1, "discarded"), (2, "parked")]
    assert ticketing(case, "retry", "1") == 1 and "already discarded" in capsys.readouterr().out
    assert ticketing(case, "discard", "1", "--reason", "again") == 1


def test_a_retry_while_the_live_runner_applies_the_tickets_later_events_applies_each_exactly_once(
    case: Case, servers: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = case.ticket("poison", 10)
    case.consume()
    case.fix()
    runner, stop = make_runner(servers, case.schema, case.topic), threading.Event()
    thread = threading.Thread(target=runner.run, args=(stop.is_set,), daemon=True)
    thread.start()
    before, during = [1, 2, 3, 4], [5, 6, 7, 8, 9, 10, 11, 12]

    def stream(minutes: list[int]) -> None:  # the ticket's time, relayed and consumed by the live runner
        for m in minutes:
            case.more_time(bad.id, m)
            relay_until(case.relay, case.store.head())
            time.sleep(0.02)

    try:
        stream(before)  # the live runner ignores these: the ticket has no row
        head = case.store.head()
        drive(lambda: time.sleep(0.02), lambda: checkpoint(case.url, case.schema, case.topic) >= head)
        assert model(case, bad) == {}
        flowing = threading.Thread(target=stream, args=(during,))
        flowing.start()
        capsys.readouterr()
        assert ticketing(case, "retry", "--all") == 0
        flowing.join()
        head = case.store.head()
        drive(lambda: time.sleep(0.02), lambda: checkpoint(case.url, case.schema, case.topic) >= head)
    finally:
        stop.set()
        thread.join(30)
        runner.close()
    assert "applied" in capsys.readouterr().out
    assert model(case, bad)[str(bad.id)]["minutes"] == 10 + sum(before) + sum(during)
    assert model(case, bad) == case.clean(bad)
    assert [d["status"] for d in case.letters()] == ["applied"]


def test_a_retry_waits_for_the_runners_batch_in_flight(case: Case) -> None:
    bad = case.ticket("poison", 10)
    case.consume()
    case.fix()
    lease = f"tickets@{case.schema}"
    with psycopg.connect(case.url) as batch:  # a runner's batch: it holds the switch lock shared
        switch_lock(batch, lease)
        answer: list[int] = []
        retry = threading.Thread(target=lambda: answer.append(ticketing(case, "retry", "--all")))
        retry.start()
        eventually(lambda: bool(case.sql(
            "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            " AND classid = hashtext(%s)::oid AND objid = hashtext(%s)::oid",
            (leases.NAMESPACE, f"switch:{lease}"))), timeout=30)
        assert [d["status"] for d in case.letters()] == ["parked"] and model(case, bad) == {}
        batch.commit()  # the batch ends
    retry.join(30)
    assert answer == [0] and [d["status"] for d in case.letters()] == ["applied"]
    assert model(case, bad)[str(bad.id)]["minutes"] == 10


def test_a_ledger_entry_refused_at_the_write_is_booked_once_by_a_retry_after_the_fix(
    servers: Settings, store: ApplicationHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, topic, schema = servers.database_url or "", unique("events"), unique("test_ledger")
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setattr(cli.logs, "configure", lambda *_, **__: None)
    wiring.create_tables(url, "ledger", schema)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"ALTER TABLE {schema}.entries ADD CONSTRAINT small CHECK (minutes <= 1000)")
    relay = relay_from_here(servers, store, topic)
    cid = store.app.sign_contract("Ledger Ltd", "crm-experts/gold", "2026-01-01").aggregate_id
    now = store.app.clock.now()
    for minutes in (30, 5000, 20):  # the second entry is refused when written; the third is booked
        ticket = Ticket(cid, "work", "ops", "portal", "P3", None, None, now)
        ticket.consume_time(minutes, "work", None, now)
        store.app.save(ticket)
    head = store.head()
    relay_until(relay, head)
    relay.close()
    runner = wiring.runner(servers, "ledger", schema, topic)
    runner.resume()
    drive(runner.step, lambda: checkpoint(url, schema, topic) >= head)
    runner.close()
    ((position, reason),) = parked(url, schema)
    assert position == head - 2 and "small" in reason

    def booked() -> list[tuple[Any, ...]]:
        with psycopg.connect(url) as conn:
            return conn.execute(f"SELECT used, entries FROM {schema}.periods WHERE contract_id = %s",
                                (str(cid),)).fetchall()

    assert booked() == [(50, 2)]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"ALTER TABLE {schema}.entries DROP CONSTRAINT small")
    argv = ["dead-letters", "retry", "ledger:1", "--schema", schema, "--projection", "ledger"]
    assert cli.main(argv) == 0
    assert booked() == [(5050, 3)]
    assert cli.main(argv) == 1 and booked() == [(5050, 3)], "applied once"


def contract_rows(url: str, schema: str, contract_id: str) -> dict[str, list[Any]]:
    """Every row of the contract in the read model's tables, by table, in a stable order."""
    with psycopg.connect(url, row_factory=psycopg.rows.dict_row) as conn:
        tables = [r["table_name"] for r in conn.execute(
            "SELECT table_name FROM information_schema.columns WHERE table_schema = %s"
            " AND column_name = 'contract_id' AND NOT table_name = ANY(%s) ORDER BY table_name",
            (schema, sorted(rebuild.BOOKKEEPING))).fetchall()]  # the read model's, not the runner's dead letters
        found = {t: conn.execute(f"SELECT * FROM {schema}.{t} WHERE contract_id = %s", (contract_id,)).fetchall()
                 for t in tables}
    # When a tick decided (a spent error budget) is the wall clock's, not the events'.
    return {t: sorted(({k: v for k, v in r.items() if k != "decided_at"} for r in rows), key=repr)
            for t, rows in found.items()}


@pytest.mark.parametrize("name", ["sla", "ledger", "availability"])
def test_a_retried_contract_signing_gives_the_contracts_rows_a_clean_run_gives(
    name: str, servers: Settings, store: ApplicationHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, topic = servers.database_url or "", unique("events")
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setattr(cli.logs, "configure", lambda *_, **__: None)
    relay = relay_from_here(servers, store, topic)
    now = store.app.clock.now()
    hours = [now - timedelta(hours=h) for h in (5, 4, 3, 2, 1)]
    cid = str(store.app.sign_contract("Signed Ltd", "datacrm/premium-support", "2026-01-01", at=hours[0]).aggregate_id)
    down = Ticket(cid, "down", "ops", "portal", None, "system-down", None, hours[1])
    down.respond(hours[1])
    down.restore(hours[2])
    down.resolve("fixed", hours[3])
    asked = Ticket(cid, "how to", "ops", "portal", None, "improvement", None, hours[2])
    asked.consume_time(90, "guidance", None, hours[3])
    asked.respond(hours[4])
    store.app.save(down, asked)
    head = store.head()
    relay_until(relay, head)
    relay.close()
    schemas = {"retried": unique(f"test_{name}"), "clean": unique(f"test_{name}")}
    for schema in schemas.values():
        wiring.create_tables(url, name, schema)
    with psycopg.connect(url, autocommit=True) as conn:  # the contract's signing cannot be written, at first
        conn.execute(f"ALTER TABLE {schemas['retried']}.{CONTRACTS[name]} ADD CONSTRAINT refused"
                     f" CHECK (contract_id <> '{cid}')")
    for schema in schemas.values():
        runner = wiring.runner(servers, name, schema, topic)
        runner.resume()
        drive(runner.step, lambda s=schema: checkpoint(url, s, topic) >= head)
        runner.close()
    assert [why for _, why in parked(url, schemas["retried"])] != []
    assert parked(url, schemas["clean"]) == []
    assert contract_rows(url, schemas["retried"], cid) != contract_rows(url, schemas["clean"], cid)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"ALTER TABLE {schemas['retried']}.{CONTRACTS[name]} DROP CONSTRAINT refused")
    retry = ["dead-letters", "retry", "--all", "--projection", name, "--schema", schemas["retried"]]
    assert cli.main(retry) == 0
    runner = wiring.runner(servers, name, schemas["retried"], topic)  # what its tick decides, it decides again
    runner.resume()
    runner.step()
    runner.close()
    assert contract_rows(url, schemas["retried"], cid) == contract_rows(url, schemas["clean"], cid)


CONTRACTS = {"sla": "sla_contracts", "ledger": "contracts", "availability": "availability_contracts"}


def test_dead_letters_carried_by_a_rebuilds_switch_keep_their_ids_and_the_next_one_comes_after_them(
    servers: Settings, store: ApplicationHost
) -> None:
    url = servers.database_url or ""
    switch = rebuild.Rebuild(PROJECTIONS["tickets"], store, url, unique("events"))
    switch.live, switch.fresh = tickets_schema(url), tickets_schema(url)  # scratch copies of both sides
    park = "INSERT INTO {}.dead_letter (topic, partition, kafka_offset, reason) VALUES ('t', 0, 0, 'x') RETURNING id"
    with psycopg.connect(url) as conn:
        parked_before = [conn.execute(park.format(switch.live)).fetchone() for _ in range(3)]
        switch._carry_bookkeeping(conn)
        after = conn.execute(park.format(switch.fresh)).fetchone()
    assert parked_before == [(1,), (2,), (3,)] and after == (4,)


def test_dead_letter_columns_are_added_to_a_table_made_before_them(servers: Settings) -> None:
    url, schema = servers.database_url or "", unique("test_old")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
        conn.execute(f"CREATE TABLE {schema}.dead_letter (id bigserial PRIMARY KEY, topic text NOT NULL,"
                     " partition int NOT NULL, kafka_offset bigint NOT NULL, position bigint, reason text NOT NULL,"
                     " value bytea, parked_at timestamptz NOT NULL DEFAULT now())")
        conn.execute(f"INSERT INTO {schema}.dead_letter (topic, partition, kafka_offset, reason) VALUES ('t', 0, 7, 'x')")
        for _ in range(2):
            execute_file(conn, "dead_letter", schema)
        row = conn.execute(f"SELECT status, attempts, settled_by FROM {schema}.dead_letter").fetchone()
        fresh = unique("test_new")
        for _ in range(2):
            execute_file(conn, "dead_letter", fresh)
        checks = [conn.execute(f"SELECT count(*) FROM pg_constraint WHERE conrelid = '{s}.dead_letter'::regclass"
                               " AND contype = 'c'").fetchone() for s in (schema, fresh)]
        columns = [f"SELECT array_agg(column_name::text ORDER BY ordinal_position) FROM information_schema.columns"
                   f" WHERE table_schema = '{s}' AND table_name = 'dead_letter'" for s in (schema, fresh)]
        old_order, new_order = (conn.execute(q).fetchone() for q in columns)
    assert row == ("parked", 1, None) and checks == [(1,), (1,)]
    assert old_order == new_order, "a rebuild's switch copies the table with SELECT *"
