/* realloc(NULL, n) and reallocarray(NULL, n, s) allocate through glibc's own malloc (and
 * realloc): probes on all three see nested calls that must be counted once, at the outermost.
 *   main;grow       4 x realloc(NULL, 50)
 *   main;grow_array 2 x reallocarray(NULL, 3, 8)
 */
#define _GNU_SOURCE
#include <stdlib.h>
__attribute__((noinline)) void grow(void) { for (int i = 0; i < 4; i++) { void *volatile p = realloc(NULL, 50); free(p); } }
__attribute__((noinline)) void grow_array(void) { for (int i = 0; i < 2; i++) { void *volatile p = reallocarray(NULL, 3, 8); free(p); } }
int main(void) { grow(); grow_array(); return 0; }
