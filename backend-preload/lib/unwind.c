/* Unwinding in process: the mapped objects (and their records in the shared file), their
 * CFI read from .eh_frame_hdr/.eh_frame, frame rules cached per return address (allocflame
 * works out those of code without CFI), and the walk of a stack. */
#include "internal.h"

/* ---------------------------------------------------------------- modules ---- */

struct loaded {
    uint64_t lo, hi;
    const uint8_t *eh_frame_hdr;
    uint64_t record; /* its module record in the shared file */
};

#define MAX_LOADED 4096
static struct loaded loaded[MAX_LOADED];
static _Atomic int loaded_count;
static atomic_flag loaded_lock = ATOMIC_FLAG_INIT;
char exe_path[PATH_MAX];
/* allocflame's variables, kept for the children that are followed. */
char shm_path[PATH_MAX];
char lib_path[PATH_MAX];
char user_preload[PATH_MAX * 2];
char user_preload_var[PATH_MAX * 2 + 16];

static void read_build_id(const struct dl_phdr_info *info, struct module *m) {
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_NOTE) continue;
        const uint8_t *p = (const uint8_t *)(info->dlpi_addr + ph->p_vaddr);
        const uint8_t *end = p + ph->p_memsz;
        while (p + sizeof(ElfW(Nhdr)) <= end) {
            const ElfW(Nhdr) *n = (const ElfW(Nhdr) *)p;
            const uint8_t *name = p + sizeof *n;
            const uint8_t *desc = name + ((n->n_namesz + 3) & ~3u);
            if (n->n_type == NT_GNU_BUILD_ID && n->n_namesz == 4 && memcmp(name, "GNU", 4) == 0 &&
                n->n_descsz <= sizeof m->build_id) {
                memcpy(m->build_id, desc, n->n_descsz);
                m->build_id_len = n->n_descsz;
                return;
            }
            p = desc + ((n->n_descsz + 3) & ~3u);
        }
    }
}

static int known(uint64_t lo) {
    int n = atomic_load_explicit(&loaded_count, memory_order_acquire);
    for (int i = 0; i < n; i++)
        if (loaded[i].lo == lo) return 1;
    return 0;
}

static int add_object(struct dl_phdr_info *info, size_t size, void *data) {
    (void)size;
    (void)data;
    const char *name = info->dlpi_name;
    char resolved[PATH_MAX];
    if (name == NULL || name[0] == 0) {
        name = exe_path;
    } else if (name[0] != '/') {
        /* The vdso, or a library found through a relative path. */
        if (strncmp(name, "linux-vdso", 10) == 0 || strncmp(name, "linux-gate", 10) == 0) return 0;
        if (realpath(name, resolved) == NULL) return 0;
        name = resolved;
    }
    const uint8_t *hdr = NULL;
    for (int i = 0; i < info->dlpi_phnum; i++)
        if (info->dlpi_phdr[i].p_type == PT_GNU_EH_FRAME)
            hdr = (const uint8_t *)(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X)) continue;
        uint64_t lo = info->dlpi_addr + ph->p_vaddr;
        if (known(lo)) continue;
        int n = atomic_load_explicit(&loaded_count, memory_order_relaxed);
        if (n == MAX_LOADED) return 1;
        loaded[n] = (struct loaded){lo, lo + ph->p_memsz, hdr, 0};
        uint64_t off = recording ? shm_alloc(sizeof(struct module) + strlen(name) + 1) : 0;
        loaded[n].record = off;
        atomic_store_explicit(&loaded_count, n + 1, memory_order_release);
        if (off == 0) continue;
        size_t len = strlen(name);
        struct module *m = at(off);
        m->start = lo;
        m->end = lo + ph->p_memsz;
        m->file_offset = ph->p_offset;
        m->path_len = (uint32_t)len;
        memcpy(m->path, name, len + 1);
        read_build_id(info, m);
        struct process *p = at(cur_process);
        push(&p->modules, &m->next, off);
        /* allocflame opens the file while it is the one mapped (it may be rebuilt later). */
        if (atomic_load(&shm->decider)) {
            atomic_fetch_add(&shm->intent_seq, 1);
            syscall(SYS_futex, &shm->intent_seq, FUTEX_WAKE, INT32_MAX, NULL, NULL, 0);
        }
    }
    return 0;
}

