// A C++ request handler: Server::handle(int) (symbol _ZN6Server6handleEi) is called N times and
// makes exactly K allocations with operator new in each call (a vector's room for K pointers,
// 8 K bytes, and K - 1 arrays of 24 bytes); main makes 6 more outside it. Built by the tests with g++ -O1 -fno-omit-frame-pointer -g.
// Usage: handler N K
#include <cstdlib>
#include <memory>
#include <vector>

struct Server {
    long k;
    __attribute__((noinline)) long handle(int id);
};

long Server::handle(int id) {
    std::vector<std::unique_ptr<long[]>> held;
    held.reserve(static_cast<size_t>(k)); // one allocation: room for K - 1 more
    for (long i = 1; i < k; i++) held.emplace_back(new long[3]{id, i, 0});
    __asm__ volatile("" : : "r"(held.data()) : "memory");
    return static_cast<long>(held.size());
}

int main(int argc, char **argv) {
    if (argc < 3) return 2;
    long n = std::atol(argv[1]);
    Server s{std::atol(argv[2])};
    if (s.k < 1) return 2;
    std::vector<std::unique_ptr<long>> setup;
    for (int i = 0; i < 3; i++) setup.emplace_back(new long(i));
    long total = 0;
    for (long i = 0; i < n; i++) total += s.handle(static_cast<int>(i));
    return total == n * (s.k - 1) ? 0 : 1;
}
