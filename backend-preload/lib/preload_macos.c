/* allocflame's in-process recorder for macOS (arm64 and x86_64): a library that allocflame
 * injects with DYLD_INSERT_LIBRARIES into the programs it starts. It interposes the allocation
 * functions of the macOS catalog through `__DATA,__interpose` (dyld rebinds every other image's
 * calls to them; calls from this image go to the originals, so no dlsym), walks the caller's
 * frame-pointer chain (Apple's ABI keeps frame pointers on both architectures), and counts each
 * allocation into a hash table of its thread, in a file shared with allocflame. The file's layout
 * is preload.c's, record for record (same magic and version; src/shm.rs reads both), so that
 * allocflame reads it the same way on both systems.
 *
 * Rules it keeps:
 * - Counts an allocation once, at the outermost interposed call of its thread: macOS `malloc`
 *   calls `malloc_zone_malloc` inside libsystem_malloc (not through a stub, so not interposed),
 *   and any call made while the thread is inside a hook is passed on uncounted.
 * - Never calls the allocator on the counting path; per-thread state comes from memory mapped
 *   here and is found through a pthread key. (Not `__thread`: dyld allocates a thread's TLV
 *   block with malloc on its first use, which would re-enter the hook.)
 * - Counts nothing before its constructor ran (libSystem's own initializers): the hooks pass
 *   those calls straight on.
 * - Changes nothing the program can see but allocflame's variables, which it takes out of the
 *   environment at start and gives back to the children it execs or spawns.
 *
 * Not checked by a compiler on this project's Linux machines beyond `clang -target
 * arm64-apple-macos13 -DALLOCFLAME_NO_SDK -ffreestanding -nostdlibinc -c` (declarations below); the macOS CI job builds it with
 * the SDK. */

#ifdef ALLOCFLAME_NO_SDK
/* Just what this file uses, as the macOS SDK declares it, so that a compiler without the SDK
 * can check the file (clang's own stddef/stdint/stdatomic/stdarg headers are enough). */
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
typedef int pid_t;
typedef long ssize_t;
typedef long long off_t;
typedef struct _opaque_pthread_t *pthread_t;
typedef unsigned long pthread_key_t;
typedef void *posix_spawnattr_t;
typedef void *posix_spawn_file_actions_t;
typedef struct _malloc_zone_t malloc_zone_t;
#define PATH_MAX 1024
#define O_RDWR 0x0002
#define O_CLOEXEC 0x01000000
#define PROT_READ 0x01
#define PROT_WRITE 0x02
#define MAP_SHARED 0x0001
#define MAP_PRIVATE 0x0002
#define MAP_ANON 0x1000
#define MAP_FAILED ((void *)-1)
#define POSIX_SPAWN_SETEXEC 0x0040
extern int *__error(void);
#define errno (*__error())
int open(const char *, int, ...);
int close(int);
ssize_t pread(int, void *, size_t, off_t);
void *mmap(void *, size_t, int, int, int, off_t);
int munmap(void *, size_t);
pid_t getpid(void);
pid_t getppid(void);
pid_t fork(void);
int access(const char *, int);
#define X_OK 1
int execve(const char *, char *const[], char *const[]);
int execv(const char *, char *const[]);
int execvp(const char *, char *const[]);
int posix_spawn(pid_t *, const char *, const posix_spawn_file_actions_t *,
                const posix_spawnattr_t *, char *const[], char *const[]);
int posix_spawnp(pid_t *, const char *, const posix_spawn_file_actions_t *,
                 const posix_spawnattr_t *, char *const[], char *const[]);
