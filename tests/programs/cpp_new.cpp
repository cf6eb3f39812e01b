// A C++ function that calls `new` (libstdc++'s operator new, built without frame pointers on
// Debian) and a C-style strdup: the callers must appear in the stacks.
// Usage: cpp_new N
#include <cstdlib>
#include <cstring>

struct Widget { long a, b, c; };

__attribute__((noinline)) Widget *make_widget(long i) {
    Widget *w = new Widget{i, i, i};
    asm volatile("" ::: "memory");
    return w;
}

__attribute__((noinline)) char *dup_name(const char *s) {
    char *p = strdup(s);
    asm volatile("" ::: "memory");
    return p;
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 1000;
    for (long i = 0; i < n; i++) delete make_widget(i);
    for (long i = 0; i < n / 2; i++) free(dup_name("allocflame"));
    return 0;
}
