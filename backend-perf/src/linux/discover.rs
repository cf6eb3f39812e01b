//! Finding the allocator a process really uses, from its own mappings: whatever object defines
//! the catalog's functions (the system libc, another root's libc, musl, a static executable,
//! a preloaded or linked-in jemalloc), read through `/proc/PID/map_files` so that a file in
//! another root or mount namespace is the very file mapped. Also finds the dynamic linker's
//! `_dl_debug_state`, which it calls once the libraries it loads are mapped and before any of
//! them runs (at start-up and at each `dlopen`): the recorder stops the process there to probe
//! what was just loaded.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use allocflame_core::probes::Probe;
use object::{Object, ObjectSegment, ObjectSymbol};
use rustc_hash::{FxHashMap, FxHashSet};

use super::resolve::matches_library;
use crate::interpret::Location;
use crate::procfs;

/// The function the dynamic linker calls after mapping libraries and before running them.
const DEBUG_STATE: &str = "_dl_debug_state";

/// A probed function found in a file: file offset, size, the probes placed there, its name.
type Function = (u64, u64, Vec<usize>, String);

/// What was learned of one file, once.
struct Analyzed {
    /// A path to the held file that perf_event_open resolves (`/proc/self/fd/N`).
    open_path: PathBuf,
    /// File offset of `_dl_debug_state`, in a dynamic linker.
    debug_state: Option<u64>,
}

/// A file opened from a process's mappings, held for unwinding and symbolization.
pub(crate) struct Opened {
    pub inode: (u64, u64),
    pub file: Arc<File>,
}

/// Where a process's dynamic linker tells that it mapped libraries.
#[derive(Clone)]
pub(crate) struct DebugState {
    /// The path to open the event by.
    pub open_path: PathBuf,
    /// File offset of `_dl_debug_state`.
    pub offset: u64,
    /// The dynamic linker's executable mappings in the process, where a task stopped there is.
    pub text: Vec<(u64, u64)>,
}

/// What one look at a process found.
#[derive(Default)]
pub(crate) struct Scan {
    /// Files seen for the first time.
    pub opened: Vec<Opened>,
    /// New probe locations, each with the path to open its events by.
    pub locations: Vec<(Location, PathBuf)>,
    /// The process's `_dl_debug_state`.
    pub debug_state: Option<DebugState>,
    /// One line per object newly probed, for the report.
    pub notes: Vec<String>,
}

/// Every file looked at during a recording, by device and inode.
pub(crate) struct Discovery {
    probes: Vec<Probe>,
    user: Vec<bool>,
    files: FxHashMap<(u64, u64), Option<Analyzed>>,
    held: Vec<Arc<File>>,
    /// The symbol names looked for: the probes' functions, allocators' own names of them,
    /// `_dl_debug_state`.
    wanted: FxHashSet<String>,
    /// The functions probed in the files of the initial locations, said once a process maps
    /// them.
    unsaid: FxHashMap<(u64, u64), Vec<String>>,
}

impl Discovery {
    /// `probes` (with `user[i]` for the user's own, which are placed only in a library of
    /// their name; the catalog's go wherever they are defined); the files of `initial`
    /// locations are probed already.
    pub(crate) fn new(probes: &[Probe], user: &[bool], initial: &[Location]) -> Discovery {
        let mut d = Discovery {
            probes: probes.to_vec(),
            user: user.to_vec(),
            files: FxHashMap::default(),
            held: Vec::new(),
            wanted: probes
                .iter()
                .flat_map(|p| {
                    std::iter::once(p.function.as_str()).chain(
                        allocflame_core::probes::linked_in_names(&p.function)
                            .iter()
                            .copied(),
                    )
                })
                .chain([DEBUG_STATE])
                .map(str::to_owned)
                .collect(),
            unsaid: FxHashMap::default(),
        };
        for loc in initial {
            if let Some(inode) = loc.inode {
                let names = d.unsaid.entry(inode).or_default();
                names.extend(loc.probes.iter().map(|&p| probes[p].function.clone()));
            }
            if let (Some(inode), Ok(file)) = (loc.inode, File::open(&loc.path)) {
                let file = Arc::new(file);
                let analyzed = d.analyze(&file, &loc.path, false).0;
                d.files.insert(inode, analyzed);
                d.held.push(file);
            }
        }
        d
    }

