"""An agent's event reports: what its runs say goes to the server in batches, one report on its way at a
time, each retried until the server takes it (reports are idempotent by run id).

A reserved run's ``started`` is held back a moment (:data:`START_HOLD_SECONDS`) and goes unsaid when the
run ends first. :class:`Reports` is the part of :class:`~openbatch.agent.main.Agent` that does this.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone
from typing import Any

import msgspec

from ..protocol import PREFIX, CommandsAnswer, Event, EventsRequest
from .http import TransportError

log = logging.getLogger("openbatch.agent")

#: Event reports on their way at once (see :meth:`Reports.send_events`). One: the exits that come while a
#: report is on its way go together in the next (bench figure 1, alternated runs: 3 in flight sent twice
#: as many reports, of half as many exits, and ran 5-10 % fewer tasks a second on SQLite).
REPORTS_IN_FLIGHT = 1
#: How long a report waits for more exits while other runs of this agent are still going.
#: On bench figure 1 (8 slots of /bin/true) reports then carry ~7.5 exits instead of ~2.6,
#: which cut the server's CPU per task by ~30% and the agent's by ~20%; an exit with
#: nothing else running leaves at once (figure 2's latency does not pay it).
REPORT_HOLD_SECONDS = 0.001
#: How long the word that a reserved run started waits before it is sent. A run that ends by then is
#: reported by its exit alone (its first word: the server stores its task once, started and ended,
#: where the start and the exit in two reports write it twice). A long run shows ``running`` this
#: much later; the slots it holds count as reserved on the server meanwhile, so none is given twice.
START_HOLD_SECONDS = 0.02
RETRY_SECONDS = 0.5

#: An answer's commands (to a report, and to a long-poll).
ANSWER = msgspec.json.Decoder(CommandsAnswer)


def wire(value: datetime) -> str:
    """An aware UTC time as the wire writes it (isoformat is several times faster than strftime)."""
    return value.isoformat(timespec="microseconds")[:-6] + "Z"


class Reports:
    """The outbox of an agent. What it uses of the agent: ``http``, ``auth``, ``done``, ``nodes`` (whether
    runs are still going), ``answered`` (the server's answer, alive or not) and ``handle_all`` (the commands
    an answer carries)."""

    http: Any
    auth: str
    done: asyncio.Event
    nodes: dict[str, Any]

    def __init__(self) -> None:
        self.outbox: list[Event] = []
        #: ``started`` words held back (:data:`START_HOLD_SECONDS`), by run id: when each is due, and it.
        self.held_starts: dict[str, tuple[float, Event]] = {}
        self.outbox_ready = asyncio.Event()
        self.sending: set[asyncio.Task] = set()
        #: Runs whose exit was reported but not yet taken by the server (they count as "had" in a reconcile).
        self.unacknowledged: set[str] = set()

    def report(self, event: Event) -> None:
        if event.type == "started":
            first = not self.held_starts
            self.held_starts[event.id] = (asyncio.get_running_loop().time() + START_HOLD_SECONDS, event)
            if first:   # (one held before is due sooner: the sender's wait for it stands, no need to wake it)
                self.outbox_ready.set()
            return
        # A start still held goes unsaid when its run ends first: its exit says both (the first word of a
        # reserved run may be its exit), and a run killed on the server's word is "unreserved".
        self.held_starts.pop(event.id, None)
        self.outbox.append(event)
        self.outbox_ready.set()

    def _release_starts(self, every: bool = False) -> None:
        """Move the held ``started`` words that are due (``every``: all of them) to the outbox."""
        now = asyncio.get_running_loop().time()
        while self.held_starts:
            run_id, (due, event) = next(iter(self.held_starts.items()))   # (held in the order they came)
            if due > now and not every:
                return
            del self.held_starts[run_id]
            self.outbox.append(event)

    async def _next_report(self) -> None:
        """Wait until there is something to send: an event in the outbox, or a held start that is due."""
        loop = asyncio.get_running_loop()
        while not self.outbox:
            wait = None
            if self.held_starts:
                wait = next(iter(self.held_starts.values()))[0] - loop.time()
                if wait <= 0:
                    return
            self.outbox_ready.clear()
            try:
                await asyncio.wait_for(self.outbox_ready.wait(), wait)
            except TimeoutError:
                pass

    async def send_events(self) -> None:
        """Send what was reported, in batches, up to :data:`REPORTS_IN_FLIGHT` at a time.

        A batch leaves as soon as there is one and a report slot is free (after waiting
        :data:`REPORT_HOLD_SECONDS` for more when other runs are still going): while the
        server applies one report, the agent starts the processes of the previous answer,
        and the exits that come meanwhile make the next report. A reserved run's ``started``
        is held back (:data:`START_HOLD_SECONDS`) and goes with the first report after that.
        """
        slots = asyncio.Semaphore(REPORTS_IN_FLIGHT)
        exits: set[asyncio.Task] = set()   # reports on their way that carry exits
        while True:
            await self._next_report()
            await slots.acquire()
            if self.outbox and self._runs_going():
                await asyncio.sleep(REPORT_HOLD_SECONDS)  # let their exits join this report
            self._release_starts()
            if exits and any(event.type == "started" for event in self.outbox):
                # A reserved run may have taken a slot whose exit is on its way: the server must have
                # applied that exit before this start, or it would count the node over its slots.
                await asyncio.gather(*exits, return_exceptions=True)
            self.outbox_ready.clear()
            if not self.outbox:
                slots.release()
                continue
            batch, self.outbox = self.outbox, []
            sending = asyncio.create_task(self._send(batch))
            self.sending.add(sending)
            sending.add_done_callback(lambda done: (self.sending.discard(done), slots.release()))
            if any(event.type == "exited" for event in batch):
                exits.add(sending)
                sending.add_done_callback(exits.discard)

    def _runs_going(self) -> bool:
        return any(node.runs for node in self.nodes.values())

    async def flush(self) -> None:
        """Wait for the reports in flight, then send whatever is left (at the agent's end)."""
        self._release_starts(every=True)
        while self.sending or self.outbox:
            if self.sending:
                await asyncio.gather(*self.sending, return_exceptions=True)
                continue
            self.outbox_ready.clear()
            batch, self.outbox = self.outbox, []
            await self._send(batch)

    async def _send(self, batch: list[Event]) -> None:
        """One report, retried until the server takes it (reports are idempotent by run id).

        The answer carries the commands the server has for this agent by then (the runs
        its report made room for), so they need not wait for the long-poll's turn.
        """
        while True:
            try:
                report = EventsRequest(events=batch, takeCommands=True, sentAt=wire(datetime.now(timezone.utc)))
                response = await self.http.post(f"{PREFIX}/events", json=report, headers={"authorization": self.auth})
                if not self.answered(response.status_code):
                    return
                if response.status_code < 500:
                    self.unacknowledged.difference_update(e.id for e in batch if e.type == "exited")
                    if response.status_code == 200 and not self.done.is_set():
                        self.handle_all(ANSWER.decode(response.content).commands)
                    return
            except (TransportError, ValueError) as error:
                log.warning("reporting to the server failed (%s); retrying", error)
            except Exception:   # a fault of the agent's own: said, and the report is sent again (never lost)
                if self.done.is_set():   # (unless the agent is ending: the server recovers its runs)
                    log.exception("reporting to the server failed unexpectedly while the agent ends")
                    return
                log.exception("reporting to the server failed unexpectedly; retrying")
            await asyncio.sleep(RETRY_SECONDS)
