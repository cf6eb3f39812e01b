//! Object files and processes as the interpreter knows them: each mapped file identified (path,
//! device and inode, build-id) and held open, so that unwinding and symbolization read the very
//! file that was mapped even if its path is replaced during the recording; per process its
//! executable mappings (to normalize addresses to `(object, offset)`) and a framehop unwinder
//! with the DWARF CFI (`.eh_frame`) of each mapped module. No cfg: replays run anywhere.

use std::ops::{Deref, Range};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use allocflame_core::source::ObjectFile;
use framehop::x86_64::UnwinderX86_64;
use framehop::{ExplicitModuleSectionInfo, Module, Unwinder};
use object::{Object, ObjectSection, ObjectSegment, ObjectSymbol, SymbolKind};
use rustc_hash::FxHashMap;

use crate::prologue::{self, FrameRule};

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
    /// Functions (start and size, by address), read at the first frame without CFI.
    functions: OnceLock<Vec<(u64, u64)>>,
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
                functions: OnceLock::new(),
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

    /// The rule of the frame at return address `pc` (an address as the file states it) when
    /// no CFI covers it and its function's code tells one; `None` when CFI covers it (the
    /// unwinder's case), or nothing can be told. Each process remembers the answers.
    fn rule_without_cfi(&self, pc: u64) -> Option<FrameRule> {
        // Leave files with .debug_frame to the unwinder, which reads it.
        if pc == 0
            || self.sections.contains_key(".debug_frame")
            || self.has_cfi(pc - 1) != Some(false)
        {
            return None;
        }
        let (start, code) = self.function_code(pc - 1)?;
        prologue::frame_rule(code, start, pc)
    }

    /// Whether an FDE of `.eh_frame` covers `addr`, as `.eh_frame_hdr`'s table says (`None`
    /// without a table to ask).
    fn has_cfi(&self, addr: u64) -> Option<bool> {
        use gimli::{BaseAddresses, EhFrame, EhFrameHdr, LittleEndian, UnwindSection};
        let (hdr_svma, hdr) = self.sections.get(".eh_frame_hdr")?;
        let (eh_svma, eh) = self.sections.get(".eh_frame")?;
        let mut bases = BaseAddresses::default()
            .set_eh_frame_hdr(hdr_svma.start)
            .set_eh_frame(eh_svma.start);
        if let Some((text, _)) = self.sections.get(".text") {
            bases = bases.set_text(text.start);
        }
        let hdr = EhFrameHdr::new(&self.map[hdr.clone()], LittleEndian)
            .parse(&bases, 8)
            .ok()?;
        let table = hdr.table()?;
        let eh_frame = EhFrame::new(&self.map[eh.clone()], LittleEndian);
        match table.fde_for_address(&eh_frame, &bases, addr, EhFrame::cie_from_offset) {
            Ok(_) => Some(true),
            Err(gimli::Error::NoUnwindInfoForAddress) => Some(false),
            Err(_) => None,
        }
    }

    /// The start and the code of the function (a symbol of the file) holding `addr`.
    fn function_code(&self, addr: u64) -> Option<(u64, &[u8])> {
        let functions = self.functions.get_or_init(|| {
            let Ok(obj) = object::File::parse(&self.map[..]) else {
                return Vec::new();
            };
            let mut f: Vec<(u64, u64)> = obj
                .symbols()
                .chain(obj.dynamic_symbols())
                .filter(|s| s.kind() == SymbolKind::Text && s.size() > 0)
                .map(|s| (s.address(), s.size()))
                .collect();
            f.sort_unstable();
            f.dedup_by_key(|x| x.0);
            f
        });
        let i = functions.partition_point(|&(start, _)| start <= addr);
        let &(start, size) = functions.get(i.checked_sub(1)?)?;
        if addr >= start + size {
            return None;
        }
        let &(off, vaddr, _) = self
            .loads
            .iter()
            .find(|&&(_, vaddr, filesz)| start >= vaddr && start + size <= vaddr + filesz)?;
        let from = (off + (start - vaddr)) as usize;
        Some((start, self.map.get(from..from + size as usize)?))
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

/// Told of each object opened: its path, device and inode, build-id, and where this process
/// sees the file when that is another path (see [`seen_at`]).
pub(crate) type OnOpen<'a> =
    dyn FnMut(&Path, Option<(u64, u64)>, Option<Vec<u8>>, Option<PathBuf>) + 'a;

/// Where this process sees the opened `file`, recorded as `path`, when that is another path
/// that names the same file: the file of a process in another root, opened through
/// `/proc/PID/map_files`, is at that root's path plus `path` (`/var/lib/machines/web/usr/lib/…`).
fn seen_at(file: &std::fs::File, path: &Path) -> Option<PathBuf> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::MetadataExt;
    let here = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())).ok()?;
    if here == path || !here.is_absolute() {
        return None;
    }
    let (a, b) = (file.metadata().ok()?, std::fs::metadata(&here).ok()?);
    (a.dev() == b.dev() && a.ino() == b.ino()).then_some(here)
}

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
    /// opening it through `opener` the first time; `fresh` receives `(path, inode, build-id, seen at)`
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
                fresh(path, inode, build_id.clone(), seen_at(&file, path));
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
    /// [`Process::rule_without_cfi`]'s answers, by return address (until the mappings change).
    rules: std::cell::RefCell<FxHashMap<u64, Option<FrameRule>>>,
}

