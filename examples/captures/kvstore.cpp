// A small key-value store that parses requests and answers them: the program behind the
// example capture in this folder. See README.md here for how the capture was made.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

struct Request {
    std::string verb;
    std::string key;
    std::vector<std::string> values;
};

static std::vector<std::string> split_words(const char *line) {
    std::vector<std::string> words;
    const char *p = line;
    while (*p) {
        while (*p == ' ') p++;
        const char *start = p;
        while (*p && *p != ' ') p++;
        if (p > start) words.emplace_back(start, p - start);
    }
    return words;
}

static std::unique_ptr<Request> parse_request(const char *line) {
    auto words = split_words(line);
    auto req = std::make_unique<Request>();
    if (words.size() > 0) req->verb = words[0];
    if (words.size() > 1) req->key = "key:" + words[1] + ":with-a-long-enough-prefix";
    for (size_t i = 2; i < words.size(); i++) req->values.push_back(words[i]);
    return req;
}

struct Store {
    std::map<std::string, std::vector<std::string>> data;

    std::string handle(const Request &r) {
        if (r.verb == "SET") {
            data[r.key] = r.values;
            return "OK";
        }
        auto it = data.find(r.key);
        if (it == data.end()) return "NOT FOUND";
        std::string out;
        for (auto &v : it->second) out += v + ",";
        return out;
    }
};

static char *format_log_line(const std::string &answer) {
    char *buf = (char *)malloc(64 + answer.size());
    snprintf(buf, 64 + answer.size(), "answer=%s", answer.c_str());
    return buf;
}

static void *scratch_buffer(size_t n) {
    void *p = nullptr;
    if (posix_memalign(&p, 64, n) != 0) abort();
    return p;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 500;
    Store store;
    size_t total = 0;
    char line[128];
    for (int i = 0; i < n; i++) {
        snprintf(line, sizeof line, "%s user%d alpha%d beta gamma", i % 3 ? "GET" : "SET", i % 50, i);
        auto req = parse_request(line);
        std::string answer = store.handle(*req);
        char *log = format_log_line(answer);
        total += strlen(log);
        free(log);
        if (i % 10 == 0) {
            int *counters = (int *)calloc(32, sizeof(int));
            void *s = scratch_buffer(4096);
            total += counters[0];
            free(s);
            free(counters);
        }
    }
    printf("%zu\n", total);
    return 0;
}
