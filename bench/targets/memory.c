/* Memory-read target: allocates a buffer of argv[1] MiB (default 256),
 * writes every byte (a non-zero pattern, so every page is real memory),
 * stores its address in the global bench_buffer, prints it to stderr, then
 * calls ready() where a debugger stops to read the buffer. Exits 0.
 */
#include <stdio.h>
#include <stdlib.h>

unsigned char *volatile bench_buffer;
volatile unsigned long bench_buffer_size;

__attribute__((noinline)) void ready(void)
{
    __asm__ volatile("" ::: "memory");
}

int main(int argc, char **argv)
{
    unsigned long size = (argc > 1 ? strtoul(argv[1], NULL, 0) : 256UL) << 20;
    unsigned char *buf = malloc(size);
    if (!buf)
        return 1;
    for (unsigned long i = 0; i < size; i++)
        buf[i] = (unsigned char)(i * 131u + 7u);
    bench_buffer_size = size;
    bench_buffer = buf;
    fprintf(stderr, "bench_buffer=%p size=%lu\n", (void *)buf, size);
    ready();
    free(buf);
    return 0;
}
