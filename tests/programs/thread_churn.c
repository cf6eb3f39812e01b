/* Prints its pid, then keeps creating short-lived threads (each allocates in churn_work() and
 * exits) until killed: an attached target whose tasks come and go, so a recording opens events
 * for many of them. Usage: thread_churn */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

__attribute__((noinline)) void *churn_work(void *arg) {
    for (int i = 0; i < 10; i++) { void *p = malloc(64); __asm__ volatile("" : : "r"(p) : "memory"); free(p); }
    return arg;
}

int main(void) {
    printf("%d\n", (int)getpid());
    fflush(stdout);
    for (;;) {
        pthread_t t;
        if (pthread_create(&t, NULL, churn_work, NULL) == 0) pthread_join(t, NULL);
        usleep(1000);
    }
}
