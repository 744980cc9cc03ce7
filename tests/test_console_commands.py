"""Console commands beyond the basics: conditions (j, .if, gc), pass counts and
one-shot breakpoints, .printf, s, the ~ forms, kv/kc, r sub-registers and
flags, .childdbg; and r/db/u checked against gdb stopped at the same place."""

from __future__ import annotations

import re
import subprocess

from conftest import Programs
from test_console import after, console


def test_conditional_breakpoint_with_j_stops_only_when_true(programs: Programs) -> None:
    # write_watched(1), (2), (3): break only when the argument is 2
    script = "bp data!write_watched \"j (@rdi==2) ''; 'gc'\"\ng\nr rdi\ng\nq\n"
    out = console(["-G", programs.path("data")], stdin=script).stdout
    assert after(out, "r rdi") == ["rdi=0000000000000002"]
    assert out.count("Breakpoint 0 hit") == 3  # shown at each hit; two of them carried on
    assert after(out, "g").count("Breakpoint 0 hit") == 2
    assert len([line for line in out.splitlines() if line.startswith("rax=")]) == 2  # start, the one stop


def test_if_else_blocks_choose_a_branch(programs: Programs) -> None:
    script = (
        ".if (1 == 2) { .echo wrong } .elsif (2 > 1) { .echo right; .echo twice } .else { .echo no }\n"
        ".if (0) { .echo no }\n"
        ".if 5 { .echo bare }\n"
        ".else { .echo orphan }\n"
        "j 0 '.echo first' ; '.echo second'\n"
        "q\n"
    )
    out = console([programs.path("data")], stdin=script).stdout
    lines = out.splitlines()
    assert "right" in lines and "twice" in lines
    assert "wrong" not in lines and "no" not in lines
    assert "bare" in lines
    assert "second" in lines and "first" not in lines
    assert any(line.endswith("^ Syntax error in '.else { .echo orphan }'") for line in lines)


def test_pass_count_and_one_shot_breakpoints(programs: Programs) -> None:
    script = "bp data!write_watched 3\nbp /1 data!add\nbl\ng\nr rdi\nbl\ng\nbl\nq\n"
    out = console(["-G", programs.path("data")], stdin=script).stdout
    rows = after(out, "bl")
    assert " 0003 (0003) " in rows[0]
    assert after(out, "r rdi") == ["rdi=0000000000000003"]  # the third call, not the first
    later = out.split("0:000> bl")[2].splitlines()
    assert " 0001 (0003) " in later[1]
    # the one-shot breakpoint on add fires once and is gone
    final = out.split("0:000> bl")[3].splitlines()
    assert not any("data!add" in line for line in final[1:] if not line.startswith("0:000>"))
    assert out.count("Breakpoint 1 hit") == 1


def test_printf_formats_registers_strings_and_symbols(programs: Programs) -> None:
    command = '.printf "n=%d x=%x s=%ma at %y\\n", 0n42, 0n255, data!message, data!add+1'
    out = console([programs.path("data")], stdin=command + "\nq\n").stdout
    assert "n=42 x=ff s=hello from data at data!add+0x1\n" in out


def test_search_finds_bytes_strings_and_qwords(programs: Programs) -> None:
    message = programs.symbol("data", "message")
    script = (
        's -a data!message L40 "from"\n'
        "s -b data!message L20 64 61 74 61\n"
        "s -q @rsp L200 0\n"
        's -a data!message L4 "absent"\n'
        "s -z 0 L1 0\n"
        "q\n"
    )
    out = console(["-c", "bp data!add", "-c", "g", programs.path("data")], stdin=script).stdout
    found = after(out, 's -a data!message L40 "from"')
    assert found == [
        f"00000000`{message + 6:08x}  66 72 6f 6d 20 64 61 74-61 00 00 00 00 00 00 00  from data......."
    ]
    assert after(out, "s -b data!message L20 64 61 74 61")[0].startswith(
        f"00000000`{message + 11:08x}  64 61"
    )
    zeros = after(out, "s -q @rsp L200 0")
    assert zeros and all(re.match(r"^[0-9a-f]{8}`[0-9a-f]{8}  00000000`00000000", row) for row in zeros)
    assert after(out, 's -a data!message L4 "absent"') == []
    assert after(out, "s -z 0 L1 0")[0].endswith("^ Syntax error in 's -z 0 L1 0'")


def test_thread_forms_run_commands_as_each_thread(programs: Programs) -> None:
    # crasher parks three threads (past a barrier, in park_alpha/beta/gamma), then main
    script = "~\n~*\n~* kc 1\n~1 r rip\n~.\n~#\n~5s\n~~[0n1]s\nq\n"
    args = ["-c", "bp crasher!park_main", "-c", "g", programs.path("crasher"), "0", "wait"]
    out = console(args, stdin=script).stdout
    listing = after(out, "~")
    assert len(listing) == 4  # main and three workers, one line each
    row = r'^[.# ] +\d  Id: [0-9a-f]+\.[0-9a-f]+ Suspend: 1 Teb: \w{8}`\w{8} Unfrozen "crasher"$'
    assert all(re.match(row, line) for line in listing), listing
    detailed = after(out, "~*")
    assert len(detailed) == 12  # three lines per thread
    starts = sorted(line.split("(")[0].split()[-1] for line in detailed[1::3])
    assert starts == ["crasher!_start", "crasher!alpha", "crasher!beta", "crasher!gamma_"]
    assert all(line.startswith("      Priority: ") for line in detailed[2::3])
    each = after(out, "~* kc 1")
    assert each.count("Call Site") == 4 and each.count("") == 4
    assert any(line.startswith("crasher!park_main ") for line in each)
    assert re.match(r"^rip=[0-9a-f]{16}$", after(out, "~1 r rip")[0])
    current = after(out, "~.")
    assert current[0].startswith(".") and len(current) == 3
    assert after(out, "~5s")[0].endswith("^ Illegal thread error in '~5s'")
    assert after(out, "~~[0n1]s")[0].endswith("^ Illegal thread error in '~~[0n1]s'")


