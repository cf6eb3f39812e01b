/* Runs COMMAND and writes "wall_s peak_rss_kb user_s sys_s" to FILE, from wait4's resource use of
 * it and every process it waited for, in µs steps (/usr/bin/time prints CPU in 10 ms steps, a
 * tenth of what the fast cases take). Peak RSS is the largest of those processes. Written in C so
 * that the child starts small: a fork of a larger program (python) would count that program's
 * resident set as the child's peak, since the kernel keeps the largest across exec.
 * Built by bench/record-vs-peers/run with -O1.
 * Usage: measure FILE COMMAND [ARG]...; exits with COMMAND's status (128 + signal). */
#include <errno.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double seconds(struct timeval tv) { return (double)tv.tv_sec + tv.tv_usec / 1e6; }

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: measure FILE COMMAND [ARG]...\n");
        return 2;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t pid = fork();
    if (pid < 0) {
        perror("measure: fork");
        return 125;
    }
    if (pid == 0) {
        execvp(argv[2], argv + 2);
        perror("measure: exec");
        _exit(127);
    }
    int status;
    struct rusage ru;
    while (wait4(pid, &status, 0, &ru) < 0)
        if (errno != EINTR) {
            perror("measure: wait4");
            return 125;
        }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double wall = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    FILE *f = fopen(argv[1], "w");
    if (!f || fprintf(f, "%.6f %ld %.6f %.6f\n", wall, ru.ru_maxrss, seconds(ru.ru_utime),
                      seconds(ru.ru_stime)) < 0 || fclose(f) != 0) {
        perror("measure: cannot write the result file");
        return 125;
    }
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    return 128 + WTERMSIG(status);
}
