/* A tiny allocator in a library a program loads with dlopen: a bump allocator that defines
 * malloc and calloc (never freeing), as an allocator plugin would. Its calloc does not call
 * malloc (an inner call through the global scope would reach libc's). Built -shared -fPIC. */
#include <stddef.h>
#include <sys/mman.h>

static char *arena, *next, *end;

static void *bump(size_t n) {
    n = (n + 15) & ~(size_t)15;
    if (!arena || next + n > end) {
        size_t len = n > (1 << 20) ? n : (1 << 20);
        arena = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (arena == MAP_FAILED) return NULL;
        next = arena;
        end = arena + len;
    }
    void *p = next;
    next += n;
    return p;
}

void *malloc(size_t n) { return bump(n); }

/* Fresh anonymous pages are zero already. */
void *calloc(size_t k, size_t n) { return bump(k * n); }
