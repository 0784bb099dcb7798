"""Private RabbitMQ and Redis nodes: `make run` starts its own when none is running; tests restart one.

A private node keeps everything in one folder (`.data/rabbitmq`, `.data/redis` under `make run`) and
listens on 127.0.0.1 only, on ports of its own, never the default ones (a system server installed
later must not collide with it). They are chosen once and remembered in the folder (`ports.json`), so
its URL stays the same across runs; one taken meanwhile is replaced by a free one. The data persists
across restarts: Redis appends every write to its append-only file (`appendonly yes`, no RDB
snapshots), RabbitMQ keeps its mnesia folder under a fixed node name (another name could not read it).

RabbitMQ's Erlang distribution needs epmd: the node gets an epmd of its own on a private port, started
and stopped with it, since the one Erlang would start by itself is a daemon that outlives the node.
Each process leads a session of its own, so a terminal's Ctrl-C reaches `make run` alone, which stops
the services first and the nodes last. The folder lists the pids a node started (`processes`): what a
killed `make run` left running is stopped before a node starts there again, and by `make clean`
(`python -m scripts.private_nodes stop`); a lock held while a node runs keeps a second `make run` off it.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, TextIO

from scripts.stack import ROOT, host_port, login_problem, reachable

STOP_GRACE = 30.0  # seconds between SIGTERM and SIGKILL
SBIN = ("/usr/sbin", "/usr/local/sbin")  # Debian's rabbitmq-server is there, often off a user's PATH
PROCESSES = "processes"  # in a node's folder: "pid program" of each process it started


@dataclass(frozen=True)
class Server:
    """A server `make run` needs: where it answers by default and the program that runs a private one."""

    name: str
    url_variable: str
    default_url: str
    program: str


RABBITMQ = Server("RabbitMQ", "RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/", "rabbitmq-server")
REDIS = Server("Redis", "REDIS_URL", "redis://127.0.0.1:6379/0", "redis-server")

INSTALL_HINT = (
    "Install RabbitMQ and Redis, then `make run` again (it starts private nodes when none is running):\n"
    "      Debian/Ubuntu: sudo apt-get install rabbitmq-server redis-server\n"
    "      macOS:         brew install rabbitmq redis\n"
    "      Fedora:        sudo dnf install rabbitmq-server redis\n"
    "    Or, with a Docker engine, `docker compose -f deploy/docker-compose.yml up` runs the whole stack\n"
    "    (after `cp deploy/compose.env.example deploy/.env` and setting its passwords)."
)


def find_program(program: str) -> str | None:
    """`program` on PATH, or in an sbin folder."""
    return shutil.which(program) or shutil.which(program, path=os.pathsep.join(SBIN))


def installed(program: str) -> bool:
    return find_program(program) is not None


@dataclass
class Plan:
    """What `make run` does about RabbitMQ and Redis."""

    use: dict[str, str] = field(default_factory=dict)  # URL variable -> URL of a server to use as it is
    start: list[Server] = field(default_factory=list)  # the servers to start a private node of
    problems: list[str] = field(default_factory=list)  # what is missing and how to get it


def plan(
    env: Mapping[str, str],
    *,
    answers: Callable[[str, int], bool] = reachable,
    is_installed: Callable[[str], bool] = installed,
) -> Plan:
    """The URL the user set, else the server answering on the default port, else a private node when the
    server is installed, else a problem saying how to install it."""
    result = Plan()
    for server in (RABBITMQ, REDIS):
        host, port = host_port(server.default_url, 0)
        if env.get(server.url_variable):  # the user's choice: checked (port, login) as it is, never replaced
            result.use[server.url_variable] = env[server.url_variable]
        elif answers(host, port):
            result.use[server.url_variable] = server.default_url
        elif is_installed(server.program):
            result.start.append(server)
        else:
            result.problems.append(
                f"{server.name} is not reachable at {host}:{port}, and {server.program} is not installed to start "
                f"a private node: install it (below), or set {server.url_variable}."
            )
    if result.problems:
        result.problems.append(INSTALL_HINT)
    return result


class NodeError(RuntimeError):
    """A private node that did not start: the message says why and names its log."""


class PrivateNode(ABC):
    """One private server in its folder: `start` waits until it answers a login, `stop` stops what it started."""

    server: ClassVar[Server]
    port_names: ClassVar[tuple[str, ...]]  # the first one serves the clients
    start_timeout: ClassVar[float]

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self.ports: dict[str, int] = {}  # known once started
        self._processes: list[subprocess.Popen[bytes]] = []
        self._lock: TextIO | None = None

    @property
    def port(self) -> int:
        return self.ports[self.port_names[0]]

    @property
    @abstractmethod
    def url(self) -> str: ...

    @property
    @abstractmethod
    def logs(self) -> tuple[Path, ...]:
        """Where to look when it does not start, the main log first."""

    @property
    def pids(self) -> list[int]:
        """The processes it started that still run (its children's children not included)."""
        return [process.pid for process in self._processes if process.poll() is None]

    def describe(self) -> str:
        return (
            f"{self.server.name}: starting a private node on 127.0.0.1:{self.port}, data in {self.data_dir}"
            f" (log: {self.logs[0]})"
        )

    def start(self, announce: Callable[[str], object] = lambda _: None) -> None:
        """Start the node (`announce` is told which port, once chosen) and wait until it answers a login.

        On failure, or when interrupted, stops what it started and raises: NodeError saying why.
        """
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._lock = _take_lock(self.data_dir / "lock", f"{self.server.name} node in {self.data_dir}")
        try:
            stop_leftovers(self.data_dir)
            self.ports = remembered_ports(self.data_dir / "ports.json", self.port_names)
            announce(self.describe())
            self._launch()
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop its processes, last started first: SIGTERM, SIGKILL to its process group after STOP_GRACE."""
        if self._lock is None:
            return  # not started, or the folder is another `make run`'s: nothing of ours to stop
        for process in reversed(self._processes):
            _stop(process)
        self._processes = []
        (self.data_dir / PROCESSES).unlink(missing_ok=True)
        self._lock.close()
        self._lock = None

    @abstractmethod
    def _launch(self) -> None:
        """Start its processes (through `_spawn`)."""

    def _spawn(self, command: list[str], output: Path, env: dict[str, str] | None = None) -> None:
        output.parent.mkdir(parents=True, exist_ok=True)
        with open(output, "ab") as out:
            process = subprocess.Popen(
                command,
                cwd=self.data_dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # the terminal's Ctrl-C is not for it: `make run` stops it last
            )
        self._processes.append(process)
        with open(self.data_dir / PROCESSES, "a") as listing:
            listing.write(f"{process.pid} {Path(command[0]).name}\n")

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        last = "its port did not open"
        while True:
            for process in self._processes:
                if process.poll() is not None:
                    raise NodeError(
                        f"The private {self.server.name} node stopped while starting (exit code {process.returncode}):"
                        f" see {self._see_logs()}."
                    )
            if reachable("127.0.0.1", self.port, timeout=0.5):
                problem = login_problem(self.server.name, self.url)
                if problem is None:
                    return
                last = problem
            if time.monotonic() > deadline:
                raise NodeError(
                    f"The private {self.server.name} node did not answer within {self.start_timeout:.0f} s ({last}):"
                    f" see {self._see_logs()}."
                )
            time.sleep(0.25)

    def _see_logs(self) -> str:
        return " and ".join(str(path) for path in self.logs)


class RedisNode(PrivateNode):
    """redis-server on 127.0.0.1 only, its append-only file in the folder (every write kept, fsync each second)."""

    server = REDIS
    port_names = ("redis",)
    start_timeout = 20.0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def logs(self) -> tuple[Path, ...]:
        return (self.data_dir / "redis.log",)

    def _launch(self) -> None:
        program = find_program(self.server.program)
        if program is None:
            raise NodeError(f"{self.server.program} is not installed.")
        # No config file: a system redis.conf (bind address, RDB snapshots, passwords) is not ours.
        command = [program, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.data_dir)]
        command += ["--daemonize", "no", "--save", "", "--appendonly", "yes"]
        self._spawn(command, self.logs[0])


class RabbitNode(PrivateNode):
    """rabbitmq-server with its own config, mnesia, logs, Erlang cookie (HOME) and epmd, all in the folder."""

    server = RABBITMQ
    port_names = ("amqp", "distribution", "epmd")
    start_timeout = 90.0
    NODE_NAME = "llmcache@localhost"  # fixed: mnesia/<node name> holds the data

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    @property
    def logs(self) -> tuple[Path, ...]:
        log_dir = self.data_dir / "log"
        return log_dir / f"{self.NODE_NAME}.log", log_dir / "console.out"

    def _launch(self) -> None:
        epmd, server = _epmd(), _rabbitmq_server()
        base = self.data_dir
        self._spawn([epmd, "-port", str(self.ports["epmd"]), "-address", "127.0.0.1"], base / "log" / "epmd.out")
        deadline = time.monotonic() + 10
        while not reachable("127.0.0.1", self.ports["epmd"], timeout=0.5):
            if time.monotonic() > deadline or self._processes[-1].poll() is not None:
                raise NodeError(f"epmd for the private RabbitMQ node did not start: see {base / 'log' / 'epmd.out'}.")
            time.sleep(0.1)
        (base / "rabbitmq.conf").write_text(f"listeners.tcp.local = 127.0.0.1:{self.port}\n")
        (base / "enabled_plugins").write_text("[].\n")
        (base / "rabbitmq-env.conf").write_text("# empty: the system's rabbitmq-env.conf is not for this node\n")
        env = {
            "PATH": os.pathsep.join([os.environ.get("PATH", os.defpath), *SBIN]),
            "HOME": str(base),  # the Erlang cookie
            "ERL_EPMD_PORT": str(self.ports["epmd"]),
            "RABBITMQ_NODENAME": self.NODE_NAME,
            "RABBITMQ_DIST_PORT": str(self.ports["distribution"]),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            "RABBITMQ_CONF_ENV_FILE": str(base / "rabbitmq-env.conf"),
            "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq"),  # .conf appended
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(base / "advanced.config"),  # none
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
            "RABBITMQ_FEATURE_FLAGS_FILE": str(base / "feature_flags"),
            "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(base / "log"),
        }
        self._spawn([server], self.logs[1], env)


def _rabbitmq_server() -> str:
    """The rabbitmq-server script itself. Debian's /usr/sbin/rabbitmq-server is a wrapper that only root
    or the rabbitmq user may run, root through `su rabbitmq` (which may not reach .data/): the script it
    runs is beside it."""
    found = find_program(RABBITMQ.program)
    if found is None:
        raise NodeError(f"{RABBITMQ.program} is not installed.")
    real = Path(found).resolve()
    if real.name == "rabbitmq-script-wrapper" and (real.parent / "rabbitmq-server").is_file():
        return str(real.parent / "rabbitmq-server")
    return found


def _epmd() -> str:
    """Erlang's port mapper: on PATH, or beside `erl` (it comes with Erlang)."""
    found = shutil.which("epmd")
    erl = shutil.which("erl")
    if found is None and erl is not None and (Path(erl).resolve().parent / "epmd").is_file():
        found = str(Path(erl).resolve().parent / "epmd")
    if found is None:
        raise NodeError("epmd (Erlang's port mapper, which RabbitMQ needs) is neither on PATH nor beside erl.")
    return found


def remembered_ports(path: Path, names: tuple[str, ...]) -> dict[str, int]:
    """The ports remembered in `path` that are still free, and new free ones (then remembered) for the others."""
    try:
        known = json.loads(path.read_text())
    except (OSError, ValueError):
        known = {}
    kept = {name: known[name] for name in names if isinstance(known.get(name), int) and port_free(known[name])}
    missing = [name for name in names if name not in kept]
    if not missing:
        return kept
    chosen = dict(zip(missing, free_ports(len(missing), avoid=set(kept.values())), strict=True))
    ports = {name: kept.get(name) or chosen[name] for name in names}
    path.write_text(json.dumps(ports, indent=2) + "\n")
    return ports


def port_free(port: int) -> bool:
    """Whether a server could listen on 127.0.0.1:`port` now (as servers do: SO_REUSEADDR)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_ports(count: int, avoid: Collection[int] = ()) -> list[int]:
    """`count` distinct free ports (held open together while chosen, so none is chosen twice)."""
    held: list[socket.socket] = []
    try:
        while len(held) < count:
            probe = socket.socket()
            probe.bind(("127.0.0.1", 0))
            if probe.getsockname()[1] in avoid:
                probe.close()
                continue
            held.append(probe)
        return [probe.getsockname()[1] for probe in held]
    finally:
        for probe in held:
            probe.close()


def stop_leftovers(data_dir: Path) -> list[str]:
    """Stop what a node's folder lists as started and still running (a `make run` that was killed); say what."""
    listing = data_dir / PROCESSES
    try:
        lines = listing.read_text().split("\n")
    except FileNotFoundError:
        return []
    stopped = []
    for line in reversed([line for line in lines if line.strip()]):
        pid_text, _, program = line.partition(" ")
        pid = int(pid_text) if pid_text.isdigit() else 0
        if pid > 0 and _runs(pid, program):
            _stop_pid(pid)
            stopped.append(f"{program} (pid {pid})")
    listing.unlink(missing_ok=True)
    return stopped


def _runs(pid: int, program: str) -> bool:
    """Whether process `pid` runs and is `program` (not another process that got the pid after a reboot)."""
    return _alive(pid) and program in _ps(pid, "command")


def _alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie does not: where nothing reaps orphans, a stopped one stays one)."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):  # gone, or another user's: not one we started
        return False
    return not _ps(pid, "stat").startswith("Z")


