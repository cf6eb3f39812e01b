//! The D script: entry and return probes on every probed function, a per-thread depth guard so
//! that nested allocator calls count once, and `printa` of the aggregations in the sectioned
//! format that [`crate::output`] reads back.
//!
//! No cfg here: the script is generated (and tested) on every platform.
//!
//! A limit of the depth guard: DTrace fires a function's return probe at a tail call out of
//! it, so a probed function that tail-calls another probed function would let the callee
//! count again. libmalloc's exported functions reach the zones through internal helpers
//! (`_malloc_zone_malloc`, …), not through each other by tail calls, on the paths the macOS
//! end-to-end test checks (`malloc` N times along one stack must give N, not 2N).

use std::fmt::Write as _;

use allocflame_core::probes::{catalog, Platform, Probe, SizeArg};

/// The deepest user stack DTrace is asked for, whatever `--max-depth` says. Every unique stack
/// costs `8 * ustackframes` bytes of aggregation buffer per aggregation, so a cap keeps a deep
/// `--max-depth` from exhausting `aggsize`.
pub const MAX_USTACKFRAMES: usize = 1024;

/// Per-CPU aggregation buffer. DTrace shrinks it on its own (`bufresize=auto`) when the kernel
/// cannot give that much, rather than failing.
pub const AGGSIZE: &str = "32m";
/// How often dtrace drains the per-CPU aggregation buffers. The default, 1 Hz, lets a busy
/// allocator fill them between reads, and every update that finds the buffer full is a drop.
pub const AGGRATE: &str = "100ms";
/// The principal buffer only carries the END clause's records.
pub const BUFSIZE: &str = "4m";
/// The space for `self->` variables: one depth counter per thread inside an allocator. Running
/// out shows as "dynamic variable drops", which would break the nesting guard.
pub const DYNVARSIZE: &str = "16m";

/// The first word of every section line the END clause prints.
pub const MARKER: &str = "allocflame-dtrace";
/// The version of the output format, printed on every marker line.
pub const FORMAT_VERSION: u32 = 1;
/// The prefix of the per-probe lines (`allocflame-probe MODULE FUNCTION VALUE`).
pub const PROBE_LINE: &str = "allocflame-probe";

/// The prefix of the line that names the traced pid (`allocflame-target PID`), printed by
/// BEGIN before the sections.
pub const TARGET_LINE: &str = "allocflame-target";

/// The sections of the output, in the order the END clause prints them.
pub const SECTIONS: [&str; 5] = ["calls", "call-bytes", "allocs", "bytes", "end"];

/// The probes a DTrace recording uses for `probes`.
///
/// The command line fills [`allocflame_core::source::RecordOptions::probes`] with the catalog of
/// the platform it runs on. A dry run on Linux therefore hands over the glibc catalog, which
/// means nothing to macOS; it is replaced by the macOS catalog, and the probes the user added
/// after it are kept.
pub fn macos_probes(probes: &[Probe]) -> Vec<Probe> {
    let glibc = catalog(Platform::LinuxGlibc);
    if probes.len() >= glibc.len() && probes[..glibc.len()] == glibc[..] {
        let mut out = catalog(Platform::MacOs);
        out.extend(probes[glibc.len()..].iter().cloned());
        out
    } else {
        probes.to_vec()
    }
}

/// The DTrace module name (the second field of a `pid` probe description) of a probe's library.
///
/// The `pid` provider names a module by the file name of the image: a path keeps its last
/// component, a bare `lib` name gets the `.dylib` suffix (`libswiftCore` →
/// `libswiftCore.dylib`), `libc` means `libsystem_c.dylib`, and an empty library or `*` matches
/// every module. Framework names (`Foundation`) and `a.out` (the main executable) stay as they are.
///
/// ```
/// use allocflame_backend_dtrace::script::module_name;
/// assert_eq!(module_name("libsystem_malloc.dylib"), "libsystem_malloc.dylib");
/// assert_eq!(module_name("libswiftCore"), "libswiftCore.dylib");
/// assert_eq!(module_name("/opt/lib/libjemalloc.2.dylib"), "libjemalloc.2.dylib");
/// assert_eq!(module_name("*"), "");
/// ```
pub fn module_name(library: &str) -> String {
    let base = library.rsplit('/').next().unwrap_or(library);
    match base {
        "" | "*" => String::new(),
        "libc" => "libsystem_c.dylib".to_owned(),
        "libmalloc" | "libsystem_malloc" => "libsystem_malloc.dylib".to_owned(),
        _ if base.starts_with("lib") && !base.contains('.') => format!("{base}.dylib"),
        // Linux sonames (`libc.so.6`) in a user probe: the macOS library has the bare name.
        _ if base.contains(".so") => {
            let stem = &base[..base.find(".so").unwrap_or(base.len())];
            module_name(stem)
        }
        _ => base.to_owned(),
    }
}

