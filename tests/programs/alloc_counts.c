/* N malloc, N/4 calloc and N/10 posix_memalign calls along known stacks, plus
 * N/10 realloc(NULL, n) calls (one allocation each: glibc's realloc tail-calls malloc).
 * Built by the tests with -O1 -fno-omit-frame-pointer -fno-inline -g.
 * With ALLOC_COUNTS_NICE set, the program first sets its own nice value to it (no allocation).
 * Usage: alloc_counts N [realloc] */
#include <stdlib.h>
#include <stdio.h>
#include <sys/resource.h>

__attribute__((noinline)) void *level2(size_t n) { return malloc(n); }
__attribute__((noinline)) void *level1(size_t n) { void *p = level2(n); __asm__ volatile("" ::: "memory"); return p; }
__attribute__((noinline)) void *make_zeroed(size_t n) { void *p = calloc(n, 8); __asm__ volatile("" ::: "memory"); return p; }
__attribute__((noinline)) void *make_aligned(size_t n) {
    void *p = NULL;
    if (posix_memalign(&p, 64, n) != 0) return NULL;
    return p;
}
/* volatile: gcc would otherwise rewrite realloc(NULL, n) into malloc(n). */
static void *volatile null_ptr = NULL;
__attribute__((noinline)) void *grow_from_null(size_t n) { void *p = realloc(null_ptr, n); __asm__ volatile("" ::: "memory"); return p; }

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 1000;
    const char *nice = getenv("ALLOC_COUNTS_NICE");
    if (nice) setpriority(PRIO_PROCESS, 0, atoi(nice));
    for (long i = 0; i < n; i++) free(level1(16));
    for (long i = 0; i < n / 4; i++) free(make_zeroed(4));
    for (long i = 0; i < n / 10; i++) free(make_aligned(100));
    if (argc > 2) for (long i = 0; i < n / 10; i++) free(grow_from_null(24));
    return 0;
}
