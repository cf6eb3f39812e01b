//! Symbolization of file-relative addresses that backends captured while the target lived.
//!
//! Backends hand over `(file, file offset)` pairs; this module turns them into function names
//! (blazesym on Linux: ELF symbols and, where the file has DWARF, inlined functions and source
//! lines; on macOS
//! the nearest symbol of the Mach-O file, [`symtab`]), after the
//! target may have exited: the files stay on disk. Names are left mangled; the core demangles
//! them later for every backend alike.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::profile::Frame;
use crate::source::ObjectFile;

/// Names of symbolized frames: `(object, offset)` → frames, outermost first (a frame expands to
/// several when functions were inlined), and what the user should know about frames left
/// unnamed.
#[derive(Debug, Default)]
pub struct Symbols {
    /// Frames per object and offset; offsets that no symbol covers are left out.
    pub names: FxHashMap<(Arc<ObjectFile>, u64), Vec<Frame>>,
    /// Objects that could not be read, or were replaced since they were recorded.
    pub notes: Vec<String>,
}

pub mod symtab;

/// Symbolizes the offsets of every object. An object the backend held open is read from that
/// very file; otherwise its path is opened, and when the recorded build-id differs from the
/// file's (the file was replaced, say a binary rebuilt during the recording), its frames stay
/// `file+offset` and a note says why.
///
/// Backends hand return addresses already moved back into the call instruction (address − 1),
/// so an offset names the call site, not the instruction after it.
pub fn symbolize_objects(objects: FxHashMap<Arc<ObjectFile>, Vec<u64>>) -> Symbols {
    imp::symbolize_objects(objects)
}

/// Symbolizes offsets in files known by their paths alone.
pub fn symbolize_files(
    files: FxHashMap<PathBuf, Vec<u64>>,
) -> FxHashMap<(PathBuf, u64), Vec<Frame>> {
    let objects = files
        .into_iter()
        .map(|(p, o)| (Arc::new(ObjectFile::at(p)), o))
        .collect();
    symbolize_objects(objects)
        .names
        .into_iter()
        .map(|((obj, off), names)| ((obj.path.clone(), off), names))
        .collect()
}

/// The frame name used for an address no symbol covers: `libfoo.so+0x1234`.
pub fn unknown_frame(path: &Path, offset: u64) -> String {
    let base = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_else(|| path.to_string_lossy());
    format!("{base}+{offset:#x}")
}

/// A frame's location as [`Frame::location`] writes it: `file:line`, the file as the debug info
/// names it, relative to the current directory when inside it; `, inlined` added for a function
/// inlined into its caller.
pub fn location(file: &Path, line: Option<u32>, inlined: bool) -> Option<Arc<str>> {
    let cwd = std::env::current_dir().ok();
    let file = cwd
        .as_deref()
        .and_then(|d| file.strip_prefix(d).ok())
        .unwrap_or(file);
    // Swift's compiler-made code has a file of its own, in no directory.
    let mut s = match file.file_name() {
        Some(n) if n == "<compiler-generated>" => "<compiler-generated>".to_owned(),
        _ => file.display().to_string(),
    };
    if s.is_empty() && !inlined {
        return None;
    }
    if let Some(line) = line {
        s.push_str(&format!(":{line}"));
    }
    if inlined {
        s.push_str(if s.is_empty() { "inlined" } else { ", inlined" });
    }
    Some(s.into())
}

/// A build-id as hex.
pub fn hex(id: &[u8]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(target_os = "linux")]
mod imp {
    use std::path::PathBuf;
    use std::sync::Arc;

    use blazesym::symbolize::source::{Elf, Source};
    use blazesym::symbolize::{Input, Symbolized, Symbolizer};
    use rustc_hash::FxHashMap;

    use blazesym::symbolize::CodeInfo;

    use super::{hex, location, Symbols};
    use crate::profile::Frame;
    use crate::source::ObjectFile;

    fn frame(name: &str, code: Option<&CodeInfo<'_>>, inlined: bool) -> Frame {
        Frame {
            name: name.to_owned(),
            location: match code {
                Some(c) => location(&c.to_path(), c.line, inlined),
                None if inlined => location(std::path::Path::new(""), None, true),
                None => None,
            },
        }
    }

    pub(super) fn symbolize_objects(objects: FxHashMap<Arc<ObjectFile>, Vec<u64>>) -> Symbols {
        // Demangling stays off: the core demangles every backend's names the same way.
        let symbolizer = Symbolizer::builder()
            .enable_demangling(false)
            .enable_code_info(true)
            .enable_inlined_fns(true)
            .build();
        let mut out = Symbols::default();
        for (object, mut offsets) in objects {
            offsets.sort_unstable();
            offsets.dedup();
            let path: PathBuf = match &object.file {
                Some(f) => {
                    use std::os::fd::AsRawFd;
                    PathBuf::from(format!("/proc/self/fd/{}", f.as_raw_fd()))
                }
                None => object.path.clone(),
            };
            if let (None, Some(want)) = (&object.file, &object.build_id) {
                let have = blazesym::helper::read_elf_build_id(&path).ok().flatten();
                if have.as_deref() != Some(&want[..]) {
                    out.notes.push(format!(
                        "{} is not the file that was recorded (build-id {}, now {}): its {} addresses are left as file+offset",
                        object.path.display(),
                        hex(want),
                        have.map_or_else(|| "none".into(), |h| hex(&h)),
                        offsets.len()
                    ));
                    continue;
                }
            }
            let src = Source::Elf(Elf::new(&path));
            // A file that vanished or is no ELF leaves its frames as `file+offset`.
            let Ok(syms) = symbolizer.symbolize(&src, Input::FileOffset(&offsets)) else {
                continue;
            };
            for (offset, sym) in offsets.iter().zip(syms) {
                if let Symbolized::Sym(sym) = sym {
                    let mut names = Vec::with_capacity(1 + sym.inlined.len());
                    names.push(frame(&sym.name, sym.code_info.as_deref(), false));
                    names.extend(
                        sym.inlined
                            .iter()
                            .map(|f| frame(&f.name, f.code_info.as_ref(), true)),
                    );
                    out.names.insert((object.clone(), *offset), names);
                }
            }
        }
        out
    }
}

/// Elsewhere (macOS): the symbol tables of the files on disk.
#[cfg(not(target_os = "linux"))]
mod imp {
    pub(super) use super::symtab::symbolize_objects;
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
            // start-end perms offset dev inode path; the path (the rest) may hold spaces.
            let f: Vec<&str> = l.splitn(6, ' ').collect();
            let (s, e) = f.first()?.split_once('-')?;
            let (s, e) = (
                u64::from_str_radix(s, 16).ok()?,
                u64::from_str_radix(e, 16).ok()?,
            );
            let off = u64::from_str_radix(f.get(2)?, 16).ok()?;
            let path = f.get(5)?.trim_start();
            (addr >= s && addr < e && path.starts_with('/'))
                .then(|| (PathBuf::from(path), addr - s + off))
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
            got.iter().any(|n| n.name.contains("a_function_to_find")),
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
