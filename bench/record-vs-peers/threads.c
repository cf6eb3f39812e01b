/* T threads, each making M malloc/free pairs along one stack (worker → alloc_one → malloc),
 * started together behind a barrier and joined. The main thread allocates nothing itself, so
 * T=1, M=1,350,000 and T=2, M=675,000 make the same number of calls, one thread at a time or
 * two at once.
 * Built by bench/record-vs-peers/run with -O1 -g -fno-omit-frame-pointer -pthread.
 * Usage: threads T M */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static pthread_barrier_t start;
static long per_thread;

__attribute__((noinline)) void *alloc_one(size_t n) {
    void *p = malloc(n);
    __asm__ volatile("" ::: "memory");
    return p;
}

__attribute__((noinline)) void *worker(void *arg) {
    (void)arg;
    pthread_barrier_wait(&start);
    for (long i = 0; i < per_thread; i++) free(alloc_one(16));
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: threads T M\n");
        return 2;
    }
    int t = atoi(argv[1]);
    per_thread = atol(argv[2]);
    if (t < 1 || t > 64 || per_thread < 0) {
        fprintf(stderr, "threads: T must be 1..64 and M at least 0\n");
        return 2;
    }
    pthread_t ids[64];
    pthread_barrier_init(&start, NULL, (unsigned)t);
    for (int i = 0; i < t; i++)
        if (pthread_create(&ids[i], NULL, worker, NULL) != 0) {
            fprintf(stderr, "threads: pthread_create failed\n");
            return 1;
        }
    for (int i = 0; i < t; i++) pthread_join(ids[i], NULL);
    return 0;
}
