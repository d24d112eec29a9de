"""The demo fleet's executor: hosts that answer like hosts without running anything.

Each simulated host keeps the files it was given (`put_file`), a boot id and the last commands it
received (so tests can assert on them). A tiny command vocabulary gets realistic answers: `echo`,
`cat` (of those files, stdin or the boot id), `sleep`, `exit`, `true`, `false`, `hostname`, `;`,
`&&`, `||`, a trailing `>&2` or `>/dev/null`. A command that mentions `reboot` takes the host
down for `reboot_s` and brings it back with a new boot id. A command that reads the kernel log
(`dmesg`, as a hardware check does) fails on the hosts in `hardware_faults` with a kernel hardware
error and succeeds elsewhere. An inspection probe (fio, sysbench) prints what the real tool would
on the host's hardware model (`sim.probes`); the disk of a host in `hardware_faults` or
`degraded` (slow, but logging no error) collapses. `fleetops-sim-link` is handed to `network`,
the simulated switches (the demo's workload). The `filesystem_facts` operation gets the df and
tune2fs lines of the host's hardware model's disks (`sim.filesystems`); the `scheduler_quotas`
and `scheduler_requests` operations read and change `scheduler` (`sim.scheduler`), when one is
set. Anything else succeeds silently.

Randomness (latency jitter, injected failures, boot ids) is drawn per host and per command number
from the seed, so a run is deterministic however the engine interleaves hosts.
"""

from __future__ import annotations

import asyncio
import random
import re
import shlex
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from fleetops.changes.executor import MAX_OUTPUT, Result, Target
from fleetops.sim import filesystems, probes
from fleetops.sim.scheduler import SimScheduler, is_scheduler

BOOT_ID = "/proc/sys/kernel/random/boot_id"
OPERATORS = {";", "&&", "||"}
REBOOT = re.compile(r"\breboot\b|\bshutdown\s+-r\b")
# `fleetops-sim-link drain|restore|is-drained|is-forwarding SWITCH INTERFACE`: the demo's network
# tool, as the shift-link workflow runs it on a management host labelled network_cli=sim.
SIM_LINK = "fleetops-sim-link"
# (action, switch, interface) → (exit code, output): the simulated network answering it.
NetworkHook = Callable[[str, str, str], tuple[int, str]]


@dataclass
class SimHost:
    """What the simulator knows about one host."""

    boot_id: str
    commands: deque[str]
    files: dict[str, bytes] = field(default_factory=dict)
    modes: dict[str, int] = field(default_factory=dict)
    received: int = 0  # commands and file writes so far: numbers the random draws
    down_until: float = 0.0  # after a reboot


@dataclass
class _Outcome:
    code: int = 0
    out: bytearray = field(default_factory=bytearray)
    err: bytearray = field(default_factory=bytearray)
    sleep_s: float = 0.0
    exited: bool = False