int posix_spawnattr_getflags(const posix_spawnattr_t *, short *);
size_t strlen(const char *);
int strncmp(const char *, const char *, size_t);
char *strchr(const char *, int);
size_t strcspn(const char *, const char *);
void *memcpy(void *, const void *, size_t);
int memcmp(const void *, const void *, size_t);
char *getenv(const char *);
int setenv(const char *, const char *, int);
int unsetenv(const char *);
char *realpath(const char *, char *);
const char *getprogname(void);
char ***_NSGetEnviron(void);
pthread_t pthread_self(void);
int pthread_threadid_np(pthread_t, uint64_t *);
void *pthread_get_stackaddr_np(pthread_t);
size_t pthread_get_stacksize_np(pthread_t);
int pthread_key_create(pthread_key_t *, void (*)(void *));
void *pthread_getspecific(pthread_key_t);
int pthread_setspecific(pthread_key_t, const void *);
int pthread_atfork(void (*)(void), void (*)(void), void (*)(void));
void *malloc(size_t);
void *calloc(size_t, size_t);
void *realloc(void *, size_t);
void *reallocf(void *, size_t);
void *valloc(size_t);
int posix_memalign(void **, size_t, size_t);
void *aligned_alloc(size_t, size_t);
void *malloc_zone_malloc(malloc_zone_t *, size_t);
void *malloc_zone_calloc(malloc_zone_t *, size_t, size_t);
void *malloc_zone_realloc(malloc_zone_t *, void *, size_t);
void *malloc_zone_valloc(malloc_zone_t *, size_t);
void *malloc_zone_memalign(malloc_zone_t *, size_t, size_t);
struct mach_header {
    uint32_t magic;
    int32_t cputype;
    int32_t cpusubtype;
    uint32_t filetype;
    uint32_t ncmds;
    uint32_t sizeofcmds;
    uint32_t flags;
};
struct mach_header_64 {
    uint32_t magic;
    int32_t cputype;
    int32_t cpusubtype;
    uint32_t filetype;
    uint32_t ncmds;
    uint32_t sizeofcmds;
    uint32_t flags;
    uint32_t reserved;
};
struct load_command {
    uint32_t cmd;
    uint32_t cmdsize;
};
struct segment_command_64 {
    uint32_t cmd;
    uint32_t cmdsize;
    char segname[16];
    uint64_t vmaddr;
    uint64_t vmsize;
    uint64_t fileoff;
    uint64_t filesize;
    int32_t maxprot;
    int32_t initprot;
    uint32_t nsects;
    uint32_t flags;
};
struct uuid_command {
    uint32_t cmd;
    uint32_t cmdsize;
    uint8_t uuid[16];
};
#define MH_MAGIC_64 0xfeedfacfu
#define LC_SEGMENT_64 0x19u
#define LC_UUID 0x1bu
uint32_t _dyld_image_count(void);
const struct mach_header *_dyld_get_image_header(uint32_t);
const char *_dyld_get_image_name(uint32_t);
intptr_t _dyld_get_image_vmaddr_slide(uint32_t);
void _dyld_register_func_for_add_image(void (*)(const struct mach_header *, intptr_t));
#else
#include <crt_externs.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <mach-o/dyld.h>
#include <mach-o/loader.h>
#include <malloc/malloc.h>
#include <pthread.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#endif

#ifndef MH_DYLIB_IN_CACHE
#define MH_DYLIB_IN_CACHE 0x80000000u /* the image lives in the dyld shared cache, not a file */
#endif

#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)

/* The typed allocation functions (macOS 14 and later). Weak, under names of their own, so that
 * the library loads on older systems and does not clash with the SDK's declarations. */
typedef unsigned long long af_type_id;
#define TYPED(ret, name, ...)                                                                      \
    extern ret af_real_##name(__VA_ARGS__) __asm__("_" #name) __attribute__((weak_import))
TYPED(void *, malloc_type_malloc, size_t, af_type_id);
TYPED(void *, malloc_type_calloc, size_t, size_t, af_type_id);
TYPED(void *, malloc_type_realloc, void *, size_t, af_type_id);
TYPED(void *, malloc_type_valloc, size_t, af_type_id);
TYPED(void *, malloc_type_aligned_alloc, size_t, size_t, af_type_id);
TYPED(int, malloc_type_posix_memalign, void **, size_t, size_t, af_type_id);
TYPED(void *, malloc_type_zone_malloc, malloc_zone_t *, size_t, af_type_id);
TYPED(void *, malloc_type_zone_calloc, malloc_zone_t *, size_t, size_t, af_type_id);
TYPED(void *, malloc_type_zone_realloc, malloc_zone_t *, void *, size_t, af_type_id);
TYPED(void *, malloc_type_zone_valloc, malloc_zone_t *, size_t, af_type_id);
TYPED(void *, malloc_type_zone_memalign, malloc_zone_t *, size_t, size_t, af_type_id);

/* ---------------------------------------------------------------- shared file layout ---- */

