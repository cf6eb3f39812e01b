//! What the backend knows of each traced process: its executable mappings (to normalize
//! addresses to `(file, offset)` while it lives) and a framehop unwinder with the DWARF CFI
//! (`.eh_frame`) of each mapped module.

use std::ops::{Deref, Range};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use framehop::x86_64::UnwinderX86_64;
use framehop::{ExplicitModuleSectionInfo, Module, Unwinder};
use object::{Object, ObjectSection, ObjectSegment};
use rustc_hash::FxHashMap;

/// Bytes of one section of a mapped file, shared by every process that maps it.
#[derive(Clone)]
pub(crate) struct SectionBytes {
    map: Arc<memmap2::Mmap>,
    range: Range<usize>,
}

impl Deref for SectionBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.map[self.range.clone()]
    }
}

/// What is needed to unwind through one ELF file, read once per file.
pub(crate) struct FileUnwindInfo {
    map: Arc<memmap2::Mmap>,
    sections: FxHashMap<&'static str, (Range<u64>, Range<usize>)>,
    /// PT_LOAD segments: (file offset, vaddr, file size).
    loads: Vec<(u64, u64, u64)>,
}

impl FileUnwindInfo {
    fn read(path: &Path) -> Option<FileUnwindInfo> {
        let file = std::fs::File::open(path).ok()?;
        // SAFETY: the file is mapped read-only; a library rewritten in place while we run could
        // change under us, which is what every profiler (perf, samply) accepts.
        let map = unsafe { memmap2::Mmap::map(&file) }.ok()?;
        let obj = object::File::parse(&map[..]).ok()?;
        let mut sections = FxHashMap::default();
        for name in [
            ".text",
            ".eh_frame",
            ".eh_frame_hdr",
            ".got",
            ".debug_frame",
        ] {
            if let Some(s) = obj.section_by_name(name) {
                let svma = s.address()..s.address() + s.size();
                let file_range = s
                    .file_range()
                    .map(|(o, l)| o as usize..(o + l) as usize)
                    .unwrap_or(0..0);
                if file_range.end <= map.len() {
                    sections.insert(name, (svma, file_range));
                }
            }
        }
        let loads = obj
            .segments()
            .map(|s| {
                let (off, size) = s.file_range();
                (off, s.address(), size)
            })
            .collect();
        Some(FileUnwindInfo {
            map: Arc::new(map),
            sections,
            loads,
        })
    }

    fn bytes(&self, name: &str) -> Option<SectionBytes> {
        let (_, r) = self.sections.get(name)?;
        (!r.is_empty()).then(|| SectionBytes {
            map: self.map.clone(),
            range: r.clone(),
        })
    }

    fn svma(&self, name: &str) -> Option<Range<u64>> {
        self.sections.get(name).map(|(s, _)| s.clone())
    }

    /// The load bias of a mapping of file offset `pgoff` at `start`: the mapping is of the
    /// segment whose file offset rounds down to `pgoff` (two segments may share that page, as
    /// with lld's layout; the one starting in it wins).
    fn bias(&self, start: u64, pgoff: u64) -> u64 {
        let page = super::events::page_size() as u64;
        let seg = self
            .loads
            .iter()
            .find(|&&(off, _, _)| off & !(page - 1) == pgoff)
            .or_else(|| {
                self.loads
                    .iter()
                    .find(|&&(off, _, size)| pgoff >= off && pgoff < off + size.max(1))
            });
        match seg {
            Some(&(off, vaddr, _)) => start.wrapping_add(off - pgoff).wrapping_sub(vaddr),
            None => start.wrapping_sub(pgoff),
        }
    }
}

/// Interned files: ids for paths, and unwind info read once per file.
#[derive(Default)]
pub(crate) struct Files {
    pub paths: Vec<Arc<Path>>,
    by_path: FxHashMap<PathBuf, u32>,
    unwind: FxHashMap<u32, Option<Arc<FileUnwindInfo>>>,
}

impl Files {
    pub(crate) fn intern(&mut self, path: &Path) -> u32 {
        if let Some(&id) = self.by_path.get(path) {
            return id;
        }
        let id = self.paths.len() as u32;
        self.paths.push(Arc::from(path));
        self.by_path.insert(path.to_path_buf(), id);
        id
    }

