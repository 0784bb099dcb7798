"""The process supervisor of `make run`: every service of the Procfile, restarted when it exits.

What Kubernetes does for a deployment, in one foreground process: a service that exits is started
again after a back-off (1 s, doubling up to 30 s, back to 1 s once it has run for a minute), so one
crash or a killed embedder leaves the others serving, as the README's failure modes say. A service
that exits 5 times within a minute is crash-looping: everything stops and the exit code says so.
Each output line is prefixed with the time and the service's name. Ctrl-C, SIGTERM or SIGHUP (the
terminal closed) stops all services: SIGTERM to each service's process group (its own children,
such as the embedder's first-start export, included), SIGKILL after 15 s or at a second Ctrl-C.
They are stopped on the way out whatever ends the supervisor, so none is left holding a port.

Why not supervisord or circus (weighed for issue 21): supervisord restarts a process that ran past
`startsecs` at once and forever (its back-off and FATAL state cover start-up failures only), so a
service crashing after a minute spins; it needs a generated config file and prefixes no output lines.
circus brings pyzmq, tornado and psutil and an arbiter with its own control socket for what is one
foreground session. honcho runs a Procfile with prefixed output but restarts nothing (it stops all
when one exits). The parts here that matter to a user (back-off, crash-loop stop, process-group
stop, prefixed lines) would be configuration and glue on any of them; production restarts are
Kubernetes' (or compose's `restart:`) job, not this module's.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

FIRST_BACKOFF = 1.0
MAX_BACKOFF = 30.0
STABLE_AFTER = 60.0  # seconds of running that reset the back-off
CRASH_LOOP = 5  # exits within STABLE_AFTER seconds that stop everything
STOP_GRACE = 15.0


def read_procfile(path: Path) -> dict[str, list[str]]:
    """`name: command` lines, in order; blank lines and comments skipped."""
    commands = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, command = line.partition(":")
            commands[name.strip()] = shlex.split(command)
    return commands


@dataclass
class Service:
    """One supervised service: its command, its current process and its recent exits."""

    name: str
    command: list[str]
    backoff: float  # before the next restart
    process: subprocess.Popen[str] | None = None
    started_at: float = 0.0
    restart_at: float | None = None
    exits: deque[float] = field(default_factory=lambda: deque(maxlen=CRASH_LOOP))


class Supervisor:
    """Starts, watches, restarts and stops the services; `run` blocks until they are all stopped."""

    def __init__(
        self,
        commands: dict[str, list[str]],
        *,
        env: dict[str, str],
        cwd: Path,
        out: TextIO = sys.stdout,
    ) -> None:
        self._services = [Service(name, command, FIRST_BACKOFF) for name, command in commands.items()]
        self._env = env
        self._cwd = cwd
        self._out = out
        self._width = max(len(name) for name in [*commands, "supervisor"])
        self._lock = threading.Lock()
        # Plain counters, not an Event: a signal handler must not take a lock the main thread may hold.
        self._stop_requests = 0
        self._relays: list[threading.Thread] = []
        self.crash_looping: str | None = None

    def stop(self) -> None:
        """Ask `run` to stop every service; asked again while stopping, kill them now. Safe from a signal handler."""
        self._stop_requests += 1

    def run(self, poll_seconds: float = 0.2) -> int:
        """Run until stopped or a service crash-loops; 0 when asked to stop, 1 after a crash loop."""
        try:
            for service in self._services:
                self._start(service)
            while not self._stop_requests and not self.crash_looping:
                time.sleep(poll_seconds)
                for service in self._services:
                    self._watch(service)
        finally:
            self._stop_all()
        return 1 if self.crash_looping else 0

    def _watch(self, service: Service) -> None:
        now = time.monotonic()
        if service.process is not None:
            code = service.process.poll()
            if code is None:
                if now - service.started_at >= STABLE_AFTER:
                    service.backoff = FIRST_BACKOFF
                return
            service.process = None
            service.exits.append(now)
            if len(service.exits) == CRASH_LOOP and now - service.exits[0] < STABLE_AFTER:
                self.crash_looping = service.name
                self._say(f"{service.name} exited {CRASH_LOOP} times within {STABLE_AFTER:.0f} s: stopping everything")
                return
            service.restart_at = now + service.backoff
            self._say(f"{service.name} exited (code {code}); restarting it in {service.backoff:g} s")
            service.backoff = min(service.backoff * 2, MAX_BACKOFF)
        elif service.restart_at is not None and now >= service.restart_at:
            self._start(service)

    def _start(self, service: Service) -> None:
        service.process = subprocess.Popen(
            service.command,
            cwd=self._cwd,
            env=self._env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            # Its own process group: Ctrl-C reaches the supervisor only, which then stops every group.
            start_new_session=True,
        )
        service.started_at = time.monotonic()
        service.restart_at = None
        self._relays = [relay for relay in self._relays if relay.is_alive()]
        relay = threading.Thread(target=self._relay, args=(service.name, service.process.stdout), daemon=True)
        relay.start()
        self._relays.append(relay)
        self._say(f"{service.name} started (pid {service.process.pid})")

    def _stop_all(self) -> None:
        running = [s.process for s in self._services if s.process is not None and s.process.poll() is None]
        stopped_at = self._stop_requests
        for process in running:
            _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        while any(p.poll() is None for p in running):
            if time.monotonic() > deadline or self._stop_requests > max(stopped_at, 1):
                for process in running:
                    _signal_group(process, signal.SIGKILL)
                break
            time.sleep(0.05)
        for process in running:
            process.wait()
        for relay in self._relays:
            relay.join(timeout=2)  # their last lines (shutdown logs) before ours
        self._say("all services stopped")

    def _relay(self, name: str, stream: TextIO | None) -> None:
        if stream is None:
            return
        with stream:
            for line in stream:
                self._print(name, line.rstrip("\n"))

    def _say(self, message: str) -> None:
        self._print("supervisor", message)

    def _print(self, name: str, line: str) -> None:
        with self._lock:
            self._out.write(f"{time.strftime('%H:%M:%S')} {name:<{self._width}} | {line}\n")
            self._out.flush()


def _signal_group(process: subprocess.Popen[str], sig: signal.Signals) -> None:
    """Signal the service's process group (it leads one: start_new_session), its children included."""
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass  # already gone, with its group


def main(procfile: Path, names: list[str], env: dict[str, str], cwd: Path) -> int:
    """Supervise the named services of `procfile` until Ctrl-C or SIGTERM (0) or a crash loop (1)."""
    commands = read_procfile(procfile)
    supervisor = Supervisor({name: commands[name] for name in names}, env=env, cwd=cwd)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: supervisor.stop())
    code = supervisor.run()
    if supervisor.crash_looping:
        print(
            f"\n==> {supervisor.crash_looping} keeps exiting: see its lines above. Everything was stopped.\n",
            file=sys.stderr,
            flush=True,
        )
    return code


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), sys.argv[2:], dict(os.environ), Path.cwd()))
