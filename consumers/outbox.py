"""Publishes the notices a projection wrote to its outbox, in order, after the batch that
decided them committed; marks a row only once the broker acknowledged its send.

A crash between the acknowledgement and the mark publishes that row again on restart, so
every notice carries a stable `notice_id` (header) for consumers to drop the rare repeat;
nothing decided is ever lost, since the row outlives the process. The runner calls
`publish()` only while it holds the projection's tick lease, so one process publishes. The
outbox table and the broker are ports (consumers/ports.py).
"""

from __future__ import annotations

import time

import structlog

from consumers.backoff import Backoff
from consumers.ports import Message, OutboxRow, OutboxRows, Publisher

log = structlog.get_logger("outbox")
NOTICE_ID = "ticketing-notice-id"


class OutboxPublisher:
    """Drains one projection's outbox to the broker."""

    def __init__(self, rows: OutboxRows, publisher: Publisher, name: str, batch: int = 500,
                 backoff: Backoff | None = None) -> None:
        self.rows, self.publisher, self.name, self.batch = rows, publisher, name, batch
        self.backoff = backoff or Backoff()
        self.failures, self.retry_at = 0, 0.0

    def publish(self) -> int:
        """Send the oldest unpublished notices; mark those the broker acknowledged; return how many.
        After a failure it waits (exponential backoff) before trying again, answering 0."""
        if time.monotonic() < self.retry_at:
            return 0
        rows = self.rows.pending(self.batch)
        if not rows:
            return 0
        done = 0
        for topic, group in _runs(rows):  # in order; one publish per run of one topic
            messages = [Message(key.encode(), bytes(value),
                                [(k, str(v).encode()) for k, v in headers.items()] + [(NOTICE_ID, notice_id.encode())])
                        for _, notice_id, _, key, value, headers in group]
            outcome = self.publisher.publish(topic, messages, lambda: None)
            done += outcome.acknowledged
            if outcome.reason is not None:
                self._failed(rows[done][1], outcome.reason)
                break
        else:
            self.failures = 0
        if done:
            self.rows.mark([row[0] for row in rows[:done]])
            log.info("notices published", outbox=self.name, count=done)
        return done

    def _failed(self, notice_id: str, reason: str) -> None:
        self.failures += 1
        wait = self.backoff.delay(self.failures)
        self.retry_at = time.monotonic() + wait
        log.warning("notice not published; retrying", outbox=self.name, notice_id=notice_id,
                    reason=reason, attempt=self.failures, retry_in=wait)
        self.publisher.reset()  # a restarted broker does not know the old producer's id

    def close(self) -> None:
        self.publisher.close()
        self.rows.close()


def _runs(rows: list[OutboxRow]) -> list[tuple[str, list[OutboxRow]]]:
    """The rows cut into runs of consecutive rows with one topic."""
    runs: list[tuple[str, list[OutboxRow]]] = []
    for row in rows:
        if runs and runs[-1][0] == row[2]:
            runs[-1][1].append(row)
        else:
            runs.append((row[2], [row]))
    return runs