    /// Looks at the executable mappings of process `pid` through its task `tid` (stopped, or
    /// at least alive: a thread group's leader may be gone while its threads run).
    pub(crate) fn scan(&mut self, pid: u32, tid: u32) -> Scan {
        let mut out = Scan::default();
        let Some(maps) = procfs::maps(tid) else {
            return out;
        };
        let text_of = |inode: (u64, u64)| -> Vec<(u64, u64)> {
            maps.iter()
                .filter(|m| m.executable() && m.inode == inode)
                .map(|m| (m.start, m.end))
                .collect()
        };
        for m in maps
            .iter()
            .filter(|m| m.executable() && m.is_file() && m.inode.1 != 0)
        {
            if let Some(names) = self.unsaid.remove(&m.inode) {
                out.notes.push(probed_note(&names, &m.path, pid));
            }
            if let Some(known) = self.files.get(&m.inode) {
                if let Some(a) = known {
                    if let Some(offset) = a.debug_state {
                        out.debug_state = Some(DebugState {
                            open_path: a.open_path.clone(),
                            offset,
                            text: text_of(m.inode),
                        });
                    }
                }
                continue;
            }
            // allocflame's in-process library forwards each call to the allocator after it
            // (a process the perf backend takes over from it at an exec may still map it).
            let own = Path::new(&m.path)
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("liballocflame_preload"));
            if own {
                self.files.insert(m.inode, None);
                continue;
            }
            let file = procfs::map_file(tid, m.start, m.end)
                .or_else(|_| File::open(format!("/proc/{tid}/root{}", m.path)))
                .ok()
                .filter(|f| procfs::inode_of(f) == Some(m.inode));
            let Some(file) = file else {
                self.files.insert(m.inode, None);
                continue;
            };
            let file = Arc::new(file);
            let mapped = Path::new(&m.path);
            let (analyzed, functions) = self.analyze(&file, mapped, true);
            let Some(analyzed) = analyzed else {
                self.files.insert(m.inode, None);
                continue;
            };
            if let Some(offset) = analyzed.debug_state {
                out.debug_state = Some(DebugState {
                    open_path: analyzed.open_path.clone(),
                    offset,
                    text: text_of(m.inode),
                });
            }
            if !functions.is_empty() {
                let mut names: Vec<String> = Vec::new();
                for (offset, size, probes, symbol) in functions {
                    names.extend(probes.iter().map(|&p| {
                        let f = &self.probes[p].function;
                        match *f == symbol {
                            true => f.clone(),
                            false => format!("{symbol} (as {f})"),
                        }
                    }));
                    out.locations.push((
                        Location {
                            path: mapped.to_path_buf(),
                            offset,
                            size,
                            probes,
                            inode: Some(m.inode),
                        },
                        analyzed.open_path.clone(),
                    ));
                }
                out.notes.push(probed_note(&names, &m.path, pid));
            }
            out.opened.push(Opened {
                inode: m.inode,
                file: file.clone(),
            });
            self.held.push(file);
            self.files.insert(m.inode, Some(analyzed));
        }
        out
    }

    /// Reads the symbols of `file` (mapped from `mapped`): its `_dl_debug_state`, and when
    /// `locate`, where the probes' functions are in it — `(offset, size, probes)`, aliases
    /// sharing one location.
    fn analyze(
        &self,
        file: &File,
        mapped: &Path,
        locate: bool,
    ) -> (Option<Analyzed>, Vec<Function>) {
        // SAFETY: read-only mapping of a file we only parse.
        let Ok(map) = (unsafe { memmap2::Mmap::map(file) }) else {
            return (None, Vec::new());
        };
        let Ok(obj) = object::File::parse(&map[..]) else {
            return (None, Vec::new());
        };
        let loads: Vec<(u64, u64, u64)> = obj
            .segments()
            .map(|s| (s.address(), s.file_range().0, s.file_range().1))
            .collect();
        let file_offset = |addr: u64| {
            loads
                .iter()
                .find(|&&(va, _, size)| addr >= va && addr < va + size)
                .map(|&(va, off, _)| addr - va + off)
        };
        // The functions looked for, by name: the dynamic table first (what other objects bind to),
        // then the full one (a static executable has only that).
        let mut defined: FxHashMap<&str, (u64, u64)> = FxHashMap::default();
        for sym in obj.dynamic_symbols().chain(obj.symbols()) {
            if sym.is_undefined() || sym.address() == 0 || sym.kind() != object::SymbolKind::Text {
                continue;
            }
            if let Some(name) = sym.name().ok().filter(|n| self.wanted.contains(*n)) {
                if let Some(off) = file_offset(sym.address()) {
                    defined.entry(name).or_insert((off, sym.size()));
                }
            }
        }
        let file_name = mapped
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let mut functions: Vec<Function> = Vec::new();
        if locate {
            for (i, p) in self.probes.iter().enumerate() {
                let user = self.user.get(i).copied().unwrap_or(true);
                if user
                    && !(matches_library(file_name, &p.library) || Path::new(&p.library) == mapped)
                {
                    continue;
                }
                // The function itself; else, for the catalog's, an allocator's own names of
                // it (an allocator that defines both forwards one to the other).
                let names: &[&str] = match defined.contains_key(p.function.as_str()) {
                    true => &[p.function.as_str()],
                    false if !user => allocflame_core::probes::linked_in_names(&p.function),
                    false => &[],
                };
                for name in names {
                    let Some(&(off, size)) = defined.get(name) else {
                        continue;
                    };
                    match functions.iter_mut().find(|f| f.0 == off) {
                        Some(f) => f.2.push(i),
                        None => functions.push((off, size, vec![i], (*name).to_owned())),
                    }
                }
            }
        }
        let analyzed = Analyzed {
            open_path: PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd())),
            debug_state: defined.get(DEBUG_STATE).map(|&(off, _)| off),
        };
        (Some(analyzed), functions)
    }
}

fn probed_note(names: &[String], path: &str, pid: u32) -> String {
    format!(
        "probed {} in {path} (mapped by pid {pid})",
        names.join(", ")
    )
}
