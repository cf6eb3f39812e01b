/* Prints its pid, then loads and unloads LIBRARY with dlopen/dlclose in a loop, allocating in
 * between, and prints a line every 100 rounds: a target that keeps loading libraries.
 * Usage: dlopen_loop LIBRARY */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    printf("%d\n", (int)getpid());
    fflush(stdout);
    for (long i = 1;; i++) {
        void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
        if (!h) { fprintf(stderr, "%s\n", dlerror()); return 1; }
        free(malloc(16));
        dlclose(h);
        if (i % 100 == 0) { printf("%ld\n", i); fflush(stdout); }
        usleep(500);
    }
}
