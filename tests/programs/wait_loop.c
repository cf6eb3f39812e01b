/* Prints its pid, then allocates in tick() every millisecond until killed: a target to attach to.
 * Usage: wait_loop */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

__attribute__((noinline)) void tick(void) {
    for (int i = 0; i < 10; i++) { void *p = malloc(64); __asm__ volatile("" : : "r"(p) : "memory"); free(p); }
}

int main(void) {
    printf("%d\n", (int)getpid());
    fflush(stdout);
    for (;;) { tick(); usleep(1000); }
}
