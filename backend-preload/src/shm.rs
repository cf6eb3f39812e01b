//! The shared file's layout (`lib/layout.h`, written by the injected library; the two must agree on
//! [`LAYOUT_VERSION`]) and reading it: process records, their objects and their threads' stack
//! tables. Reads any bytes without panicking: a damaged file gives fewer stacks and a note, never
//! a crash; cycles and out-of-range offsets end a walk.

use std::path::PathBuf;
use std::sync::Arc;

use rustc_hash::{FxHashMap, FxHashSet};

use allocflame_core::probes::{allocator_library, Platform, Probe};
use allocflame_core::source::{ObjectFile, RawFrame};

/// "APRERLD1", little-endian.
pub const LAYOUT_MAGIC: u64 = 0x3144_4c52_4552_5041;
/// The layout's version; the library refuses a file of another.
pub const LAYOUT_VERSION: u32 = 1;
/// Header flag: children are followed.
pub const FLAG_FOLLOW: u32 = 1;
/// Header flag: stacks are unwound (else only counted per function).
pub const FLAG_STACKS: u32 = 2;
/// Bytes the header takes; records start at the first page.
pub const HEADER_BYTES: u64 = 4096;

/// The catalog functions in the library's numbering (core's glibc catalog order).
pub const FUNCTIONS: [&str; 9] = [
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

const FRAMES_CAPPED: u32 = 0x4000_0000;

/// For each function of a library numbered `functions`, the index of its probe in `probes`
/// (`None`: not asked for, so its stacks are left out).
pub fn probe_index(functions: &[&str], probes: &[Probe]) -> Vec<Option<usize>> {
    functions
        .iter()
        .map(|f| probes.iter().position(|p| p.function == *f))
        .collect()
}

/// The first of `probes` a library interposing `functions` of `platform`'s allocator does not
/// interpose (a user probe, another library).
pub fn foreign_probe<'p>(
    functions: &[&str],
    platform: Platform,
    probes: &'p [Probe],
) -> Option<&'p Probe> {
    let lib = allocator_library(platform);
    probes
        .iter()
        .find(|p| p.library != lib || !functions.contains(&p.function.as_str()))
}
/// A walk longer than this is a damaged file (a cycle the offsets cannot show).
const MAX_WALK: usize = 1 << 24;

/// The header allocflame writes before the program starts; `decider`: allocflame answers the
/// exec intents.
pub fn header(capacity: u64, flags: u32, max_depth: u32, decider: bool) -> [u8; 96] {
    let mut h = [0u8; 96];
    h[76..80].copy_from_slice(&u32::from(decider).to_le_bytes());
    h[0..8].copy_from_slice(&LAYOUT_MAGIC.to_le_bytes());
    h[8..12].copy_from_slice(&LAYOUT_VERSION.to_le_bytes());
    h[12..16].copy_from_slice(&flags.to_le_bytes());
    h[16..24].copy_from_slice(&capacity.to_le_bytes());
    h[24..32].copy_from_slice(&HEADER_BYTES.to_le_bytes());
    h[48..52].copy_from_slice(&max_depth.to_le_bytes());
    h
}

/// Offset of the header's `main_pid` field.
pub const MAIN_PID_OFFSET: u64 = 52;
/// Offset of the newest exec intent's offset.
pub const INTENTS_OFFSET: u64 = 64;
/// Offset of the futex word the library bumps at each new intent.
pub const INTENT_SEQ_OFFSET: u64 = 72;

/// Offset of the newest frame rule request's offset.
pub const RULE_REQUESTS_OFFSET: u64 = 80;

/// A return address without CFI whose frame rule a process waits for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleRequest {
    /// The request's offset.
    pub offset: u64,
    /// The return address.
    pub ra: u64,
    /// The start of the executable segment it is in.
    pub start: u64,
    /// That segment's file offset.
    pub file_offset: u64,
    /// The file.
    pub path: PathBuf,
    /// Whether it was answered.
    pub answered: bool,
}

/// Offset of a request's state word from its offset.
pub const REQUEST_STATE: u64 = 24;
/// Offset of a request's answer from its offset.
pub const REQUEST_ANSWER: u64 = 32;