/* Looks the mapped objects up again (a library was loaded since). */
void refresh_objects(void) {
    while (atomic_flag_test_and_set_explicit(&loaded_lock, memory_order_acquire)) {
    }
    dl_iterate_phdr(add_object, NULL);
    atomic_flag_clear_explicit(&loaded_lock, memory_order_release);
}

static const struct loaded *object_of(uint64_t pc) {
    for (int pass = 0; pass < 2; pass++) {
        int n = atomic_load_explicit(&loaded_count, memory_order_acquire);
        /* Newest first: a library loaded where an unloaded one was. */
        for (int i = n - 1; i >= 0; i--)
            if (pc >= loaded[i].lo && pc < loaded[i].hi) return &loaded[i];
        if (pass == 0) refresh_objects();
    }
    return NULL;
}

/* ---------------------------------------------------------------- CFI ---- */

/* A frame rule: how to find the caller's frame from a return address's frame. Packed in 64
 * bits for the cache: kind (bits 0-1), CFA base (bit 2: 0 rsp, 1 rbp), rbp rule (bits 3-4),
 * CFA offset (bits 8-39, signed), rbp's offset from the CFA (bits 40-63, signed). */
enum { R_NONE, R_FRAME, R_END, R_UNKNOWN };
enum { BP_SAME, BP_AT, BP_LOST };

struct rule {
    int kind, base_bp, bp;
    int64_t cfa_off, bp_off;
    int verify; /* a guess (a frame pointer where nothing else is known): check the memory */
};

static uint64_t pack(struct rule r) {
    return (uint64_t)r.kind | (uint64_t)r.base_bp << 2 | (uint64_t)r.bp << 3 |
           (uint64_t)(r.verify & 1) << 5 | ((uint64_t)(uint32_t)(int32_t)r.cfa_off) << 8 |
           ((uint64_t)((uint32_t)(int32_t)r.bp_off & 0xffffff)) << 40;
}

static struct rule unpack(uint64_t v) {
    struct rule r;
    r.kind = v & 3;
    r.base_bp = (v >> 2) & 1;
    r.bp = (v >> 3) & 3;
    r.verify = (v >> 5) & 1;
    r.cfa_off = (int32_t)(uint32_t)(v >> 8);
    r.bp_off = ((int64_t)(v << 0) >> 40); /* sign-extends the top 24 bits */
    return r;
}

static uint64_t uleb(const uint8_t **p, const uint8_t *end) {
    uint64_t v = 0;
    int shift = 0;
    while (*p < end) {
        uint8_t b = *(*p)++;
        if (shift < 64) v |= (uint64_t)(b & 0x7f) << shift;
        shift += 7;
        if (!(b & 0x80)) break;
    }
    return v;
}

static int64_t sleb(const uint8_t **p, const uint8_t *end) {
    int64_t v = 0;
    int shift = 0;
    uint8_t b = 0;
    while (*p < end) {
        b = *(*p)++;
        if (shift < 64) v |= (int64_t)(b & 0x7f) << shift;
        shift += 7;
        if (!(b & 0x80)) break;
    }
    if (shift < 64 && (b & 0x40)) v |= -((int64_t)1 << shift);
    return v;
}

/* Reads a pointer encoded as `enc` (DW_EH_PE_*); `data` is the base of datarel encodings.
 * Returns 0 for an encoding it does not know. */
