//! heaptrack (KDE's, Debian's package) as a count of a program's allocation calls that shares
//! nothing with allocflame: its own injected library, its own unwinder, its own file format.
//!
//! What it counts: each successful `malloc`, `calloc`, `realloc`, `posix_memalign`,
//! `aligned_alloc` and `valloc` of the program (not `memalign`, `pvalloc` or `reallocarray`,
//! nor a call that returned NULL), plus what the libraries that only its own library brings in
//! allocate (libstdc++'s start-up pool, for a program that does not link libstdc++ itself).
//! [`HeaptrackCount::program`] leaves those out; the tests check that the programs they compare
//! call nothing heaptrack does not count.
//!
//! A program allocates differently with a terminal, a pipe or `/dev/null` as its stdout
//! (python3 makes one call more for a pipe): heaptrack's run gets the test's own standard
//! streams, as the programs a backend starts do, and so heaptrack's messages show in the test's
//! output.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{tool_available, TempDir};

/// The functions whose calls heaptrack counts.
pub const COUNTED: [&str; 6] = [
    "malloc",
    "calloc",
    "realloc",
    "posix_memalign",
    "aligned_alloc",
    "valloc",
];

/// Whether heaptrack runs; when it does not, the test says it is skipped and returns early;
/// under `CI=true` it fails.
pub fn available() -> bool {
    tool_available("heaptrack", "Debian's heaptrack")
}

/// What heaptrack counted in one run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeaptrackCount {
    /// Every allocation it recorded.
    pub calls: u64,
    /// Those that a library which only heaptrack's own library brought in made itself (the
    /// allocation function's caller is in it).
    pub own: u64,
}

impl HeaptrackCount {
    /// The program's own allocation calls.
    pub fn program(&self) -> u64 {
        self.calls - self.own
    }
}

/// Runs `argv` under heaptrack, with `env` added to this process's environment (heaptrack
/// takes its own variables out before the program's `main`, so the program sees just that)
/// and this process's standard streams, and counts what it recorded. Its file goes into `dir`.
pub fn count(dir: &TempDir, argv: &[&str], env: &[(&str, &str)]) -> HeaptrackCount {
    let out = dir.join("heaptrack");
    let status = Command::new("heaptrack")
        .arg("-o")
        .arg(&out)
        .args(argv)
        .envs(env.iter().copied())
        .status()
        .expect("run heaptrack");
    assert!(
        status.success(),
        "heaptrack {argv:?}: {status} (its messages are in the test's output)"
    );
    // Compressed with zstd when heaptrack finds it, else with gzip.
    let (file, unpacker) = [("zst", "zstd"), ("gz", "gzip")]
        .into_iter()
        .map(|(ext, tool)| (out.with_extension(ext), tool))
        .find(|(f, _)| f.exists())
        .unwrap_or_else(|| panic!("heaptrack wrote no {}.zst or .gz", out.display()));
    let text = Command::new(unpacker)
        .args(["-dc", "--"])
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("run {unpacker}: {e}"));
    assert!(
        text.status.success(),
        "{unpacker} -dc {}: {}",
        file.display(),
        String::from_utf8_lossy(&text.stderr)
    );
    let program = resolve(argv[0]);
    let own = own_libraries(&program);
    let data = parse(&text.stdout)
        .unwrap_or_else(|e| panic!("{}: not heaptrack's format: {e}", file.display()));
    data.count(&own)
}

/// `program` as `PATH` finds it.
fn resolve(program: &str) -> PathBuf {
    if program.contains('/') {
        return PathBuf::from(program);
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{program} is not in PATH"))
}

/// The libraries `ldd` says `object` loads, canonicalized.
fn ldd(object: &Path) -> HashSet<PathBuf> {
    let out = Command::new("ldd").arg(object).output().expect("run ldd");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let path = l.split("=> ").nth(1)?.split(" (").next()?;
            std::fs::canonicalize(path).ok()
        })
        .collect()
}