/// The frame rule requests, newest first.
pub fn rule_requests(bytes: &[u8]) -> Vec<RuleRequest> {
    let img = Image { bytes };
    let mut damage = Vec::new();
    if img.u64(0) != Some(LAYOUT_MAGIC) {
        return Vec::new();
    }
    img.list(img.u64(RULE_REQUESTS_OFFSET).unwrap_or(0), &mut damage)
        .into_iter()
        .filter_map(|r| {
            let module = img.u64(r + 8)?;
            let len = img.u32(module + 36)?;
            Some(RuleRequest {
                offset: r,
                ra: img.u64(r + 16)?,
                start: img.u64(module + 8)?,
                file_offset: img.u64(module + 24)?,
                path: PathBuf::from(
                    String::from_utf8_lossy(img.slice(module + 72, u64::from(len))?).into_owned(),
                ),
                answered: img.u32(r + REQUEST_STATE)? != 0,
            })
        })
        .collect()
}

/// A frame rule packed as the library's cache keeps it: the CFA is `rbp` (else `rsp`) plus
/// `cfa_offset`; the caller's `rbp` is saved `saved_rbp` bytes below the CFA (else unchanged);
/// `verify`: a guess, whose memory the unwinder checks before reading it.
pub fn pack_rule(cfa_from_rbp: bool, cfa_offset: u64, saved_rbp: Option<u64>, verify: bool) -> u64 {
    const FRAME: u64 = 1;
    const BP_AT: u64 = 1;
    let base = u64::from(cfa_from_rbp) << 2;
    let cfa = u64::from(cfa_offset.min(i32::MAX as u64) as u32) << 8;
    let bp = match saved_rbp {
        Some(below) if below < 1 << 23 => {
            (BP_AT << 3) | ((-(below as i64) as u64 & 0xff_ffff) << 40)
        }
        Some(_) => 2 << 3,
        None => 0,
    };
    FRAME | base | cfa | bp | u64::from(verify) << 5
}

/// An intent's state: waiting for allocflame's answer.
pub const I_PENDING: u32 = 0;
/// Answer: the new image loads the library; it gets allocflame's variables.
pub const I_FOLLOW: u32 = 1;
/// Answer: it cannot (or another backend records it); it gets the environment it asked for.
pub const I_LEAVE: u32 = 2;
/// The exec or spawn failed.
pub const I_FAILED: u32 = 3;
/// Intent flag: the library's path does not resolve for the process (another root).
pub const I_LIB_UNREADABLE: u32 = 1;
/// Intent flag: the process cannot open the shared file (it changed user).
pub const I_SHM_UNWRITABLE: u32 = 2;
/// Intent flag: a `posix_spawn`, whose child does not exist yet.
pub const I_SPAWN: u32 = 4;

/// A process about to exec a program (or to spawn one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Intent {
    /// The record's offset (where its state is).
    pub offset: u64,
    /// The process.
    pub pid: u32,
    /// Its state (`I_*`).
    pub state: u32,
    /// `I_LIB_UNREADABLE`, `I_SHM_UNWRITABLE`, `I_SPAWN`.
    pub flags: u32,
    /// The program, as the process named it (resolved through PATH when it could be).
    pub path: String,
}

/// Offset of an intent's state field from the intent's offset.
pub const INTENT_STATE: u64 = 12;

/// The exec intents, newest first.
pub fn intents(bytes: &[u8]) -> Vec<Intent> {
    let img = Image { bytes };
    let mut damage = Vec::new();
    if img.u64(0) != Some(LAYOUT_MAGIC) {
        return Vec::new();
    }
    img.list(img.u64(INTENTS_OFFSET).unwrap_or(0), &mut damage)
        .into_iter()
        .filter_map(|r| {
            let len = img.u32(r + 20)?;
            Some(Intent {
                offset: r,
                pid: img.u32(r + 8)?,
                state: img.u32(r + INTENT_STATE)?,
                flags: img.u32(r + 16)?,
                path: String::from_utf8_lossy(img.slice(r + 24, u64::from(len))?).into_owned(),
            })
        })
        .collect()
}

/// One aggregated stack as the library counted it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counted {
    /// The process record's pid.
    pub pid: u32,
    /// Its root frame: the program's name, or `NAME [child]` for a forked child.
    pub root: String,
    /// Index in [`FUNCTIONS`].
    pub function: usize,
    /// The frames, leaf first, without the allocator itself: addresses normalized to files
    /// where an object of the process covers them.
    pub frames: Vec<RawFrame>,
    /// Allocations.
    pub count: u64,
    /// Bytes asked for.
    pub bytes: u64,
}

/// What a file holds.
#[derive(Debug, Default)]
pub struct Contents {
    /// Every stack of every process.
    pub stacks: Vec<Counted>,
    /// Allocations the library could not record (the file was full).
    pub overflow: u64,
    /// Stacks that end at a frame the unwinder could not pass (no CFI and no rule from its
    /// code, or a frame address off the stack).
    pub unwind_stops: u64,
    /// Stacks deeper than the depth limit (they end in `[deeper than N frames]`).
    pub capped: u64,
    /// The depth limit the library kept to (frames besides the allocator's).
    pub max_depth: u32,
    /// Process records (a process image that loaded the library).
    pub processes: Vec<ProcessRecord>,
    /// Damage found (offsets out of range, …).
    pub damage: Vec<String>,
}