static int encoded(const uint8_t **p, uint8_t enc, uint64_t data, uint64_t *out) {
    if (enc == 0xff) return 0;
    const uint8_t *start = *p;
    uint64_t v;
    switch (enc & 0x0f) {
    case 0x00: memcpy(&v, *p, 8); *p += 8; break;
    case 0x01: v = uleb(p, *p + 10); break;
    case 0x02: { uint16_t x; memcpy(&x, *p, 2); *p += 2; v = x; break; }
    case 0x03: { uint32_t x; memcpy(&x, *p, 4); *p += 4; v = x; break; }
    case 0x04: memcpy(&v, *p, 8); *p += 8; break;
    case 0x09: v = (uint64_t)sleb(p, *p + 10); break;
    case 0x0a: { int16_t x; memcpy(&x, *p, 2); *p += 2; v = (uint64_t)(int64_t)x; break; }
    case 0x0b: { int32_t x; memcpy(&x, *p, 4); *p += 4; v = (uint64_t)(int64_t)x; break; }
    case 0x0c: memcpy(&v, *p, 8); *p += 8; break;
    default: return 0;
    }
    switch (enc & 0x70) {
    case 0x00: break;
    case 0x10: v += (uint64_t)start; break;
    case 0x30: v += data; break;
    default: return 0;
    }
    if (enc & 0x80) memcpy(&v, (const void *)v, 8);
    *out = v;
    return 1;
}

/* The FDE covering `pc` in an object with `.eh_frame_hdr` at `hdr`, or NULL. */
static const uint8_t *find_fde(const uint8_t *hdr, uint64_t pc) {
    if (hdr[0] != 1) return NULL;
    uint8_t ptr_enc = hdr[1], count_enc = hdr[2], table_enc = hdr[3];
    const uint8_t *p = hdr + 4;
    uint64_t eh_frame, count;
    if (!encoded(&p, ptr_enc, (uint64_t)hdr, &eh_frame)) return NULL;
    if (!encoded(&p, count_enc, (uint64_t)hdr, &count)) return NULL;
    if (table_enc != 0x3b || count == 0) return NULL; /* datarel sdata4: what linkers write */
    const int32_t *table = (const int32_t *)p;
    int64_t rel = (int64_t)(pc - (uint64_t)hdr);
    uint64_t lo = 0, hi = count;
    while (hi - lo > 1) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (table[2 * mid] <= rel) lo = mid; else hi = mid;
    }
    if (table[2 * lo] > rel) return NULL;
    return hdr + table[2 * lo + 1];
}

struct cfa_state {
    int base_bp; /* 0: rsp, 1: rbp, -1: another register or an expression */
    int64_t cfa_off;
    int bp;
    int64_t bp_off;
    int ra_undefined;
};

static const uint8_t *length_of(const uint8_t *p, const uint8_t **end) {
    uint32_t len32;
    memcpy(&len32, p, 4);
    if (len32 == 0xffffffffu) {
        uint64_t len64;
        memcpy(&len64, p + 4, 8);
        *end = p + 12 + len64;
        return p + 12;
    }
    *end = p + 4 + len32;
    return p + 4;
}

