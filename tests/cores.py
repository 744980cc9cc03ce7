"""Cores made by real writers for the tests, and what gdb sees of them.

``make_kernel_core`` lets the kernel write one (``crasher`` dies of SIGSEGV in its
own working directory, ``core_pattern`` being a plain file name here);
``make_gcore`` has gdb's ``gcore`` write one of ``crasher 0 wait`` once it is
parked; ``gdb_view`` is what ``gdb -batch EXE CORE`` prints of a core.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import WAIT, LineReader

#: The registers gdb is asked for (those it shows of user_regs_struct).
GDB_REGISTERS = (
    "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10", "r11",
    "r12", "r13", "r14", "r15", "rip", "eflags", "cs", "ss", "ds", "es", "fs", "gs",
    "fs_base", "gs_base",
)  # fmt: skip
#: A non-canonical address: never mapped in any process.
UNMAPPED_HIGH = 0xFFFF_8000_0000_0000


# ------------------------------------------------------------------ making cores


def _child_environment() -> dict[str, str]:
    """The environment for a fixture whose output goes to our pipe, not to a FIFO."""
    return {key: value for key, value in os.environ.items() if key != "LINDBG_TEST_OUT"}


def _allow_core_dumps() -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))


def make_kernel_core(executable: str, directory: Path) -> Path:
    """Run ``executable`` (crasher) in ``directory`` until it dies of SIGSEGV; its core."""
    with open("/proc/sys/kernel/core_pattern") as pattern_file:
        pattern = pattern_file.read().strip()
    if pattern.startswith("|") or "/" in pattern:
        pytest.skip(f"kernel cores go elsewhere (core_pattern {pattern!r}), not to the working directory")
    run = subprocess.run(
        [executable],
        cwd=directory,
        preexec_fn=_allow_core_dumps,
        env=_child_environment(),
        capture_output=True,
        timeout=WAIT * 3,
        check=False,
    )
    assert run.returncode == -11, f"crasher did not die of SIGSEGV: {run.returncode} {run.stderr!r}"
    cores = sorted(directory.glob("core*"))
    assert len(cores) == 1, f"expected one core in {directory} (core_pattern {pattern!r}), found {cores}"
    return cores[0]


def make_gcore(executable: str, directory: Path) -> Path:
    """gdb's gcore of ``crasher 0 wait`` once it has printed "ready"; the process is killed."""
    if shutil.which("gdb") is None:
        pytest.skip("gdb is needed to write and check cores")
    output = directory / "gcore.core"
    process = subprocess.Popen(
        [executable, "0", "wait"], stdout=subprocess.PIPE, env=_child_environment(), cwd=directory
    )
    try:
        assert process.stdout is not None
        LineReader(process.stdout.fileno()).wait_for("ready")
        gdb = subprocess.run(
            ["gdb", "-batch", "-nx", "-p", str(process.pid), "-ex", f"gcore {output}"],
            capture_output=True,
            text=True,
            timeout=WAIT * 6,
            check=False,
        )
        assert output.exists(), f"gcore wrote nothing: {gdb.stdout}{gdb.stderr}"
    finally:
        process.kill()
        process.wait(timeout=WAIT)
        if process.stdout is not None:
            process.stdout.close()
    return output


# ------------------------------------------------------------------ what gdb sees


@dataclass
class GdbView:
    """What ``gdb -batch EXE CORE`` prints of a core."""

    #: LWP of gdb's thread 1, 2, ... in that order.
    threads: list[int] = field(default_factory=list)
    registers: dict[int, dict[str, int]] = field(default_factory=dict)
    siginfo: str = ""
    #: label -> (address, the 16 bytes there).
    memory: dict[str, tuple[int, bytes]] = field(default_factory=dict)


MEMORY_PROBES = {"marker": "&marker_value", "stack": "$rsp", "read": "read"}


def gdb_view(executable: str, core: Path) -> GdbView:
    commands = [
        "info threads",
        "echo @@registers\\n",
        "thread apply all info registers " + " ".join(GDB_REGISTERS),
    ]
    commands += ["thread 1", "echo @@siginfo\\n", "p $_siginfo"]
    for label, expression in MEMORY_PROBES.items():
        commands += [f"echo @@memory {label}\\n", f"x/16xb {expression}"]
    arguments = ["gdb", "-batch", "-nx", executable, str(core)]
    for command in commands:
        arguments += ["-ex", command]
    run = subprocess.run(arguments, capture_output=True, text=True, timeout=WAIT * 6, check=False)
    return _parse_gdb(run.stdout)


def _parse_gdb(text: str) -> GdbView:
    view = GdbView()
    sections = re.split(r"^@@", text, flags=re.MULTILINE)
    for match in re.finditer(r"^[* ]\s*(\d+)\s+Thread 0x[0-9a-f]+ \(LWP (\d+)\)", sections[0], re.MULTILINE):
        view.threads.append(int(match.group(2)))
    for section in sections[1:]:
        head, _, body = section.partition("\n")
        if head == "registers":
            view.registers = _parse_registers(body)
        elif head == "siginfo":
            view.siginfo = body
        elif head.startswith("memory "):
            view.memory[head.split()[1]] = _parse_examine(body)
    return view


def _parse_registers(body: str) -> dict[int, dict[str, int]]:
    registers: dict[int, dict[str, int]] = {}
    current: dict[str, int] = {}
    for line in body.splitlines():
        thread = re.match(r"^Thread \d+ \(Thread 0x[0-9a-f]+ \(LWP (\d+)\)\)", line)
        if thread:
            current = registers.setdefault(int(thread.group(1)), {})
            continue
        value = re.match(r"^(\w+)\s+0x([0-9a-f]+)\s", line)
        if value and value.group(1) in GDB_REGISTERS:
            current[value.group(1)] = int(value.group(2), 16)
    return registers


def _parse_examine(body: str) -> tuple[int, bytes]:
    address = -1
    data = bytearray()
    for line in body.splitlines():
        head, colon, rest = line.partition(":")
        if not colon or not head.startswith("0x"):
            continue
        if address < 0:
            address = int(head.split()[0], 16)
        data += bytes(int(token, 16) for token in rest.split())
    return address, bytes(data)


# ------------------------------------------------------------------ fixtures


@dataclass
class Core:
    """A core written by a real writer, and what gdb sees of it."""

    writer: str
    path: Path
    executable: str
    gdb: GdbView