def test_register_widths_flags_kv_and_kc(programs: Programs) -> None:
    script = "r edi\nr dil\nr zf\nr cs\nr efl\nkc\nkv 1\nq\n"
    out = console(["-c", "bp data!add", "-c", "g", programs.path("data")], stdin=script).stdout
    assert after(out, "r edi") == ["edi=00000002"]
    assert after(out, "r dil") == ["dil=02"]
    assert re.match(r"^zf=[01]$", after(out, "r zf")[0])
    assert after(out, "r cs") == ["cs=0033"]
    assert re.match(r"^efl=[0-9a-f]{8}$", after(out, "r efl")[0])
    calls = after(out, "kc")
    assert calls[0] == "Call Site" and calls[1].startswith("data!add") and "data!step_caller" in calls[2]
    assert after(out, "kv 1")[0].startswith("RetAddr               : Args to Child")


def test_childdbg_decides_whether_children_are_debugged(programs: Programs) -> None:
    script = ".childdbg\n.childdbg 0\ng\n|\nq\n"
    out = console([programs.path("forker")], stdin=script).stdout
    assert after(out, ".childdbg") == ["Processes created by the current process will be debugged"]
    assert after(out, ".childdbg 0") == ["Processes created by the current process will not be debugged"]
    assert "child" not in "\n".join(line for line in after(out, "g") if line.startswith("ModLoad"))
    assert len([line for line in out.splitlines() if "\tid: " in line]) <= 1


def _gdb_at(program: str, function: str, commands: list[str]) -> str:
    args = ["gdb", "-batch", "-nx", "-ex", f"break {function}", "-ex", "run"]
    for command in commands:
        args += ["-ex", command]
    return subprocess.run([*args, program], capture_output=True, text=True, timeout=60, check=False).stdout


def test_registers_memory_and_code_agree_with_gdb_at_the_same_stop(programs: Programs) -> None:
    data = programs.path("data")
    add = programs.symbol("data", "add")
    script = "r rip, rdi, rsi, cs, ss\ndb data!message L10\nu data!add L4\nq\n"
    out = console(["-c", "bp data!add", "-c", "g", data], stdin=script).stdout
    reference = _gdb_at(data, "*add", ["info registers rip rdi rsi cs ss", "x/16xb &message", "x/4i add"])
    gdb_regs = dict(re.findall(r"^(\w+)\s+(0x[0-9a-f]+)", reference, re.MULTILINE))
    ours = dict(line.split("=") for line in after(out, "r rip, rdi, rsi, cs, ss"))
    for name in ("rip", "rdi", "rsi", "cs", "ss"):
        assert int(ours[name], 16) == int(gdb_regs[name], 16), name
    gdb_bytes = [
        int(b, 16)
        for b in re.findall(
            r"0x([0-9a-f]{2})\b",
            "\n".join(line.split(":", 1)[1] for line in reference.splitlines() if "<message" in line),
        )
    ]
    row = after(out, "db data!message L10")[0]
    our_bytes = [int(b, 16) for b in row[19:66].replace("-", " ").split()]
    assert our_bytes == gdb_bytes
    gdb_insns = re.findall(r"^\s*(?:=> )?0x0*([0-9a-f]+) <add(?:\+\d+)?>:\s+(\w+)", reference, re.MULTILINE)
    listing = after(out, "u data!add L4")[1:]
    assert [int(a, 16) for a, _ in gdb_insns] == [int(line[:17].replace("`", ""), 16) for line in listing]
    assert [m for _, m in gdb_insns] == [line.split()[2] for line in listing]
    assert int(gdb_insns[0][0], 16) == add


def test_step_to_the_next_call_and_return(programs: Programs) -> None:
    add = programs.symbol("data", "add")
    call, _ = programs.call_site("data", "step_caller", "add")
    script = "pc\nt\npt\ntc\nq\n"
    out = console(["-c", "bp data!step_caller", "-c", "g", programs.path("data")], stdin=script).stdout
    assert after(out, "pc")[-1].startswith(f"00000000`{call:08x} e8")  # on the call, not past it
    assert after(out, "t")[-1].startswith(f"00000000`{add:08x} ")
    returned = after(out, "pt")
    assert returned[-2].startswith("data!add+0x") and returned[-1].rstrip().endswith("ret")
    next_call = after(out, "tc")
    assert next_call[-2].startswith("data!main+0x") and " call " in next_call[-1]
