/* Allocators a program reaches through dlsym: a plugin's own malloc, or libc's looked up by
 * handle, are called through pointers the dynamic loader never sees. dlsym is interposed: for
 * a catalog function that is not this library's own hook, it hands back a wrapper that counts
 * the call and forwards it (a few targets per function; more are handed back unwrapped). */
#include <malloc.h>

#include "internal.h"

#define TARGETS 4

static void *our_hook(const char *name) {
    static const struct {
        const char *name;
        void *hook;
    } hooks[] = {{"malloc", (void *)malloc},   {"calloc", (void *)calloc},
                 {"realloc", (void *)realloc}, {"aligned_alloc", (void *)aligned_alloc},
                 {"memalign", (void *)memalign}, {"posix_memalign", (void *)posix_memalign}};
    for (size_t i = 0; i < sizeof hooks / sizeof hooks[0]; i++)
        if (strcmp(hooks[i].name, name) == 0) return hooks[i].hook;
    return NULL;
}

#define P1 size_t n
#define P2 size_t k, size_t n
#define P3 void *p, size_t n
#define P4 size_t a, size_t n
#define P5 void **out, size_t a, size_t n

static void *_Atomic malloc_targets[TARGETS], *_Atomic calloc_targets[TARGETS],
    *_Atomic realloc_targets[TARGETS], *_Atomic aligned_alloc_targets[TARGETS],
    *_Atomic memalign_targets[TARGETS], *_Atomic posix_memalign_targets[TARGETS];

#define BODY(probe, size, call)                                                                    \
    struct regs r;                                                                                 \
    ENTER(r);                                                                                      \
    if (counted_) count(probe, size, r);                                                           \
    __typeof__(call) v = call;                                                                     \
    LEAVE();                                                                                       \
    return v;

static size_t product(size_t k, size_t n) {
    size_t t;
    return __builtin_mul_overflow(k, n, &t) ? SIZE_MAX : t;
}

#define SET(i)                                                                                     \
    static void *malloc_##i(P1) { BODY(P_MALLOC, n, ((void *(*)(P1))malloc_targets[i])(n)) }      \
    static void *calloc_##i(P2) {                                                                  \
        BODY(P_CALLOC, product(k, n), ((void *(*)(P2))calloc_targets[i])(k, n))                    \
    }                                                                                              \
    static void *realloc_##i(P3) { BODY(P_REALLOC, n, ((void *(*)(P3))realloc_targets[i])(p, n)) } \
    static void *aligned_alloc_##i(P4) {                                                           \
        BODY(P_ALIGNED_ALLOC, n, ((void *(*)(P4))aligned_alloc_targets[i])(a, n))                  \
    }                                                                                              \
    static void *memalign_##i(P4) {                                                                \
        BODY(P_MEMALIGN, n, ((void *(*)(P4))memalign_targets[i])(a, n))                            \
    }                                                                                              \
    static int posix_memalign_##i(P5) {                                                            \
        BODY(P_POSIX_MEMALIGN, n, ((int (*)(P5))posix_memalign_targets[i])(out, a, n))             \
    }

SET(0)
SET(1)
SET(2)
SET(3)

#define ROW(fn) {#fn, fn##_targets, {(void *)fn##_0, (void *)fn##_1, (void *)fn##_2, (void *)fn##_3}}
static const struct {
    const char *name;
    void *_Atomic *targets;
    void *wrappers[TARGETS];
} table[] = {ROW(malloc), ROW(calloc), ROW(realloc), ROW(aligned_alloc), ROW(memalign),
             ROW(posix_memalign)};

/* dlsym's look-up, with a catalog function outside this library wrapped. */
void *allocflame_dlsym(void *handle, const char *name) {
    if (UNLIKELY(init_state != 2)) start();
    if (real_dlsym == NULL) return NULL;
    void *p = real_dlsym(handle, name);
    if (p == NULL || !recording || name == NULL || p == our_hook(name)) return p;
    for (size_t f = 0; f < sizeof table / sizeof table[0]; f++) {
        if (strcmp(table[f].name, name) != 0) continue;
        for (int i = 0; i < TARGETS; i++) {
            void *seen = atomic_load(&table[f].targets[i]);
            if (seen == p) return table[f].wrappers[i];
            if (seen == NULL) {
                void *empty = NULL;
                if (atomic_compare_exchange_strong(&table[f].targets[i], &empty, p) || empty == p)
                    return table[f].wrappers[i];
            }
        }
        return p;
    }
    return p;
}

/* dlsym(RTLD_NEXT, …) looks up relative to its caller's object: that call goes on to the real
 * dlsym with the caller's return address untouched (a jump, not a call). */
__asm__(".text\n"
        ".globl dlsym\n"
        ".type dlsym, @function\n"
        "dlsym:\n"
        "    cmpq $-1, %rdi\n"
        "    je 1f\n"
        "    jmp allocflame_dlsym\n"
        "1:  jmp *real_dlsym(%rip)\n"
        ".size dlsym, .-dlsym\n");
