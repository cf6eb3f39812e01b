/* A program that is rebuilt while it runs: it makes N allocations in WORK (v1_work, or v2_work
 * when built with -DV2), creates the file READY, then waits (up to 60 s) until the file GO
 * exists, and exits. Usage: rebuilt READY GO [N] */
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#ifdef V2
#define WORK v2_work
__attribute__((noinline)) void padding(void) { __asm__ volatile("nop; nop; nop; nop; nop; nop; nop; nop"); }
#else
#define WORK v1_work
#endif

__attribute__((noinline)) void *keep(void *p) { __asm__ volatile("" : : "r"(p) : "memory"); return p; }
__attribute__((noinline)) void WORK(long n) { for (long i = 0; i < n; i++) free(keep(malloc(24))); }

int main(int argc, char **argv) {
    if (argc < 3) return 2;
    long n = argc > 3 ? atol(argv[3]) : 1000;
    WORK(n);
    close(open(argv[1], O_CREAT | O_WRONLY, 0644));
    for (int i = 0; i < 60000 && access(argv[2], F_OK) != 0; i++) usleep(1000);
    return 0;
}
