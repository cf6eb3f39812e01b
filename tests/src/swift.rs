//! Real Swift programs for the end-to-end tests: built with a real Swift toolchain (Debian
//! trixie's `swiftlang` in the root `.ci/swift-root` makes), run inside that root and on the host,
//! and counted by a second method that shares nothing with allocflame: the kernel's own counters
//! of uprobes placed through tracefs on the root's libc, read by `perf stat` in the same run.
//!
//! The programs (`programs/swift/*.swift`) are compiled `-O` with whole-module optimization, as
//! `swift build -c release` compiles, once per test process, each in two links:
//! - for the root (run as `unshare --mount-proc=ROOT/proc chroot ROOT PROG`: swiftc and the
//!   programs read `/proc`, as they would in a container);
//! - for the host: the root's dynamic linker and libraries named in the binary (`DT_RPATH`, and
//!   the C++ runtime, libm, libgcc_s and libcurl named outright, since the Swift libraries'
//!   `$ORIGIN` run path would otherwise let the host's copies in), run directly.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use crate::{programs_dir, skip};

/// The Swift toolchain's root (a Debian trixie root with `swiftlang`).
pub struct SwiftRoot {
    /// Its path on the host.
    pub root: PathBuf,
}

/// Where `.ci/swift-root` keeps the root (`ALLOCFLAME_SWIFT_ROOT` names another).
fn root_path() -> PathBuf {
    std::env::var_os("ALLOCFLAME_SWIFT_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/var/cache/allocflame/swift".into())
}

/// The Swift toolchain's root, or `None` after saying the test is skipped (a failure under
/// `CI=true`), with how to make it.
pub fn swift_root() -> Option<SwiftRoot> {
    let root = root_path();
    if root.join("usr/bin/swiftc").exists() && root.join(".complete").exists() {
        return Some(SwiftRoot { root });
    }
    skip(&format!(
        "a Swift toolchain at {} (make it with `sudo .ci/swift-root`: Debian trixie's swiftlang in a debootstrap root, ~530 MB download)",
        root.display()
    ));
    None
}

/// A Swift test program, built for the root and for the host.
#[derive(Clone, Debug)]
pub struct SwiftProgram {
    /// Its name (the source's file stem; the process name it runs under).
    pub name: String,
    /// The binary for the root, as a path inside the root.
    pub inside: PathBuf,
    /// The binary for the host, linked to the root's dynamic linker and libraries.
    pub host: PathBuf,
}

/// How a test runs a Swift program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// Spawned inside the root (`unshare --mount-proc=ROOT/proc chroot ROOT PROG`).
    InRoot,
    /// The host-linked binary, spawned directly.
    OnHost,
}

impl SwiftRoot {
    /// `argv` run inside the root with its own `/proc` mounted (in a mount namespace of its
    /// own, so nothing stays mounted).
    pub fn inside(&self, argv: &[&str]) -> Command {
        let mut cmd = Command::new("unshare");
        cmd.arg(format!("--mount-proc={}", self.root.join("proc").display()))
            .arg("chroot")
            .arg(&self.root)
            .args(argv);
        cmd
    }

    /// The root's libc, which every Swift program here maps.
    pub fn libc(&self) -> PathBuf {
        self.root.join("usr/lib/x86_64-linux-gnu/libc.so.6")
    }

    /// The command line that runs `prog` as `variant` says.
    pub fn argv(&self, prog: &SwiftProgram, variant: Variant) -> Vec<String> {
        match variant {
            Variant::InRoot => vec![
                "unshare".into(),
                format!("--mount-proc={}", self.root.join("proc").display()),
                "chroot".into(),
                self.root.to_string_lossy().into_owned(),
                prog.inside.to_string_lossy().into_owned(),
            ],
            Variant::OnHost => vec![prog.host.to_string_lossy().into_owned()],
        }
    }

    /// Builds `programs/swift/<name>.swift` (once per test process).
    pub fn build(&self, name: &str) -> SwiftProgram {
        self.build_as(name, false)
    }

    /// Builds `programs/swift/<name>.swift` with debug info (`-O -g`, a release build with
    /// DWARF), as `<name>-g` (once per test process).
    pub fn build_with_debug_info(&self, name: &str) -> SwiftProgram {
        self.build_as(name, true)
    }

