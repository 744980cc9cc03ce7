"""Core files as the session's target, through the engine and the console:
the session model of DESIGN.md §3 on a dump, every read-only command, every
thread's stack checked against gdb's for the same core, and refusals of
anything that would run or change the target."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Programs, Recorder
from cores import make_gcore, make_kernel_core
from test_console import after, console

from lindbg import (
    CDS,
    CES,
    DebugClient,
    EndFlags,
    InvalidOperationError,
    LindbgError,
    SessionStatus,
    Status,
)
from lindbg.errors import DumpFileError

#: The fixture's own functions each thread is parked in (crasher.c).
CRASHER_FUNCTIONS = {"crash_here", "park_alpha", "park_beta", "park_gamma", "park_main"}


@pytest.fixture(scope="module")
def kernel_core_path(programs: Programs, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_kernel_core(programs.path("crasher"), tmp_path_factory.mktemp("session-kernel-core"))


@pytest.fixture(scope="module")
def gcore_path(programs: Programs, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_gcore(programs.path("crasher"), tmp_path_factory.mktemp("session-gcore"))


@pytest.fixture(params=["kernel", "gcore"])
def core_path(request: pytest.FixtureRequest) -> Path:
    name = "kernel_core_path" if request.param == "kernel" else "gcore_path"
    path: Path = request.getfixturevalue(name)
    return path


@pytest.fixture
def dump_client(core_path: Path) -> Iterator[DebugClient]:
    client = DebugClient()
    client.open_dump_file(str(core_path))
    try:
        yield client
    finally:
        client.end_session(EndFlags.ACTIVE_DETACH)


def _digest(path: Path) -> tuple[str, float]:
    return hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime


def test_opening_starts_a_stopped_session_and_reports_the_stored_signal(kernel_core_path: Path) -> None:
    client = DebugClient()
    recorder = Recorder()
    client.set_event_callbacks(recorder)
    process = client.open_dump_file(str(kernel_core_path))
    try:
        kinds = [entry[0] for entry in recorder.log]
        assert recorder.log[0] == ("session_status", SessionStatus.ACTIVE)
        assert ("change_debuggee_state", CDS.ALL, 0) in recorder.log
        assert kinds.index("create_process") < kinds.index("load_module") < kinds.index("exception")
        assert recorder.of("exception") == [("exception", 11, False)]
        assert recorder.exceptions[0].address == 0x10
        assert recorder.log[-1] == ("change_engine_state", CES.EXECUTION_STATUS, Status.BREAK)
        assert client.get_execution_status() == Status.BREAK
        assert client.wait_for_event(timeout=0) is True  # nothing to wait for: it is stopped
        event = client.get_last_event()
        assert event is not None and event.kind == "exception" and event.signal == 11
        assert event.description == "Segmentation fault - code 0000000b (first/second chance not available)"
        assert process.origin == "examine"
        assert client.current_thread().tid == event.tid == process.pid  # main took the signal
        assert {m.name for m in client.modules()} >= {"crasher", "libc", "ld_linux_x86_64"}
    finally:
        client.end_session(EndFlags.ACTIVE_DETACH)


@pytest.mark.parametrize(
    ("flags", "reason"),
    [
        (EndFlags.PASSIVE, SessionStatus.END_SESSION_PASSIVE),
        (EndFlags.ACTIVE_TERMINATE, SessionStatus.END_SESSION_ACTIVE_TERMINATE),
        (EndFlags.ACTIVE_DETACH, SessionStatus.END_SESSION_ACTIVE_DETACH),
    ],
)
def test_each_end_flag_closes_the_dump_with_its_reason_and_leaves_the_file(
    kernel_core_path: Path, flags: EndFlags, reason: SessionStatus
) -> None:
    before = _digest(kernel_core_path)
    client = DebugClient()
    recorder = Recorder()
    client.set_event_callbacks(recorder)
    client.open_dump_file(str(kernel_core_path))
    client.end_session(flags)
    assert recorder.of("session_status")[-1] == ("session_status", reason)
    assert client.get_execution_status() == Status.NO_DEBUGGEE
    assert _digest(kernel_core_path) == before
    client.open_dump_file(str(kernel_core_path))  # the engine opens it again
    assert client.get_execution_status() == Status.BREAK
    client.end_session(EndFlags.ACTIVE_TERMINATE)


def test_anything_that_runs_or_writes_is_refused_and_the_session_carries_on(
    dump_client: DebugClient, programs: Programs
) -> None:
    marker = programs.symbol("crasher", "marker_value")
    attempts = [
        lambda: dump_client.set_execution_status(Status.GO),
        lambda: dump_client.set_execution_status(Status.STEP_INTO),
        lambda: dump_client.add_breakpoint("crasher!main"),
        lambda: dump_client.write_memory(marker, b"\0"),
        lambda: dump_client.set_register("rax", 1),
        lambda: dump_client.create_process([programs.path("data")]),
    ]
    for attempt in attempts:
        with pytest.raises(InvalidOperationError) as refused:
            attempt()
        assert "dump" in str(refused.value) and "\n" not in str(refused.value)
    assert dump_client.read_memory(marker, 8) == (0x1122334455667788).to_bytes(8, "little")
    assert dump_client.get_execution_status() == Status.BREAK


def _gdb_stacks(executable: str, core: Path) -> dict[int, list[str]]:
    """LWP -> the function names of gdb's `bt` for that thread, innermost first."""
    run = subprocess.run(
        ["gdb", "-batch", "-nx", executable, str(core), "-ex", "thread apply all bt"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    stacks: dict[int, list[str]] = {}
    current: list[str] = []
    for line in run.stdout.splitlines():
        thread = re.match(r"^Thread \d+ \(Thread 0x[0-9a-f]+ \(LWP (\d+)\)\)", line)
        if thread:
            current = stacks.setdefault(int(thread[1]), [])
            continue
        frame = re.match(r"^#\d+\s+(?:0x[0-9a-f]+ in )?(\S+) \(", line)
        if frame:
            current.append(frame[1])
    return stacks


def test_every_threads_stack_matches_gdbs(
    dump_client: DebugClient, core_path: Path, programs: Programs
) -> None:
    reference = _gdb_stacks(programs.path("crasher"), core_path)
    threads = dump_client.threads()
    assert sorted(t.tid for t in threads) == sorted(reference)
    for thread in threads:
        # gdb stops at main (its "backtrace past-main" is off): so do we, for the comparison
        ours = [f.function for f in dump_client.stack(thread.tid) if f.module == "crasher"]
        ours = ours[: ours.index("main") + 1] if "main" in ours else ours
        theirs = [
            name
            for name in reference[thread.tid]
            if name in CRASHER_FUNCTIONS | {"crash_caller", "main", "alpha", "beta", "gamma_"}
        ]
        assert ours == theirs, (thread.tid, ours, reference[thread.tid])
        assert ours[0] in CRASHER_FUNCTIONS or ours[0] in ("alpha", "beta", "gamma_", "crash_caller", "main")


def test_registers_disassembly_and_symbols_on_a_dump(dump_client: DebugClient, programs: Programs) -> None:
    crash = programs.symbol("crasher", "crash_here")
    for thread in dump_client.threads():
        rip = dump_client.get_register("rip", thread.tid)
        rax = dump_client.get_register("rax", thread.tid)
        assert dump_client.get_register("eax", thread.tid) == rax & 0xFFFFFFFF
        assert dump_client.disassemble(rip, 1)  # code is readable (from the core or the file)
    # main is in crash_here (kernel core) or parked in park_main under read (gcore)
    frame = next(f for f in dump_client.stack() if f.module == "crasher")
    assert frame.function in ("crash_here", "park_main")
    symbol = dump_client.symbol_at(frame.pc)
    assert symbol is not None and symbol.startswith(f"crasher!{frame.function}+0x")
    assert dump_client.resolve("crasher!crash_here") == crash
    line = dump_client.source_line(frame.pc)
    assert line is not None and line.file.endswith("crasher.c")
    assert dump_client.get_register("xmm0") >= 0  # vector state from NT_FPREGSET


def test_console_opens_a_core_with_z_and_shows_it(core_path: Path, programs: Programs) -> None:
    script = "|\n~\n~* kc 8\nr rdx\nlm\ndq crasher!marker_value L1\ng\nbp crasher!main\n.ecxr\nq\n"
    run = console(["-z", str(core_path)], stdin=script)
    out = run.stdout
    assert run.returncode == 0
    assert f"Loading Dump File [{core_path}]" in out
    assert re.search(r"^\.  0\tid: [0-9a-f]+\texamine\tname: .*/crasher$", out, re.MULTILINE)
    assert len(after(out, "~")) == 4
    each = "\n".join(after(out, "~* kc 8"))
    for name in ("park_alpha", "park_beta", "park_gamma"):
        assert f"crasher!{name}" in each
    marker = programs.symbol("crasher", "marker_value")
    assert after(out, "dq crasher!marker_value L1") == [f"00000000`{marker:08x}  11223344`55667788"]
    assert after(out, "g") == ["the target is a dump: cannot run or step it"]
    assert after(out, "bp crasher!main") == ["the target is a dump: cannot set breakpoints"]


def test_kernel_core_banner_names_the_stored_exception(kernel_core_path: Path) -> None:
    out = console(["-z", str(kernel_core_path)], stdin=".lastevent\nq\n").stdout
    assert "User Mini Dump File: Only registers, stack and portions of memory are available" in out
    assert "This dump file has an exception of interest stored in it." in out
    assert re.search(r"^\([0-9a-f]+\.[0-9a-f]+\): Segmentation fault - code 0000000b", out, re.MULTILINE)
    assert "crasher!crash_here+0x" in out
    assert after(out, ".lastevent")[0].endswith(
        "Segmentation fault - code 0000000b (first/second chance not available)"
    )


def test_opendump_and_bad_files_are_one_line_errors(kernel_core_path: Path, tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not a core\n")
    run = console(["-z", str(text)])
    assert run.returncode == 1
    assert run.stderr.strip().count("\n") == 0 and str(text) in run.stderr
    out = console([], stdin=f".opendump {text}\n.opendump {kernel_core_path}\nk 1\nq\n").stdout
    assert (
        after(out, f".opendump {text}")[0].startswith("cannot")
        or str(text) in after(out, f".opendump {text}")[0]
    )
    assert f"Opened '{kernel_core_path}'" in after(out, f".opendump {kernel_core_path}")
    assert "crasher!crash_here" in "\n".join(after(out, "k 1"))


def test_a_bad_file_leaves_the_engine_usable(tmp_path: Path, programs: Programs) -> None:
    client = DebugClient()
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    for path in (empty, tmp_path / "missing", Path(programs.path("data"))):
        with pytest.raises(DumpFileError) as failed:
            client.open_dump_file(str(path))
        assert str(path) in str(failed.value) and "\n" not in str(failed.value)
        assert isinstance(failed.value, LindbgError)
    assert client.get_execution_status() == Status.NO_DEBUGGEE
    client.create_process([programs.path("data")])  # a live session still starts
    assert client.get_execution_status() == Status.BREAK
    client.end_session(EndFlags.ACTIVE_TERMINATE)
    assert not os.path.exists(tmp_path / "missing")


# ------------------------------------------------------------ lindbg's own dumps


def _gdb_batch(executable: str, core: Path, commands: list[str]) -> str:
    arguments = ["gdb", "-batch", "-nx", executable, str(core)]
    for command in commands:
        arguments += ["-ex", command]
    return subprocess.run(arguments, capture_output=True, text=True, timeout=60, check=False).stdout


def test_dump_of_a_stopped_process_is_what_gdb_reads(programs: Programs, tmp_path: Path) -> None:
    crasher = programs.path("crasher")
    park_main = programs.symbol("crasher", "park_main")
    core = tmp_path / "live.core"
    script = (
        f".dump /ma {core}\n~\n~* r rip, rsp, rbp, rbx, fs_base\n~* kc\nu crasher!park_main L1\n.kill\nq\n"
    )
    out = console(["-c", "bp crasher!park_main", "-c", "g", crasher, "0", "wait"], stdin=script).stdout
    assert after(out, f".dump /ma {core}") == [
        f"Creating {core} - mini user dump with full memory",
        "Dump successfully written",
    ]
    tids = [int(re.search(r"Id: [0-9a-f]+\.([0-9a-f]+) ", row)[1], 16) for row in after(out, "~")]  # type: ignore[index]
    registers: dict[int, dict[str, int]] = {}
    tid = 0
    for line in after(out, "~* r rip, rsp, rbp, rbx, fs_base"):
        ident = re.search(r"Id: [0-9a-f]+\.([0-9a-f]+) ", line)
        if ident:
            tid = int(ident[1], 16)
        elif "=" in line:
            name, value = line.split("=")
            registers.setdefault(tid, {})[name] = int(value, 16)
    reference = _gdb_batch(
        crasher,
        core,
        [
            "info threads",
            "thread apply all info registers rip rsp rbp rbx fs_base",
            "thread apply all bt",
            "x/16xb park_main",
        ],
    )
    gdb_tids = [int(m) for m in re.findall(r"\(LWP (\d+)\)\)? ", reference.split("Thread ", 1)[1])]
    assert sorted(set(gdb_tids)) == sorted(tids)
    gdb_registers: dict[int, dict[str, int]] = {}
    for block in re.split(r"^Thread \d+ \(Thread 0x[0-9a-f]+ \(LWP ", reference, flags=re.MULTILINE)[1:]:
        lwp = int(block.split(")")[0])
        for name, value in re.findall(r"^(rip|rsp|rbp|rbx|fs_base)\s+0x([0-9a-f]+)", block, re.MULTILINE):
            gdb_registers.setdefault(lwp, {})[name] = int(value, 16)
    for tid in tids:
        assert registers[tid] == gdb_registers[tid], tid
    assert "#0  park_main () at" in reference
    for name in ("park_alpha", "park_beta", "park_gamma"):
        assert re.search(rf"#\d+\s+0x[0-9a-f]+ in {name} \(\)", reference), name
    dumped = bytes(
        int(b, 16) for b in re.findall(r"0x([0-9a-f]{2})\b", reference.split("<park_main>:", 1)[1])[:16]
    )
    assert dumped == programs.code_bytes("crasher", park_main, 16)  # no 0xcc where the breakpoint is
    assert dumped[0] != 0xCC


def test_writing_a_dump_leaves_the_process_running_as_before(programs: Programs, tmp_path: Path) -> None:
    core = tmp_path / "data.core"
    args = [
        "-c",
        "bp data!add",
        "-c",
        "g",
        "-c",
        f".dump {core}",
        "-c",
        "bc *",
        "-c",
        "g",
        programs.path("data"),
    ]
    out = console(args, stdin="q\n").stdout
    checksum = next(line for line in programs.reference("data") if line.startswith("checksum="))
    assert checksum in out.splitlines()  # the code it ran afterwards is its own
    assert "sum=6 step=6" in out
    assert core.stat().st_size > 0
    listed = console(["-z", str(core)], stdin="k 2\nq\n").stdout
    assert "data!add" in "\n".join(after(listed, "k 2"))  # lindbg reads its own dump


def test_an_existing_dump_file_is_kept_unless_o(programs: Programs, tmp_path: Path) -> None:
    core = tmp_path / "kept.core"
    core.write_bytes(b"precious")
    args = ["-c", "bp data!add", "-c", "g", programs.path("data")]
    out = console(args, stdin=f".dump {core}\n.dump /o {core}\nq\n").stdout
    assert after(out, f".dump {core}")[-1] == f"dump file '{core}' exists (use /o to overwrite)"
    assert after(out, f".dump /o {core}")[-1] == "Dump successfully written"
    assert core.read_bytes()[:4] == b"\x7fELF"
    assert not list(tmp_path.glob("*.partial*")) and len(list(tmp_path.iterdir())) == 1