    fn unwind_info(&mut self, id: u32) -> Option<Arc<FileUnwindInfo>> {
        let path = self.paths[id as usize].clone();
        self.unwind
            .entry(id)
            .or_insert_with(|| FileUnwindInfo::read(&path).map(Arc::new))
            .clone()
    }
}

/// One executable mapping.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Mapping {
    pub start: u64,
    pub end: u64,
    pub pgoff: u64,
    pub file: u32,
}

/// A frame normalized to a file and an offset in it, or an address in no file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct NormFrame {
    /// File id, or `u32::MAX` for an address in no file.
    pub file: u32,
    pub offset: u64,
}

/// One traced process (thread group).
#[derive(Clone)]
pub(crate) struct Process {
    pub comm: String,
    /// Interned root frame (the process name as the graph shows it).
    pub root: u32,
    maps: Vec<Mapping>,
    pub unwinder: UnwinderX86_64<SectionBytes>,
}

impl Process {
    pub(crate) fn new(comm: String, root: u32) -> Self {
        Process {
            comm,
            root,
            maps: Vec::new(),
            unwinder: UnwinderX86_64::new(),
        }
    }

    /// Forgets every mapping (exec replaced the image).
    pub(crate) fn clear(&mut self) {
        self.maps.clear();
        self.unwinder = UnwinderX86_64::new();
    }

    /// Records an executable mapping of `file` and adds its unwind info.
    pub(crate) fn add_mapping(&mut self, files: &mut Files, m: Mapping) {
        // A new mapping replaces whatever overlapped it (munmap is not reported).
        let mut i = 0;
        while i < self.maps.len() {
            let old = self.maps[i];
            if old.start < m.end && m.start < old.end {
                self.unwinder.remove_module(old.start);
                self.maps.remove(i);
            } else {
                i += 1;
            }
        }
        let at = self.maps.partition_point(|x| x.start < m.start);
        self.maps.insert(at, m);
        if let Some(info) = files.unwind_info(m.file) {
            let section_info = ExplicitModuleSectionInfo {
                base_svma: 0,
                text_svma: info.svma(".text"),
                text: info.bytes(".text"),
                got_svma: info.svma(".got"),
                eh_frame_svma: info.svma(".eh_frame"),
                eh_frame: info.bytes(".eh_frame"),
                eh_frame_hdr_svma: info.svma(".eh_frame_hdr"),
                eh_frame_hdr: info.bytes(".eh_frame_hdr"),
                debug_frame: info.bytes(".debug_frame"),
                stubs_svma: None,
                stub_helper_svma: None,
                unwind_info: None,
                text_segment_svma: None,
                text_segment: None,
            };
            let name = files.paths[m.file as usize].to_string_lossy().into_owned();
            let module = Module::new(
                name,
                m.start..m.end,
                info.bias(m.start, m.pgoff),
                section_info,
            );
            self.unwinder.add_module(module);
        }
    }

    /// The file and file offset of `addr`.
    pub(crate) fn normalize(&self, addr: u64) -> NormFrame {
        let i = self.maps.partition_point(|m| m.start <= addr);
        if i > 0 {
            let m = &self.maps[i - 1];
            if addr < m.end {
                return NormFrame {
                    file: m.file,
                    offset: addr - m.start + m.pgoff,
                };
            }
        }
        NormFrame {
            file: u32::MAX,
            offset: addr,
        }
    }
}

/// Reads the executable file mappings of `pid` from `/proc/PID/maps`.
pub(crate) fn read_proc_maps(pid: u32, files: &mut Files) -> Vec<Mapping> {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/maps")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for line in text.lines() {
        // start-end perms offset dev inode path
        let mut it = line.split_whitespace();
        let (Some(range), Some(perms), Some(off), Some(_dev), Some(_ino)) =
            (it.next(), it.next(), it.next(), it.next(), it.next())
        else {
            continue;
        };
        let path: String = it.collect::<Vec<_>>().join(" ");
        if !perms.contains('x') || !path.starts_with('/') {
            continue;
        }
        let Some((s, e)) = range.split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(end), Ok(pgoff)) = (
            u64::from_str_radix(s, 16),
            u64::from_str_radix(e, 16),
            u64::from_str_radix(off, 16),
        ) else {
            continue;
        };
        let path = path.trim_end_matches(" (deleted)");
        out.push(Mapping {
            start,
            end,
            pgoff,
            file: files.intern(Path::new(path)),
        });
    }
    out
}
