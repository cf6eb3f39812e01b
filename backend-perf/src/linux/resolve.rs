//! Finding the probed functions: which file a probe's library is, and the file offset and size
//! of the function in it.

use std::path::{Path, PathBuf};

use allocflame_core::probes::Probe;
use allocflame_core::{Error, Result};
use blazesym::inspect::source::{Elf, Source};
use blazesym::inspect::Inspector;

use crate::interpret::Location;
use crate::procfs;

/// Whether `file_name` is the library a probe calls `lib` (`libc` → `libc.so.6`).
pub(crate) fn matches_library(file_name: &str, lib: &str) -> bool {
    file_name == lib
        || file_name
            .strip_prefix(lib)
            .is_some_and(|rest| rest.starts_with(".so") || rest.starts_with('-'))
}

/// The file of `lib`: a path as given, else a mapped library of `pid` (or of allocflame itself,
/// which shares the system's libc with a program it spawns), else the dynamic linker's cache.
pub(crate) fn find_library(lib: &str, pid: Option<u32>) -> Option<PathBuf> {
    if lib.contains('/') {
        let p = Path::new(lib);
        return p
            .exists()
            .then(|| p.canonicalize().unwrap_or_else(|_| p.into()));
    }
    let maps_of = |pid: u32| -> Option<PathBuf> {
        procfs::maps(pid)?.into_iter().find_map(|m| {
            let name = Path::new(&m.path).file_name()?.to_str()?;
            (m.is_file() && matches_library(name, lib)).then(|| PathBuf::from(&m.path))
        })
    };
    if let Some(p) = pid.and_then(maps_of) {
        return Some(p);
    }
    if let Some(p) = maps_of(std::process::id()) {
        return Some(p);
    }
    let out = std::process::Command::new("ldconfig")
        .arg("-p")
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|line| {
            let (name, path) = line.trim().split_once(" => ")?;
            let name = name.split_whitespace().next()?;
            (matches_library(name, lib) && !line.contains("x32") && !line.contains("i386"))
                .then(|| PathBuf::from(path.trim()))
        })
}

/// Locates every probe. Probes of the built-in catalog that a library lacks are skipped with a
/// note; a user probe (`user[i]`) that cannot be placed is an error.
pub(crate) fn locate(
    probes: &[Probe],
    user_probe: &[bool],
    pid: Option<u32>,
    notes: &mut Vec<String>,
) -> Result<Vec<Location>> {
    let inspector = Inspector::new();
    let mut out: Vec<Location> = Vec::new();
    for (i, probe) in probes.iter().enumerate() {
        let user = user_probe.get(i).copied().unwrap_or(true);
        let Some(path) = find_library(&probe.library, pid) else {
            let msg = format!(
                "probe {probe}: library `{}` not found (looked in the target's mappings, allocflame's own and `ldconfig -p`); give its path, e.g. --probe /usr/lib/libfoo.so:{}",
                probe.library, probe.function
            );
            if user {
                return Err(Error::Invalid(msg));
            }
            notes.push(msg);
            continue;
        };
        let path = path.canonicalize().unwrap_or(path);
        let mut src = Elf::new(&path);
        src.debug_syms = false;
        let found = inspector
            .lookup(&Source::Elf(src), &[probe.function.as_str()])
            .map_err(|e| Error::Backend(format!("{}: cannot read symbols: {e}", path.display())))?;
        let sym = found
            .into_iter()
            .flatten()
            .find(|s| s.file_offset.is_some());
        let Some(sym) = sym else {
            let msg = format!(
                "probe {probe}: {} has no function `{}` (check the name with `nm -D {}`)",
                path.display(),
                probe.function,
                path.display()
            );
            if user {
                return Err(Error::Invalid(msg));
            }
            notes.push(msg);
            continue;
        };
        let offset = sym.file_offset.unwrap_or(0);
        let size = sym.size.unwrap_or(0) as u64;
        match out
            .iter_mut()
            .find(|l| l.path == path && l.offset == offset)
        {
            Some(l) => {
                // glibc's own aliases (memalign = aligned_alloc) are documented; a user's
                // probe that lands on another is worth a note.
                if user {
                    notes.push(format!(
                        "{} is an alias of {} in {}: its calls are counted as {}",
                        probe.function,
                        probes[l.probes[0]].function,
                        path.display(),
                        probes[l.probes[0]].function
                    ));
                }
                l.probes.push(i);
            }
            None => {
                let inode = std::fs::File::open(&path)
                    .ok()
                    .and_then(|f| procfs::inode_of(&f));
                out.push(Location {
                    path,
                    offset,
                    size,
                    probes: vec![i],
                    inode,
                })
            }
        }
    }
    Ok(out)
}
