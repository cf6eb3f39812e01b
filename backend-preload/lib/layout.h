/* The layout of the file the injected library shares with allocflame (read by
 * src/shm.rs; the two must agree on LAYOUT_VERSION). */
#ifndef ALLOCFLAME_PRELOAD_LAYOUT_H
#define ALLOCFLAME_PRELOAD_LAYOUT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define LAYOUT_MAGIC 0x31444c5245525041ull /* "APRERLD1" */
#define LAYOUT_VERSION 1
#define FLAG_FOLLOW 1u
#define FLAG_STACKS 2u

/* Written by allocflame before the program starts; `used`, `processes` and the counters by the
 * programs. Offsets are from the start of the file; 0 is "none". */
struct header {
    uint64_t magic;
    uint32_t version;
    uint32_t flags;
    uint64_t capacity;
    _Atomic uint64_t used;
    _Atomic uint64_t processes;
    _Atomic uint64_t overflow; /* allocations not recorded: the file was full */
    uint32_t max_depth;
    uint32_t main_pid;
    _Atomic uint64_t unwind_stops; /* stacks ended at a frame the unwinder could not pass */
    _Atomic uint64_t intents;      /* newest exec intent */
    _Atomic uint32_t intent_seq;   /* a futex: bumped at each new intent */
    _Atomic uint32_t decider;      /* 1: allocflame answers intents and rule requests */
    _Atomic uint64_t rule_requests; /* newest request for a frame rule */
    _Atomic uint64_t capped;        /* stacks deeper than max_depth frames */
};

/* A return address no CFI covers: allocflame works the frame out from the function's code
 * (as its perf backend does) and answers with a packed rule (0: none). */
struct rule_request {
    uint64_t next;
    uint64_t module; /* the module record the address is in */
    uint64_t ra;
    _Atomic uint32_t state; /* 0 pending, 1 answered */
    uint32_t pad;
    _Atomic uint64_t answer;
};

/* A process about to exec (or posix_spawn) a program: allocflame decides whether the new image
 * can load the library (then it gets allocflame's variables) or not (then it does not, and
 * allocflame records it another way where it can). */
struct intent {
    uint64_t next;
    uint32_t pid;
    _Atomic uint32_t state;
    uint32_t flags;
    uint32_t path_len;
    char path[];
};
enum { I_PENDING, I_FOLLOW, I_LEAVE, I_FAILED };
#define I_LIB_UNREADABLE 1u /* the library's path does not resolve for it (another root) */
#define I_SHM_UNWRITABLE 2u /* it cannot open the shared file (it changed user) */
#define I_SPAWN 4u          /* posix_spawn: no process exists yet to take over */

/* One per process image: the program's own, each exec'd image, each forked child. */
struct process {
    uint64_t next;
    uint32_t pid;
    uint32_t ppid;
    uint32_t forked; /* 1: a forked child that did not exec (its root is "NAME [child]") */
    uint32_t pad;
    uint64_t parent; /* the record it was forked from (its modules are the child's too) */
    _Atomic uint64_t tables;
    _Atomic uint64_t modules;
    char comm[16];
};

/* One per executable segment of a mapped object. */
struct module {
    uint64_t next;
    uint64_t start;
    uint64_t end;
    uint64_t file_offset; /* the file offset of `start` */
    uint32_t build_id_len;
    uint32_t path_len;
    uint8_t build_id[32];
    char path[];
};

struct slot {
    uint64_t hash;
    uint64_t stack; /* offset of a struct frames */
    uint64_t count;
    uint64_t bytes;
};

/* A thread's stacks. A full table is replaced by one twice its size that holds its entries;
 * the new one names the old one in `replaces` (the reader skips replaced tables). */
struct table {
    uint64_t next;
    uint64_t replaces;
    uint32_t tid;
    uint32_t mask;
    uint32_t used;
    uint32_t pad;
    struct slot slots[];
};

#define FRAMES_CAPPED 0x40000000u
struct frames {
    uint32_t probe;
    uint32_t depth; /* low 16 bits; FRAMES_CAPPED: the stack goes on past max_depth frames */
    uint64_t pcs[];  /* return addresses, the allocator's caller first */
};

/* The catalog's order (core/src/probes.rs, GLIBC). */
enum { P_MALLOC, P_CALLOC, P_REALLOC, P_REALLOCARRAY, P_POSIX_MEMALIGN, P_ALIGNED_ALLOC,
       P_MEMALIGN, P_VALLOC, P_PVALLOC };

/* The offsets src/shm.rs reads. */
_Static_assert(sizeof(struct header) == 96, "header size");
_Static_assert(offsetof(struct header, used) == 24, "used");
_Static_assert(offsetof(struct header, processes) == 32, "processes");
_Static_assert(offsetof(struct header, overflow) == 40, "overflow");
_Static_assert(offsetof(struct header, max_depth) == 48, "max_depth");
_Static_assert(offsetof(struct header, main_pid) == 52, "main_pid");
_Static_assert(offsetof(struct header, unwind_stops) == 56, "unwind_stops");
_Static_assert(offsetof(struct header, intents) == 64, "intents");
_Static_assert(offsetof(struct header, capped) == 88, "capped");
_Static_assert(offsetof(struct intent, state) == 12 && offsetof(struct intent, path) == 24, "intent");
_Static_assert(offsetof(struct process, parent) == 24 && offsetof(struct process, comm) == 48,
               "process");
_Static_assert(offsetof(struct module, build_id) == 40 && offsetof(struct module, path) == 72,
               "module");
_Static_assert(offsetof(struct table, mask) == 20 && offsetof(struct table, slots) == 32, "table");
_Static_assert(sizeof(struct slot) == 32 && offsetof(struct frames, pcs) == 8, "slot, frames");

#endif
