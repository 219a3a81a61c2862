"""Doorbells on PostgreSQL's LISTEN/NOTIFY (`consumers.ports.Doorbell`).

Two bells ring: the store's append (sql/append.sql) notifies `ticketing_appended` with the
store's schema, the relay notifies `ticketing_relayed` with the topic once it has stored a
position past events the broker acknowledged. An idle relay waits on the first, an idle runner
on the second, instead of asking the store or the broker again every few milliseconds: idle,
the backend then costs next to nothing, and news is read as soon as it is told. A
notification is delivered when its transaction commits, so what rang is already readable.

A bell listens through a connection of its own (it does nothing else, so notifications that
come while its owner is busy wait in the socket and ring the next `wait` at once). When the
connection is cut, `wait` sleeps the seconds out and the bell listens again on the next call;
it then rings at once, since whatever was told meanwhile was not heard. The callers look anyway
after each wait (their timeout is their slowest pace), so nothing waits longer than that.
"""

from __future__ import annotations

import time
from contextlib import suppress

import psycopg
import structlog

log = structlog.get_logger("doorbell")

APPENDED = "ticketing_appended"  # payload: the store's schema
RELAYED = "ticketing_relayed"  # payload: the topic


class PgDoorbell:
    """Rings on notifications of `channel` whose payload is `payload`."""

    def __init__(self, url: str, channel: str, payload: str, retry_seconds: float = 1.0) -> None:
        self.url, self.channel, self.payload, self.retry_seconds = url, channel, payload, retry_seconds
        self.conn: psycopg.Connection | None = None
        self.next_try = 0.0

    def wait(self, seconds: float) -> bool:
        if self.conn is None:
            if not self._listen():
                time.sleep(seconds)
                return False
            return True  # not heard while not listening: look now
        try:
            deadline, rang = time.monotonic() + seconds, False
            while not rang and (left := deadline - time.monotonic()) > 0:
                for notice in self.conn.notifies(timeout=left, stop_after=1):  # run out: it holds a lock
                    rang = rang or notice.payload == self.payload
            if rang:  # what else came is the same news: the caller reads it all at once
                for _ in self.conn.notifies(timeout=0):
                    pass
            return rang
        except psycopg.Error as error:
            log.warning("doorbell not heard; looking at a slower pace", channel=self.channel, error=str(error)[:200])
            self.close()
            return False

    def _listen(self) -> bool:
        if time.monotonic() < self.next_try:
            return False
        try:
            self.conn = psycopg.connect(self.url, autocommit=True)
            self.conn.execute(f"LISTEN {self.channel}")
            return True
        except psycopg.Error as error:
            log.warning("doorbell cannot listen; looking at a slower pace", channel=self.channel,
                        error=str(error)[:200])
            self.close()
            self.next_try = time.monotonic() + self.retry_seconds
            return False

    def close(self) -> None:
        if self.conn is not None:
            with suppress(psycopg.Error):
                self.conn.close()
        self.conn = None