/* Runs CFA instructions from `p` to `end` for code at `loc`, stopping past `target`. */
static int run_cfa(const uint8_t *p, const uint8_t *end, uint64_t loc, uint64_t target,
                   uint64_t code_align, int64_t data_align, uint8_t fde_enc,
                   struct cfa_state *s, const struct cfa_state *initial) {
    struct cfa_state saved[8];
    int nsaved = 0;
    while (p < end) {
        uint8_t op = *p++;
        uint64_t reg, delta;
        int64_t off;
        switch (op & 0xc0) {
        case 0x40:
            loc += (op & 0x3f) * code_align;
            if (loc > target) return 1;
            continue;
        case 0x80:
            reg = op & 0x3f;
            off = (int64_t)uleb(&p, end) * data_align;
            goto set_offset;
        case 0xc0:
            reg = op & 0x3f;
            goto restore;
        }
        switch (op) {
        case 0x00: break; /* nop */
        case 0x01: if (!encoded(&p, fde_enc, 0, &loc)) return 0; if (loc > target) return 1; break;
        case 0x02: delta = *p++; goto advance;
        case 0x03: { uint16_t x; memcpy(&x, p, 2); p += 2; delta = x; goto advance; }
        case 0x04: { uint32_t x; memcpy(&x, p, 4); p += 4; delta = x; goto advance; }
        case 0x05: reg = uleb(&p, end); off = (int64_t)uleb(&p, end) * data_align; goto set_offset;
        case 0x06: reg = uleb(&p, end); goto restore;
        case 0x07: /* undefined */
            reg = uleb(&p, end);
            if (reg == 16) s->ra_undefined = 1;
            if (reg == 6) s->bp = BP_LOST;
            break;
        case 0x08: reg = uleb(&p, end); if (reg == 6) s->bp = BP_SAME; break;
        case 0x09: /* register */
            reg = uleb(&p, end);
            uleb(&p, end);
            if (reg == 6) s->bp = BP_LOST;
            if (reg == 16) return 0;
            break;
        case 0x0a: if (nsaved == 8) return 0; saved[nsaved++] = *s; break;
        case 0x0b: if (nsaved == 0) return 0; *s = saved[--nsaved]; break;
        case 0x0c: /* def_cfa */
            reg = uleb(&p, end);
            s->cfa_off = (int64_t)uleb(&p, end);
            s->base_bp = reg == 7 ? 0 : reg == 6 ? 1 : -1;
            break;
        case 0x0d:
            reg = uleb(&p, end);
            s->base_bp = reg == 7 ? 0 : reg == 6 ? 1 : -1;
            break;
        case 0x0e: s->cfa_off = (int64_t)uleb(&p, end); break;
        case 0x0f: /* def_cfa_expression */
            s->base_bp = -1;
            p += uleb(&p, end);
            break;
        case 0x10: /* expression */
            reg = uleb(&p, end);
            p += uleb(&p, end);
            if (reg == 6) s->bp = BP_LOST;
            if (reg == 16) return 0;
            break;
        case 0x11: reg = uleb(&p, end); off = sleb(&p, end) * data_align; goto set_offset;
        case 0x12:
            reg = uleb(&p, end);
            s->cfa_off = sleb(&p, end) * data_align;
            s->base_bp = reg == 7 ? 0 : reg == 6 ? 1 : -1;
            break;
        case 0x13: s->cfa_off = sleb(&p, end) * data_align; break;
        case 0x14: case 0x15: /* val_offset: a register's value, not its slot */
            reg = uleb(&p, end);
            if (op == 0x14) uleb(&p, end); else sleb(&p, end);
            if (reg == 6) s->bp = BP_LOST;
            if (reg == 16) return 0;
            break;
        case 0x16: /* val_expression */
            reg = uleb(&p, end);
            p += uleb(&p, end);
            if (reg == 6) s->bp = BP_LOST;
            if (reg == 16) return 0;
            break;
        case 0x2e: uleb(&p, end); break; /* GNU_args_size */
        case 0x2f: /* GNU_negative_offset_extended */
            reg = uleb(&p, end);
            off = -(int64_t)uleb(&p, end) * data_align;
            goto set_offset;
        default: return 0;
        }
        continue;
    advance:
        loc += delta * code_align;
        if (loc > target) return 1;
        continue;
    set_offset:
        if (reg == 6) { s->bp = BP_AT; s->bp_off = off; }
        if (reg == 16 && off != -8) return 0;
        continue;
    restore:
        if (initial) {
            if (reg == 6) { s->bp = initial->bp; s->bp_off = initial->bp_off; }
            if (reg == 16) s->ra_undefined = initial->ra_undefined;
        }
        continue;
    }
    return 1;
}

static struct rule rule_without_cfi(const struct loaded *obj, uint64_t ra);

