/* Allocations with known counts along known stacks, for the macOS DTrace end-to-end test.
 *
 *   alloc-known            level1: 1000 x malloc(64); level2: 10 x calloc(4, 16);
 *                          level3: 7 x malloc_zone_malloc(default zone, 32); then exits.
 *   alloc-known loop [F]   prints its pid, then level1's malloc(64) every millisecond until
 *                          killed (for attaching with -p and Ctrl-C); writes its pid to file F
 *                          after the first 20.
 *
 * Built at -O0 with frame pointers so each levelN keeps its own frame; every block is freed
 * at once, so the allocator is never out of memory. */
#include <malloc/malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

__attribute__((noinline)) static void level1(int n) {
    for (int i = 0; i < n; i++) {
        void *volatile p = malloc(64);
        free(p);
    }
}

__attribute__((noinline)) static void level2(int n) {
    for (int i = 0; i < n; i++) {
        void *volatile p = calloc(4, 16);
        free(p);
    }
}

__attribute__((noinline)) static void level3(int n) {
    malloc_zone_t *zone = malloc_default_zone();
    for (int i = 0; i < n; i++) {
        void *volatile p = malloc_zone_malloc(zone, 32);
        malloc_zone_free(zone, p);
    }
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "loop") == 0) {
        printf("%d\n", (int)getpid());
        fflush(stdout);
        for (int i = 1;; i++) {
            level1(1);
            usleep(1000);
            /* The file appears once 20 mallocs have run: a test waits for it, not for a time. */
            if (i == 20 && argc > 2) {
                FILE *f = fopen(argv[2], "w");
                if (f) {
                    fprintf(f, "%d\n", (int)getpid());
                    fclose(f);
                }
            }
        }
    }
    level1(1000);
    level2(10);
    level3(7);
    return 0;
}