/// A process image that loaded the library.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessRecord {
    /// The record's offset: records made later have larger ones.
    pub offset: u64,
    /// Its pid.
    pub pid: u32,
    /// Its parent's pid.
    pub ppid: u32,
    /// Whether it is a forked child that did not exec.
    pub forked: bool,
    /// Its name (`comm`).
    pub comm: String,
}

struct Image<'a> {
    bytes: &'a [u8],
}

impl Image<'_> {
    fn u32(&self, off: u64) -> Option<u32> {
        let o = usize::try_from(off).ok()?;
        let b = self.bytes.get(o..o.checked_add(4)?)?;
        Some(u32::from_le_bytes(b.try_into().ok()?))
    }

    fn u64(&self, off: u64) -> Option<u64> {
        let o = usize::try_from(off).ok()?;
        let b = self.bytes.get(o..o.checked_add(8)?)?;
        Some(u64::from_le_bytes(b.try_into().ok()?))
    }

    fn slice(&self, off: u64, len: u64) -> Option<&[u8]> {
        let o = usize::try_from(off).ok()?;
        let l = usize::try_from(len).ok()?;
        self.bytes.get(o..o.checked_add(l)?)
    }

    /// The offsets of a list's records, newest first, starting at `head`.
    fn list(&self, head: u64, damage: &mut Vec<String>) -> Vec<u64> {
        let mut out = Vec::new();
        let mut seen = FxHashSet::default();
        let mut at = head;
        while at != 0 {
            if !seen.insert(at) || out.len() == MAX_WALK || at < HEADER_BYTES {
                damage.push(format!("a list loops or leaves the file at offset {at}"));
                break;
            }
            out.push(at);
            match self.u64(at) {
                Some(next) => at = next,
                None => {
                    damage.push(format!("a record at offset {at} is past the file's end"));
                    out.pop();
                    break;
                }
            }
        }
        out
    }
}

struct Module {
    start: u64,
    end: u64,
    file_offset: u64,
    object: Arc<ObjectFile>,
}

fn modules(img: &Image, process: u64, damage: &mut Vec<String>) -> Vec<Module> {
    let mut out = Vec::new();
    let Some(head) = img.u64(process + 40) else {
        return out;
    };
    for m in img.list(head, damage) {
        let (Some(start), Some(end), Some(file_offset), Some(id_len), Some(path_len)) = (
            img.u64(m + 8),
            img.u64(m + 16),
            img.u64(m + 24),
            img.u32(m + 32),
            img.u32(m + 36),
        ) else {
            damage.push(format!("an object record at {m} is cut"));
            continue;
        };
        let (Some(id), Some(path)) = (
            img.slice(m + 40, u64::from(id_len.min(32))),
            img.slice(m + 72, u64::from(path_len)),
        ) else {
            damage.push(format!("an object record at {m} is cut"));
            continue;
        };
        out.push(Module {
            start,
            end,
            file_offset,
            object: Arc::new(ObjectFile {
                path: PathBuf::from(String::from_utf8_lossy(path).into_owned()),
                build_id: (!id.is_empty()).then(|| id.to_vec()),
                file: None,
            }),
        });
    }
    out
}

/// Every object file the processes recorded (once each).
pub fn objects(bytes: &[u8]) -> Vec<Arc<ObjectFile>> {
    let img = Image { bytes };
    let mut damage = Vec::new();
    if img.u64(0) != Some(LAYOUT_MAGIC) {
        return Vec::new();
    }
    let mut seen = FxHashSet::default();
    let mut out = Vec::new();
    for r in img.list(img.u64(32).unwrap_or(0), &mut damage) {
        for m in modules(&img, r, &mut damage) {
            if seen.insert(m.object.clone()) {
                out.push(m.object);
            }
        }
    }
    out
}

