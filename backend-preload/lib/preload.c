/* allocflame's in-process recorder: a library that allocflame injects (LD_PRELOAD) into the
 * programs it starts. It interposes the allocation functions of the probe catalog, unwinds the
 * caller's stack with the CFI of each object (cached per return address), and counts each
 * allocation into a hash table of its thread, in a file shared with allocflame. Nothing is
 * written per allocation but a counter: allocflame reads the tables when the program ends, however
 * it ends (exit, _exit, abort, SIGKILL), because they live in shared memory.
 *
 * Rules it keeps:
 * - Never calls the allocator itself on the hook's path; what it needs comes from the shared
 *   file's bump allocator or from memory mapped at start. (The rare exceptions: the look-up of
 *   the real functions at start, a library found through a relative path, system() and popen();
 *   a per-thread guard passes such calls straight to the allocator, uncounted.)
 * - Counts an allocation once: a call made while the thread is inside a hook is not counted.
 * - Changes nothing the program can see: allocflame's environment variables are taken out at
 *   start and given back only to the children that are followed.
 *
 * The shared file's layout is in layout.h; the unwinder in unwind.c; children in children.c. */
#include "internal.h"

/* ---------------------------------------------------------------- state ---- */

_Atomic int init_state; /* 0 not started, 1 running, 2 done */
int recording;
uint32_t max_depth = 256;
int want_stacks = 1;

TLS int in_hook;
static TLS struct thread_table my_table;
TLS uint64_t stack_hi;

static void *(*real_malloc)(size_t);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static void *(*real_reallocarray)(void *, size_t, size_t);
static int (*real_posix_memalign)(void **, size_t, size_t);
static void *(*real_aligned_alloc)(size_t, size_t);
static void *(*real_memalign)(size_t, size_t);
static void *(*real_valloc)(size_t);
static void *(*real_pvalloc)(size_t);
static void (*real_free)(void *);
static pid_t (*real_fork)(void);
void *(*real_dlsym)(void *, const char *);
int (*real_execve)(const char *, char *const[], char *const[]);
int (*real_execvpe)(const char *, char *const[], char *const[]);
int (*real_fexecve)(int, char *const[], char *const[]);
int (*real_posix_spawn)(pid_t *, const char *, const void *, const void *, char *const[],
                               char *const[]);
int (*real_posix_spawnp)(pid_t *, const char *, const void *, const void *, char *const[],
                                char *const[]);
int (*real_system)(const char *);
FILE *(*real_popen)(const char *, const char *);

/* Allocations made while the real functions are being looked up (dlsym may allocate). */
static char bootstrap[65536] __attribute__((aligned(64)));
static size_t bootstrap_used;

static void *bootstrap_alloc(size_t n, size_t align) {
    if (align < 16) align = 16;
    size_t at = (bootstrap_used + align - 1) & ~(align - 1);
    if (at + n > sizeof bootstrap) return NULL;
    bootstrap_used = at + n;
    return bootstrap + at;
}

static int in_bootstrap(const void *p) {
    return (const char *)p >= bootstrap && (const char *)p < bootstrap + sizeof bootstrap;
}

/* ---------------------------------------------------------------- aggregation ---- */

uint32_t current_tid(void) { return (uint32_t)syscall(SYS_gettid); }

void count(uint32_t probe, uint64_t size, struct regs r) {
    uint64_t pcs[1024];
    int cut = 0;
    uint32_t depth = want_stacks ? (uint32_t)unwind(r, pcs, max_depth, &cut) : 0;
    table_count(&my_table, probe, size, pcs, depth, cut);
}

/* ---------------------------------------------------------------- start-up ---- */

/* The environment as exec left it: readable before libc has set `environ` up (the dynamic
 * loader may call malloc first). */
static const char *initial_env(const char *name) {
    uintptr_t *sp = (uintptr_t *)__libc_stack_end;
    if (sp == NULL) return NULL;
    uintptr_t argc = sp[0];
    char **envp = (char **)(sp + 1 + argc + 1);
    size_t len = strlen(name);
    for (char **e = envp; *e; e++)
        if (strncmp(*e, name, len) == 0 && (*e)[len] == '=') return *e + len + 1;
    return NULL;
}

/* A process record, linked at once (its pid is 0 until known: the reader skips such). */
static uint64_t new_process(int forked, uint64_t parent) {
    uint64_t off = shm_alloc(sizeof(struct process));
    if (off == 0) return 0;
    struct process *p = at(off);
    p->forked = (uint32_t)forked;
    p->parent = parent;
    if (forked) {
        memcpy(p->comm, ((struct process *)at(parent))->comm, sizeof p->comm);
    } else {
        prctl(PR_GET_NAME, p->comm, 0, 0, 0);
        p->pid = (uint32_t)getpid();
        p->ppid = (uint32_t)getppid();
    }
    push(&shm->processes, &p->next, off);
    return off;
}

