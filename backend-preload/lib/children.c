/* The programs a recorded process starts: allocflame's variables are given back to those
 * that are followed, and each exec or spawn asks allocflame first (through the shared file)
 * whether the new image can load the library. */
#include "internal.h"

/* ---------------------------------------------------------------- children ---- */

extern char **environ;

static int following(void) { return recording && (shm->flags & FLAG_FOLLOW) && lib_path[0]; }

/* `file` as execvp would find it through PATH (or itself when it has a slash or is not found). */
static const char *search_path(const char *file, char *buf, size_t size) {
    if (strchr(file, '/')) return file;
    const char *path = getenv("PATH");
    if (path == NULL) path = "/bin:/usr/bin";
    while (*path) {
        size_t n = strcspn(path, ":");
        size_t len = strlen(file);
        if (n + len + 2 <= size) {
            memcpy(buf, n ? path : ".", n ? n : 1);
            size_t d = n ? n : 1;
            buf[d] = '/';
            memcpy(buf + d + 1, file, len + 1);
            if (faccessat(AT_FDCWD, buf, X_OK, AT_EACCESS) == 0) return buf;
        }
        path += n;
        if (*path == ':') path++;
    }
    return file;
}

/* Asks allocflame whether the program at `path` can be followed in process. Waits for its answer
 * (a futex in the shared file: allocflame may first start its perf backend on this process);
 * without an answer in 30 s it follows. */
static uint32_t ask(const char *path, uint32_t flags, struct intent **out) {
    *out = NULL;
    if (faccessat(AT_FDCWD, lib_path, R_OK, AT_EACCESS) != 0) flags |= I_LIB_UNREADABLE;
    if (faccessat(AT_FDCWD, shm_path, R_OK | W_OK, AT_EACCESS) != 0) flags |= I_SHM_UNWRITABLE;
    if (!atomic_load(&shm->decider)) return (flags & 3) ? I_LEAVE : I_FOLLOW;
    size_t len = strlen(path);
    uint64_t off = shm_alloc(sizeof(struct intent) + len + 1);
    if (off == 0) return (flags & 3) ? I_LEAVE : I_FOLLOW;
    struct intent *in = at(off);
    in->pid = (uint32_t)getpid();
    in->flags = flags;
    in->path_len = (uint32_t)len;
    memcpy(in->path, path, len + 1);
    push(&shm->intents, &in->next, off);
    atomic_fetch_add(&shm->intent_seq, 1);
    syscall(SYS_futex, &shm->intent_seq, FUTEX_WAKE, INT32_MAX, NULL, NULL, 0);
    *out = in;
    for (int i = 0; i < 300; i++) {
        uint32_t st = atomic_load(&in->state);
        if (st != I_PENDING) return st;
        struct timespec t = {0, 100 * 1000 * 1000};
        syscall(SYS_futex, &in->state, FUTEX_WAIT, I_PENDING, &t, NULL, 0);
    }
    return I_FOLLOW;
}

static void failed(struct intent *in) {
    if (in) {
        atomic_store(&in->state, I_FAILED);
        syscall(SYS_futex, &in->state, FUTEX_WAKE, INT32_MAX, NULL, NULL, 0);
    }
}

/* `envp` with allocflame's variables, in memory of its own (the exec replaces it; a failed exec
 * unmaps it). `*len` is its size for munmap. */
