/* Loads an allocator library with dlopen (after start-up, so its functions are probed only if
 * the recorder follows libraries loaded later) and allocates N times with its malloc and N/4
 * times with its calloc, from known functions. Usage: dlopen_alloc LIBRARY N */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

typedef void *(*malloc_fn)(size_t);
typedef void *(*calloc_fn)(size_t, size_t);

__attribute__((noinline)) void *plugin_small(malloc_fn m) { void *p = m(32); __asm__ volatile("" ::: "memory"); return p; }
__attribute__((noinline)) void *plugin_zeroed(calloc_fn c) { void *p = c(2, 8); __asm__ volatile("" ::: "memory"); return p; }

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: dlopen_alloc LIBRARY N\n"); return 2; }
    long n = atol(argv[2]);
    void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!h) { fprintf(stderr, "%s\n", dlerror()); return 1; }
    malloc_fn m = (malloc_fn)dlsym(h, "malloc");
    calloc_fn c = (calloc_fn)dlsym(h, "calloc");
    if (!m || !c) { fprintf(stderr, "%s\n", dlerror()); return 1; }
    for (long i = 0; i < n; i++) {
        plugin_small(m);
        if (i % 4 == 0) plugin_zeroed(c);
    }
    return 0;
}