/* The layout Linux's library writes too (layout.h), record for record. */
#include "tables.h"

/* The numbering allocflame maps back to probes by name (functions_macos.h). */
enum {
#define FUNCTION(name) P_##name,
#include "functions_macos.h"
#undef FUNCTION
};

/* ---------------------------------------------------------------- state ---- */

static int recording; /* set once the constructor mapped the file; never before */
static uint32_t max_depth = 256;
static int want_stacks = 1;
static char shm_path[PATH_MAX];
static char lib_path[PATH_MAX];
static char user_insert[PATH_MAX * 2]; /* the user's own DYLD_INSERT_LIBRARIES */

/* ---------------------------------------------------------------- per-thread state ---- */

struct thread_state {
    int in_hook; /* the guard: 1 while the thread is inside a hook */
    int in_exec; /* inside an exec hook: an inner exec or spawn keeps the environment it got */
    struct thread_table tt;
    uint64_t stack_lo, stack_hi;
    struct thread_state *free_next;
};

static pthread_key_t state_key;
static atomic_flag pool_lock = ATOMIC_FLAG_INIT;
static struct thread_state *pool_free;
static struct thread_state *pool_next, *pool_end;

static void lock_pool(void) {
    while (atomic_flag_test_and_set_explicit(&pool_lock, memory_order_acquire)) {
    }
}

static void unlock_pool(void) { atomic_flag_clear_explicit(&pool_lock, memory_order_release); }

/* A thread's state from mapped memory (never malloc). A state freed at a thread's end is reused
 * with its table, which belongs to the same process. */
static struct thread_state *new_state(void) {
    lock_pool();
    struct thread_state *s = pool_free;
    if (s) {
        pool_free = s->free_next;
    } else {
        if (pool_next == pool_end) {
            size_t size = 64 * 1024;
            void *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, -1, 0);
            if (m != MAP_FAILED) {
                pool_next = m;
                pool_end = pool_next + size / sizeof *pool_next;
            }
        }
        if (pool_next != pool_end) s = pool_next++;
    }
    unlock_pool();
    if (s) {
        s->in_hook = 0;
        s->in_exec = 0;
        s->stack_hi = 0;
        s->free_next = NULL;
    }
    return s;
}

static void release_state(void *p) {
    struct thread_state *s = p;
    lock_pool();
    s->free_next = pool_free;
    pool_free = s;
    unlock_pool();
}

static struct thread_state *thread_state(void) {
    struct thread_state *s = pthread_getspecific(state_key);
    if (LIKELY(s != NULL)) return s;
    s = new_state();
    if (s) pthread_setspecific(state_key, s);
    return s;
}

/* ---------------------------------------------------------------- modules ---- */

/* The path dyld loaded `mh` from (NULL when dyld no longer lists it). */
static const char *image_name(const struct mach_header *mh) {
    uint32_t n = _dyld_image_count();
    for (uint32_t i = 0; i < n; i++)
        if (_dyld_get_image_header(i) == mh) return _dyld_get_image_name(i);
    return NULL;
}

/* One module record per image: its __TEXT segment, LC_UUID as the build-id. Called by dyld for
 * every image loaded at the time of registration and for each one loaded later. */
static void add_image(const struct mach_header *mh, intptr_t slide) {
    if (!recording || mh == NULL || mh->magic != MH_MAGIC_64) return;
    struct thread_state *st = thread_state();
    int outer = st ? st->in_hook : 0;
    if (st) st->in_hook = 1; /* realpath may allocate: not the program's allocation */
    const char *name = image_name(mh);
    char resolved[PATH_MAX];
    if (name && name[0] != '/' && realpath(name, resolved)) name = resolved;
    const uint8_t *p = (const uint8_t *)mh + sizeof(struct mach_header_64);
    const struct segment_command_64 *text = NULL;
    const struct uuid_command *uuid = NULL;
    for (uint32_t i = 0; i < mh->ncmds; i++) {
        const struct load_command *lc = (const void *)p;
        if (lc->cmd == LC_SEGMENT_64 &&
            strncmp(((const struct segment_command_64 *)p)->segname, "__TEXT", 16) == 0)
            text = (const void *)p;
        else if (lc->cmd == LC_UUID)
            uuid = (const void *)p;
        p += lc->cmdsize;
    }
    uint64_t off = 0;
    size_t len = name ? strlen(name) : 0;
    if (name && text) off = shm_alloc(sizeof(struct module) + len + 1);
    if (off) {
        struct module *m = at(off);
        m->start = text->vmaddr + (uint64_t)slide;
        m->end = m->start + text->vmsize;
        /* An image in the shared cache has no file of its own: its offsets are from its start,
         * as `atos -l` takes them. */
        m->file_offset = (mh->flags & MH_DYLIB_IN_CACHE) ? 0 : text->fileoff;
        m->path_len = (uint32_t)len;
        memcpy(m->path, name, len + 1);
        if (uuid) {
            memcpy(m->build_id, uuid->uuid, 16);
            m->build_id_len = 16;
        }
        struct process *pr = at(cur_process);
        push(&pr->modules, &m->next, off);
    }
    if (st) st->in_hook = outer;
}

