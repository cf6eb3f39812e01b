//! Symbolization of file-relative addresses that backends captured while the target lived.
//!
//! Backends hand over `(file, file offset)` pairs; this module turns them into function names
//! (blazesym on Linux: ELF symbols and, where the file has DWARF, inlined functions), after the
//! target may have exited: the files stay on disk. Names are left mangled; the core demangles
//! them later for every backend alike.

use std::path::{Path, PathBuf};

use rustc_hash::FxHashMap;

/// Symbol names for every `(file, offset)`; a frame may expand to several names when functions
/// were inlined (outermost first). Addresses that cannot be symbolized are left out.
///
/// Backends hand return addresses already moved back into the call instruction (address − 1),
/// so an offset names the call site, not the instruction after it.
pub fn symbolize_files(
    files: FxHashMap<PathBuf, Vec<u64>>,
) -> FxHashMap<(PathBuf, u64), Vec<String>> {
    imp::symbolize_files(files)
}

/// The frame name used for an address no symbol covers: `libfoo.so+0x1234`.
pub fn unknown_frame(path: &Path, offset: u64) -> String {
    let base = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_else(|| path.to_string_lossy());
    format!("{base}+{offset:#x}")
}

#[cfg(target_os = "linux")]
mod imp {
    use std::path::PathBuf;

    use blazesym::symbolize::source::{Elf, Source};
    use blazesym::symbolize::{Input, Symbolized, Symbolizer};
    use rustc_hash::FxHashMap;

    pub(super) fn symbolize_files(
        files: FxHashMap<PathBuf, Vec<u64>>,
    ) -> FxHashMap<(PathBuf, u64), Vec<String>> {
        // Demangling stays off: the core demangles every backend's names the same way.
        let symbolizer = Symbolizer::builder()
            .enable_demangling(false)
            .enable_code_info(false)
            .enable_inlined_fns(true)
            .build();
        let mut out = FxHashMap::default();
        for (path, mut offsets) in files {
            offsets.sort_unstable();
            offsets.dedup();
            let src = Source::Elf(Elf::new(&path));
            // A file that vanished or is no ELF leaves its frames as `file+offset`.
            let Ok(syms) = symbolizer.symbolize(&src, Input::FileOffset(&offsets)) else {
                continue;
            };
            for (offset, sym) in offsets.iter().zip(syms) {
                if let Symbolized::Sym(sym) = sym {
                    let mut names = Vec::with_capacity(1 + sym.inlined.len());
                    names.push(sym.name.to_string());
                    names.extend(sym.inlined.iter().map(|f| f.name.to_string()));
                    out.insert((path.clone(), *offset), names);
                }
            }
        }
        out
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use std::path::PathBuf;

    use rustc_hash::FxHashMap;

    pub(super) fn symbolize_files(
        _files: FxHashMap<PathBuf, Vec<u64>>,
    ) -> FxHashMap<(PathBuf, u64), Vec<String>> {
        FxHashMap::default()
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[inline(never)]
    fn a_function_to_find(x: u64) -> u64 {
        std::hint::black_box(x.wrapping_mul(31))
    }

    /// The file and file offset of `addr` in this process, as a backend normalizes it.
    fn normalize(addr: u64) -> Option<(PathBuf, u64)> {
        let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
        maps.lines().find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (s, e) = f.first()?.split_once('-')?;
            let (s, e) = (
                u64::from_str_radix(s, 16).ok()?,
                u64::from_str_radix(e, 16).ok()?,
            );
            let off = u64::from_str_radix(f.get(2)?, 16).ok()?;
            (addr >= s && addr < e && f.len() >= 6).then(|| (PathBuf::from(f[5]), addr - s + off))
        })
    }

    #[test]
    fn file_offsets_symbolize_to_function_names() {
        assert_eq!(a_function_to_find(2), 62);
        let addr = a_function_to_find as *const () as usize as u64 + 1;
        let (path, offset) = normalize(addr).expect("mapped");
        let mut files = FxHashMap::default();
        files.insert(path.clone(), vec![offset, offset]);
        let names = symbolize_files(files);
        let got = names.get(&(path, offset)).expect("symbolized");
        assert!(
            got.iter().any(|n| n.contains("a_function_to_find")),
            "{got:?}"
        );
    }

    #[test]
    fn unknown_frames_name_the_file() {
        assert_eq!(
            unknown_frame(Path::new("/usr/lib/libfoo.so.1"), 0x1234),
            "libfoo.so.1+0x1234"
        );
        let mut files = FxHashMap::default();
        files.insert(PathBuf::from("/nonexistent/lib.so"), vec![1]);
        assert!(symbolize_files(files).is_empty());
    }
}
