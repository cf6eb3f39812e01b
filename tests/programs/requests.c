/* A server in miniature: SETUP allocations outside any request, then N requests, each handled
 * by handle_request() making exactly K allocations of 32 bytes (one of them in parse_request(),
 * K - 1 in handle_request() itself). With THREADS > 0, each of THREADS threads also handles N
 * requests; with "fork", a forked child handles N more. So handle_request() is called
 * N * (1 + THREADS + fork) times, with K allocations and 32 * K bytes inside each call.
 * Built by the tests with -O1 -fno-omit-frame-pointer -g.
 * Usage: requests N K [THREADS] [fork] */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define SETUP 7
#define MAX_K 64

static long n_requests, k_allocs;

__attribute__((noinline, noclone)) void *parse_request(long id) {
    void *p = malloc(32);
    __asm__ volatile("" ::: "memory");
    if (p) memset(p, (int)(id & 0x7f), 32);
    return p;
}

__attribute__((noinline, noclone)) long handle_request(long id) {
    void *held[MAX_K];
    held[0] = parse_request(id);
    for (long i = 1; i < k_allocs; i++) held[i] = malloc(32);
    __asm__ volatile("" ::: "memory");
    long sum = 0;
    for (long i = 0; i < k_allocs; i++) {
        sum += held[i] != NULL;
        free(held[i]);
    }
    return sum;
}

static void *serve(void *arg) {
    (void)arg;
    for (long i = 0; i < n_requests; i++) handle_request(i);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 3) return 2;
    n_requests = atol(argv[1]);
    k_allocs = atol(argv[2]);
    long threads = argc > 3 ? atol(argv[3]) : 0;
    int fork_child = argc > 4 && strcmp(argv[4], "fork") == 0;
    if (k_allocs < 1 || k_allocs > MAX_K || threads < 0 || threads > 64) return 2;
    void *setup[SETUP];
    for (int i = 0; i < SETUP; i++) setup[i] = malloc(100);
    pthread_t tids[64];
    for (long t = 0; t < threads; t++)
        if (pthread_create(&tids[t], NULL, serve, NULL) != 0) return 3;
    serve(NULL);
    for (long t = 0; t < threads; t++) pthread_join(tids[t], NULL);
    if (fork_child) {
        pid_t pid = fork();
        if (pid < 0) return 3;
        if (pid == 0) {
            serve(NULL);
            _exit(0);
        }
        int status = 0;
        if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) return 4;
    }
    for (int i = 0; i < SETUP; i++) free(setup[i]);
    return 0;
}
