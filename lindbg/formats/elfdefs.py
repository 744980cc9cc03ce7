"""ELF64 little-endian record layouts and constants: the one place they are defined.

Layouts are ``struct.Struct`` objects (as pyelftools keeps its structs apart from its
readers); constants carry the names of <elf.h> without the ``Elf64_`` prefix. The ELF
readers (``elffile``, ``cfi``, ``loader``) and the core reader and writer
(``targets/dump``) all take them from here.

A leaf module: it imports nothing from lindbg, so any layer (``arch``, ``os``,
``symbols``, ``targets``) can import it without a cycle.
"""

from __future__ import annotations

import struct

#: File identification, e_ident (System V gABI, "ELF Identification").
ELF_MAGIC = b"\x7fELF"
ELFCLASS32 = 1
ELFCLASS64 = 2
ELFDATA2LSB = 1
ELFDATA2MSB = 2
EV_CURRENT = 1
#: The e_ident of an ELF64 little-endian file, current version, System V ABI.
ELF64_LSB_IDENT = ELF_MAGIC + bytes((ELFCLASS64, ELFDATA2LSB, EV_CURRENT)) + bytes(9)

#: Record layouts of ELF64 little-endian (System V gABI; Elf64_Ehdr, _Phdr, _Shdr,
#: _Chdr, _Nhdr and _Sym of <elf.h>).
EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
PHDR = struct.Struct("<IIQQQQQQ")
SHDR = struct.Struct("<IIQQQQIIQQ")
CHDR = struct.Struct("<IIQQ")
NHDR = struct.Struct("<III")
SYM = struct.Struct("<IBBHQQ")
#: One auxiliary vector entry, Elf64_auxv_t (<elf.h>): a_type, a_val.
AUXV_ENTRY = struct.Struct("<QQ")

#: e_type (System V gABI), and the names messages give them.
ET_NONE = 0
ET_REL = 1
ET_EXEC = 2
ET_DYN = 3
ET_CORE = 4
ET_NAMES = {ET_NONE: "NONE", ET_REL: "REL", ET_EXEC: "EXEC", ET_DYN: "DYN", ET_CORE: "CORE"}

#: e_machine (System V gABI).
EM_X86_64 = 62

#: p_type (System V gABI; PT_GNU_EH_FRAME is the GNU extension of <elf.h>).
PT_LOAD = 1
PT_DYNAMIC = 2
PT_NOTE = 4
PT_PHDR = 6
PT_GNU_EH_FRAME = 0x6474E550

#: p_flags (System V gABI).
PF_X = 1
PF_W = 2
PF_R = 4

#: e_phnum's escape value (System V gABI): the real count is section header 0's sh_info.
PN_XNUM = 0xFFFF

#: sh_type, sh_flags and special section indexes (System V gABI).
SHT_SYMTAB = 2
SHT_NOTE = 7
SHT_NOBITS = 8
SHT_DYNSYM = 11
SHF_COMPRESSED = 0x800
SHN_LORESERVE = 0xFF00
SHN_XINDEX = 0xFFFF

#: ch_type of a compressed section's Elf64_Chdr (System V gABI).
ELFCOMPRESS_ZLIB = 1
ELFCOMPRESS_ZSTD = 2

#: d_tag of the dynamic section (System V gABI).
DT_NULL = 0
DT_DEBUG = 21

#: a_type of the auxiliary vector (<linux/auxvec.h>, <elf.h>).
AT_NULL = 0
AT_PHDR = 3
AT_PHNUM = 5
AT_BASE = 7
AT_ENTRY = 9
AT_SYSINFO_EHDR = 33

#: n_type of notes named "GNU" (<elf.h>). Note types are per name: 3 here is not NT_PRPSINFO.
NT_GNU_BUILD_ID = 3

#: n_type of core notes named "CORE", and of NT_X86_XSTATE named "LINUX" (<linux/elf.h>).
#: Also the PTRACE_GETREGSET register set numbers. 3 here is not NT_GNU_BUILD_ID.
NT_PRSTATUS = 1
NT_PRFPREG = 2
NT_PRPSINFO = 3
NT_AUXV = 6
NT_SIGINFO = 0x53494749
NT_FILE = 0x46494C45
NT_X86_XSTATE = 0x202

#: elf_prstatus of x86-64 Linux (<linux/elfcore.h>, 336 bytes): si_signo, si_code,
#: si_errno, pr_cursig (+2 pad), pr_sigpend, pr_sighold, pr_pid, pr_ppid, pr_pgrp,
#: pr_sid, four timevals (64 bytes), pr_reg (216 bytes), pr_fpvalid (+4 pad).
PRSTATUS = struct.Struct("<iiiH2xQQiiii64s216si4x")
#: elf_prpsinfo of x86-64 Linux (<linux/elfcore.h>, 136 bytes): pr_state, pr_sname (a
#: one-byte ``bytes``), pr_zomb, pr_nice (+4 pad), pr_flag, pr_uid, pr_gid, pr_pid,
#: pr_ppid, pr_pgrp, pr_sid, pr_fname[16], pr_psargs[80].
PRPSINFO = struct.Struct("<BcBb4xQIIiiii16s80s")
#: NT_FILE's desc (fs/binfmt_elf.c, fill_files_note): this header (count, page_size),
#: count entries (start, end, file offset in pages), then count NUL-terminated paths.
FILE_NOTE_HEADER = struct.Struct("<QQ")
FILE_ENTRY = struct.Struct("<QQQ")
#: NT_SIGINFO's desc: a siginfo_t (<asm-generic/siginfo.h>), 128 bytes.
SIGINFO_SIZE = 128
