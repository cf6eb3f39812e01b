/* The shared file's allocator and the threads' stack tables (see tables.h). */
/* No libc headers: it builds the same on both systems (and checks without the macOS SDK). */
#include "tables.h"

struct header *shm;
uint64_t cur_process;

void *at(uint64_t off) { return (char *)shm + off; }

uint64_t shm_alloc(uint64_t n) {
    n = (n + 15) & ~15ull;
    uint64_t off = atomic_fetch_add_explicit(&shm->used, n, memory_order_relaxed);
    if (off + n > shm->capacity) return 0;
    return off;
}

void push(_Atomic uint64_t *head, uint64_t *next, uint64_t off) {
    uint64_t old = atomic_load_explicit(head, memory_order_relaxed);
    do {
        *next = old;
    } while (!atomic_compare_exchange_weak_explicit(head, &old, off, memory_order_release,
                                                    memory_order_relaxed));
}

uint64_t mix(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x;
}

static struct table *new_table(uint32_t slots, uint64_t *off_out) {
    uint64_t off = shm_alloc(sizeof(struct table) + (uint64_t)slots * sizeof(struct slot));
    if (off == 0) return NULL;
    struct table *t = at(off);
    t->tid = current_tid();
    t->mask = slots - 1;
    *off_out = off;
    return t;
}

static void link_table(struct table *t, uint64_t off) {
    struct process *p = at(cur_process);
    push(&p->tables, &t->next, off);
}

static uint64_t hash_stack(uint32_t probe, uint32_t key, const uint64_t *pcs) {
    uint64_t h = 0x9e3779b97f4a7c15ull ^ ((uint64_t)probe << 32 | key);
    for (uint32_t i = 0; i < (key & 0xffff); i++) h = mix(h ^ pcs[i]) + i;
    h = mix(h);
    return h ? h : 1;
}

static struct slot *find_slot(struct table *t, uint64_t h, uint32_t probe, uint32_t key,
                              const uint64_t *pcs) {
    for (uint32_t i = (uint32_t)h & t->mask;; i = (i + 1) & t->mask) {
        struct slot *s = &t->slots[i];
        if (s->hash == 0) return s;
        if (s->hash != h) continue;
        const struct frames *f = at(s->stack);
        if (f->probe == probe && f->depth == key &&
            __builtin_memcmp(f->pcs, pcs, (key & 0xffff) * sizeof *pcs) == 0)
            return s;
    }
}

/* Replaces the thread's table by one twice its size holding its stacks; the new one names the
 * old one in `replaces`, and is linked only once complete (a program killed meanwhile leaves
 * the old one, whole). */
static int grow(struct thread_table *tt) {
    struct table *old = tt->table;
    uint64_t off;
    struct table *t = new_table((old->mask + 1) * 2, &off);
    if (t == NULL) return 0;
    for (uint32_t i = 0; i <= old->mask; i++) {
        struct slot *s = &old->slots[i];
        if (s->hash == 0) continue;
        uint32_t j = (uint32_t)s->hash & t->mask;
        while (t->slots[j].hash != 0) j = (j + 1) & t->mask;
        t->slots[j] = *s;
    }
    t->used = old->used;
    t->replaces = tt->off;
    link_table(t, off);
    tt->table = t;
    tt->off = off;
    return 1;
}

void table_count(struct thread_table *tt, uint32_t probe, uint64_t size, const uint64_t *pcs,
                 uint32_t depth, int cut) {
    if (cut == 1) atomic_fetch_add_explicit(&shm->unwind_stops, 1, memory_order_relaxed);
    if (cut == 2) atomic_fetch_add_explicit(&shm->capped, 1, memory_order_relaxed);
    /* A stack the unwinder could not take further ends there, as the perf backend's do: no
     * unwinder can tell it from the root of a thread whose start has no unwind information. */
    uint32_t key = depth | (cut == 2 ? FRAMES_CAPPED : 0);
    if (__builtin_expect(tt->table == NULL, 0)) {
        uint64_t off;
        tt->table = new_table(256, &off);
        if (tt->table == NULL) goto full;
        tt->off = off;
        link_table(tt->table, off);
    }
    uint64_t h = hash_stack(probe, key, pcs);
    struct slot *s = find_slot(tt->table, h, probe, key, pcs);
    if (s->hash == 0) {
        if (tt->table->used * 4 >= tt->table->mask * 3) {
            if (!grow(tt)) goto full;
            s = find_slot(tt->table, h, probe, key, pcs);
        }
        uint64_t off = shm_alloc(sizeof(struct frames) + depth * sizeof *pcs);
        if (off == 0) goto full;
        struct frames *f = at(off);
        f->probe = probe;
        f->depth = key;
        __builtin_memcpy(f->pcs, pcs, depth * sizeof *pcs);
        s->stack = off;
        atomic_thread_fence(memory_order_release);
        s->hash = h;
        tt->table->used++;
    }
    s->count++;
    s->bytes += size;
    return;
full:
    atomic_fetch_add_explicit(&shm->overflow, 1, memory_order_relaxed);
}