    fn build_as(&self, name: &str, debug: bool) -> SwiftProgram {
        static BUILT: OnceLock<Mutex<HashMap<String, Arc<OnceLock<SwiftProgram>>>>> =
            OnceLock::new();
        let slot = BUILT
            .get_or_init(Mutex::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(format!("{name}{}", if debug { "-g" } else { "" }))
            .or_default()
            .clone();
        slot.get_or_init(|| self.compile(name, debug)).clone()
    }

    fn compile(&self, name: &str, debug: bool) -> SwiftProgram {
        let source_name = name;
        let name = &format!("{name}{}", if debug { "-g" } else { "" });
        let inside_dir = PathBuf::from(format!("/tmp/allocflame-swift-{}", std::process::id()));
        let dir = self.root.join(inside_dir.strip_prefix("/").unwrap());
        self.remove_stale_build_dirs();
        std::fs::create_dir_all(&dir).unwrap();
        let source = programs_dir()
            .join("swift")
            .join(format!("{source_name}.swift"));
        let text = std::fs::read_to_string(&source).unwrap();
        std::fs::write(dir.join(format!("{source_name}.swift")), &text).unwrap();
        let inside = |f: &str| inside_dir.join(f).to_string_lossy().into_owned();
        // `@main` needs -parse-as-library; top-level code must not have it.
        let library: &[&str] = if text.contains("@main") {
            &["-parse-as-library"]
        } else {
            &[]
        };
        let object = inside(&format!("{name}.o"));
        let mut compile = vec!["swiftc", "-O", "-wmo", "-module-name", "main"];
        if debug {
            compile.push("-g");
        }
        compile.extend_from_slice(library);
        let src = inside(&format!("{source_name}.swift"));
        compile.extend_from_slice(&["-c", &src, "-o", &object]);
        self.run(&inside_dir, &compile);
        let in_root = inside(name);
        self.run(&inside_dir, &["swiftc", &object, "-o", &in_root]);
        let host_name = format!("{name}.host");
        let host_inside = inside(&host_name);
        let r = self.root.to_string_lossy();
        let lib = "/usr/lib/x86_64-linux-gnu";
        let link = [
            "swiftc".to_owned(),
            object.clone(),
            "-o".into(),
            host_inside,
            "-Xlinker".into(),
            "--disable-new-dtags".into(),
            "-Xlinker".into(),
            format!("--dynamic-linker={r}/lib64/ld-linux-x86-64.so.2"),
            "-Xlinker".into(),
            format!("-rpath={r}/usr/libexec/swift/lib/swift/linux:{r}{lib}"),
            "-Xlinker".into(),
            "--no-as-needed".into(),
        ]
        .into_iter()
        .chain(
            [
                "libstdc++.so.6",
                "libm.so.6",
                "libgcc_s.so.1",
                "libcurl.so.4",
            ]
            .iter()
            .flat_map(|l| ["-Xlinker".to_owned(), format!("{lib}/{l}")]),
        )
        .collect::<Vec<_>>();
        self.run(
            &inside_dir,
            &link.iter().map(String::as_str).collect::<Vec<_>>(),
        );
        SwiftProgram {
            name: name.to_owned(),
            inside: PathBuf::from(in_root),
            host: dir.join(host_name),
        }
    }

    /// Deletes the build directories of test processes that are gone.
    fn remove_stale_build_dirs(&self) {
        let Ok(entries) = std::fs::read_dir(self.root.join("tmp")) else {
            return;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix("allocflame-swift-") {
                if !Path::new(&format!("/proc/{pid}")).exists() {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
    }

    /// Runs `argv` in the root, with its temporary files in `tmp` (inside the root).
    fn run(&self, tmp: &Path, argv: &[&str]) {
        let tmpdir = format!("TMPDIR={}", tmp.display());
        let argv: Vec<&str> = ["env", tmpdir.as_str()]
            .into_iter()
            .chain(argv.iter().copied())
            .collect();
        let out = self
            .inside(&argv)
            .output()
            .expect("run a command in the Swift root");
        assert!(
            out.status.success(),
            "{argv:?} in {} failed: {}",
            self.root.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `names` demangled by the toolchain's own `swift demangle` (`--simplified` or in full),
    /// one output line per name.
    pub fn swift_demangle(&self, names: &[String], simplified: bool) -> Vec<String> {
        use std::io::Write;
        let mut argv = vec!["/usr/libexec/swift/bin/swift-demangle"];
        if simplified {
            argv.push("--simplified");
        }
        let mut child = self
            .inside(&argv)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("run swift-demangle");
        let mut input = child.stdin.take().unwrap();
        let text: String = names.iter().map(|n| format!("{n}\n")).collect();
        let writer = std::thread::spawn(move || input.write_all(text.as_bytes()));
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap().unwrap();
        assert!(out.status.success(), "swift-demangle failed");
        let lines: Vec<String> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect();
        assert_eq!(lines.len(), names.len(), "swift-demangle printed {lines:?}");
        lines
    }
}

/// Whether `name` is a Swift symbol (what `swift demangle` demangles).
pub fn is_swift_symbol(name: &str) -> bool {
    ["$s", "_$s", "$S", "_$S", "$e", "_$e", "_T0"]
        .iter()
        .any(|p| name.starts_with(p))
}

/// Allocation calls counted by the kernel: uprobes written into tracefs' `uprobe_events` at
/// the file offsets `nm -D` and `readelf -l` give for glibc's allocation functions in one libc,
/// counted by `perf stat -a` around a command. System-wide: the libc is the Swift root's, which
/// only the programs of the (one at a time) Swift tests map, so every call into it is the
/// program's. Counting the command's process tree through inherited counters instead came up
/// short now and then (1,363 calls of the HTTP program in 4 of 16 runs, by both backends'
/// equal totals), or at zero. Removed when dropped.
pub struct KernelCount {
    group: String,
    events: Vec<(String, Option<&'static str>)>,
}

/// glibc's allocation functions (the probe catalog's), and the calls among them that are one
/// allocation (glibc's malloc.c): `realloc(NULL, n)` ends in `malloc`, `reallocarray` calls
/// `realloc`, and `posix_memalign`, `aligned_alloc` and `memalign` with an alignment malloc's
/// own covers (≤ 16) call `malloc`. Each such relay is counted by an extra probe with a filter
/// on the argument, and taken off.
const FUNCTIONS: [&str; 9] = [
    "malloc",
    "calloc",
    "realloc",
    "reallocarray",
    "posix_memalign",
    "aligned_alloc",
    "memalign",
    "valloc",
    "pvalloc",
];
/// (event, function, argument fetched, filter): the relayed calls.
const RELAYED: [(&str, &str, &str, &str); 4] = [
    ("realloc_null", "realloc", "ptr=%di:u64", "ptr == 0"),
    (
        "posix_memalign_small",
        "posix_memalign",
        "align=%si:u64",
        "align <= 16",
    ),
    (
        "aligned_alloc_small",
        "aligned_alloc",
        "align=%di:u64",
        "align <= 16",
    ),
    ("memalign_small", "memalign", "align=%di:u64", "align <= 16"),
];

impl KernelCount {
    /// Places the probes on `libc`.
    pub fn new(libc: &Path) -> KernelCount {
        static N: AtomicUsize = AtomicUsize::new(0);
        let group = format!(
            "afcount_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let tool = |argv: &[&str]| -> String {
            let out = Command::new(argv[0])
                .args(&argv[1..])
                .arg(libc)
                .output()
                .unwrap_or_else(|e| panic!("run {} (binutils): {e}", argv[0]));
            assert!(out.status.success(), "{argv:?} {}", libc.display());
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        let hex = |t: &str| u64::from_str_radix(t.trim_start_matches("0x"), 16).ok();
        // PT_LOAD segments: (file offset, address, size in the file).
        let loads: Vec<(u64, u64, u64)> = tool(&["readelf", "-lW"])
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                if f.first() != Some(&"LOAD") || f.len() < 5 {
                    return None;
                }
                Some((hex(f[1])?, hex(f[2])?, hex(f[4])?))
            })
            .collect();
        let symbols = tool(&["nm", "-D", "--defined-only"]);
        // Offsets, not names: `perf probe -a calloc` also probes libc's own PLT entry of calloc,
        // which would count a call through it twice.
        let offset = |function: &str| -> u64 {
            let addr = symbols
                .lines()
                .find_map(|l| {
                    let mut f = l.split_whitespace();
                    let (addr, _, name) = (f.next()?, f.next()?, f.next()?);
                    if name.split('@').next() == Some(function) {
                        hex(addr)
                    } else {
                        None
                    }
                })
                .unwrap_or_else(|| panic!("{function} is not in {}", libc.display()));
            let &(off, vaddr, _) = loads
                .iter()
                .find(|&&(_, vaddr, size)| addr >= vaddr && addr < vaddr + size)
                .unwrap_or_else(|| panic!("{function} is in no segment of {}", libc.display()));
            addr - vaddr + off
        };
        let mut count = KernelCount {
            group,
            events: Vec::new(),
        };
        for f in FUNCTIONS {
            count.add(libc, f, offset(f), "", None);
        }
        for (event, f, arg, filter) in RELAYED {
            count.add(libc, event, offset(f), arg, Some(filter));
        }
        count
    }

    fn add(
        &mut self,
        libc: &Path,
        event: &str,
        offset: u64,
        arg: &str,
        filter: Option<&'static str>,
    ) {
        let line = format!(
            "p:{}/{event} {}:{offset:#x} {arg}\n",
            self.group,
            libc.display()
        );
        write_uprobe_events(&line);
        self.events
            .push((format!("{}:{event}", self.group), filter));
    }

    /// The events of the allocation functions themselves (one per call into each; no event of
    /// the relays), for `perf record -e`.
    pub fn function_events(&self) -> Vec<String> {
        self.events
            .iter()
            .filter(|(_, filter)| filter.is_none())
            .map(|(e, _)| e.clone())
            .collect()
    }

    /// Runs `argv` under `perf stat` with the probes counted; returns its output and the
    /// allocations counted.
    pub fn run(&self, argv: &[String], stat_file: &Path) -> (Output, u64) {
        let mut cmd = Command::new("perf");
        cmd.args(["stat", "-a", "-x,", "-o"]).arg(stat_file);
        for (event, filter) in &self.events {
            cmd.args(["-e", event]);
            if let Some(f) = filter {
                cmd.args(["--filter", f]);
            }
        }
        cmd.arg("--").args(argv);
        let out = cmd.output().expect("run perf stat");
        let text = std::fs::read_to_string(stat_file).unwrap_or_default();
        let mut counts: HashMap<String, u64> = HashMap::new();
        for line in text.lines() {
            let f: Vec<&str> = line.split(',').collect();
            let Some((group, event)) = f.get(2).and_then(|e| e.split_once(':')) else {
                continue;
            };
            if group == self.group {
                let n = f[0]
                    .parse()
                    .unwrap_or_else(|_| panic!("perf stat could not count {}: {line}", f[2]));
                counts.insert(event.to_owned(), n);
            }
        }
        let get = |e: &str| {
            *counts.get(e).unwrap_or_else(|| {
                panic!(
                    "perf stat printed no count of {e}: {text}{}",
                    String::from_utf8_lossy(&out.stderr)
                )
            })
        };
        let calls: u64 = FUNCTIONS.iter().map(|f| get(f)).sum();
        let relayed = get("reallocarray") + RELAYED.iter().map(|(e, ..)| get(e)).sum::<u64>();
        (out, calls - relayed)
    }
}

/// Appends `line` to tracefs' `uprobe_events` (appending adds or deletes one probe).
fn write_uprobe_events(line: &str) {
    use std::io::Write;
    let path = [
        "/sys/kernel/tracing/uprobe_events",
        "/sys/kernel/debug/tracing/uprobe_events",
    ]
    .into_iter()
    .find(|p| Path::new(p).exists())
    .expect("tracefs (mount -t tracefs nodev /sys/kernel/tracing)");
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    f.write_all(line.as_bytes())
        .unwrap_or_else(|e| panic!("{path}: {line:?}: {e}"));
}

impl Drop for KernelCount {
    fn drop(&mut self) {
        for (event, _) in &self.events {
            let line = format!("-:{}\n", event.replace(':', "/"));
            let _ = std::panic::catch_unwind(|| write_uprobe_events(&line));
        }
    }
}

/// The names of each function of `lib` that has several (aliases such as glibc's `fwrite` and
/// `_IO_fwrite`), mapped to the shortest: tools name such a function by any of its names.
pub fn aliases(lib: &Path) -> HashMap<String, String> {
    let out = Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(lib)
        .output()
        .expect("run nm (binutils)");
    let mut by_addr: HashMap<String, Vec<String>> = HashMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if let [addr, kind, name] = f[..] {
            if kind.eq_ignore_ascii_case("t") || kind == "W" || kind == "i" {
                let name = name.split('@').next().unwrap_or(name).to_owned();
                by_addr.entry(addr.to_owned()).or_default().push(name);
            }
        }
    }
    let mut map = HashMap::new();
    for mut names in by_addr.into_values().filter(|n| n.len() > 1) {
        names.sort_by(|a, b| (a.len(), a).cmp(&(b.len(), b)));
        names.dedup();
        for n in &names {
            map.insert(n.clone(), names[0].clone());
        }
    }
    map
}