class SimulatedExecutor:
    """Executor for the simulated fleet; deterministic for a seed."""

    name = "simulated"

    def __init__(
        self,
        *,
        seed: int = 0,
        latency: float = 0.0,
        failure_rate: float = 0.0,
        unreachable: Iterable[str] = (),
        hardware_faults: Iterable[str] = (),
        degraded: Iterable[str] = (),
        reboot_s: float = 1.0,
        history: int = 1000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.seed = seed
        self.latency = latency  # mean seconds per command, jittered ±50 %
        self.failure_rate = failure_rate  # fraction of commands that exit 1
        self.unreachable: set[str] = set(unreachable)  # hostnames that are down; mutable
        self.hardware_faults: set[str] = set(hardware_faults)  # broken hardware; mutable
        # Slow hardware that logs no error (a worn-out SSD): only a probe shows it; mutable.
        self.degraded: set[str] = set(degraded)
        self.reboot_s = reboot_s
        self.history = history  # commands kept per host
        self.clock = clock
        self.hosts: dict[str, SimHost] = {}
        self.network: NetworkHook | None = None  # set by whoever simulates the switches
        self.scheduler: SimScheduler | None = None  # the scheduler `scheduler_*` operations use

    def commands(self, hostname: str) -> list[str]:
        """The last commands the host received, oldest first."""
        host = self.hosts.get(hostname)
        return list(host.commands) if host else []

    def host(self, hostname: str) -> SimHost:
        """The host's simulated state, created on first use."""
        if hostname not in self.hosts:
            boot_id = str(
                uuid.UUID(
                    int=random.Random(f"{self.seed}:{hostname}:boot").getrandbits(128), version=4
                )
            )
            self.hosts[hostname] = SimHost(boot_id=boot_id, commands=deque(maxlen=self.history))
        return self.hosts[hostname]

    async def run(
        self, target: Target, command: str, *, timeout: float, stdin: str | None = None
    ) -> Result:
        """Answer the command after a simulated latency; never raises."""
        start = self.clock()
        host = self.host(target.hostname)
        host.commands.append(command)
        rng = self._draw(target.hostname, host)
        delay = self._delay(rng)
        if down := self._down(target, host):
            await asyncio.sleep(min(delay, timeout))
            return Result(exit_code=None, error=down, duration_s=self.clock() - start)
        if rng.random() < self.failure_rate:
            outcome = _Outcome(code=1, err=bytearray(b"simulated failure\n"))
        elif probes.is_probe(command):
            outcome = self._probe(target, command, host)
        elif command.startswith(SIM_LINK):
            outcome = self._link(command)
        elif filesystems.is_facts(command):
            model = target.labels.get("model", "")
            said = filesystems.answer(target.hostname, model, seed=self.seed)
            outcome = _Outcome(out=bytearray(said.encode()))
        elif self.scheduler is not None and is_scheduler(command):
            code, out, err = self.scheduler.answer(command)
            outcome = _Outcome(code=code, out=bytearray(out.encode()), err=bytearray(err.encode()))
        elif "dmesg" in command:
            outcome = self._kernel_check(target.hostname)
        else:
            outcome = _interpret(command, host, target, (stdin or "").encode())
        if delay + outcome.sleep_s > timeout:
            await asyncio.sleep(timeout)
            return Result(
                exit_code=None,
                error=f"timeout after {timeout:g} s",
                duration_s=self.clock() - start,
            )
        await asyncio.sleep(delay + outcome.sleep_s)
        if REBOOT.search(command) and outcome.code == 0:
            self._reboot(target.hostname, host, rng)
        return Result(
            exit_code=outcome.code,
            stdout=bytes(outcome.out[:MAX_OUTPUT]).decode(errors="replace"),
            stderr=bytes(outcome.err[:MAX_OUTPUT]).decode(errors="replace"),
            duration_s=self.clock() - start,
            truncated=len(outcome.out) > MAX_OUTPUT or len(outcome.err) > MAX_OUTPUT,
        )

    async def put_file(
        self, target: Target, path: str, content: bytes, *, mode: int = 0o644, timeout: float
    ) -> Result:
        """Keep the file in the host's memory; `cat` reads it back."""
        start = self.clock()
        host = self.host(target.hostname)
        delay = self._delay(self._draw(target.hostname, host))
        await asyncio.sleep(min(delay, timeout))
        if down := self._down(target, host):
            return Result(exit_code=None, error=down, duration_s=self.clock() - start)
        if delay > timeout:
            return Result(
                exit_code=None,
                error=f"timeout after {timeout:g} s",
                duration_s=self.clock() - start,
            )
        host.files[path] = bytes(content)
        host.modes[path] = mode
        return Result(exit_code=0, duration_s=self.clock() - start)

    async def close(self) -> None:
        """Nothing to release."""

    def _probe(self, target: Target, command: str, host: SimHost) -> _Outcome:
        code, out, err, seconds = probes.answer(
            command,
            hostname=target.hostname,
            model=target.labels.get("model", ""),
            faulty=target.hostname in self.hardware_faults | self.degraded,
            seed=self.seed,
            run=host.received,
        )
        return _Outcome(code=code, out=bytearray(out.encode()), err=bytearray(err.encode()),
                        sleep_s=seconds)  # fmt: skip

    def _link(self, command: str) -> _Outcome:
        words = command.split()
        if self.network is None or len(words) != 4:
            usage = f"usage: {SIM_LINK} drain|restore|is-drained|is-forwarding SWITCH INTERFACE\n"
            return _Outcome(code=2, err=bytearray(usage.encode()))
        code, said = self.network(words[1], words[2], words[3])
        out = bytearray(said.encode())
        return _Outcome(code=code, out=out) if code < 2 else _Outcome(code=code, err=out)

    def _kernel_check(self, hostname: str) -> _Outcome:
        if hostname not in self.hardware_faults:
            return _Outcome()
        error = (
            "kernel hardware errors since boot:\n"
            "blk_update_request: I/O error, dev sdb, sector 2048 op 0x0:(READ)\n"
        )
        return _Outcome(code=1, err=bytearray(error.encode()))

    def _draw(self, hostname: str, host: SimHost) -> random.Random:
        host.received += 1
        return random.Random(f"{self.seed}:{hostname}:{host.received}")

    def _delay(self, rng: random.Random) -> float:
        return self.latency * rng.uniform(0.5, 1.5) if self.latency > 0 else 0.0

    def _down(self, target: Target, host: SimHost) -> str:
        if target.hostname in self.unreachable:
            return f"unreachable: simulated host {target.hostname} is down"
        if self.clock() < host.down_until:
            return f"unreachable: simulated host {target.hostname} is rebooting"
        return ""

    def _reboot(self, hostname: str, host: SimHost, rng: random.Random) -> None:
        host.down_until = self.clock() + self.reboot_s
        host.boot_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _interpret(command: str, host: SimHost, target: Target, stdin: bytes) -> _Outcome:
    """Run the tiny vocabulary over `;`, `&&` and `||` lists; other syntax is accepted as is."""
    try:
        lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        tokens = list(lexer)
    except ValueError:
        return _Outcome(code=2, err=bytearray(b"sh: syntax error\n"))
    result = _Outcome()
    words: list[str] = []
    pending = ";"
    for token in [*tokens, ";"]:
        if token not in OPERATORS:
            words.append(token)
            continue
        runs = {";": True, "&&": result.code == 0, "||": result.code != 0}[pending]
        if runs:
            _simple(words, host, target, stdin, result)
        if result.exited:
            break
        words, pending = [], token
    return result


def _simple(words: list[str], host: SimHost, target: Target, stdin: bytes, res: _Outcome) -> None:
    out = res.out
    if words[-2:] == [">&", "2"]:
        words, out = words[:-2], res.err
    elif words[-2:] == [">", "/dev/null"]:
        words, out = words[:-2], bytearray()
    name, args = (words[0], words[1:]) if words else ("", [])
    previous, res.code = res.code, 0
    if name == "echo":
        out += (" ".join(args) + "\n").encode()
    elif name == "false":
        res.code = 1
    elif name == "exit":
        res.code = int(args[0]) % 256 if args and args[0].isdigit() else previous
        res.exited = True
    elif name == "sleep" and args:
        try:
            res.sleep_s += float(args[0])
        except ValueError:
            res.code, res.err = 1, res.err + f"sleep: invalid time '{args[0]}'\n".encode()
    elif name == "hostname":
        out += f"{target.hostname}\n".encode()
    elif name == "cat":
        _cat(args, host, stdin, out, res)


def _cat(paths: list[str], host: SimHost, stdin: bytes, out: bytearray, res: _Outcome) -> None:
    if not paths:
        out += stdin
    for path in paths:
        if path == BOOT_ID:
            out += f"{host.boot_id}\n".encode()
        elif path in host.files:
            out += host.files[path]
        else:
            res.code = 1
            res.err += f"cat: {path}: No such file or directory\n".encode()