/// Why a probe cannot be written into a D probe description, if it cannot.
pub fn check_probe(probe: &Probe) -> Result<(), String> {
    // A description is `provider:module:function:name`: a ':' splits it, whitespace, braces,
    // '/' and ',' end it, and '$' starts a macro variable. Glob characters are fine.
    let bad = |s: &str| {
        s.chars()
            .find(|c| c.is_whitespace() || matches!(c, ':' | '{' | '}' | '/' | ',' | '$' | '"'))
    };
    let module = module_name(&probe.library);
    if let Some(c) = bad(&module) {
        return Err(format!(
            "probe `{probe}`: the DTrace module name `{module}` holds `{c}`, which a probe description cannot"
        ));
    }
    if let Some(c) = bad(&probe.function) {
        return Err(format!(
            "probe `{probe}`: the function name holds `{c}`, which a DTrace probe description cannot (use a `*` glob in its place)"
        ));
    }
    Ok(())
}

/// The D expression of an allocation's size.
pub fn size_expr(size: SizeArg) -> String {
    match size {
        SizeArg::None => "0".to_owned(),
        SizeArg::Arg(i) => format!("arg{i}"),
        SizeArg::Product(a, b) => format!("arg{a} * arg{b}"),
    }
}

fn description(probe: &Probe, name: &str) -> String {
    format!(
        "pid$target:{}:{}:{name}",
        module_name(&probe.library),
        probe.function
    )
}

/// The `ustackframes` value for a `--max-depth` of `max_depth`.
pub fn ustackframes(max_depth: usize) -> usize {
    max_depth.clamp(1, MAX_USTACKFRAMES)
}

