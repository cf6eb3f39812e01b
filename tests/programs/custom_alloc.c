/* A custom allocator that calls malloc inside: probed with --probe PROG:my_alloc:0, each call
 * counts once, at my_alloc. Also dies by abort() when given "die" after its work.
 * Usage: custom_alloc N [die] */
#include <stdlib.h>
#include <string.h>

__attribute__((noinline)) void *my_alloc(size_t n) { void *p = malloc(n + 16); __asm__ volatile("" : : "r"(p) : "memory"); return p; }
__attribute__((noinline)) void use_custom(void) { void *p = my_alloc(100); __asm__ volatile("" : : "r"(p) : "memory"); free(p); }
__attribute__((noinline)) void use_plain(void) { void *p = malloc(10); __asm__ volatile("" : : "r"(p) : "memory"); free(p); }

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 1000;
    for (long i = 0; i < n; i++) use_custom();
    for (long i = 0; i < n; i++) use_plain();
    if (argc > 2 && strcmp(argv[2], "die") == 0) abort();
    return 0;
}
