/* The shared file's allocator and the threads' stack tables, the same on Linux and macOS: each
 * thread counts into a hash table of its own (no lock, no write to anyone), in the shared file. */
#ifndef ALLOCFLAME_PRELOAD_TABLES_H
#define ALLOCFLAME_PRELOAD_TABLES_H

#include "layout.h"

/* The shared file, mapped at start; this process image's (or forked child's) record in it. */
extern struct header *shm;
extern uint64_t cur_process;

/* An offset of the shared file as a pointer. */
void *at(uint64_t off);
/* Bump allocation in the shared file; 0 when it is full. */
uint64_t shm_alloc(uint64_t n);
/* Pushes the record at `off` (whose `next` field is `next`) onto the list at `head`. */
void push(_Atomic uint64_t *head, uint64_t *next, uint64_t off);
/* A 64-bit mixer (for hash tables). */
uint64_t mix(uint64_t x);

/* A thread's table (NULL until its first allocation) and its offset. */
struct thread_table {
    struct table *table;
    uint64_t off;
};

/* The calling thread's id, for its table's record (each platform's own). */
uint32_t current_tid(void);

/* Counts an allocation of catalog function `probe` and `size` bytes on the stack `pcs` into the
 * thread's table; `depth` is the number of frames, `cut` 1 when the unwinder stopped at a frame
 * it could not pass and 2 when the stack goes on past the depth limit. */
void table_count(struct thread_table *tt, uint32_t probe, uint64_t size, const uint64_t *pcs,
                 uint32_t depth, int cut);

#endif
