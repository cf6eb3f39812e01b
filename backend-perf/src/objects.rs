//! Object files and processes as the interpreter knows them: each mapped file identified (path,
//! device and inode, build-id) and held open, so that unwinding and symbolization read the very
//! file that was mapped even if its path is replaced during the recording; per process its
//! executable mappings (to normalize addresses to `(object, offset)`) and a framehop unwinder
//! with the DWARF CFI (`.eh_frame`) of each mapped module. No cfg: replays run anywhere.

use std::ops::{Deref, Range};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use allocflame_core::source::ObjectFile;
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
    /// Reads the unwind sections of `file`; also returns its build-id.
    fn read(file: &std::fs::File) -> Option<(FileUnwindInfo, Option<Vec<u8>>)> {
        // SAFETY: the file is mapped read-only; a library rewritten in place while we run could
        // change under us, which is what every profiler (perf, samply) accepts (symbolization
        // checks the build-id again).
        let map = unsafe { memmap2::Mmap::map(file) }.ok()?;
        let obj = object::File::parse(&map[..]).ok()?;
        let build_id = obj.build_id().ok().flatten().map(<[u8]>::to_vec);
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
        Some((
            FileUnwindInfo {
                map: Arc::new(map),
                sections,
                loads,
            },
            build_id,
        ))
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
        let page = PAGE;
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

/// Page size of the recorded machine (x86-64 and the 4 KiB pages Linux uses there).
const PAGE: u64 = 4096;

/// How the interpreter gets at the file of a mapping: live, by path checked against the
/// mapping's inode (else through `/proc/PID/map_files`); in a replay, by path or in search
/// directories, checked against the build-id the recording saw.
pub(crate) trait Opener {
    /// The file mapped at `start..end` of `pid` from `path` (device and inode `inode`, when the
    /// kernel said), or why it cannot be had.
    fn open(
        &mut self,
        pid: u32,
        path: &Path,
        inode: Option<(u64, u64)>,
        range: (u64, u64),
    ) -> Result<std::fs::File, String>;
}

/// The build-id of an ELF file.
pub(crate) fn build_id_of(file: &std::fs::File) -> Option<Vec<u8>> {
    // SAFETY: read-only mapping of a file we only parse.
    let map = unsafe { memmap2::Mmap::map(file) }.ok()?;
    let obj = object::File::parse(&map[..]).ok()?;
    obj.build_id().ok().flatten().map(<[u8]>::to_vec)
}

/// Told of each object opened: its path, device and inode, build-id.
pub(crate) type OnOpen<'a> = dyn FnMut(&Path, Option<(u64, u64)>, Option<Vec<u8>>) + 'a;

/// One object file: the core's [`ObjectFile`] (path, build-id, the held file) and its unwind
/// info, or `None` for both when the mapped file could not be had.
pub(crate) struct Entry {
    pub path: Arc<Path>,
    /// Device and inode, when the mapping said.
    pub inode: Option<(u64, u64)>,
    pub object: Option<Arc<ObjectFile>>,
    unwind: Option<Arc<FileUnwindInfo>>,
}

/// Interned object files, by path and identity, each read once.
#[derive(Default)]
pub(crate) struct Objects {
    pub entries: Vec<Entry>,
    by_key: FxHashMap<(PathBuf, Option<(u64, u64)>), u32>,
    by_path: FxHashMap<PathBuf, u32>,
    /// Why objects could not be had (for the report).
    pub problems: Vec<String>,
}

impl Objects {
    /// The id of the object mapped at `range` of `pid` from `path` (device and inode `inode`),
    /// opening it through `opener` the first time; `fresh` receives `(path, inode, build-id)`
    /// of an object opened now.
    pub(crate) fn intern(
        &mut self,
        opener: &mut dyn Opener,
        pid: u32,
        path: &Path,
        inode: Option<(u64, u64)>,
        range: (u64, u64),
        fresh: &mut OnOpen<'_>,
    ) -> u32 {
        let key = (path.to_path_buf(), inode);
        if let Some(&id) = self.by_key.get(&key) {
            return id;
        }
        // Without an inode (an MMAP record, a mapping of a process seen late), the path's
        // latest object is the one.
        if inode.is_none() {
            if let Some(&id) = self.by_path.get(path) {
                return id;
            }
        }
        let id = self.entries.len() as u32;
        let entry = match opener.open(pid, path, inode, range) {
            Ok(file) => {
                let (unwind, build_id) = match FileUnwindInfo::read(&file) {
                    Some((u, b)) => (Some(Arc::new(u)), b),
                    None => (None, build_id_of(&file)),
                };
                fresh(path, inode, build_id.clone());
                Entry {
                    path: Arc::from(path),
                    inode,
                    object: Some(Arc::new(ObjectFile {
                        path: path.to_path_buf(),
                        build_id,
                        file: Some(file),
                    })),
                    unwind,
                }
            }
            Err(why) => {
                self.problems.push(why);
                Entry {
                    path: Arc::from(path),
                    inode,
                    object: None,
                    unwind: None,
                }
            }
        };
        self.entries.push(entry);
        self.by_key.insert(key, id);
        self.by_path.insert(path.to_path_buf(), id);
        id
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
    pub(crate) fn add_mapping(&mut self, files: &Objects, m: Mapping) {
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
        if let Some(info) = files
            .entries
            .get(m.file as usize)
            .and_then(|e| e.unwind.clone())
        {
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
            let name = files.entries[m.file as usize]
                .path
                .to_string_lossy()
                .into_owned();
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
