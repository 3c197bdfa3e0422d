"""The reaper: the process groups an agent started and did not end are killed when its pipe closes."""

import asyncio
import io
import os
import signal
import subprocess
import time

from openbatch.agent.reaper import Reaper, follow


def test_follow_keeps_the_groups_started_and_not_ended() -> None:
    assert follow(io.BytesIO(b"+10\n+11\n-10\n+12\nnoise\n-99\n")) == {11, 12}


def test_the_groups_still_running_die_when_the_agent_side_goes() -> None:
    reaper = Reaper()
    reaper.start()
    running = subprocess.Popen(["sleep", "30"], start_new_session=True)
    ended = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        reaper.watch(running.pid)
        reaper.watch(ended.pid)
        reaper.release(ended.pid)       # the agent ended this one itself: not the reaper's
        os.kill(reaper._process.pid, signal.SIGTERM)   # polite signals are ignored  # type: ignore[union-attr]
        time.sleep(0.2)
        assert reaper._process.poll() is None  # type: ignore[union-attr]
        reaper.stop()                  # the pipe closes (as when the agent is killed)
        assert running.wait(5) == -signal.SIGKILL
        assert ended.poll() is None
    finally:
        for process in (running, ended):
            process.kill()
            process.wait()


def test_a_task_never_announced_dies_too_by_the_mark_in_its_environment() -> None:
    """The agent may be killed after spawning a task and before telling the helper its group."""
    reaper = Reaper()
    reaper.start()
    assert list(reaper.environment) == ["OPENBATCH_AGENT_RUN"]
    marked = subprocess.Popen(["/bin/sh", "-c", "sleep 30 & wait"], start_new_session=True,
                              env={**os.environ, **reaper.environment})
    other = subprocess.Popen(["sleep", "30"], start_new_session=True,
                             env={**os.environ, "OPENBATCH_AGENT_RUN": "another-agent"})
    try:
        time.sleep(0.2)                 # (its child runs too, with the same environment)
        reaper.stop()
        assert marked.wait(5) == -signal.SIGKILL
        assert other.poll() is None     # another agent's mark is not ours
    finally:
        for process in (marked, other):
            process.kill()
            process.wait()


def test_on_an_event_loop_the_lines_of_one_iteration_go_in_one_write() -> None:
    class Pipe(io.BytesIO):
        writes: list[bytes] = []

        def write(self, data: bytes) -> int:  # type: ignore[override]
            self.writes.append(bytes(data))
            return len(data)

    reaper = Reaper()
    reaper._pipe = Pipe()  # type: ignore[assignment]

    async def main() -> None:
        reaper.watch(10)
        reaper.watch(11)
        reaper.release(10)
        assert Pipe.writes == []   # not yet: at the end of this iteration
        await asyncio.sleep(0)
        reaper.watch(12)
        await asyncio.sleep(0)

    asyncio.run(main())
    assert Pipe.writes == [b"+10\n+11\n-10\n", b"+12\n"]
    reaper.release(12)             # no loop: at once
    assert Pipe.writes[-1] == b"-12\n"
    assert follow(io.BytesIO(b"".join(Pipe.writes))) == {11}
