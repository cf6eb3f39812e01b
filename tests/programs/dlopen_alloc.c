/* Loads an allocator library with dlopen (after start-up, so its functions are probed only if
 * the recorder follows libraries loaded later) and allocates N times with its malloc and N/4
 * times with its calloc, from known functions. With `fork`, a child process does it (the parent
 * waits); with `thread`, a second thread does (the main thread joins it): tasks other than the
 * first one traced. Usage: dlopen_alloc LIBRARY N [fork|thread] */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

typedef void *(*malloc_fn)(size_t);
typedef void *(*calloc_fn)(size_t, size_t);

__attribute__((noinline)) void *plugin_small(malloc_fn m) { void *p = m(32); __asm__ volatile("" ::: "memory"); return p; }
__attribute__((noinline)) void *plugin_zeroed(calloc_fn c) { void *p = c(2, 8); __asm__ volatile("" ::: "memory"); return p; }

static const char *library;
static long n;

__attribute__((noinline)) static void *load_and_allocate(void *unused) {
    (void)unused;
    void *h = dlopen(library, RTLD_NOW | RTLD_LOCAL);
    if (!h) { fprintf(stderr, "%s\n", dlerror()); exit(1); }
    malloc_fn m = (malloc_fn)dlsym(h, "malloc");
    calloc_fn c = (calloc_fn)dlsym(h, "calloc");
    if (!m || !c) { fprintf(stderr, "%s\n", dlerror()); exit(1); }
    for (long i = 0; i < n; i++) {
        plugin_small(m);
        if (i % 4 == 0) plugin_zeroed(c);
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: dlopen_alloc LIBRARY N [fork|thread]\n"); return 2; }
    library = argv[1];
    n = atol(argv[2]);
    const char *how = argc > 3 ? argv[3] : "";
    if (strcmp(how, "fork") == 0) {
        pid_t child = fork();
        if (child < 0) { perror("fork"); return 1; }
        if (child == 0) { load_and_allocate(NULL); _exit(0); }
        int status;
        if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0) return 1;
    } else if (strcmp(how, "thread") == 0) {
        pthread_t t;
        if (pthread_create(&t, NULL, load_and_allocate, NULL) != 0) return 1;
        pthread_join(t, NULL);
    } else {
        load_and_allocate(NULL);
    }
    return 0;
}
