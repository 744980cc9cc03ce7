"""Modules from the loader's rendezvous: the initial images, DT_NEEDED libraries,
dlopen/dlclose as LOAD_MODULE/UNLOAD_MODULE events, attach, exec; and
disassembly compared with objdump."""

from __future__ import annotations

import os
import subprocess

from conftest import Harness, Recorder

from lindbg import CSS, EventMask, Status

LOADS = EventMask.LOAD_MODULE | EventMask.UNLOAD_MODULE | EventMask.CHANGE_SYMBOL_STATE


def maps_of(pid: int) -> dict[str, int]:
    """Lowest mapped address of each file in /proc/PID/maps."""
    lowest: dict[str, int] = {}
    with open(f"/proc/{pid}/maps") as maps:
        for line in maps:
            fields = line.split(maxsplit=5)
            if len(fields) == 6:
                path = fields[5].strip()
                start = int(fields[0].split("-")[0], 16)
                lowest[path] = min(start, lowest.get(path, start))
    return lowest


def test_initial_modules_are_the_program_the_loader_and_the_vdso(harness: Harness) -> None:
    recorder = Recorder(mask=LOADS)
    harness.client.set_event_callbacks(recorder)
    process = harness.launch("checksum")
    modules = harness.client.modules()
    assert [m.name for m in modules] == ["checksum", "ld_linux_x86_64", "linux_vdso"]
    program, interpreter, vdso = modules
    mapped = maps_of(process.pid)
    assert program.path == harness.programs.path("checksum")
    assert program.base == mapped[program.path] == 0x400000  # -no-pie
    assert interpreter.base == mapped[interpreter.path]
    assert vdso.base == mapped["[vdso]"]
    assert all(m.size > 0 and m.build_id for m in (program, interpreter))
    assert [entry[1].name for entry in recorder.of("load_module")] == [m.name for m in modules]
    assert recorder.of("change_symbol_state")[0] == ("change_symbol_state", CSS.LOADS, program.base)


def test_needed_libraries_load_before_main(harness: Harness) -> None:
    recorder = Recorder(mask=LOADS)
    harness.client.set_event_callbacks(recorder)
    process = harness.launch("checksum")
    harness.client.add_breakpoint(harness.symbol("checksum", "main"))
    harness.go()
    names = [m.name for m in harness.client.modules()]
    assert "libc" in names
    libc = next(m for m in harness.client.modules() if m.name == "libc")
    assert libc.base == maps_of(process.pid)[libc.path]
    expected_id = subprocess.run(
        ["readelf", "-n", libc.path], capture_output=True, text=True, check=True
    ).stdout
    assert libc.build_id in expected_id
    assert ("load_module", libc) in [(e[0], e[1]) for e in recorder.of("load_module")]


def test_dlopen_and_dlclose_are_load_and_unload_events(harness: Harness, plugin: str) -> None:
    events: list[tuple[str, str]] = []

    class Watch(Recorder):
        def load_module(self, module: object) -> Status:
            events.append(("load", module.path))  # type: ignore[attr-defined]
            return Status.NO_CHANGE

        def unload_module(self, module: object) -> Status:
            events.append(("unload", module.path))  # type: ignore[attr-defined]
            return Status.NO_CHANGE

    harness.client.set_event_callbacks(Watch(mask=LOADS))
    harness.launch("dlopener", plugin)
    assert harness.run_to_end() == 0
    assert ("load", plugin) in events
    assert ("unload", plugin) in events
    assert events.index(("load", plugin)) < events.index(("unload", plugin))
    assert "plugin=36" in harness.pipe.wait_eof()


def test_a_load_module_callback_can_break_in_at_the_load(harness: Harness, plugin: str) -> None:
    class BreakOnPlugin(Recorder):
        def load_module(self, module: object) -> Status:
            return Status.BREAK if module.path == plugin else Status.NO_CHANGE  # type: ignore[attr-defined]

    harness.client.set_event_callbacks(BreakOnPlugin(mask=LOADS))
    harness.launch("dlopener", plugin)
    harness.go()
    assert harness.client.get_execution_status() == Status.BREAK
    assert any(m.path == plugin for m in harness.client.modules())
    plugin_module = next(m for m in harness.client.modules() if m.path == plugin)
    assert plugin_module.name == "libplugin"
    assert harness.run_to_end() == 0


def test_attach_lists_every_module_at_once(client: object, programs: object) -> None:
    from lindbg import DebugClient

    assert isinstance(client, DebugClient)
    sleeper = subprocess.Popen(
        [programs.path("sleeper"), "0"],  # type: ignore[attr-defined]
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert sleeper.stdout is not None
        assert sleeper.stdout.readline().startswith(b"ready")
        client.attach_process(sleeper.pid)
        names = [m.name for m in client.modules()]
        assert names[:3] == ["sleeper", "ld_linux_x86_64", "linux_vdso"]
        assert "libc" in names
    finally:
        client.end_session(1)
        sleeper.wait(timeout=10)


def test_disassembly_matches_objdump(harness: Harness) -> None:
    harness.launch("data")
    add = harness.symbol("data", "add")
    harness.client.add_breakpoint(add)  # the int3 must not show
    listing = harness.client.disassemble(add, 6)
    assert len(listing) == 6
    assert listing[0].address == add
    dump = subprocess.run(
        ["objdump", "-d", "--no-show-raw-insn", f"--start-address={add:#x}", harness.programs.path("data")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    addresses = [
        int(line.split(":")[0], 16) for line in dump.splitlines() if line.startswith("  ") and ":" in line
    ]
    assert [i.address for i in listing] == addresses[:6]
    assert listing[0].code != b"\xcc"


def test_exec_replaces_the_module_list(harness: Harness) -> None:
    recorder = Recorder(mask=LOADS)
    harness.client.set_event_callbacks(recorder)
    harness.launch("execer", harness.programs.path("checksum"))
    assert harness.run_to_end() == 0
    unloaded = [e[1].name for e in recorder.of("unload_module")]
    assert "execer" in unloaded
    loaded = [e[1].name for e in recorder.of("load_module")]
    assert loaded.count("libc") == 2  # once per image
    assert "checksum" in loaded
    assert os.path.basename(harness.programs.path("checksum")) == "checksum"