/* In a new child: its own tables from now on. */
static void become(uint64_t record) {
    my_table = (struct thread_table){NULL, 0};
    stack_hi = 0;
    if (record == 0) {
        recording = 0;
        return;
    }
    struct process *p = at(record);
    p->pid = (uint32_t)getpid();
    p->ppid = (uint32_t)getppid();
    cur_process = record;
}

static TLS int in_fork;

/* A fork that did not go through fork() (glibc's daemon()). */
static void after_fork_in_child(void) {
    if (!recording || in_fork) return;
    if (shm->flags & FLAG_FOLLOW) become(new_process(1, cur_process));
    else recording = 0;
}

/* The child's record exists before fork returns in the parent, so that allocflame, which
 * waits for every process it knows of, knows of the child before its parent can exit. */
EXPORT pid_t fork(void) {
    if (UNLIKELY(init_state != 2)) start();
    if (!recording || real_fork == NULL) return real_fork ? real_fork() : -1;
    if (!(shm->flags & FLAG_FOLLOW)) {
        /* Children are not followed: the child records nothing. */
        in_fork = 1;
        pid_t pid = real_fork();
        in_fork = 0;
        if (pid == 0) recording = 0;
        return pid;
    }
    uint64_t record = new_process(1, cur_process);
    in_fork = 1;
    pid_t pid = real_fork();
    in_fork = 0;
    if (pid == 0) {
        become(record);
    } else if (pid > 0 && record != 0) {
        struct process *p = at(record);
        p->pid = (uint32_t)pid;
        p->ppid = (uint32_t)getpid();
    }
    return pid;
}

static void resolve(void) {
    /* dlsym itself is interposed (foreign.c): the real one first, and every look-up through it. */
    real_dlsym = dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.34");
    if (real_dlsym == NULL) real_dlsym = dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.2.5");
    if (real_dlsym == NULL) return;
    real_malloc = real_dlsym(RTLD_NEXT, "malloc");
    real_calloc = real_dlsym(RTLD_NEXT, "calloc");
    real_realloc = real_dlsym(RTLD_NEXT, "realloc");
    real_reallocarray = real_dlsym(RTLD_NEXT, "reallocarray");
    real_posix_memalign = real_dlsym(RTLD_NEXT, "posix_memalign");
    real_aligned_alloc = real_dlsym(RTLD_NEXT, "aligned_alloc");
    real_memalign = real_dlsym(RTLD_NEXT, "memalign");
    real_valloc = real_dlsym(RTLD_NEXT, "valloc");
    real_pvalloc = real_dlsym(RTLD_NEXT, "pvalloc");
    real_free = real_dlsym(RTLD_NEXT, "free");
    real_fork = real_dlsym(RTLD_NEXT, "fork");
    real_execve = real_dlsym(RTLD_NEXT, "execve");
    real_execvpe = real_dlsym(RTLD_NEXT, "execvpe");
    real_fexecve = real_dlsym(RTLD_NEXT, "fexecve");
    real_posix_spawn = real_dlsym(RTLD_NEXT, "posix_spawn");
    real_posix_spawnp = real_dlsym(RTLD_NEXT, "posix_spawnp");
    real_system = real_dlsym(RTLD_NEXT, "system");
    real_popen = real_dlsym(RTLD_NEXT, "popen");
}