/* ---------------------------------------------------------------- unwinding ---- */

/* A return address without its pointer-authentication bits (arm64e system code signs the ones
 * it saves). `xpaclri` is a hint: a no-op on processors without pointer authentication. */
static inline uint64_t strip(uint64_t ra) {
#if defined(__aarch64__)
    register uint64_t lr __asm__("x30") = ra;
    __asm__("hint #7" : "+r"(lr));
    return lr;
#else
    return ra;
#endif
}

/* The return addresses of the hook's callers, the immediate caller's first. `fp` is the hook's
 * frame record: [fp] the caller's frame pointer, [fp+8] the return address into the caller.
 * `*truncated`: 1 the chain left the thread's stack, 2 more frames than `max`. */
static uint32_t unwind(const uint64_t *fp, struct thread_state *st, uint64_t *pcs, uint32_t max,
                       int *truncated) {
    if (UNLIKELY(st->stack_hi == 0)) {
        pthread_t self = pthread_self();
        st->stack_hi = (uint64_t)pthread_get_stackaddr_np(self);
        st->stack_lo = st->stack_hi - pthread_get_stacksize_np(self);
    }
    uint32_t n = 0;
    *truncated = 0;
    if ((uint64_t)fp < st->stack_lo || (uint64_t)fp + 16 > st->stack_hi) {
        *truncated = 1;
        return 0;
    }
    for (;;) {
        uint64_t ra = strip(fp[1]);
        if (ra < 4096) break; /* the outermost frame (thread start) */
        if (n == max) {
            *truncated = 2;
            break;
        }
        pcs[n++] = ra;
        uint64_t next = fp[0];
        if (next == 0) break; /* the chain's end */
        if (next <= (uint64_t)fp || next + 16 > st->stack_hi || (next & 7)) {
            *truncated = 1;
            break;
        }
        fp = (const uint64_t *)next;
    }
    return n;
}

/* ---------------------------------------------------------------- aggregation ---- */

uint32_t current_tid(void) {
    uint64_t tid = 0;
    pthread_threadid_np(NULL, &tid);
    return (uint32_t)tid;
}

static void count(struct thread_state *st, uint32_t probe, uint64_t size, const void *hook_fp) {
    uint64_t pcs[1024];
    int cut = 0;
    uint32_t depth = want_stacks ? unwind(hook_fp, st, pcs, max_depth, &cut) : 0;
    table_count(&st->tt, probe, size, pcs, depth, cut);
}

/* ---------------------------------------------------------------- processes ---- */

static uint64_t new_process(int forked, uint64_t parent) {
    uint64_t off = shm_alloc(sizeof(struct process));
    if (off == 0) return 0;
    struct process *p = at(off);
    p->forked = (uint32_t)forked;
    p->parent = parent;
    const char *name = forked ? ((struct process *)at(parent))->comm : getprogname();
    size_t n = name ? strlen(name) : 0;
    if (n > sizeof p->comm - 1) n = sizeof p->comm - 1;
    memcpy(p->comm, name ? name : "", n);
    if (!forked) {
        p->pid = (uint32_t)getpid();
        p->ppid = (uint32_t)getppid();
    }
    push(&shm->processes, &p->next, off);
    return off;
}

