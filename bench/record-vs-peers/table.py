"""Prints bench/record-vs-peers/run's tables from its results file, the median of each column
over the rounds.

  python3 table.py RESULTS PRELOAD CASE...

RESULTS has one line per case and round: "name arg wall_s peak_rss_kb user_s sys_s seen lost
written_bytes lifetime_us", "-" where a value does not apply. PRELOAD is 1 when the preload
backend ran; the CASEs are the run's "name arg" words, in the order it ran them.
"""
import collections
import statistics
import sys

results, preload, cases = sys.argv[1], sys.argv[2] == "1", [tuple(c.split()) for c in sys.argv[3:]]
FIELDS = ("wall", "rss", "user", "sys", "seen", "lost", "written", "life")
NA = "n/a (backend not available)"

rounds = collections.defaultdict(list)
for line in open(results):
    name, arg, *values = line.split()
    rounds[(name, arg)].append(dict(zip(FIELDS, values)))


def med(case, field):
    """The median over the rounds, or None when the case did not run or the value does not apply."""
    values = [r[field] for r in rounds.get(case, []) if r[field] != "-"]
    return statistics.median(float(v) for v in values) if values else None


def calls(arg):
    """Calls alloc_counts makes for N = arg: N malloc, N/4 calloc, N/10 posix_memalign."""
    n = int(arg)
    return n + n // 4 + n // 10


def num(value, fmt):
    return "—" if value is None else format(value, fmt)


def count(value):
    """A count's median (half-way between two rounds' when REPS is even), never "-0"."""
    return "—" if value is None else str(round(value))


def ratio(a, b):
    return None if a is None or not b else a / b


def print_table(header, rows):
    """A markdown table, columns aligned; a row of a case that could not run (na_row) is left
    out of the widths and just says so."""
    sized = [header] + [r for r in rows if len(r) == len(header)]
    widths = [max(len(str(r[i])) for r in sized) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(
        str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(r, widths))) + " |"
    print(line(header))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print(line(r))
    print()


def na_row(label):
    return [label, NA]


def cpu(case):
    """The median over the rounds of user + sys (not the sum of their medians)."""
    values = [float(r["user"]) + float(r["sys"]) for r in rounds.get(case, []) if r["user"] != "-"]
    return statistics.median(values) if values else None


def resources(case):
    """CPU, peak RSS, written: columns every table has."""
    return [num(cpu(case), ".2f"), num(ratio(med(case, "rss"), 1024), ".1f"),
            num(ratio(med(case, "written"), 1024), ".0f")]


def counts_table():
    labels = {"bare": "bare program", "floor": "uprobe floor (perf stat, no stacks)",
              "perf_fp": "guide: perf record -g + script + inferno",
              "perf_dwarf": "guide: perf --call-graph dwarf + script + inferno",
              "heaptrack": "heaptrack record + print + inferno",
              "allocflame": "allocflame record (perf backend) → SVG",
              "allocflame_2k": "allocflame record --stack-bytes 2048 → SVG",
              "preload": "allocflame record --backend preload → SVG"}
    floor = next(med(c, "wall") for c in cases if c[0] == "floor")
    heaptrack = {c[1]: med(c, "wall") for c in cases if c[0] == "heaptrack"}
    header = ["case", "allocs", "seen", "time s", "× floor", "× heaptrack", "CPU s", "peak RSS MB",
              "written KB", "lost"]
    rows = []
    for name in labels:
        for case in (c for c in cases if c[0] == name):
            if name.startswith("preload") and not preload:
                rows.append(na_row(labels[name]))
                continue
            t = med(case, "wall")
            rows.append([labels[name], calls(case[1]), count(med(case, "seen")), num(t, ".2f"),
                         num(ratio(t, floor), ".2f"), num(ratio(t, heaptrack.get(case[1])), ".2f")]
                        + resources(case) + [count(med(case, "lost"))])
    print(f"alloc_counts: N malloc, N/4 calloc, N/10 posix_memalign (seen: what the tool counted; "
          f"lost: allocs − seen, or allocflame's own count of lost events)\n")
    print_table(header, rows)


def perl_table():
    labels = {"perl_bare": "bare perl", "perl_heaptrack": "heaptrack record + print + inferno",
              "perl_perf": "allocflame record (perf backend) → SVG",
              "perl_preload": "allocflame record --backend preload → SVG"}
    keys = next(c[1] for c in cases if c[0] == "perl_bare")
    bare = med(("perl_bare", keys), "wall")
    heaptrack = med(("perl_heaptrack", keys), "wall")
    header = ["case", "seen", "time s", "× bare", "× heaptrack", "CPU s", "peak RSS MB", "written KB", "lost"]
    rows = []
    for name, label in labels.items():
        case = (name, keys)
        if name.endswith("preload") and not preload:
            rows.append(na_row(label))
            continue
        t = med(case, "wall")
        rows.append([label, count(med(case, "seen")), num(t, ".2f"), num(ratio(t, bare), ".2f"),
                     num(ratio(t, heaptrack), ".2f")] + resources(case) + [count(med(case, "lost"))])
    print(f"Debian's perl building a hash of {int(keys):,} keys (seen: what the tool counted; lost: "
          f"allocflame's own count of lost events)\n")
    print_table(header, rows)


