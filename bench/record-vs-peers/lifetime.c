/* Runs PROGRAM as a child and writes how long it lived (fork to reaped, in microseconds) to FILE:
 * the target's own time under a recorder, without the recorder's work before and after it.
 * Makes no allocation itself (no stdio, no malloc), so a recorder around it sees only the
 * target's; PROGRAM must be a path (no PATH search).
 * Built by bench/record-vs-peers/run with -O1.
 * Usage: lifetime FILE PROGRAM [ARG]... */
#include <errno.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void say(const char *s) {
    size_t n = 0;
    while (s[n]) n++;
    if (write(2, s, n) < 0) _exit(125);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        say("usage: lifetime FILE PROGRAM [ARG]...\n");
        return 2;
    }
    long long t0 = now_us();
    pid_t pid = fork();
    if (pid < 0) {
        say("lifetime: fork failed\n");
        return 125;
    }
    if (pid == 0) {
        execv(argv[2], argv + 2);
        say("lifetime: exec failed\n");
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) {
            say("lifetime: waitpid failed\n");
            return 125;
        }
    long long us = now_us() - t0;

    char buf[32];
    int i = sizeof buf;
    buf[--i] = '\n';
    do buf[--i] = (char)('0' + us % 10); while ((us /= 10) > 0 && i > 0);
    int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || write(fd, buf + i, sizeof buf - (size_t)i) < 0 || close(fd) < 0) {
        say("lifetime: cannot write the time file\n");
        return 125;
    }
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    return 128 + WTERMSIG(status);
}