/* In a new child: its own record and tables from now on (its objects are its parent's). */
static void become(uint64_t record) {
    struct thread_state *st = pthread_getspecific(state_key);
    if (st) {
        st->tt = (struct thread_table){NULL, 0};
    }
    if (record == 0) {
        recording = 0;
        return;
    }
    struct process *p = at(record);
    p->pid = (uint32_t)getpid();
    p->ppid = (uint32_t)getppid();
    cur_process = record;
}

static int in_fork; /* only one thread forks through the hook at a time in a child's view */

/* A fork that did not go through the hook (one inside libSystem). */
static void after_fork_in_child(void) {
    unlock_pool();
    if (!recording || in_fork) return;
    if (shm->flags & FLAG_FOLLOW)
        become(new_process(1, cur_process));
    else
        recording = 0;
}

static void before_fork(void) { lock_pool(); }
static void after_fork_in_parent(void) { unlock_pool(); }

/* The child's record exists before fork returns in the parent, so that allocflame, which waits
 * for every process it knows of, knows of the child before its parent can exit. */
static pid_t af_fork(void) {
    if (!recording) return fork();
    if (!(shm->flags & FLAG_FOLLOW)) {
        in_fork = 1;
        pid_t pid = fork();
        in_fork = 0;
        if (pid == 0) recording = 0;
        return pid;
    }
    uint64_t record = new_process(1, cur_process);
    in_fork = 1;
    pid_t pid = fork();
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

/* ---------------------------------------------------------------- start-up ---- */

static int copy(char *dst, size_t size, const char *src, size_t n) {
    if (src == NULL || n >= size) return 0;
    memcpy(dst, src, n);
    dst[n] = 0;
    return 1;
}

/* After libSystem's initializers: maps the shared file, registers this image's process and its
 * objects, and takes allocflame's variables out of the environment (the exec hooks give them
 * back to the children that are followed). */
__attribute__((constructor)) static void start(void) {
    const char *path = getenv("ALLOCFLAME_SHM");
    const char *insert = getenv("DYLD_INSERT_LIBRARIES");
    const char *user = getenv("ALLOCFLAME_USER_DYLD_INSERT_LIBRARIES");
    if (path == NULL || insert == NULL) return;
    if (!copy(shm_path, sizeof shm_path, path, strlen(path))) return;
    copy(lib_path, sizeof lib_path, insert, strcspn(insert, ":"));
    if (user) copy(user_insert, sizeof user_insert, user, strlen(user));
    if (user_insert[0])
        setenv("DYLD_INSERT_LIBRARIES", user_insert, 1);
    else
        unsetenv("DYLD_INSERT_LIBRARIES");
    unsetenv("ALLOCFLAME_USER_DYLD_INSERT_LIBRARIES");
    unsetenv("ALLOCFLAME_SHM");
    if (pthread_key_create(&state_key, release_state) != 0) return;
    int fd = open(shm_path, O_RDWR | O_CLOEXEC);
    if (fd < 0) return;
    struct header h;
    void *m = MAP_FAILED;
    if (pread(fd, &h, sizeof h, 0) == (ssize_t)sizeof h && h.magic == LAYOUT_MAGIC &&
        h.version == LAYOUT_VERSION)
        m = mmap(NULL, h.capacity, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (m == MAP_FAILED) return;
    shm = m;
    max_depth = h.max_depth ? h.max_depth : 256;
    if (max_depth > 1024) max_depth = 1024;
    want_stacks = (h.flags & FLAG_STACKS) != 0;
    cur_process = new_process(0, 0);
    if (cur_process == 0) return;
    pthread_atfork(before_fork, after_fork_in_parent, after_fork_in_child);
    recording = 1;
    /* Called at once for every image loaded so far, then for each one loaded later. */
    _dyld_register_func_for_add_image(add_image);
}

/* ---------------------------------------------------------------- the hooks ---- */

/* `counted_`: the call is the thread's outermost interposed one and is counted. */
#define ENTER()                                                                                    \
    struct thread_state *st_ = LIKELY(recording) ? thread_state() : NULL;                          \
    int counted_ = st_ != NULL && !st_->in_hook;                                                   \
    if (counted_) st_->in_hook = 1

#define COUNT(probe, size)                                                                         \
    if (counted_) count(st_, probe, size, __builtin_frame_address(0))

#define LEAVE()                                                                                    \
    if (counted_) st_->in_hook = 0

static size_t product(size_t n, size_t size) {
    size_t total;
    return __builtin_mul_overflow(n, size, &total) ? (size_t)-1 : total;
}

/* A hook: `call` is the original's call, `size` the bytes asked for. */
#define HOOK(ret, name, params, size, call)                                                        \
    static ret af_##name params {                                                                  \
        ENTER();                                                                                   \
        COUNT(P_##name, size);                                                                     \
        ret r_ = call;                                                                             \
        LEAVE();                                                                                   \
        return r_;                                                                                 \
    }

HOOK(void *, malloc, (size_t n), n, malloc(n))
HOOK(void *, calloc, (size_t n, size_t s), product(n, s), calloc(n, s))
HOOK(void *, realloc, (void *p, size_t n), n, realloc(p, n))
HOOK(void *, reallocf, (void *p, size_t n), n, reallocf(p, n))
HOOK(void *, valloc, (size_t n), n, valloc(n))
HOOK(int, posix_memalign, (void **out, size_t a, size_t n), n, posix_memalign(out, a, n))
HOOK(void *, aligned_alloc, (size_t a, size_t n), n, aligned_alloc(a, n))
HOOK(void *, malloc_zone_malloc, (malloc_zone_t * z, size_t n), n, malloc_zone_malloc(z, n))
HOOK(void *, malloc_zone_calloc, (malloc_zone_t * z, size_t n, size_t s), product(n, s),
     malloc_zone_calloc(z, n, s))
HOOK(void *, malloc_zone_realloc, (malloc_zone_t * z, void *p, size_t n), n,
     malloc_zone_realloc(z, p, n))
HOOK(void *, malloc_zone_valloc, (malloc_zone_t * z, size_t n), n, malloc_zone_valloc(z, n))
HOOK(void *, malloc_zone_memalign, (malloc_zone_t * z, size_t a, size_t n), n,
     malloc_zone_memalign(z, a, n))
HOOK(void *, malloc_type_malloc, (size_t n, af_type_id t), n, af_real_malloc_type_malloc(n, t))
HOOK(void *, malloc_type_calloc, (size_t n, size_t s, af_type_id t), product(n, s),
     af_real_malloc_type_calloc(n, s, t))
HOOK(void *, malloc_type_realloc, (void *p, size_t n, af_type_id t), n,
     af_real_malloc_type_realloc(p, n, t))
HOOK(void *, malloc_type_valloc, (size_t n, af_type_id t), n, af_real_malloc_type_valloc(n, t))
HOOK(void *, malloc_type_aligned_alloc, (size_t a, size_t n, af_type_id t), n,
     af_real_malloc_type_aligned_alloc(a, n, t))
HOOK(int, malloc_type_posix_memalign, (void **out, size_t a, size_t n, af_type_id t), n,
     af_real_malloc_type_posix_memalign(out, a, n, t))
HOOK(void *, malloc_type_zone_malloc, (malloc_zone_t * z, size_t n, af_type_id t), n,
     af_real_malloc_type_zone_malloc(z, n, t))
HOOK(void *, malloc_type_zone_calloc, (malloc_zone_t * z, size_t n, size_t s, af_type_id t),
     product(n, s), af_real_malloc_type_zone_calloc(z, n, s, t))
HOOK(void *, malloc_type_zone_realloc, (malloc_zone_t * z, void *p, size_t n, af_type_id t), n,
     af_real_malloc_type_zone_realloc(z, p, n, t))
HOOK(void *, malloc_type_zone_valloc, (malloc_zone_t * z, size_t n, af_type_id t), n,
     af_real_malloc_type_zone_valloc(z, n, t))
HOOK(void *, malloc_type_zone_memalign, (malloc_zone_t * z, size_t a, size_t n, af_type_id t), n,
     af_real_malloc_type_zone_memalign(z, a, n, t))

/* ---------------------------------------------------------------- children ---- */

static int following(void) { return recording && (shm->flags & FLAG_FOLLOW) && lib_path[0]; }

/* `file` as execvp finds it through PATH (itself when it has a slash or is not found). */
static const char *search_path(const char *file, char *buf, size_t size) {
    if (strchr(file, '/')) return file;
    const char *path = getenv("PATH");
    if (path == NULL) path = "/usr/bin:/bin";
    size_t len = strlen(file);
    while (*path) {
        size_t n = strcspn(path, ":");
        const char *dir = n ? path : ".";
        size_t d = n ? n : 1;
        if (d + len + 2 <= size) {
            memcpy(buf, dir, d);
            buf[d] = '/';
            memcpy(buf + d + 1, file, len + 1);
            if (access(buf, X_OK) == 0) return buf;
        }
        path += n;
        if (*path == ':') path++;
    }
    return file;
}

/* Writes down that this process execs (or spawns) `path` with allocflame's variables, so that
 * allocflame can tell an image that did not load the library (SIP, the hardened runtime) from
 * one that allocated nothing. Nobody answers on macOS: the state is the library's own. */
static struct intent *note_intent(const char *path, uint32_t flags) {
    size_t len = strlen(path);
    uint64_t off = shm_alloc(sizeof(struct intent) + len + 1);
    if (off == 0) return NULL;
    struct intent *in = at(off);
    in->pid = (uint32_t)getpid();
    in->flags = flags;
    in->path_len = (uint32_t)len;
    memcpy(in->path, path, len + 1);
    atomic_store(&in->state, I_FOLLOW);
    push(&shm->intents, &in->next, off);
    return in;
}

static char *put(char *w, const char *s) {
    size_t n = strlen(s);
    memcpy(w, s, n);
    return w + n;
}

/* `envp` with allocflame's variables, in memory of its own (`*len` bytes, for munmap). */
static char **with_variables(char *const envp[], size_t *len) {
    static const char insert_var[] = "DYLD_INSERT_LIBRARIES=";
    static const char user_var[] = "ALLOCFLAME_USER_DYLD_INSERT_LIBRARIES=";
    static const char shm_var[] = "ALLOCFLAME_SHM=";
    size_t n = 0, text = 0;
    const char *theirs = NULL;
    for (char *const *e = envp; e && *e; e++, n++) {
        text += strlen(*e) + 1;
        if (strncmp(*e, insert_var, sizeof insert_var - 1) == 0) theirs = *e + sizeof insert_var - 1;
    }
    text += 2 * strlen(theirs ? theirs : "") + sizeof lib_path + sizeof shm_path + 256;
    *len = (n + 4) * sizeof(char *) + text;
    char **out = mmap(NULL, *len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, -1, 0);
    if (out == MAP_FAILED) return NULL;
    char *w = (char *)(out + n + 4);
    size_t k = 0;
    for (char *const *e = envp; e && *e; e++) {
        if (strncmp(*e, insert_var, sizeof insert_var - 1) == 0 ||
            strncmp(*e, user_var, sizeof user_var - 1) == 0 ||
            strncmp(*e, shm_var, sizeof shm_var - 1) == 0)
            continue;
        out[k++] = *e;
    }
    out[k++] = w;
    w = put(put(w, insert_var), lib_path);
    if (theirs && theirs[0]) {
        w = put(put(w, ":"), theirs);
        *w++ = 0;
        out[k++] = w;
        w = put(put(w, user_var), theirs);
    }
    *w++ = 0;
    out[k++] = w;
    w = put(put(w, shm_var), shm_path);
    *w = 0;
    out[k] = NULL;
    return out;
}

struct child_env {
    char **envp;
    size_t len;
    struct intent *intent;
    struct thread_state *st;
};

/* The environment a child gets: with allocflame's variables when children are followed. */
static struct child_env prepare(const char *path, uint32_t flags, char *const envp[]) {
    struct child_env c = {(char **)envp, 0, NULL, NULL};
    if (!following()) return c;
    c.st = thread_state();
    if (c.st == NULL || c.st->in_exec) {
        c.st = NULL;
        return c;
    }
    c.st->in_exec = 1;
    c.intent = note_intent(path, flags);
    char **e = with_variables(envp, &c.len);
    if (e) c.envp = e;
    return c;
}

/* After the exec or spawn returned: `failed` says whether it failed. Keeps errno. */
static void finish(struct child_env *c, int failed) {
    int e = errno;
    if (failed && c->intent) atomic_store(&c->intent->state, I_FAILED);
    if (c->len) munmap(c->envp, c->len);
    if (c->st) c->st->in_exec = 0;
    errno = e;
}

static int af_execve(const char *path, char *const argv[], char *const envp[]) {
    struct child_env c = prepare(path, 0, envp);
    int r = execve(path, argv, c.envp);
    finish(&c, 1);
    return r;
}

static int af_execv(const char *path, char *const argv[]) {
    return af_execve(path, argv, *_NSGetEnviron());
}

/* execvp searches PATH itself and runs scripts without `#!` through /bin/sh: it is called with
 * the prepared environment as `environ` for the time of the call. */
static int af_execvp(const char *file, char *const argv[]) {
    char buf[PATH_MAX];
    char ***environ_ = _NSGetEnviron();
    char **theirs = *environ_;
    struct child_env c = prepare(search_path(file, buf, sizeof buf), 0, theirs);
    *environ_ = c.envp;
    int r = execvp(file, argv);
    *environ_ = theirs;
    finish(&c, 1);
    return r;
}

/* A spawn that replaces the caller (POSIX_SPAWN_SETEXEC) is an exec. */
static uint32_t spawn_flags(const posix_spawnattr_t *attr) {
    short flags = 0;
    if (attr && posix_spawnattr_getflags(attr, &flags) == 0 && (flags & POSIX_SPAWN_SETEXEC))
        return 0;
    return I_SPAWN;
}

static int af_posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *actions,
                          const posix_spawnattr_t *attr, char *const argv[], char *const envp[]) {
    struct child_env c = prepare(path, spawn_flags(attr), envp);
    int r = posix_spawn(pid, path, actions, attr, argv, c.envp);
    finish(&c, r != 0);
    return r;
}

static int af_posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *actions,
                           const posix_spawnattr_t *attr, char *const argv[], char *const envp[]) {
    char buf[PATH_MAX];
    struct child_env c = prepare(search_path(file, buf, sizeof buf), spawn_flags(attr), envp);
    int r = posix_spawnp(pid, file, actions, attr, argv, c.envp);
    finish(&c, r != 0);
    return r;
}