/// Reads everything the programs recorded in `bytes` (the shared file).
pub fn read(bytes: &[u8]) -> Contents {
    let img = Image { bytes };
    let mut c = Contents::default();
    if img.u64(0) != Some(LAYOUT_MAGIC) || img.u32(8) != Some(LAYOUT_VERSION) {
        c.damage
            .push("the shared file does not start with allocflame's header".into());
        return c;
    }
    c.overflow = img.u64(40).unwrap_or(0);
    c.unwind_stops = img.u64(56).unwrap_or(0);
    c.capped = img.u64(88).unwrap_or(0);
    c.max_depth = img.u32(48).unwrap_or(0);
    let records = img.list(img.u64(32).unwrap_or(0), &mut c.damage);
    // Objects per record, so a forked child finds its parent's.
    let mut objects: FxHashMap<u64, Vec<Module>> = FxHashMap::default();
    for &r in &records {
        let m = modules(&img, r, &mut c.damage);
        objects.insert(r, m);
    }
    for &r in records.iter().rev() {
        let (Some(pid), Some(ppid), Some(forked), Some(parent), Some(tables)) = (
            img.u32(r + 8),
            img.u32(r + 12),
            img.u32(r + 16),
            img.u64(r + 24),
            img.u64(r + 32),
        ) else {
            c.damage.push(format!("a process record at {r} is cut"));
            continue;
        };
        let comm = img
            .slice(r + 48, 16)
            .map(|b| {
                let end = b.iter().position(|&x| x == 0).unwrap_or(b.len());
                String::from_utf8_lossy(&b[..end]).into_owned()
            })
            .unwrap_or_default();
        if pid == 0 {
            continue;
        }
        let forked = forked != 0;
        c.processes.push(ProcessRecord {
            offset: r,
            pid,
            ppid,
            forked,
            comm: comm.clone(),
        });
        let root = if forked {
            format!("{comm} [child]")
        } else {
            comm
        };
        // This record's objects, then those it inherited from the records it was forked from.
        let mut chain = vec![r];
        let mut p = parent;
        while p != 0 && chain.len() < 64 && !chain.contains(&p) {
            chain.push(p);
            p = img.u64(p + 24).unwrap_or(0);
        }
        let locate = |pc: u64| -> RawFrame {
            for rec in &chain {
                if let Some(m) = objects
                    .get(rec)
                    .and_then(|ms| ms.iter().find(|m| pc >= m.start && pc < m.end))
                {
                    return RawFrame::File {
                        object: m.object.clone(),
                        offset: pc - m.start + m.file_offset,
                    };
                }
            }
            RawFrame::Address(pc)
        };
        let table_offs = img.list(tables, &mut c.damage);
        let replaced: FxHashSet<u64> = table_offs
            .iter()
            .filter_map(|&t| img.u64(t + 8))
            .filter(|&o| o != 0)
            .collect();
        for &t in &table_offs {
            if replaced.contains(&t) {
                continue;
            }
            let Some(mask) = img.u32(t + 20) else {
                continue;
            };
            for i in 0..=u64::from(mask) {
                let s = t + 32 + i * 32;
                let (Some(hash), Some(stack), Some(count), Some(bytes)) =
                    (img.u64(s), img.u64(s + 8), img.u64(s + 16), img.u64(s + 24))
                else {
                    c.damage.push(format!("a stack table at {t} is cut"));
                    break;
                };
                if hash == 0 || count == 0 {
                    continue;
                }
                let (Some(function), Some(depth)) = (img.u32(stack), img.u32(stack + 4)) else {
                    c.damage.push(format!("a stack at {stack} is cut"));
                    continue;
                };
                let n = u64::from(depth & 0xffff);
                let Some(raw) = img.slice(stack + 8, n * 8) else {
                    c.damage.push(format!("a stack at {stack} is cut"));
                    continue;
                };
                let mut frames: Vec<RawFrame> = raw
                    .chunks_exact(8)
                    .map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()))
                    // A return address: the call is the byte before it.
                    .map(|ra| locate(ra.saturating_sub(1)))
                    .collect();
                if depth & FRAMES_CAPPED != 0 {
                    // Counted as the perf backend counts: the allocator's frame is one of them.
                    let limit = c.max_depth as usize + 1;
                    frames.push(RawFrame::symbol(
                        &allocflame_core::source::deeper_than_frame(limit),
                    ));
                }
                c.stacks.push(Counted {
                    pid,
                    root: root.clone(),
                    function: function as usize,
                    frames,
                    count,
                    bytes,
                });
            }
        }
    }
    c
}

/// Allocations counted so far (for a live counter; a racy read is fine).
pub fn total(bytes: &[u8]) -> u64 {
    read(bytes).stacks.iter().map(|s| s.count).sum()
}

