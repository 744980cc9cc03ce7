/* Breakpoint hits, naive algorithm, the limit: usage bp_loop TARGET ADDR N.
 *
 * Runs TARGET N, puts an int3 at ADDR, and on every hit does what a naive
 * debugger does: GETREGS, restore the original byte, rip -= 1, SETREGS,
 * SINGLESTEP, wait, re-insert the int3, CONT, wait (8 syscalls, 2 stops).
 * Times from the first hit to the exit and reports the N-1 hits after the
 * first, so start-up (exec, ld.so) is outside the timed region.
 */
#include "common.h"
#include <sys/user.h>

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s TARGET ADDR N\n", argv[0]);
        return 2;
    }
    unsigned long addr = strtoul(argv[2], NULL, 0);
    char *targv[] = {argv[1], argv[3], NULL};
    pid_t pid = launch(targv);
    double t0 = 0;

    errno = 0;
    long orig = ptrace(PTRACE_PEEKTEXT, pid, (void *)addr, 0);
    if (errno)
        die("PEEKTEXT");
    long trap = (orig & ~0xffL) | 0xcc;
    if (ptrace(PTRACE_POKETEXT, pid, (void *)addr, (void *)trap) < 0)
        die("POKETEXT");
    if (ptrace(PTRACE_CONT, pid, 0, 0) < 0)
        die("CONT");

    long hits = 0;
    struct user_regs_struct regs;
    for (;;) {
        int status;
        if (waitpid(pid, &status, 0) < 0)
            die("waitpid");
        if (WIFEXITED(status) || WIFSIGNALED(status))
            break;
        if (WSTOPSIG(status) != SIGTRAP) {
            ptrace(PTRACE_CONT, pid, 0, (void *)(long)WSTOPSIG(status));
            continue;
        }
        if (++hits == 1)
            t0 = now();
        ptrace(PTRACE_GETREGS, pid, 0, &regs);
        ptrace(PTRACE_POKETEXT, pid, (void *)addr, (void *)orig);
        regs.rip -= 1;
        ptrace(PTRACE_SETREGS, pid, 0, &regs);
        ptrace(PTRACE_SINGLESTEP, pid, 0, 0);
        wait_stopped(pid, "after single step");
        ptrace(PTRACE_POKETEXT, pid, (void *)addr, (void *)trap);
        ptrace(PTRACE_CONT, pid, 0, 0);
    }
    double t1 = now();
    if (hits < 2) {
        fprintf(stderr, "bp_loop: only %ld hits\n", hits);
        return 2;
    }
    report("bp_hits", "hits/s", (double)(hits - 1), t1 - t0);
    return 0;
}