static char **with_variables(char *const envp[], size_t *len) {
    size_t n = 0, text = 0;
    const char *theirs = NULL;
    for (char *const *e = envp; e && *e; e++, n++) {
        text += strlen(*e) + 1;
        if (strncmp(*e, "LD_PRELOAD=", 11) == 0) theirs = *e + 11;
    }
    text += 3 * PATH_MAX * 2 + 128;
    *len = (n + 4) * sizeof(char *) + text;
    char **out = mmap(NULL, *len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (out == MAP_FAILED) return NULL;
    char *w = (char *)(out + n + 4);
    size_t k = 0;
    for (char *const *e = envp; e && *e; e++) {
        if (strncmp(*e, "LD_PRELOAD=", 11) == 0 || strncmp(*e, "ALLOCFLAME_SHM=", 15) == 0 ||
            strncmp(*e, "ALLOCFLAME_USER_LD_PRELOAD=", 27) == 0)
            continue;
        out[k++] = *e;
    }
    out[k++] = w;
    w += sprintf(w, "LD_PRELOAD=%s%s%s", lib_path, theirs ? ":" : "", theirs ? theirs : "") + 1;
    if (theirs) {
        out[k++] = w;
        w += sprintf(w, "ALLOCFLAME_USER_LD_PRELOAD=%s", theirs) + 1;
    }
    out[k++] = w;
    sprintf(w, "ALLOCFLAME_SHM=%s", shm_path);
    out[k] = NULL;
    return out;
}

/* The environment a child gets: with allocflame's variables when it is followed. */
struct child_env {
    char **envp;
    size_t len;
    struct intent *intent;
};

static struct child_env prepare(const char *path, uint32_t flags, char *const envp[]) {
    struct child_env c = {(char **)envp, 0, NULL};
    if (!following()) return c;
    int outer = in_hook;
    in_hook = 1;
    if (ask(path, flags, &c.intent) == I_FOLLOW) {
        char **e = with_variables(envp, &c.len);
        if (e) c.envp = e;
    }
    in_hook = outer;
    return c;
}

/* After an exec that returned (it failed): `r`, with its errno. */
static int exec_failed(struct child_env *c, int r) {
    int e = errno;
    failed(c->intent);
    if (c->len) munmap(c->envp, c->len);
    errno = e;
    return r;
}

EXPORT int execve(const char *path, char *const argv[], char *const envp[]) {
    if (UNLIKELY(init_state != 2)) start();
    struct child_env c = prepare(path, 0, envp);
    return exec_failed(&c, real_execve(path, argv, c.envp));
}

EXPORT int execv(const char *path, char *const argv[]) { return execve(path, argv, environ); }

EXPORT int execvpe(const char *file, char *const argv[], char *const envp[]) {
    if (UNLIKELY(init_state != 2)) start();
    char buf[PATH_MAX];
    struct child_env c = prepare(search_path(file, buf, sizeof buf), 0, envp);
    return exec_failed(&c, real_execvpe(file, argv, c.envp));
}

EXPORT int execvp(const char *file, char *const argv[]) { return execvpe(file, argv, environ); }

EXPORT int fexecve(int fd, char *const argv[], char *const envp[]) {
    if (UNLIKELY(init_state != 2)) start();
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    struct child_env c = prepare(path, 0, envp);
    return exec_failed(&c, real_fexecve(fd, argv, c.envp));
}

/* execl, execle, execlp: their arguments into an array, then as execv* do. */
#define LIST_ARGS(first, ap, argv, env)                                                             \
    size_t n_ = 1;                                                                                 \
    va_start(ap, first);                                                                           \
    while (va_arg(ap, char *) != NULL) n_++;                                                       \
    va_end(ap);                                                                                    \
    char *argv[n_ + 1];                                                                            \
    argv[0] = (char *)(first);                                                                     \
    va_start(ap, first);                                                                           \
    for (size_t i_ = 1; i_ <= n_; i_++) argv[i_] = va_arg(ap, char *);                             \
    char *const *env = environ;                                                                    \
    (void)env;

EXPORT int execl(const char *path, const char *arg, ...) {
    va_list ap;
    LIST_ARGS(arg, ap, argv, env);
    va_end(ap);
    return execve(path, argv, environ);
}

EXPORT int execlp(const char *file, const char *arg, ...) {
    va_list ap;
    LIST_ARGS(arg, ap, argv, env);
    va_end(ap);
    return execvpe(file, argv, environ);
}

EXPORT int execle(const char *path, const char *arg, ...) {
    va_list ap;
    LIST_ARGS(arg, ap, argv, env);
    env = va_arg(ap, char *const *);
    va_end(ap);
    return execve(path, argv, env);
}

EXPORT int posix_spawn(pid_t *pid, const char *path, const void *actions, const void *attr,
                       char *const argv[], char *const envp[]) {
    if (UNLIKELY(init_state != 2)) start();
    struct child_env c = prepare(path, I_SPAWN, envp);
    int r = real_posix_spawn(pid, path, actions, attr, argv, c.envp);
    if (c.len) munmap(c.envp, c.len);
    if (r != 0) failed(c.intent);
    return r;
}

EXPORT int posix_spawnp(pid_t *pid, const char *file, const void *actions, const void *attr,
                        char *const argv[], char *const envp[]) {
    if (UNLIKELY(init_state != 2)) start();
    char buf[PATH_MAX];
    struct child_env c = prepare(search_path(file, buf, sizeof buf), I_SPAWN, envp);
    int r = real_posix_spawnp(pid, file, actions, attr, argv, c.envp);
    if (c.len) munmap(c.envp, c.len);
    if (r != 0) failed(c.intent);
    return r;
}

/* system() and popen() start /bin/sh inside libc, with `environ`: allocflame's variables are in
 * it for the time of the call. */
static pthread_mutex_t env_lock = PTHREAD_MUTEX_INITIALIZER;

static int show_variables(void) {
    if (!following()) return 0;
    pthread_mutex_lock(&env_lock);
    int outer = in_hook;
    in_hook = 1;
    char value[PATH_MAX * 3];
    snprintf(value, sizeof value, "%s%s%s", lib_path, user_preload[0] ? ":" : "", user_preload);
    setenv("LD_PRELOAD", value, 1);
    if (user_preload[0]) setenv("ALLOCFLAME_USER_LD_PRELOAD", user_preload, 1);
    setenv("ALLOCFLAME_SHM", shm_path, 1);
    in_hook = outer;
    return 1;
}

static void hide_again(int shown) {
    if (!shown) return;
    int outer = in_hook;
    in_hook = 1;
    if (user_preload[0]) setenv("LD_PRELOAD", user_preload, 1); else unsetenv("LD_PRELOAD");
    unsetenv("ALLOCFLAME_USER_LD_PRELOAD");
    unsetenv("ALLOCFLAME_SHM");
    in_hook = outer;
    pthread_mutex_unlock(&env_lock);
}

EXPORT int system(const char *command) {
    if (UNLIKELY(init_state != 2)) start();
    int shown = command ? show_variables() : 0;
    int r = real_system(command);
    hide_again(shown);
    return r;
}

EXPORT FILE *popen(const char *command, const char *type) {
    if (UNLIKELY(init_state != 2)) start();
    int shown = show_variables();
    FILE *f = real_popen(command, type);
    hide_again(shown);
    return f;
}