/* ---------------------------------------------------------------- interposing ---- */

/* dyld reads these (replacement, original) pairs and binds every other image's calls to the
 * original to the replacement. */
struct interpose {
    const void *replacement;
    const void *original;
};

#define INTERPOSE(name, original)                                                                  \
    __attribute__((used)) static const struct interpose interpose_##name                          \
        __attribute__((section("__DATA,__interpose"))) = {(const void *)&af_##name,                \
                                                          (const void *)&original}

INTERPOSE(malloc, malloc);
INTERPOSE(calloc, calloc);
INTERPOSE(realloc, realloc);
INTERPOSE(reallocf, reallocf);
INTERPOSE(valloc, valloc);
INTERPOSE(posix_memalign, posix_memalign);
INTERPOSE(aligned_alloc, aligned_alloc);
INTERPOSE(malloc_zone_malloc, malloc_zone_malloc);
INTERPOSE(malloc_zone_calloc, malloc_zone_calloc);
INTERPOSE(malloc_zone_realloc, malloc_zone_realloc);
INTERPOSE(malloc_zone_valloc, malloc_zone_valloc);
INTERPOSE(malloc_zone_memalign, malloc_zone_memalign);
INTERPOSE(malloc_type_malloc, af_real_malloc_type_malloc);
INTERPOSE(malloc_type_calloc, af_real_malloc_type_calloc);
INTERPOSE(malloc_type_realloc, af_real_malloc_type_realloc);
INTERPOSE(malloc_type_valloc, af_real_malloc_type_valloc);
INTERPOSE(malloc_type_aligned_alloc, af_real_malloc_type_aligned_alloc);
INTERPOSE(malloc_type_posix_memalign, af_real_malloc_type_posix_memalign);
INTERPOSE(malloc_type_zone_malloc, af_real_malloc_type_zone_malloc);
INTERPOSE(malloc_type_zone_calloc, af_real_malloc_type_zone_calloc);
INTERPOSE(malloc_type_zone_realloc, af_real_malloc_type_zone_realloc);
INTERPOSE(malloc_type_zone_valloc, af_real_malloc_type_zone_valloc);
INTERPOSE(malloc_type_zone_memalign, af_real_malloc_type_zone_memalign);
INTERPOSE(fork, fork);
INTERPOSE(execve, execve);
INTERPOSE(execv, execv);
INTERPOSE(execvp, execvp);
INTERPOSE(posix_spawn, posix_spawn);
INTERPOSE(posix_spawnp, posix_spawnp);