def _ps(pid: int, column: str) -> str:
    """`ps -o <column>= -p <pid>` (Linux and macOS), empty without ps."""
    try:
        done = subprocess.run(["ps", "-o", f"{column}=", "-p", str(pid)], capture_output=True, text=True, check=False)
    except OSError:
        return ""
    return done.stdout.strip()


def _stop_pid(pid: int) -> None:
    """SIGTERM to a process we did not start in this run; SIGKILL to its process group after STOP_GRACE."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + STOP_GRACE
    while time.monotonic() < deadline:
        if not _alive(pid):
            return
        time.sleep(0.1)
    _kill_group(pid)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(STOP_GRACE)
        except subprocess.TimeoutExpired:
            _kill_group(process.pid)  # all of its session (RabbitMQ's script leads beam.smp's)
            process.wait()


def _kill_group(leader: int) -> None:
    """SIGKILL to the process group `leader` leads (only while it runs: a gone leader's pid may be reused)."""
    try:
        os.killpg(leader, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass  # gone with all its members


def _take_lock(path: Path, what: str) -> TextIO:
    lock = open(path, "w")  # held until the node stops
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise NodeError(f"Another `make run` runs the private {what}: stop it first.") from None
    return lock


NODES: dict[str, type[PrivateNode]] = {RABBITMQ.name: RabbitNode, REDIS.name: RedisNode}


def private_node(server: Server, data_root: Path) -> PrivateNode:
    """`server`'s private node, in its folder of `data_root` (`.data/rabbitmq`, `.data/redis`)."""
    return NODES[server.name](data_root / server.name.lower())


def main(argv: list[str]) -> int:
    """`make clean`: stop any private node still running from .data/ before the folder goes."""
    if argv != ["stop"]:
        print("usage: python -m scripts.private_nodes stop", file=sys.stderr)
        return 2
    for name in NODES:
        folder = ROOT / ".data" / name.lower()
        for what in stop_leftovers(folder):
            print(f"Stopped {what}, left running by a `make run` from {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