/* The frame rule at return address `ra` (the call is at ra - 1). */
static struct rule compute_rule(uint64_t ra) {
    struct rule r = {R_UNKNOWN, 0, BP_SAME, 0, 0, 0};
    uint64_t pc = ra - 1;
    const struct loaded *obj = object_of(pc);
    if (obj == NULL) return r;
    if (obj->eh_frame_hdr == NULL) return rule_without_cfi(obj, ra);
    const uint8_t *fde = find_fde(obj->eh_frame_hdr, pc);
    if (fde == NULL) return rule_without_cfi(obj, ra);
    const uint8_t *fde_end;
    const uint8_t *q = length_of(fde, &fde_end);
    int32_t cie_ptr;
    memcpy(&cie_ptr, q, 4);
    if (cie_ptr == 0) return r;
    const uint8_t *cie = q - cie_ptr;
    q += 4;
    const uint8_t *cie_end;
    const uint8_t *c = length_of(cie, &cie_end);
    c += 4; /* CIE id */
    uint8_t version = *c++;
    const char *aug = (const char *)c;
    c += strlen(aug) + 1;
    if (aug[0] == 'e' && aug[1] == 'h') c += 8;
    uint64_t code_align = uleb(&c, cie_end);
    int64_t data_align = sleb(&c, cie_end);
    uint64_t ra_reg = version == 1 ? *c++ : uleb(&c, cie_end);
    if (ra_reg != 16) return r;
    uint8_t fde_enc = 0;
    const uint8_t *cie_insns = c;
    int has_z = 0;
    for (const char *a = aug; *a; a++) {
        if (*a == 'z') {
            uint64_t len = uleb(&c, cie_end);
            cie_insns = c + len;
            has_z = 1;
        } else if (*a == 'R') {
            fde_enc = *c++;
        } else if (*a == 'P') {
            uint8_t enc = *c++;
            uint64_t ignore;
            if (!encoded(&c, enc & 0x7f, 0, &ignore)) return r;
        } else if (*a == 'L') {
            c++;
        } else if (*a == 'S') {
            return r; /* a signal frame: the caller is in the saved context */
        } else if (*a != 'e' && *a != 'h' && *a != 'B' && *a != 'G') {
            break;
        }
    }
    if (!has_z) cie_insns = c;
    uint64_t begin, range;
    if (!encoded(&q, fde_enc, 0, &begin)) return r;
    if (!encoded(&q, fde_enc & 0x0f, 0, &range)) return r;
    if (pc < begin || pc >= begin + range) return rule_without_cfi(obj, ra);
    if (has_z) {
        uint64_t len = uleb(&q, fde_end);
        q += len;
    }
    struct cfa_state s = {0, 8, BP_SAME, 0, 0};
    if (!run_cfa(cie_insns, cie_end, begin, UINT64_MAX, code_align, data_align, fde_enc, &s, NULL))
        return r;
    struct cfa_state initial = s;
    if (!run_cfa(q, fde_end, begin, pc, code_align, data_align, fde_enc, &s, &initial)) return r;
    if (s.ra_undefined) {
        r.kind = R_END;
        return r;
    }
    if (s.base_bp < 0 || s.cfa_off < 8 || s.cfa_off > INT32_MAX) return r;
    if (s.bp == BP_AT && (s.bp_off < -(1 << 23) || s.bp_off >= (1 << 23))) s.bp = BP_LOST;
    r.kind = R_FRAME;
    r.base_bp = s.base_bp;
    r.cfa_off = s.cfa_off;
    r.bp = s.bp;
    r.bp_off = s.bp == BP_AT ? s.bp_off : 0;
    return r;
}

/* Asks allocflame for the rule of a frame without CFI, and waits for the answer (once per return
 * address: the answer is cached like any rule). */
