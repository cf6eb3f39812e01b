/* The program of the committed raw capture golden.raw (see README.md beside it). */
#include <stdlib.h>

static void *volatile null_ptr = NULL;
__attribute__((noinline)) void *keep(void *p) { __asm__ volatile("" : : "r"(p) : "memory"); return p; }
__attribute__((noinline)) void three_mallocs(void) { for (int i = 0; i < 3; i++) free(keep(malloc(100))); }
__attribute__((noinline)) void two_callocs(void) { for (int i = 0; i < 2; i++) free(keep(calloc(5, 8))); }
__attribute__((noinline)) void one_realloc(void) { free(keep(realloc(null_ptr, 77))); }

int main(void) {
    three_mallocs();
    two_callocs();
    one_realloc();
    return 0;
}
