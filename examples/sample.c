/* A small program worth debugging, for examples/demo.py (`make demo` builds it
 * with -g -O0 -no-pie -fcf-protection=none into examples/build/sample).
 *
 * - compute(int) is called ROUNDS times with 1, 2, ..., ROUNDS: a breakpoint on
 *   its first instruction sees the argument in rdi.
 * - sample_buffer holds known bytes at a fixed address (`nm` shows it).
 * - it prints one line per call and a last "done" line, and exits 0.
 */
#include <stdio.h>
#include <string.h>

#define ROUNDS 4

char sample_buffer[32] = "lindbg sample";

__attribute__((noinline)) int compute(int n)
{
    /* n*n plus the buffer's first byte ('l' = 108), so the data is used too */
    return n * n + sample_buffer[0];
}

int main(void)
{
    long total = 0;

    for (int i = 1; i <= ROUNDS; i++) {
        int value = compute(i);
        total += value;
        printf("compute(%d) = %d\n", i, value);
    }
    printf("buffer = \"%s\" (%zu bytes)\n", sample_buffer, strlen(sample_buffer));
    printf("done: total = %ld\n", total);
    return 0;
}
