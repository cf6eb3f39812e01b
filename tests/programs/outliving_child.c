/* A forked child that outlives its parent: the parent makes N allocations in parent_work and
 * exits at once; the child waits until its parent is gone, then makes N allocations in
 * child_work and exits. With ALLOC_COUNTS_NICE set, the program first sets its own nice value
 * to it (no allocation); with OUTLIVING_GO set, it forks only once that file exists (up to 60 s).
 * Usage: outliving_child [N] */
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

__attribute__((noinline)) void *keep(void *p) { __asm__ volatile("" : : "r"(p) : "memory"); return p; }
__attribute__((noinline)) void parent_work(long n) { for (long i = 0; i < n; i++) free(keep(malloc(48))); }
__attribute__((noinline)) void child_work(long n) { for (long i = 0; i < n; i++) free(keep(malloc(40))); }

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 1000;
    const char *nice = getenv("ALLOC_COUNTS_NICE");
    if (nice) setpriority(PRIO_PROCESS, 0, atoi(nice));
    const char *go = getenv("OUTLIVING_GO");
    for (int i = 0; go && i < 60000 && access(go, F_OK) != 0; i++) usleep(1000);
    pid_t parent = getpid();
    pid_t child = fork();
    if (child < 0) return 1;
    if (child == 0) {
        /* The program's own wait (not a test's): up to 60 s for the parent to exit. */
        for (int i = 0; i < 60000 && getppid() == parent; i++) usleep(1000);
        if (getppid() == parent) return 2;
        child_work(n);
        return 0;
    }
    parent_work(n);
    return 0;
}
