/* Single-step target: main calls step_region(), a counted loop of a few
 * instructions per iteration; debuggers stop at step_region and single-step
 * from there. argv[1] is the iteration count (pass at least the number of
 * steps: each iteration is several instructions, so the loop never ends
 * while being stepped; run freely it finishes at once). Exits 0.
 */
#include <stdlib.h>

volatile long step_sink;

__attribute__((noinline)) void step_region(long n)
{
    for (long i = 0; i < n; i++)
        step_sink += i;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 100000;
    step_region(n);
    return 0;
}
