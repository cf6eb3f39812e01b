/* N allocations in `work`, then an ending chosen by the first argument: `return`, `_exit`
 * (status 3), `abort`, `kill` (SIGKILL to itself), or `exec` (of the rest of the arguments).
 * Usage: endings HOW N [PROGRAM ARGS...] */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

__attribute__((noinline)) void *keep(void *p) { __asm__ volatile("" : : "r"(p) : "memory"); return p; }
__attribute__((noinline)) void work(long n) { for (long i = 0; i < n; i++) free(keep(malloc(32))); }

int main(int argc, char **argv) {
    if (argc < 3) return 2;
    work(atol(argv[2]));
    const char *how = argv[1];
    if (!strcmp(how, "_exit")) _exit(3);
    if (!strcmp(how, "abort")) abort();
    if (!strcmp(how, "kill")) kill(getpid(), SIGKILL);
    if (!strcmp(how, "exec") && argc > 3) {
        execv(argv[3], argv + 3);
        return 127;
    }
    return 0;
}