static struct rule rule_without_cfi(const struct loaded *obj, uint64_t ra) {
    struct rule none = {R_UNKNOWN, 0, BP_SAME, 0, 0, 0};
    if (!recording || obj->record == 0 || !atomic_load(&shm->decider)) return none;
    uint64_t off = shm_alloc(sizeof(struct rule_request));
    if (off == 0) return none;
    struct rule_request *q = at(off);
    q->module = obj->record;
    q->ra = ra;
    push(&shm->rule_requests, &q->next, off);
    atomic_fetch_add(&shm->intent_seq, 1);
    syscall(SYS_futex, &shm->intent_seq, FUTEX_WAKE, INT32_MAX, NULL, NULL, 0);
    for (int i = 0; i < 50 && atomic_load(&q->state) == 0; i++) {
        struct timespec t = {0, 100 * 1000 * 1000};
        syscall(SYS_futex, &q->state, FUTEX_WAIT, 0, &t, NULL, 0);
    }
    uint64_t v = atomic_load(&q->answer);
    return v ? unpack(v) : none;
}

struct rule_slot *rules;


static struct rule rule_at(uint64_t ra) {
    uint32_t i = (uint32_t)mix(ra) & (RULE_SLOTS - 1);
    for (int probe = 0; probe < 16; probe++, i = (i + 1) & (RULE_SLOTS - 1)) {
        uint64_t key = atomic_load_explicit(&rules[i].key, memory_order_acquire);
        if (key == ra) {
            uint64_t v = atomic_load_explicit(&rules[i].value, memory_order_acquire);
            if (LIKELY(v != 0)) return unpack(v);
            return compute_rule(ra);
        }
        if (key == 0) {
            struct rule r = compute_rule(ra);
            uint64_t empty = 0;
            if (atomic_compare_exchange_strong(&rules[i].key, &empty, ra))
                atomic_store_explicit(&rules[i].value, pack(r), memory_order_release);
            return r;
        }
    }
    return compute_rule(ra);
}

/* ---------------------------------------------------------------- unwinding ---- */


/* The top of the thread's stack where it is known without allocating: the main thread's. Other
 * threads are bounded by a sanity limit, and guessed frames are checked page by page. */
static uint64_t thread_stack_top(uint64_t sp) {
    if ((pid_t)syscall(SYS_gettid) == getpid()) return (uint64_t)__libc_stack_end + 4096;
    return sp + (1ull << 30);
}

/* Whether [addr, addr + len) is mapped (mincore fails with ENOMEM on a hole). */
static int mapped(uint64_t addr, uint64_t len) {
    uint64_t page = addr & ~4095ull, end = (addr + len + 4095) & ~4095ull;
    unsigned char v[2];
    if (end - page > sizeof v * 4096) return 0;
    return syscall(SYS_mincore, page, end - page, v) == 0;
}

int unwind(struct regs r, uint64_t *pcs, uint32_t max, int *truncated) {
    int n = 0;
    uint64_t pc = r.pc, sp = r.sp, bp = r.bp;
    if (UNLIKELY(stack_hi == 0)) stack_hi = thread_stack_top(sp);
    *truncated = 0;
    while (pc > 4096) {
        if ((uint32_t)n == max) {
            *truncated = 2;
            break;
        }
        pcs[n++] = pc;
        struct rule rule = rule_at(pc);
        if (rule.kind == R_END) break;
        if (rule.kind != R_FRAME) {
            *truncated = 1;
            break;
        }
        /* A zero frame pointer ends the chain (_start clears it). */
        if (rule.base_bp && bp == 0) break;
        uint64_t cfa = (rule.base_bp ? bp : sp) + (uint64_t)rule.cfa_off;
        if (cfa <= sp || cfa > stack_hi || (cfa & 7) ||
            (rule.verify && (!mapped(cfa - 8, 8) ||
                             (rule.bp == BP_AT && !mapped(cfa + (uint64_t)rule.bp_off, 8))))) {
            *truncated = 1;
            break;
        }
        uint64_t next_pc = *(const uint64_t *)(cfa - 8);
        if (rule.bp == BP_AT) bp = *(const uint64_t *)(cfa + rule.bp_off);
        else if (rule.bp == BP_LOST) bp = 0;
        sp = cfa;
        pc = next_pc;
    }
    return n;
}