void start(void) {
    int expected = 0;
    if (!atomic_compare_exchange_strong(&init_state, &expected, 1)) {
        /* Another thread is starting: wait (the start-up is short and happens once). */
        while (atomic_load(&init_state) == 1 && !in_hook) {
        }
        return;
    }
    in_hook = 1;
    resolve();
    const char *path = initial_env("ALLOCFLAME_SHM");
    const char *preload = initial_env("LD_PRELOAD");
    const char *user = initial_env("ALLOCFLAME_USER_LD_PRELOAD");
    if (path && strlen(path) < sizeof shm_path) strcpy(shm_path, path);
    if (preload) {
        size_t n = strcspn(preload, ": ");
        if (n < sizeof lib_path) memcpy(lib_path, preload, n), lib_path[n] = 0;
    }
    if (user && strlen(user) < sizeof user_preload) {
        strcpy(user_preload, user);
        strcpy(user_preload_var, "LD_PRELOAD=");
        strcat(user_preload_var, user);
    }
    int fd = path && lib_path[0] ? open(path, O_RDWR | O_CLOEXEC) : -1;
    if (fd >= 0) {
        struct header h;
        if (pread(fd, &h, sizeof h, 0) == (ssize_t)sizeof h && h.magic == LAYOUT_MAGIC &&
            h.version == LAYOUT_VERSION) {
            void *m = mmap(NULL, h.capacity, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE,
                           fd, 0);
            void *r = mmap(NULL, RULE_SLOTS * sizeof(struct rule_slot), PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
            if (m != MAP_FAILED && r != MAP_FAILED) {
                shm = m;
                rules = r;
                max_depth = h.max_depth ? h.max_depth : 256;
                if (max_depth > 1024) max_depth = 1024;
                want_stacks = (h.flags & FLAG_STACKS) != 0;
                ssize_t n = readlink("/proc/self/exe", exe_path, sizeof exe_path - 1);
                exe_path[n > 0 ? n : 0] = 0;
                recording = 1;
                cur_process = new_process(0, 0);
                if (cur_process == 0) recording = 0;
                if (recording) {
                    refresh_objects();
                    pthread_atfork(NULL, NULL, after_fork_in_child);
                }
            }
        }
        close(fd);
    }
    in_hook = 0;
    atomic_store(&init_state, 2);
}

/* Once libc is up: takes allocflame's variables out of the environment, so that the program
 * sees the one the user gave (the exec hooks give them back to followed children). */
__attribute__((constructor)) static void hide_variables(void) {
    if (atomic_load(&init_state) == 0) start();
    if (shm == NULL) return;
    extern char **environ;
    for (char **e = environ; e && *e; e++)
        if (strncmp(*e, "LD_PRELOAD=", 11) == 0) {
            if (user_preload[0]) *e = user_preload_var; /* no allocation: a static string */
            break;
        }
    if (!user_preload[0]) unsetenv("LD_PRELOAD");
    unsetenv("ALLOCFLAME_USER_LD_PRELOAD");
    unsetenv("ALLOCFLAME_SHM");
}

/* ---------------------------------------------------------------- the hooks ---- */



EXPORT void *malloc(size_t n) {
    struct regs r;
    ENTER(r);
    if (counted_) count(P_MALLOC, n, r);
    void *p = real_malloc ? real_malloc(n) : bootstrap_alloc(n, 16);
    LEAVE();
    return p;
}

EXPORT void *calloc(size_t n, size_t size) {
    struct regs r;
    ENTER(r);
    size_t total;
    if (__builtin_mul_overflow(n, size, &total)) total = SIZE_MAX;
    if (counted_) count(P_CALLOC, total, r);
    /* The bootstrap arena is zeroed static memory that is never reused. */
    void *p = real_calloc ? real_calloc(n, size) : bootstrap_alloc(total, 16);
    LEAVE();
    return p;
}

EXPORT void *realloc(void *old, size_t n) {
    struct regs r;
    ENTER(r);
    if (counted_) count(P_REALLOC, n, r);
    void *p;
    if (UNLIKELY(in_bootstrap(old) || real_realloc == NULL)) {
        p = real_malloc ? real_malloc(n) : bootstrap_alloc(n, 16);
        if (p && old) memcpy(p, old, n); /* the arena outlives any copy, so over-reading is safe */
    } else {
        p = real_realloc(old, n);
    }
    LEAVE();
    return p;
}

EXPORT void *reallocarray(void *old, size_t n, size_t size) {
    struct regs r;
    ENTER(r);
    size_t total;
    if (__builtin_mul_overflow(n, size, &total)) total = SIZE_MAX;
    if (counted_) count(P_REALLOCARRAY, total, r);
    void *p = real_reallocarray ? real_reallocarray(old, n, size) : NULL;
    LEAVE();
    return p;
}

EXPORT int posix_memalign(void **out, size_t align, size_t n) {
    struct regs r;
    ENTER(r);
    if (counted_) count(P_POSIX_MEMALIGN, n, r);
    int e;
    if (real_posix_memalign) {
        e = real_posix_memalign(out, align, n);
    } else {
        *out = bootstrap_alloc(n, align);
        e = *out ? 0 : 12;
    }
    LEAVE();
    return e;
}

EXPORT void *aligned_alloc(size_t align, size_t n) {
    struct regs r;
    ENTER(r);
    if (counted_) count(P_ALIGNED_ALLOC, n, r);
    void *p = real_aligned_alloc ? real_aligned_alloc(align, n) : bootstrap_alloc(n, align);
    LEAVE();
    return p;
}

EXPORT void *memalign(size_t align, size_t n) {
    struct regs r;
    ENTER(r);
    if (counted_) count(P_MEMALIGN, n, r);
    void *p = real_memalign ? real_memalign(align, n) : bootstrap_alloc(n, align);
    LEAVE();
    return p;
}

EXPORT void *valloc(size_t n) {
    struct regs r;
    ENTER(r);
    if (counted_) count(P_VALLOC, n, r);
    void *p = real_valloc ? real_valloc(n) : bootstrap_alloc(n, 4096);
    LEAVE();
    return p;
}

EXPORT void *pvalloc(size_t n) {
    struct regs r;
    ENTER(r);
    if (counted_) count(P_PVALLOC, n, r);
    void *p = real_pvalloc ? real_pvalloc(n) : bootstrap_alloc((n + 4095) & ~4095ul, 4096);
    LEAVE();
    return p;
}

/* Only so that memory from the bootstrap arena is never handed to the real allocator. */
EXPORT void free(void *p) {
    if (UNLIKELY(in_bootstrap(p))) return;
    if (UNLIKELY(real_free == NULL)) {
        start();
        if (real_free == NULL) return;
    }
    real_free(p);
}