/// The process records alone (cheaper than [`read`]).
pub fn processes(bytes: &[u8]) -> Vec<ProcessRecord> {
    let img = Image { bytes };
    let mut damage = Vec::new();
    if img.u64(0) != Some(LAYOUT_MAGIC) {
        return Vec::new();
    }
    img.list(img.u64(32).unwrap_or(0), &mut damage)
        .into_iter()
        .filter_map(|r| {
            Some(ProcessRecord {
                offset: r,
                pid: img.u32(r + 8).filter(|&p| p != 0)?,
                ppid: img.u32(r + 12)?,
                forked: img.u32(r + 16)? != 0,
                comm: String::new(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file as the library writes it: one process, one object, one thread's table with one
    /// stack.
    fn image() -> Vec<u8> {
        let mut b = vec![0u8; 8192];
        let put64 =
            |b: &mut Vec<u8>, at: usize, v: u64| b[at..at + 8].copy_from_slice(&v.to_le_bytes());
        let put32 =
            |b: &mut Vec<u8>, at: usize, v: u32| b[at..at + 4].copy_from_slice(&v.to_le_bytes());
        b[..96].copy_from_slice(&header(8192, FLAG_STACKS, 255, true));
        let (process, module, table, frames) = (4096usize, 4160usize, 4352usize, 4800usize);
        put64(&mut b, 32, process as u64);
        // The process: pid 42, named "prog".
        put32(&mut b, process + 8, 42);
        put64(&mut b, process + 32, table as u64);
        put64(&mut b, process + 40, module as u64);
        b[process + 48..process + 52].copy_from_slice(b"prog");
        // Its executable segment: 0x1000..0x2000 at file offset 0x800 of /bin/prog.
        put64(&mut b, module + 8, 0x1000);
        put64(&mut b, module + 16, 0x2000);
        put64(&mut b, module + 24, 0x800);
        put32(&mut b, module + 36, 9);
        b[module + 72..module + 81].copy_from_slice(b"/bin/prog");
        // A table of 2 slots; slot 1 holds the stack.
        put32(&mut b, table + 20, 1);
        let slot = table + 32 + 32;
        put64(&mut b, slot, 7);
        put64(&mut b, slot + 8, frames as u64);
        put64(&mut b, slot + 16, 5);
        put64(&mut b, slot + 24, 80);
        // calloc, called from 0x1234 (in the object) and from 0x9999 (in none).
        put32(&mut b, frames, 1);
        put32(&mut b, frames + 4, 2);
        put64(&mut b, frames + 8, 0x1235);
        put64(&mut b, frames + 16, 0x999a);
        b
    }

    #[test]
    fn a_stack_is_read_with_its_frames_normalized() {
        let c = read(&image());
        assert!(c.damage.is_empty(), "{:?}", c.damage);
        assert_eq!(c.stacks.len(), 1);
        let s = &c.stacks[0];
        assert_eq!((s.pid, s.root.as_str(), s.function), (42, "prog", 1));
        assert_eq!((s.count, s.bytes), (5, 80));
        match &s.frames[0] {
            RawFrame::File { object, offset } => {
                assert_eq!(object.path, PathBuf::from("/bin/prog"));
                assert_eq!(*offset, 0x1234 - 0x1000 + 0x800);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(s.frames[1], RawFrame::Address(0x9999));
        assert_eq!(total(&image()), 5);
    }

    #[test]
    fn damaged_files_give_fewer_stacks_and_say_so_never_a_panic() {
        let good = image();
        // Cut anywhere, and every byte of the records flipped in turn.
        for cut in (0..good.len()).step_by(97) {
            let _ = read(&good[..cut]);
        }
        for at in 4096..4900 {
            let mut bad = good.clone();
            bad[at] ^= 0xff;
            let _ = read(&bad);
            let _ = processes(&bad);
            let _ = intents(&bad);
            let _ = rule_requests(&bad);
        }
        // A list that points at itself.
        let mut looped = good.clone();
        looped[4096..4104].copy_from_slice(&4096u64.to_le_bytes());
        let c = read(&looped);
        assert!(
            c.damage.iter().any(|d| d.contains("loops")),
            "{:?}",
            c.damage
        );
        assert!(!read(b"not a shared file").damage.is_empty());
    }

    #[test]
    fn rules_pack_as_the_library_unpacks_them() {
        // rbp-based CFA + 16, rbp saved 16 below it: what a frame pointer gives.
        let v = pack_rule(true, 16, Some(16), true);
        assert_eq!((v >> 5) & 1, 1);
        assert_eq!(v & 3, 1);
        assert_eq!((v >> 2) & 1, 1);
        assert_eq!((v >> 3) & 3, 1);
        assert_eq!((v >> 8) as u32, 16);
        assert_eq!((v as i64) >> 40, -16);
        let v = pack_rule(false, 40, None, false);
        assert_eq!(((v >> 2) & 1, (v >> 3) & 3, (v >> 8) as u32), (0, 0, 40));
    }
}
