"""An emulator in a process of its own, beside the local stack's.

The stack's process runs moto, the Step Functions interpreter and the Lambda bridge on one GIL; an emulator served
from it competes for that GIL with the orchestration it serves, so a benchmark at the vendors' limits measures the
stack's process, not the limits (the vendors are remote, after all). Here the child runs the emulator's own
`start(...)` unchanged, on a world clock that follows the stack's: every move of the stack's clock is posted to the
child's `POST /_emulator/clock` before the move returns, so the child's billing catch-up has run by then, as it has
in process. The parent's handle serves the control plane over `/_emulator/*` (`RemoteControl`).

Run as `python -m billmig_local.emulators.own_process NAME --offset S [--state-dir D]`: it prints one JSON line
(`{"url": ..., "pid": ...}`) once serving, and stops when its standard input closes (the parent stopped or died).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path

import httpx

from billmig_local.clock import WorldClock
from billmig_local.emulators.control_plane import EmulatorControl, FaultRule, LoggedRequest
from billmig_local.emulators.server import RunningEmulator

START_TIMEOUT_SECONDS = 60


class EmulatorProcess:
    """The parent's handle on an emulator's process: its URL, the clock it follows, and `stop()`."""

    def __init__(
        self, name: str, *, clock: WorldClock, state_dir: Path | None, environment: Mapping[str, str] | None = None
    ) -> None:
        self.name = name
        self._clock = clock
        self._url: str | None = None
        command = [sys.executable, "-m", __name__, name, f"--offset={clock.now() - time.time()!r}"]
        if state_dir is not None:
            command += ["--state-dir", str(state_dir)]
        self._process = subprocess.Popen(  # noqa: S603 - this interpreter, this package's module, no shell
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**os.environ, **(environment or {})},
            text=True,
        )
        # A move while the child starts is sent once it serves (below): subscribe before reading its URL.
        clock.subscribe(self._follow)
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError(f"the {name} emulator's process exited with {self._process.wait()} before serving")
        announced = json.loads(line)
        self.pid: int = announced["pid"]
        self._http = httpx.Client(base_url=announced["url"], timeout=60)
        self._url = announced["url"]
        self._follow(0.0, clock.now())

    @property
    def url(self) -> str:
        assert self._url is not None
        return self._url

    def _follow(self, _old: float, _new: float) -> None:
        if self._url is None:
            return
        # the offset, not the instant: the child's time flows on while the request travels
        self._http.post("/_emulator/clock", json={"offset": self._clock.now() - time.time()}).raise_for_status()

    def stop(self) -> None:
        if self._process.stdin is not None and not self._process.stdin.closed:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        if self._url is not None:
            self._http.close()


class RemoteControl:
    """The emulator's control plane over `/_emulator/*`, shaped like the in-process `EmulatorControl`."""

    def __init__(self, url: str) -> None:
        self._http = httpx.Client(base_url=url, timeout=60)

    @property
    def log(self) -> list[LoggedRequest]:
        response = self._http.get("/_emulator/requests")
        response.raise_for_status()
        return [LoggedRequest(**entry) for entry in response.json()]

    def clear_log(self) -> None:
        self._http.delete("/_emulator/requests").raise_for_status()

    def add_fault(self, rule: FaultRule) -> None:
        self._http.post("/_emulator/faults", json=asdict(rule)).raise_for_status()

    def clear_faults(self) -> None:
        self._http.delete("/_emulator/faults").raise_for_status()


def start_in_own_process(
    name: str, *, clock: WorldClock, state_dir: Path | None, environment: Mapping[str, str] | None = None
) -> RunningEmulator:
    process = EmulatorProcess(name, clock=clock, state_dir=state_dir, environment=environment)
    return RunningEmulator(name, process, RemoteControl(process.url), extra={"pid": process.pid})


def main(argv: list[str] | None = None) -> None:
    from billmig_local.emulators import available_emulators

    parser = argparse.ArgumentParser(prog="billmig_local.emulators.own_process")
    parser.add_argument("name")
    parser.add_argument("--offset", type=float, required=True, help="the world clock's offset from real time, s")
    parser.add_argument("--state-dir", type=Path)
    args = parser.parse_args(argv)

    clock = WorldClock()
    clock.set(time.time() + args.offset)
    running = available_emulators()[args.name](clock=clock, state_dir=args.state_dir)
    control = running.control
    if not isinstance(control, EmulatorControl):
        raise SystemExit(f"the {args.name} emulator's control plane cannot follow a clock")
    # the parent's offset only grows (its clock never goes back), so adopting it only moves this clock forward
    control.follow_clock = lambda offset: clock.set(max(clock.now(), time.time() + offset))
    print(json.dumps({"url": running.url, "pid": os.getpid()}), flush=True)
    sys.stdin.read()
    running.server.stop()
    store = running.extra.get("store")
    if store is not None:
        store.close()


if __name__ == "__main__":
    main()
