/* Allocates at the bottom of a deep recursion (64 frames of ~300 bytes: ~20 KiB of stack), deeper
 * than the stack bytes the perf backend copies by default. Usage: deep_stack N */
#include <stdlib.h>

__attribute__((noinline)) void *descend(int depth) {
    volatile char pad[256];
    pad[0] = (char)depth;
    if (depth == 0) return malloc(8);
    void *p = descend(depth - 1);
    __asm__ volatile("" : : "r"(p), "r"(pad) : "memory");
    return p;
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 100;
    for (long i = 0; i < n; i++) free(descend(63));
    return 0;
}