def slowdown_table():
    """The target's own time: alone, and while allocflame's preload backend records it."""
    header = ["target", "alone: lifetime s", "preload: whole run s", "× alone",
              "preload: target's lifetime s", "× alone"]
    rows = []
    for bare, under, label in (("bare", "preload", "alloc_counts"), ("perl_bare", "perl_preload", "perl")):
        arg = next(c[1] for c in cases if c[0] == bare)
        if not preload:
            rows.append(na_row(label))
            continue
        alone = ratio(med((bare, arg), "life"), 1e6)
        run = med((under, arg), "wall")
        life = ratio(med((under + "_life", arg), "life"), 1e6)
        rows.append([label, num(alone, ".3f"), num(run, ".2f"), num(ratio(run, alone), ".1f"),
                     num(life, ".3f"), num(ratio(life, alone), ".1f")])
    print("The target's own slowdown under allocflame record --backend preload (lifetime: fork to "
          "reaped, bench/record-vs-peers/lifetime.c)\n")
    print_table(header, rows)


def threads_table():
    labels = {"thr_bare": "bare", "thr_heaptrack": "heaptrack record + print + inferno",
              "thr_preload": "allocflame record --backend preload → SVG"}
    header = ["case", "threads × calls", "seen", "time s", "wall ns/alloc", "CPU s", "CPU ns/alloc",
              "× 1 thread", "CPU ns/alloc above no calls", "× 1 thread", "× heaptrack", "peak RSS MB", "lost"]
    heaptrack = {c[1]: med(c, "wall") for c in cases if c[0] == "thr_heaptrack"}
    rows = []
    for name, label in labels.items():
        one = {}
        for case in sorted((c for c in cases if c[0] == name), key=lambda c: c[1].endswith(":0")):
            t, m = (int(x) for x in case[1].split(":"))
            who = f"{label}, {t} thread{'s' * (t > 1)}" + ("" if m else ", no calls")
            if name == "thr_preload" and not preload:
                rows.append(na_row(who))
                continue
            wall, used, allocs = med(case, "wall"), cpu(case), t * m
            per = ratio(used, allocs / 1e9)
            idle = cpu((name, f"{t}:0"))
            above = None if not m or used is None or idle is None else (used - idle) / allocs * 1e9
            one.setdefault("per", per)
            one.setdefault("above", above)
            rows.append([who, f"{t} × {m}", count(med(case, "seen")), num(wall, ".2f"),
                         num(ratio(wall, allocs / 1e9), ".0f"), num(used, ".2f"), num(per, ".0f"),
                         num(ratio(per, one["per"]), ".2f"), num(above, ".0f"), num(ratio(above, one["above"]), ".2f"),
                         num(ratio(wall, heaptrack.get(case[1])), ".2f"),
                         num(ratio(med(case, "rss"), 1024), ".1f"), count(med(case, "lost"))])
    print("threads.c: the same calls from one thread and from two at once (ns/alloc: time over "
          "threads × calls, whole run to SVG; CPU: user + sys of every process of the case; above no "
          "calls: CPU less the same run's without the calls, over threads × calls)\n")
    print_table(header, rows)


def goals():
    """The issue's goals for the preload backend, each with the figures it is judged on."""
    if not preload:
        print(f"Goals of the preload backend: {NA}")
        return
    verdict = lambda ok: "—" if ok is None else ("met" if ok else "NOT met")
    rows = []
    for label, ours, theirs in (("alloc_counts", "preload", "heaptrack"),
                                ("perl", "perl_preload", "perl_heaptrack")):
        arg = next(c[1] for c in cases if c[0] == theirs)
        t = ratio(med((ours, arg), "wall"), med((theirs, arg), "wall"))
        rows.append([f"{label}: wall time ≤ 0.5× heaptrack's", num(t, ".2f") + "×" * (t is not None),
                     verdict(None if t is None else t <= 0.5)])
        a, b = med((ours, arg), "rss"), med((theirs, arg), "rss")
        rows.append([f"{label}: peak RSS ≤ heaptrack's", f"{num(ratio(a, 1024), '.1f')} vs {num(ratio(b, 1024), '.1f')} MB",
                     verdict(None if a is None or b is None else a <= b)])
    per, above = {}, {}
    for case in (c for c in cases if c[0] == "thr_preload" and not c[1].endswith(":0")):
        t, m = (int(x) for x in case[1].split(":"))
        used, idle = cpu(case), cpu(("thr_preload", f"{t}:0"))
        per[t] = ratio(used, t * m)
        above[t] = None if used is None or idle is None else (used - idle) / (t * m)
    for what, values in (("", per), (", above no calls", above)):
        # At a small N the difference can fall within the noise, even below zero: no verdict then.
        r = None if min(values.get(1) or 0, values.get(2) or 0) <= 0 else values[2] / values[1]
        rows.append([f"threads: CPU per allocation{what}, 2 threads ≤ 1 thread", num(r, ".2f") + "×" * (r is not None),
                     verdict(None if r is None else r <= 1.0)])
    print("Goals of the preload backend (the issue's)\n")
    print_table(["goal", "measured", "verdict"], rows)


counts_table()
perl_table()
slowdown_table()
threads_table()
goals()