impl Process {
    pub(crate) fn new(comm: String, root: u32) -> Self {
        Process {
            comm,
            root,
            maps: Vec::new(),
            unwinder: UnwinderX86_64::new(),
            rules: Default::default(),
        }
    }

    /// Forgets every mapping (exec replaced the image).
    pub(crate) fn clear(&mut self) {
        self.maps.clear();
        self.unwinder = UnwinderX86_64::new();
        self.rules.borrow_mut().clear();
    }

    /// Records an executable mapping of `file` and adds its unwind info.
    pub(crate) fn add_mapping(&mut self, files: &Objects, m: Mapping) {
        // A new mapping replaces whatever overlapped it (munmap is not reported).
        self.rules
            .borrow_mut()
            .retain(|&pc, _| pc <= m.start || pc > m.end);
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

    /// The rule of the frame at return address `pc` when its function has no CFI but its code
    /// tells one (see [`prologue`]); `None` when CFI covers it (the unwinder's case), or for an
    /// address in no mapped file.
    pub(crate) fn rule_without_cfi(&self, files: &Objects, pc: u64) -> Option<FrameRule> {
        if let Some(rule) = self.rules.borrow().get(&pc) {
            return *rule;
        }
        let rule = self.find_rule_without_cfi(files, pc);
        self.rules.borrow_mut().insert(pc, rule);
        rule
    }

    fn find_rule_without_cfi(&self, files: &Objects, pc: u64) -> Option<FrameRule> {
        let i = self.maps.partition_point(|m| m.start < pc);
        let m = self.maps.get(i.checked_sub(1)?)?;
        if pc > m.end {
            return None;
        }
        let info = files.entries.get(m.file as usize)?.unwind.as_ref()?;
        info.rule_without_cfi(pc.wrapping_sub(info.bias(m.start, m.pgoff)))
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

/// Frame rules for code that has no CFI, worked out from the code itself (x86-64): what the
/// in-process backend asks for when its unwinder meets such a frame.
pub struct CodeWithoutCfi {
    files: FxHashMap<PathBuf, Option<FileUnwindInfo>>,
}

/// How to find the caller's frame at a return address without CFI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallerRule {
    /// The canonical frame address (the stack pointer before the call) is this register plus
    /// `cfa_offset`: `rbp` when `true`, else `rsp`.
    pub cfa_from_rbp: bool,
    /// See `cfa_from_rbp`.
    pub cfa_offset: u64,
    /// The caller's `rbp` is saved this many bytes below the CFA; `None`: `rbp` is unchanged.
    pub saved_rbp: Option<u64>,
}

impl CodeWithoutCfi {
    /// No file read yet.
    pub fn new() -> Self {
        CodeWithoutCfi {
            files: FxHashMap::default(),
        }
    }

    /// The rule at the return address at file offset `offset` of the file at `path`; `None`
    /// when CFI covers it or its function's code tells none.
    pub fn rule(&mut self, path: &Path, offset: u64) -> Option<CallerRule> {
        let info = self
            .files
            .entry(path.to_path_buf())
            .or_insert_with(|| {
                let f = std::fs::File::open(path).ok()?;
                FileUnwindInfo::read(&f).map(|(info, _)| info)
            })
            .as_ref()?;
        let &(off, vaddr, _) = info
            .loads
            .iter()
            .find(|&&(off, _, size)| offset >= off && offset < off + size)?;
        let rule = info.rule_without_cfi(offset - off + vaddr)?;
        let (cfa_from_rbp, slot) = match rule.base {
            prologue::Base::Rsp(n) => (false, n),
            prologue::Base::Rbp(n) => (true, n),
        };
        Some(CallerRule {
            cfa_from_rbp,
            cfa_offset: slot + 8,
            saved_rbp: rule.saved_rbp.map(|k| k + 8),
        })
    }
}

impl Default for CodeWithoutCfi {
    fn default() -> Self {
        Self::new()
    }
}
