/* Breakpoint-hit target: calls bench_target() N times (N = argv[1]), exits 0.
 *
 * Built with -O2 -fno-inline -no-pie -fcf-protection=none so that
 * bench_target starts with an ordinary instruction (here a rip-relative
 * store), not endbr64, and has a fixed address that `nm` reports.
 */
#include <stdlib.h>

volatile int bench_sink;

__attribute__((noinline)) void bench_target(int i)
{
    bench_sink = i;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 20000;
    for (int i = 0; i < n; i++)
        bench_target(i);
    return 0;
}
