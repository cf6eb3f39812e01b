#!/usr/bin/env bash
# Import + render of FlameGraph's 3 MB example perf capture: allocflame against
# `inferno-collapse-perf | inferno-flamegraph`, measured in the same run, interleaved.
# Prints each tool's median wall time over RUNS runs and the ratio (goal: allocflame <= 1.0x).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out="$root/bench/out/render"
runs=${RUNS:-7}
mkdir -p "$out"

input_gz="$root/core/tests/data/peers/flamegraph/example-perf-stacks.txt.gz"
[ -f "$input_gz" ] || input_gz="$root/../shared/peers/flamegraph/example-perf-stacks.txt.gz"
[ -f "$input_gz" ] || { echo "example-perf-stacks.txt.gz not found" >&2; exit 1; }
gzip -dc "$input_gz" > "$out/example-perf-stacks.txt"
input="$out/example-perf-stacks.txt"

tools="$out/tools"
if [ ! -x "$tools/bin/inferno-flamegraph" ]; then
    echo "installing inferno into $tools (once)" >&2
    cargo install --quiet --locked --root "$tools" inferno >&2
fi
(cd "$root" && cargo build --quiet --release -p allocflame)
af="$root/target/release/allocflame"

now() { date +%s.%N; }
declare -a t_af t_inf
for i in $(seq "$runs"); do
    s=$(now); "$af" render --from perf-script "$input" -o "$out/allocflame.svg" > /dev/null 2>&1; e=$(now)
    t_af+=("$(awk -v a="$s" -v b="$e" 'BEGIN{print b-a}')")
    s=$(now); "$tools/bin/inferno-collapse-perf" "$input" | "$tools/bin/inferno-flamegraph" > "$out/inferno.svg"; e=$(now)
    t_inf+=("$(awk -v a="$s" -v b="$e" 'BEGIN{print b-a}')")
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
m_af=$(median "${t_af[@]}"); m_inf=$(median "${t_inf[@]}")
printf '%-44s %10s\n' "tool (median of $runs)" "seconds"
printf '%-44s %10.3f\n' "allocflame render (import + SVG + summary)" "$m_af"
printf '%-44s %10.3f\n' "inferno-collapse-perf | inferno-flamegraph" "$m_inf"
awk -v a="$m_af" -v b="$m_inf" 'BEGIN{printf "ratio allocflame / inferno: %.2fx (goal <= 1.00x)\n", a/b}'