/// heaptrack's library and those it loads that `program` does not load itself.
fn own_libraries(program: &Path) -> HashSet<PathBuf> {
    let lib = ["/usr/lib/heaptrack/libheaptrack_preload.so"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            panic!("heaptrack's libheaptrack_preload.so is not where Debian puts it")
        });
    let theirs = ldd(program);
    let mut own: HashSet<PathBuf> = ldd(&lib).difference(&theirs).cloned().collect();
    own.insert(std::fs::canonicalize(&lib).unwrap_or(lib));
    own
}

/// heaptrack's interpreted output: interned strings (`s`), instruction pointers with their
/// module (`i`), trace nodes (`t IP PARENT`), allocation sites (`a SIZE TRACE`) and the
/// allocations (`+ SITE`), numbers in hex; strings, pointers and traces count from 1, sites
/// from 0.
struct Data {
    strings: Vec<String>,
    ip_module: Vec<usize>,
    trace: Vec<(usize, usize)>,
    site_trace: Vec<usize>,
    allocations: Vec<usize>,
}

fn hex(field: Option<&str>, line: &str) -> Result<usize, String> {
    let f = field.ok_or_else(|| format!("a field is missing in `{line}`"))?;
    usize::from_str_radix(f, 16).map_err(|e| format!("`{f}` in `{line}`: {e}"))
}

fn parse(bytes: &[u8]) -> Result<Data, String> {
    let mut d = Data {
        strings: Vec::new(),
        ip_module: Vec::new(),
        trace: Vec::new(),
        site_trace: Vec::new(),
        allocations: Vec::new(),
    };
    let mut at = 0;
    while at < bytes.len() {
        let end = bytes[at..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(bytes.len(), |n| at + n);
        let line = String::from_utf8_lossy(&bytes[at..end]).into_owned();
        let mut next = end + 1;
        let mut fields = line.split(' ');
        match fields.next() {
            // A string is its length (hex) and that many bytes, which may hold a newline.
            Some("s") => {
                let len_field = fields.next().unwrap_or_default();
                let len = hex(Some(len_field), &line)?;
                let start = at + 2 + len_field.len() + 1;
                let stop = (start + len).min(bytes.len());
                d.strings
                    .push(String::from_utf8_lossy(&bytes[start.min(stop)..stop]).into_owned());
                next = stop + 1;
            }
            Some("i") => {
                let _ip = hex(fields.next(), &line)?;
                d.ip_module.push(hex(fields.next(), &line)?);
            }
            Some("t") => {
                let ip = hex(fields.next(), &line)?;
                let parent = hex(fields.next(), &line)?;
                d.trace.push((ip, parent));
            }
            Some("a") => {
                let _size = hex(fields.next(), &line)?;
                d.site_trace.push(hex(fields.next(), &line)?);
            }
            Some("+") => d.allocations.push(hex(fields.next(), &line)?),
            _ => {}
        }
        at = next;
    }
    Ok(d)
}

impl Data {
    fn count(&self, own: &HashSet<PathBuf>) -> HeaptrackCount {
        // The string indices of the modules that are heaptrack's own.
        let own_modules: HashSet<usize> = self
            .strings
            .iter()
            .enumerate()
            .filter(|(_, s)| std::fs::canonicalize(s).is_ok_and(|p| own.contains(&p)))
            .map(|(i, _)| i + 1)
            .collect();
        // A trace's first node is the allocation function's caller. (Frames of heaptrack's
        // own further out are no sign: its `dlopen` wrapper sits in the program's stacks.)
        let made_by_own = |trace: usize| -> bool {
            let ip = trace
                .checked_sub(1)
                .and_then(|t| self.trace.get(t))
                .map(|&(ip, _)| ip);
            let module = ip
                .and_then(|ip| ip.checked_sub(1))
                .and_then(|i| self.ip_module.get(i));
            module.is_some_and(|m| own_modules.contains(m))
        };
        let own = self
            .allocations
            .iter()
            .filter(|&&site| self.site_trace.get(site).is_some_and(|&t| made_by_own(t)))
            .count();
        HeaptrackCount {
            calls: self.allocations.len() as u64,
            own: own as u64,
        }
    }
}
