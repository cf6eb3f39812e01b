/* What the files of the injected library share: the shared file's layout, the process's
 * recording state, and the functions one file calls in another. */
#ifndef ALLOCFLAME_PRELOAD_INTERNAL_H
#define ALLOCFLAME_PRELOAD_INTERNAL_H
#define _GNU_SOURCE
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <linux/futex.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))
#define TLS __thread __attribute__((tls_model("initial-exec")))
#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)

#include "tables.h"

/* ---------------------------------------------------------------- state (preload.c) ---- */

extern _Atomic int init_state;
extern int recording;
extern uint32_t max_depth;
extern int want_stacks;
extern TLS int in_hook;
extern TLS uint64_t stack_hi;
extern int (*real_execve)(const char *, char *const[], char *const[]);
extern int (*real_execvpe)(const char *, char *const[], char *const[]);
extern int (*real_fexecve)(int, char *const[], char *const[]);
extern int (*real_posix_spawn)(pid_t *, const char *, const void *, const void *, char *const[],
                               char *const[]);
extern int (*real_posix_spawnp)(pid_t *, const char *, const void *, const void *, char *const[],
                                char *const[]);
extern int (*real_system)(const char *);
extern void *(*real_dlsym)(void *, const char *);
extern FILE *(*real_popen)(const char *, const char *);

extern void *__libc_stack_end;

/* Starts the recording in this process image (once; the first hook to run calls it). */
void start(void);

/* Counts one allocation of catalog function `probe` (P_*) of `size` bytes, made by the caller
 * whose registers are `r`. */
struct regs;

/* ---------------------------------------------------------------- unwinding (unwind.c) ---- */

/* allocflame's variables, kept for the children that are followed. */
extern char exe_path[PATH_MAX];
extern char shm_path[PATH_MAX];
extern char lib_path[PATH_MAX];
extern char user_preload[PATH_MAX * 2];
extern char user_preload_var[PATH_MAX * 2 + 16];

#define RULE_SLOTS (1u << 18)
struct rule_slot {
    _Atomic uint64_t key;
    _Atomic uint64_t value;
};
/* The frame rules by return address, mapped at start. */
extern struct rule_slot *rules;

struct regs {
    uint64_t pc, sp, bp;
};

/* The registers of the hook's caller at the moment it called: the hook keeps a frame pointer,
 * so its frame holds the caller's rbp and return address. */
#define CALLER_REGS(r)                                                                             \
    do {                                                                                           \
        void **fp_ = __builtin_frame_address(0);                                                   \
        (r).bp = (uint64_t)fp_[0];                                                                 \
        (r).pc = (uint64_t)fp_[1];                                                                 \
        (r).sp = (uint64_t)(fp_ + 2);                                                              \
    } while (0)

void count(uint32_t probe, uint64_t size, struct regs r);

/* A hook's start: starts the recording if need be, and takes the thread's guard unless a hook
 * of it is already running (then the call is not counted). */
#define ENTER(r)                                                                                   \
    if (UNLIKELY(init_state != 2)) start();                                                        \
    int counted_ = !in_hook && recording;                                                          \
    if (counted_) {                                                                                \
        in_hook = 1;                                                                               \
        CALLER_REGS(r);                                                                            \
    }

#define LEAVE() if (counted_) in_hook = 0
/* Looks the mapped objects up again (a library was loaded since). */
void refresh_objects(void);
/* The return addresses of the stack `r` starts, the allocator's caller first. */
int unwind(struct regs r, uint64_t *pcs, uint32_t max, int *truncated);

#endif
