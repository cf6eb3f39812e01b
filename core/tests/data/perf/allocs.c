/* Allocates along known stacks for allocflame's perf-script importer tests.
 * Expected per stack (root first, below the process name `allocs`):
 *   main;level1;alloc_a;malloc        3 calls of 100 bytes
 *   main;level2;alloc_b;calloc        5 calls of 4*16 bytes
 *   main;malloc                        2 calls of 7 bytes
 */
#include <stdlib.h>
#include <stdio.h>
__attribute__((noinline)) void *alloc_a(size_t n) { void *p = malloc(n); __asm__ volatile("" ::: "memory"); return p; }
__attribute__((noinline)) void *alloc_b(size_t n) { void *p = calloc(n, 16); __asm__ volatile("" ::: "memory"); return p; }
__attribute__((noinline)) void level1(void) { for (int i = 0; i < 3; i++) free(alloc_a(100)); }
__attribute__((noinline)) void level2(void) { for (int i = 0; i < 5; i++) free(alloc_b(4)); }
int main(void) {
    level1();
    level2();
    for (int i = 0; i < 2; i++) { void *volatile p = malloc(7); free(p); }
    return 0;
}
