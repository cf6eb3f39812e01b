/* Every glibc allocation entry point 100 times, with sizes and alignments that make glibc call
 * another probed function inside (posix_memalign/aligned_alloc/memalign with a small alignment
 * relay to malloc, reallocarray(NULL) → realloc → malloc, strdup → malloc): each call must count
 * once, at the outer function. Usage: nested_allocators */
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

__attribute__((noinline)) void use(void *p) { __asm__ volatile("" : : "r"(p) : "memory"); free(p); }

int main(void) {
    for (int i = 0; i < 100; i++) { void *p = NULL; if (posix_memalign(&p, 16, 32) == 0) use(p); }
    for (int i = 0; i < 100; i++) use(aligned_alloc(16, 32));
    for (int i = 0; i < 100; i++) use(memalign(8, 32));
    for (int i = 0; i < 100; i++) use(valloc(32));
    for (int i = 0; i < 100; i++) use(pvalloc(32));
    for (int i = 0; i < 100; i++) use(reallocarray(NULL, 4, 8));
    for (int i = 0; i < 100; i++) use(strdup("x"));
    for (int i = 0; i < 100; i++) use(calloc(4, 8));
    return 0;
}
