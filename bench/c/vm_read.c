/* Memory reads, the limit: usage vm_read TARGET READY_ADDR PTR_ADDR MIB PASSES.
 *
 * Runs TARGET MIB (memory.c), stops it at READY_ADDR (ready) with an int3,
 * reads the buffer's address from the pointer at PTR_ADDR, then times
 * PASSES full reads of the MIB MiB buffer with
 * process_vm_readv in 1 MiB chunks into one preallocated buffer.
 */
#include "common.h"
#include <sys/uio.h>

#define CHUNK (1UL << 20)

static void read_remote(pid_t pid, unsigned long addr, void *dst, size_t len)
{
    struct iovec local = {dst, len}, remote = {(void *)addr, len};
    ssize_t got = process_vm_readv(pid, &local, 1, &remote, 1, 0);
    if (got != (ssize_t)len)
        die("process_vm_readv");
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: %s TARGET READY_ADDR PTR_ADDR MIB PASSES\n", argv[0]);
        return 2;
    }
    unsigned long ready = strtoul(argv[2], NULL, 0);
    unsigned long ptr_addr = strtoul(argv[3], NULL, 0);
    const unsigned long buf_size = strtoul(argv[4], NULL, 0) << 20;
    long passes = strtol(argv[5], NULL, 0);
    char *targv[] = {argv[1], argv[4], NULL};
    pid_t pid = launch(targv);

    errno = 0;
    long orig = ptrace(PTRACE_PEEKTEXT, pid, (void *)ready, 0);
    if (errno)
        die("PEEKTEXT");
    ptrace(PTRACE_POKETEXT, pid, (void *)ready, (void *)((orig & ~0xffL) | 0xcc));
    ptrace(PTRACE_CONT, pid, 0, 0);
    wait_stopped(pid, "at ready");

    unsigned long buf_addr;
    read_remote(pid, ptr_addr, &buf_addr, sizeof buf_addr);
    unsigned char *local = malloc(CHUNK);
    if (!local)
        die("malloc");

    double t0 = now();
    for (long p = 0; p < passes; p++)
        for (unsigned long off = 0; off < buf_size; off += CHUNK)
            read_remote(pid, buf_addr + off, local, CHUNK);
    double t1 = now();
    if (local[0] != (unsigned char)((buf_size - CHUNK) * 131u + 7u)) {
        fprintf(stderr, "vm_read: unexpected data 0x%x\n", local[0]);
        return 2;
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    report("memory", "MB/s", passes * (double)buf_size / 1e6, t1 - t0);
    return 0;
}