/// The D script for `probes` (already mapped with [`macos_probes`] and checked with
/// [`check_probe`]), asking for `max_depth` frames per stack. `title` names the target in the
/// header comment. Without `stacks` only the per-function totals are kept (`allocflame count`).
/// With `duration_secs`, a `tick` clause ends the recording.
pub fn generate(
    probes: &[Probe],
    max_depth: usize,
    stacks: bool,
    duration_secs: Option<u64>,
    title: &str,
) -> String {
    let mut s = String::new();
    // `writeln!` into a String cannot fail.
    let mut line = |text: &str| {
        s.push_str(text);
        s.push('\n');
    };
    line("/*");
    line(&format!(
        " * allocflame: allocation stacks of {}.",
        title.replace("*/", "* /")
    ));
    line(" * Generated; run as root with `dtrace -Z -s FILE -c PROGRAM` (or -p PID).");
    line(" * -Z lets descriptions of functions missing from this macOS (malloc_type_* before");
    line(" * macOS 14, a user probe's library not loaded yet) match nothing instead of failing.");
    line(" */");
    line("#pragma D option quiet");
    line(&format!(
        "#pragma D option ustackframes={}",
        ustackframes(max_depth)
    ));
    line(&format!("#pragma D option aggsize={AGGSIZE}"));
    line(&format!("#pragma D option aggrate={AGGRATE}"));
    line(&format!("#pragma D option bufsize={BUFSIZE}"));
    line(&format!("#pragma D option dynvarsize={DYNVARSIZE}"));
    line("#pragma D option bufresize=auto");
    line("");
    // Declared, so that the predicates below may read it before any clause assigns it.
    line("self int allocflame_depth;");
    line("");
    // The traced pid: the process a spawned recording must not leave behind, and the pid of
    // its stacks.
    line("BEGIN");
    line("{");
    line(&format!("\tprintf(\"{TARGET_LINE} %d\\n\", $target);"));
    line("}");
    line("");
    line("/*");
    line(" * Count the outermost allocator call of each thread only: malloc calling");
    line(" * malloc_zone_malloc, or realloc(NULL, n) calling malloc, is one allocation, at the");
    line(" * stack of the outer call. The clauses of a probe run in program order, so these see");
    line(" * the depth before the increment further down.");
    line(" */");
    for probe in probes {
        line(&description(probe, "entry"));
        line("/self->allocflame_depth == 0/");
        line("{");
        let size = size_expr(probe.size);
        if stacks {
            line("\t@allocflame_allocs[ustack()] = count();");
            line(&format!("\t@allocflame_bytes[ustack()] = sum({size});"));
        }
        line("\t@allocflame_calls[probemod, probefunc] = count();");
        line(&format!(
            "\t@allocflame_callbytes[probemod, probefunc] = sum({size});"
        ));
        line("}");
        line("");
    }
    if !probes.is_empty() {
        let list = |name: &str| {
            probes
                .iter()
                .map(|p| description(p, name))
                .collect::<Vec<_>>()
                .join(",\n")
        };
        line(&list("entry"));
        line("{");
        line("\tself->allocflame_depth++;");
        line("}");
        line("");
        line(&list("return"));
        // A thread already inside an allocator when tracing began returns without an entry.
        line("/self->allocflame_depth > 0/");
        line("{");
        line("\tself->allocflame_depth--;");
        line("}");
        line("");
    }
    if let Some(secs) = duration_secs {
        line(&format!("tick-{}s", secs.max(1)));
        line("{");
        line("\texit(0);");
        line("}");
        line("");
    }
    // Sections with marker lines, so that the reader knows which aggregation a stack belongs
    // to and whether the END clause ran to its end. Counts and bytes are printed by separate
    // printa calls and joined by stack when read back.
    line("END");
    line("{");
    let marker = |s: &mut String, section: &str| {
        let _ = writeln!(
            s,
            "\tprintf(\"\\n{MARKER} {FORMAT_VERSION} {section}\\n\");"
        );
    };
    let body = &mut s;
    marker(body, SECTIONS[0]);
    let _ = writeln!(
        body,
        "\tprinta(\"{PROBE_LINE} %s %s %@d\\n\", @allocflame_calls);"
    );
    marker(body, SECTIONS[1]);
    let _ = writeln!(
        body,
        "\tprinta(\"{PROBE_LINE} %s %s %@d\\n\", @allocflame_callbytes);"
    );
    marker(body, SECTIONS[2]);
    // An aggregation the script never assigns cannot be named in printa.
    if stacks && !probes.is_empty() {
        body.push_str("\tprinta(\"%k\\n%@d\\n\", @allocflame_allocs);\n");
    }
    marker(body, SECTIONS[3]);
    if stacks && !probes.is_empty() {
        body.push_str("\tprinta(\"%k\\n%@d\\n\", @allocflame_bytes);\n");
    }
    marker(body, SECTIONS[4]);
    body.push_str("}\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linux_catalog_becomes_macos_and_user_probes_stay() {
        let mut probes = catalog(Platform::LinuxGlibc);
        probes.push("libswiftCore:swift_allocObject:1".parse().unwrap());
        let mapped = macos_probes(&probes);
        assert_eq!(mapped.len(), catalog(Platform::MacOs).len() + 1);
        assert_eq!(mapped.last().unwrap().function, "swift_allocObject");
        let custom = vec![Probe::new("libfoo", "foo_alloc", SizeArg::Arg(0))];
        assert_eq!(macos_probes(&custom), custom);
    }

    #[test]
    fn module_names() {
        assert_eq!(module_name("libc"), "libsystem_c.dylib");
        assert_eq!(module_name("libc.so.6"), "libsystem_c.dylib");
        assert_eq!(module_name("Foundation"), "Foundation");
        assert_eq!(module_name("a.out"), "a.out");
        assert_eq!(module_name(""), "");
    }

    #[test]
    fn bad_probe_names_are_refused() {
        assert!(check_probe(&Probe::new("libfoo", "$s4main3fooyyF", SizeArg::None)).is_err());
        assert!(check_probe(&Probe::new("my lib", "f", SizeArg::None)).is_err());
        assert!(check_probe(&Probe::new("libfoo", "foo_*", SizeArg::None)).is_ok());
    }

    #[test]
    fn sizes_and_depth() {
        assert_eq!(size_expr(SizeArg::Product(1, 2)), "arg1 * arg2");
        assert_eq!(size_expr(SizeArg::None), "0");
        assert_eq!(ustackframes(0), 1);
        assert_eq!(ustackframes(100_000), MAX_USTACKFRAMES);
    }
}
