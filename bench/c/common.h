/* Shared helpers of the C ptrace loops (the limit the benchmark compares
 * against): launch a target stopped at its first instruction, a monotonic
 * clock, and the one-line result the harness parses.
 */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static inline void die(const char *what)
{
    fprintf(stderr, "%s: %s\n", what, strerror(errno));
    exit(2);
}

static inline double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* fork + PTRACE_TRACEME + execv; returns the pid stopped at the exec. */
static inline pid_t launch(char *const argv[])
{
    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0) {
        ptrace(PTRACE_TRACEME, 0, 0, 0);
        execv(argv[0], argv);
        _exit(127);
    }
    int status;
    if (waitpid(pid, &status, 0) < 0 || !WIFSTOPPED(status))
        die("waitpid after exec");
    if (ptrace(PTRACE_SETOPTIONS, pid, 0, PTRACE_O_EXITKILL) < 0)
        die("PTRACE_SETOPTIONS");
    return pid;
}

static inline void wait_stopped(pid_t pid, const char *where)
{
    int status;
    if (waitpid(pid, &status, 0) < 0)
        die("waitpid");
    if (!WIFSTOPPED(status) || WSTOPSIG(status) != SIGTRAP) {
        fprintf(stderr, "%s: unexpected wait status 0x%x\n", where, status);
        exit(2);
    }
}

static inline void report(const char *workload, const char *unit, double count, double seconds)
{
    printf("BENCH_RESULT {\"workload\": \"%s\", \"unit\": \"%s\", \"count\": %.0f, "
           "\"seconds\": %.6f, \"rate\": %.3f}\n",
           workload, unit, count, seconds, count / seconds);
    fflush(stdout);
}

#endif
