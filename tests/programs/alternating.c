/* One call site, two allocators: `fps[i % 2](64)` with malloc and valloc, N times (default
 * 1000). Both calls have the same stack pointer and return address, so a nesting check that
 * guesses from those alone takes every valloc for part of the malloc before it; each call is
 * an allocation of its own. Usage: alternating [N] */
#include <malloc.h>
#include <stdlib.h>

typedef void *(*alloc_fn)(size_t);

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 1000;
    /* volatile: the compiler may not see through the table and call one function directly. */
    alloc_fn volatile fps[2] = {malloc, valloc};
    for (long i = 0; i < n; i++) free(fps[i % 2](64));
    return 0;
}
