/* Single steps, the limit: usage step_loop TARGET ADDR STEPS.
 *
 * Runs TARGET STEPS (the loop count of steps.c), stops it at ADDR
 * (step_region) with an int3, restores the byte and rewinds rip, then times
 * STEPS PTRACE_SINGLESTEP + waitpid pairs, and kills the target.
 */
#include "common.h"
#include <sys/user.h>

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s TARGET ADDR STEPS\n", argv[0]);
        return 2;
    }
    unsigned long addr = strtoul(argv[2], NULL, 0);
    long steps = strtol(argv[3], NULL, 0);
    char *targv[] = {argv[1], argv[3], NULL};
    pid_t pid = launch(targv);

    errno = 0;
    long orig = ptrace(PTRACE_PEEKTEXT, pid, (void *)addr, 0);
    if (errno)
        die("PEEKTEXT");
    ptrace(PTRACE_POKETEXT, pid, (void *)addr, (void *)((orig & ~0xffL) | 0xcc));
    ptrace(PTRACE_CONT, pid, 0, 0);
    wait_stopped(pid, "at step_region");
    struct user_regs_struct regs;
    ptrace(PTRACE_GETREGS, pid, 0, &regs);
    ptrace(PTRACE_POKETEXT, pid, (void *)addr, (void *)orig);
    regs.rip -= 1;
    ptrace(PTRACE_SETREGS, pid, 0, &regs);

    double t0 = now();
    for (long i = 0; i < steps; i++) {
        if (ptrace(PTRACE_SINGLESTEP, pid, 0, 0) < 0)
            die("SINGLESTEP");
        wait_stopped(pid, "after single step");
    }
    double t1 = now();
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    report("steps", "steps/s", (double)steps, t1 - t0);
    return 0;
}
