/* Threads, a forked child and an exec'd image.
 * The main thread starts 2 threads that each call thread_work (K mallocs), joins them, forks a
 * child that calls child_work (K mallocs) and then execs argv[2] with argument argv[3]; the
 * parent waits for it. Usage: threads_fork_exec K PROGRAM ARG */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static long k;

__attribute__((noinline)) void thread_work(void) {
    for (long i = 0; i < k; i++) { void *p = malloc(32); __asm__ volatile("" : : "r"(p) : "memory"); free(p); }
}
static void *thread_main(void *arg) { (void)arg; thread_work(); return NULL; }

__attribute__((noinline)) void child_work(void) {
    for (long i = 0; i < k; i++) { void *p = malloc(48); __asm__ volatile("" : : "r"(p) : "memory"); free(p); }
}

int main(int argc, char **argv) {
    if (argc < 4) return 2;
    k = atol(argv[1]);
    pthread_t t[2];
    for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, thread_main, NULL);
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    pid_t pid = fork();
    if (pid == 0) {
        child_work();
        execl(argv[2], argv[2], argv[3], (char *)NULL);
        _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
