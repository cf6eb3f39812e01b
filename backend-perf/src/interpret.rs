//! The interpreter: turns the records of a recording, live or from a saved capture, into
//! aggregated stacks — process bookkeeping (fork, exec, mmap), unwinding, normalization to
//! (object, offset), the counted-once rule (`allocflame_core::once`), per-stack weights and the
//! loss ledger. No cfg and no syscalls: everything it learns comes in as records, and files
//! come through an [`Opener`], so the same code interprets a live recording and a replay.

use std::path::{Path, PathBuf};

use allocflame_core::once::{EntryHit, Ledger, Loss, TailCalls};
use allocflame_core::probes::Probe;
use allocflame_core::source::{RawFrame, RawStack, RecordReport, StackSink};
use allocflame_core::Weight;
use framehop::x86_64::{CacheX86_64, UnwindRegsX86_64};
use framehop::{FrameAddress, Unwinder};
use rustc_hash::{FxHashMap, FxHashSet};
use serde::{Deserialize, Serialize};

use crate::objects::{Mapping, NormFrame, Objects, Opener, Process};
use crate::prologue::Base;
use crate::record::{self, regs, Layout, Record, Sample, Synthetic};

/// A probed function located in a file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Location {
    /// The file.
    pub path: PathBuf,
    /// File offset of the function's first instruction.
    pub offset: u64,
    /// Size of the function in bytes (0 when the symbol table does not say).
    pub size: u64,
    /// Indices of the probes at this location (aliases like `aligned_alloc` = `memalign`).
    pub probes: Vec<usize>,
    /// Device and inode of the file, when known: a file in another root may have the path of
    /// another file here.
    #[serde(default)]
    pub inode: Option<(u64, u64)>,
}

/// What the interpreter must know of a recording, besides its records: saved at the head of
/// a raw capture.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Setup {
    /// The probes, as `LIB:FUNC[:SIZE]`.
    pub probes: Vec<String>,
    /// Where they were placed.
    pub locations: Vec<Location>,
    /// What samples carry.
    pub layout: Layout,
    /// The target's process id.
    pub main_pid: u32,
    /// Its name (the root frame).
    pub comm: String,
    /// Whether stacks are kept (`false`: only counted).
    pub stacks: bool,
    /// The deepest stack kept, in frames.
    pub max_depth: usize,
    /// Whether each thread's stack copy is sized to what its stacks need (asked of the
    /// recorder through [`Interpreter::resize`]).
    #[serde(default)]
    pub adaptive: bool,
}

impl Setup {
    /// The probes, parsed.
    pub fn parsed_probes(&self) -> allocflame_core::Result<Vec<Probe>> {
        self.probes.iter().map(|p| p.parse()).collect()
    }

    /// The probes, parsed, once the setup is checked whole: every location names probes of
    /// the recording.
    pub fn checked_probes(&self) -> allocflame_core::Result<Vec<Probe>> {
        let probes = self.parsed_probes()?;
        match self
            .locations
            .iter()
            .find(|l| l.probes.is_empty() || l.probes.iter().any(|&p| p >= probes.len()))
        {
            Some(l) => Err(allocflame_core::Error::Invalid(format!(
                "probe location {}+{:#x} names no probe of the recording",
                l.path.display(),
                l.offset
            ))),
            None => Ok(probes),
        }
    }
}

/// Callchain entries at or above this are context markers (PERF_CONTEXT_USER, …).
const PERF_CONTEXT_MAX: u64 = (-4095i64) as u64;

/// The object id of the `[stack truncated]` marker frame.
const TRUNCATED: u32 = u32::MAX - 1;

/// The object id of the marker frame of a stack cut at the deepest depth kept.
const CAPPED: u32 = u32::MAX - 2;

type StackMap = FxHashMap<Box<[NormFrame]>, Weight>;

/// The largest stack copy the kernel makes (a sample is at most 64 KiB).
pub const MAX_STACK_BYTES: u32 = 65528;

/// How much of its stack copy a thread's stacks use, at the copy size it has now.
struct StackUse {
    asked: usize,
    samples: u32,
    /// The most bytes above the stack pointer a complete stack was unwound from.
    used: usize,
    /// The least bytes between the stack pointer and the end of the stack's memory.
    headroom: usize,
    /// A new size was asked for: wait for samples of it.
    pending: bool,
}

impl StackUse {
    fn new(asked: usize) -> StackUse {
        StackUse {
            asked,
            samples: 0,
            used: 0,
            headroom: usize::MAX,
            pending: false,
        }
    }
}

/// Samples of a thread after which its copy is sized to what they used: a thread that
/// allocates this much is one whose cost matters, and one whose stacks have shown their depth
/// (a compiler's or an interpreter's deepest stacks come well after its first ones).
const SIZING_SAMPLES: u32 = 20_000;

/// The copy for stacks that used `used` bytes at most, with `headroom` bytes to the end of
/// the stack's memory: four times the use (deeper stacks stay complete), within the headroom
/// less 1 KiB where that still leaves room (a copy past the end of the stack costs a fault,
/// ~2 µs here).
fn sized_copy(used: usize, headroom: usize) -> usize {
    let want = (4 * used).max(2048).next_multiple_of(1024);
    // A little short of the end: calls made from a frame or two nearer the top stay clear.
    let within = headroom.saturating_sub(1024) & !7;
    if within < want && within >= used + 256 {
        within
    } else {
        want
    }
}

/// File-offset ranges `[start, end)` of probed functions.
type Ranges = Box<[(u64, u64)]>;

/// Interprets records; see the module docs.
pub(crate) struct Interpreter<'o> {
    setup: Setup,
    probes: Vec<Probe>,
    opener: Box<dyn Opener + 'o>,
    /// Event id → location.
    ids: FxHashMap<u64, usize>,
    side_ids: FxHashSet<u64>,
    objects: Objects,
    procs: FxHashMap<u32, Process>,
    roots: Vec<String>,
    root_ids: FxHashMap<String, u32>,
    /// Pids that exec'd since we saw them (their root is their own name).
    exec_seen: FxHashSet<u32>,
    tails: TailCalls,
    /// Per path: the file-offset ranges of probed functions in it (locations without inode).
    ranges_by_path: FxHashMap<PathBuf, Vec<(u64, u64)>>,
    /// Per device and inode: the file-offset ranges of probed functions in it.
    ranges_by_inode: FxHashMap<(u64, u64), Vec<(u64, u64)>>,
    /// Per object id, the ranges of its path, looked up once.
    ranges: Vec<Option<Ranges>>,
    stacks: FxHashMap<(u32, u32, usize), StackMap>,
    per_probe: Vec<Weight>,
    pub ledger: Ledger,
    /// Records the kernel said it dropped (any kind), from PERF_RECORD_LOST.
    lost_records: u64,
    counters: Option<(Vec<(u64, u64)>, u64)>,
    untraced: Vec<(u32, String)>,
    unreadable_examples: Vec<String>,
    cache: CacheX86_64,
    addrs: Vec<u64>,
    norm: Vec<NormFrame>,
    /// Stacks continued with the kernel's callchain past the copied stack.
    spliced: u64,
    /// Stacks cut at the end of the copied stack bytes.
    truncated: u64,
    /// Stacks cut at the deepest depth kept.
    capped: u64,
    /// Synthetic records the interpreter produced (object identities), for a capture to save
    /// before the record that caused them.
    pub outbox: Vec<Synthetic>,
    /// Per thread, how much of its copy its stacks use (adaptive copies).
    stack_use: FxHashMap<u32, StackUse>,
    /// New copy sizes (thread, bytes) for the recorder to give threads (adaptive copies).
    pub resize: Vec<(u32, u32)>,
    /// Threads whose copy was made larger after a cut stack.
    grown: u64,
    /// Of the last sample: where its stack is in the record, the bytes of it the unwinder read,
    /// and whether the copy had ended short (for a capture to keep just those bytes).
    pub last_stack: Option<(usize, usize, bool)>,
}

impl<'o> Interpreter<'o> {
    pub(crate) fn new(setup: Setup, opener: Box<dyn Opener + 'o>) -> allocflame_core::Result<Self> {
        let probes = setup.checked_probes()?;
        let mut t = Interpreter {
            per_probe: vec![Weight::default(); probes.len()],
            tails: TailCalls::new(&probes),
            probes,
            opener,
            ids: FxHashMap::default(),
            side_ids: FxHashSet::default(),
            objects: Objects::default(),
            procs: FxHashMap::default(),
            roots: Vec::new(),
            root_ids: FxHashMap::default(),
            exec_seen: FxHashSet::default(),
            ranges_by_path: FxHashMap::default(),
            ranges_by_inode: FxHashMap::default(),
            ranges: Vec::new(),
            stacks: FxHashMap::default(),
            ledger: Ledger::default(),
            lost_records: 0,
            counters: None,
            untraced: Vec::new(),
            unreadable_examples: Vec::new(),
            cache: CacheX86_64::new(),
            addrs: Vec::with_capacity(64),
            norm: Vec::with_capacity(64),
            spliced: 0,
            truncated: 0,
            capped: 0,
            outbox: Vec::new(),
            stack_use: FxHashMap::default(),
            resize: Vec::new(),
            grown: 0,
            last_stack: None,
            setup,
        };
        for loc in t.setup.locations.clone() {
            t.add_ranges(&loc);
        }
        let (pid, comm) = (t.setup.main_pid, t.setup.comm.clone());
        let root = t.root_id(pid, &comm);
        t.procs.insert(pid, Process::new(comm, root));
        Ok(t)
    }

    fn add_ranges(&mut self, loc: &Location) {
        // A marker (a request handler) is no allocator: what is allocated inside it counts.
        if loc
            .probes
            .iter()
            .all(|&p| self.probes.get(p).is_some_and(|p| p.marker))
        {
            return;
        }
        let range = (loc.offset, loc.offset + loc.size.max(1));
        match loc.inode {
            Some(inode) => self.ranges_by_inode.entry(inode).or_default().push(range),
            None => self
                .ranges_by_path
                .entry(loc.path.clone())
                .or_default()
                .push(range),
        }
        // Looked up again with the new location.
        self.ranges.clear();
    }

    /// The setup it was made with (and the locations added since).
    // Used by the Linux recorder only.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    pub(crate) fn setup(&self) -> &Setup {
        &self.setup
    }

    /// The probe location of event `id`, if it is one of the recording's uprobe events.
    // Used by the Linux recorder only.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    pub(crate) fn location_of(&self, id: u64) -> Option<usize> {
        self.ids.get(&id).copied()
    }

    /// Whether event `id` is one of the recording's side-record events.
    // Used by the Linux recorder only.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    pub(crate) fn is_side_event(&self, id: u64) -> bool {
        self.side_ids.contains(&id)
    }

    /// Allocations counted so far.
    // Used by the Linux recorder only.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    pub(crate) fn counted(&self) -> u64 {
        self.ledger.counted
    }

    /// The root frame of `pid` named `comm`: the target's own name; a forked child that did not
    /// exec is `NAME [child]`; a process that exec'd is rooted at its program's name.
    fn root_id(&mut self, pid: u32, comm: &str) -> u32 {
        let name = if pid == self.setup.main_pid || self.exec_seen.contains(&pid) {
            comm.to_owned()
        } else {
            format!("{comm} [child]")
        };
        if let Some(&id) = self.root_ids.get(&name) {
            return id;
        }
        let id = self.roots.len() as u32;
        self.roots.push(name.clone());
        self.root_ids.insert(name, id);
        id
    }

    fn process(&mut self, pid: u32) -> &mut Process {
        if !self.procs.contains_key(&pid) {
            // A process we saw no fork of (records lost): named by pid.
            let comm = format!("pid {pid}");
            let root = self.root_id(pid, &comm);
            self.procs.insert(pid, Process::new(comm, root));
        }
        self.procs.get_mut(&pid).expect("inserted above")
    }

    /// Handles one raw ring-buffer record.
    pub(crate) fn ring_record(&mut self, rec: &[u8]) {
        self.last_stack = None;
        let layout = self.setup.layout;
        match record::decode(rec, &layout) {
            Ok(r) => self.record(r),
            Err(e) => {
                // A sample that cannot be read is a lost hit; another record a lost fact.
                if record::record_kind(rec) == Some(record::kind::SAMPLE)
                    && record::sample_id(rec).is_some_and(|id| self.ids.contains_key(&id))
                {
                    self.ledger.lose(Loss::Unreadable, 1);
                }
                if self.unreadable_examples.len() < 3 {
                    self.unreadable_examples.push(e.to_string());
                }
            }
        }
    }

    fn record(&mut self, r: Record<'_>) {
        match r {
            Record::Sample(s) => self.sample(s),
            Record::Lost { lost, .. } => self.lost_records += lost,
            Record::Fork { pid, ppid, .. } => {
                if pid != ppid && !self.procs.contains_key(&pid) {
                    let mut child = match self.procs.get(&ppid) {
                        Some(p) => p.clone(),
                        None => Process::new(format!("pid {pid}"), 0),
                    };
                    self.exec_seen.remove(&pid);
                    child.root = self.root_id(pid, &child.comm.clone());
                    self.procs.insert(pid, child);
                }
            }
            Record::Exit { tid, .. } => {
                self.tails.forget(tid as u64);
                self.stack_use.remove(&tid);
            }
            Record::Comm {
                pid,
                tid,
                exec,
                name,
                ..
            } => {
                let comm = String::from_utf8_lossy(name).into_owned();
                self.named(pid, tid, &comm, exec);
            }
            Record::Mmap(m) => {
                if m.prot & 4 == 0 || m.filename.first() != Some(&b'/') {
                    return;
                }
                let path = bytes_path(m.filename);
                self.mapping(m.pid, m.start, m.start + m.len, m.pgoff, m.inode, &path);
            }
            Record::Other { .. } => {}
        }
    }

    fn named(&mut self, pid: u32, tid: u32, comm: &str, exec: bool) {
        if exec {
            self.exec_seen.insert(pid);
        }
        if pid == tid || exec {
            let root = self.root_id(pid, comm);
            let p = self.process(pid);
            if exec {
                p.clear();
            }
            p.comm = comm.to_owned();
            p.root = root;
        }
    }

    fn mapping(
        &mut self,
        pid: u32,
        start: u64,
        end: u64,
        pgoff: u64,
        inode: Option<(u64, u64)>,
        path: &Path,
    ) {
        let outbox = &mut self.outbox;
        let file = self.objects.intern(
            &mut *self.opener,
            pid,
            path,
            inode,
            (start, end),
            &mut |path, inode, build_id, seen_at| {
                outbox.push(Synthetic::Object {
                    path: path.to_path_buf(),
                    inode,
                    build_id,
                    seen_at,
                })
            },
        );
        let m = Mapping {
            start,
            end,
            pgoff,
            file,
        };
        self.process(pid);
        if let Some(p) = self.procs.get_mut(&pid) {
            p.add_mapping(&self.objects, m);
        }
    }

    /// Handles one record the recorder made itself.
    pub(crate) fn synthetic(&mut self, s: &Synthetic) {
        match s {
            Synthetic::Ids { location, ids } => {
                if *location < self.setup.locations.len() {
                    self.ids.extend(ids.iter().map(|&id| (id, *location)));
                }
            }
            Synthetic::SideIds { ids } => self.side_ids.extend(ids.iter().copied()),
            Synthetic::Location { location } => {
                if location.probes.iter().all(|&p| p < self.probes.len())
                    && !location.probes.is_empty()
                {
                    self.add_ranges(location);
                    self.setup.locations.push(location.clone());
                }
            }
            Synthetic::Mapping {
                pid,
                start,
                end,
                pgoff,
                inode,
                path,
            } => self.mapping(*pid, *start, *end, *pgoff, *inode, path),
            Synthetic::Process { pid, comm, exec } => {
                if *exec {
                    self.named(*pid, *pid, comm, true);
                } else {
                    let root = self.root_id(*pid, comm);
                    let p = self.process(*pid);
                    p.comm = comm.clone();
                    p.root = root;
                }
            }
            // Identities are the opener's business (a replay checks them).
            Synthetic::Object { .. } => {}
            Synthetic::Untraced { tid, why } => self.untraced.push((*tid, why.clone())),
            Synthetic::Counters {
                per_location,
                side_lost,
            } => self.counters = Some((per_location.clone(), *side_lost)),
        }
    }

    fn sample(&mut self, s: Sample<'_>) {
        let Some(&loc) = self.ids.get(&s.id) else {
            // A sample of no probe event we opened: never expected, and counted.
            self.ledger.lose(Loss::Unreadable, 1);
            return;
        };
        let Some(r) = s.regs else {
            self.ledger.lose(Loss::Unreadable, 1);
            return;
        };
        let (pid, tid, stack) = (s.pid, s.tid, s.stack);
        let (ip, sp, bp) = (r[regs::IDX_IP], r[regs::IDX_SP], r[regs::IDX_BP]);
        // The most bytes of the copy read: what this stack needs of it.
        let used = std::cell::Cell::new(8usize);
        let read_word = |addr: u64| -> Result<u64, ()> {
            let off = addr.checked_sub(sp).ok_or(())? as usize;
            let w = stack
                .get(off..off.checked_add(8).ok_or(())?)
                .map(|w| u64::from_ne_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]))
                .ok_or(())?;
            used.set(used.get().max(off + 8));
            Ok(w)
        };
        // At a function's first instruction the return address is the word at the stack
        // pointer: the immediate caller, whatever the allocator's own unwind info.
        let ret = read_word(sp).unwrap_or(0);
        let short = stack.len() < s.stack_asked;
        // (Also for the returns below that read nothing more.)
        self.last_stack = Some((s.stack_at, used.get(), short));
        let probe = self.setup.locations[loc].probes[0];
        let args: [u64; 6] = regs::ARGS.map(|i| r[i]);
        if self.probes[probe].marker {
            // A call of the unit of work: counted, no allocation, no stack.
            self.per_probe[probe].allocs += 1;
            self.ledger.counted += 1;
            return;
        }
        let weight = Weight::new(1, self.probes[probe].size.size(&args));

        // Counted once, part 1: the inner half of a tail-call relay (realloc(NULL) → malloc).
        let hit = EntryHit {
            probe,
            args,
            sp,
            ret,
        };
        if self.tails.is_relayed(tid as u64, &hit) {
            self.ledger.inner += 1;
            return;
        }

        self.addrs.clear();
        self.norm.clear();
        let max_depth = self.setup.max_depth.max(2);
        self.process(pid);
        let Some(proc_) = self.procs.get(&pid) else {
            return;
        };
        self.addrs.push(ip);
        let mut complete = true;
        let mut capped = false;
        if ret != 0 {
            self.addrs.push(ret - 1);
            let mut regs = UnwindRegsX86_64::new(ret, sp + 8, bp);
            let mut read_stack = read_word;
            let mut at = ret;
            complete = loop {
                let Some(addr) = FrameAddress::from_return_address(at) else {
                    break true;
                };
                // A function without CFI (Swift -O's nounwind functions): its frame as its
                // code tells it, else as the unwinder can (which walks frame pointers there).
                let unwound = match proc_.rule_without_cfi(&self.objects, at) {
                    Some(rule) => {
                        let slot = match rule.base {
                            Base::Rsp(n) => regs.sp().wrapping_add(n),
                            Base::Rbp(n) => regs.bp().wrapping_add(n),
                        };
                        let bp = match rule.saved_rbp {
                            Some(below) => read_stack(slot.wrapping_sub(below)),
                            None => Ok(regs.bp()),
                        };
                        match (read_stack(slot), bp) {
                            (Ok(next), Ok(bp)) => {
                                regs = UnwindRegsX86_64::new(next, slot + 8, bp);
                                Ok(Some(next))
                            }
                            _ => Err(framehop::Error::CouldNotReadStack(slot)),
                        }
                    }
                    None => proc_.unwinder.unwind_frame(
                        addr,
                        &mut regs,
                        &mut self.cache,
                        &mut read_stack,
                    ),
                };
                match unwound {
                    // One frame more than kept: the stack goes on past the limit.
                    Ok(Some(next)) if next != 0 && self.addrs.len() >= max_depth => {
                        capped = true;
                        break true;
                    }
                    Ok(Some(next)) if next != 0 => {
                        self.addrs.push(next - 1);
                        at = next;
                    }
                    Ok(_) => break true,
                    // Only running out of copied stack means a cut stack; other errors are
                    // how unwinding often ends at the root.
                    // A copy shorter than asked for ended where the stack's memory ends.
                    Err(framehop::Error::CouldNotReadStack(a)) => {
                        break a < sp
                            || a.saturating_sub(sp) < (stack.len() as u64).saturating_sub(8)
                            || short
                    }
                    Err(_) => break true,
                }
            };
        } else if stack.is_empty() {
            complete = false;
        }
        // Past the copied stack, continue with the kernel's frame-pointer callchain. Its entry
        // j is our frame j + d (d = 1 when the allocator's caller keeps a frame pointer: the
        // kernel's walk skips it); the shift must hold for every frame both have, so recursion
        // cannot misalign it and a chain that went astray through code without frame pointers
        // is not used.
        let mut truncated = !complete;
        if !complete && self.addrs.len() >= 2 && !s.callchain.is_empty() {
            let user: Vec<u64> = s
                .callchain
                .iter()
                .copied()
                .filter(|&a| a < PERF_CONTEXT_MAX)
                .collect();
            let k = self.addrs.len();
            let addrs = &self.addrs;
            let shift = [1usize, 0, 2, 3].into_iter().find(|&d| {
                k > d + 1
                    && user.len() > k - d
                    && (1..k - d).all(|j| user[j].wrapping_sub(1) == addrs[j + d])
            });
            if let Some(d) = shift {
                self.spliced += 1;
                truncated = false;
                for &a in &user[k - d..] {
                    if a == 0 {
                        break;
                    }
                    if self.addrs.len() >= max_depth {
                        capped = true;
                        break;
                    }
                    self.addrs.push(a - 1);
                }
            }
        }
        for &a in self.addrs.iter().skip(1) {
            self.norm.push(proc_.normalize(a));
        }
        // Counted once, part 2: a caller frame inside a probed function (posix_memalign →
        // malloc, a probed custom allocator → malloc).
        for i in 0..self.norm.len() {
            if self.inside_probed(self.norm[i]) {
                self.ledger.inner += 1;
                return;
            }
        }
        self.last_stack = Some((s.stack_at, used.get(), short));
        if self.setup.adaptive {
            self.size_copy(tid, s.stack_asked, stack.len(), used.get(), truncated);
        }
        if truncated {
            self.truncated += 1;
            self.norm.push(NormFrame {
                file: TRUNCATED,
                offset: 0,
            });
        } else if capped {
            self.capped += 1;
            self.norm.push(NormFrame {
                file: CAPPED,
                offset: 0,
            });
        }
        self.per_probe[probe] += weight;
        self.ledger.counted += 1;
        if self.setup.stacks {
            let root = self.procs.get(&pid).map(|p| p.root).unwrap_or(0);
            let map = self.stacks.entry((root, pid, probe)).or_default();
            match map.get_mut(&self.norm[..]) {
                Some(w) => *w += weight,
                None => {
                    map.insert(self.norm.clone().into_boxed_slice(), weight);
                }
            }
        }
    }

    /// Adaptive copies: a thread whose stack was cut gets a copy four times larger; one whose
    /// stacks over [`SIZING_SAMPLES`] could do with half its copy or less ([`sized_copy`]) gets
    /// that.
    fn size_copy(&mut self, tid: u32, asked: usize, copied: usize, used: usize, cut: bool) {
        let u = self
            .stack_use
            .entry(tid)
            .or_insert_with(|| StackUse::new(asked));
        if u.asked != asked {
            // Samples of the new size: counted afresh.
            *u = StackUse::new(asked);
        }
        if u.pending {
            return;
        }
        if cut {
            if asked < MAX_STACK_BYTES as usize {
                let bigger = (asked * 4).min(MAX_STACK_BYTES as usize) as u32;
                self.resize.push((tid, bigger));
                u.pending = true;
                self.grown += 1;
            }
            return;
        }
        u.samples += 1;
        u.used = u.used.max(used);
        if copied < asked {
            u.headroom = u.headroom.min(copied);
        }
        if u.samples >= SIZING_SAMPLES {
            let size = sized_copy(u.used, u.headroom);
            if size * 2 <= asked {
                self.resize.push((tid, size as u32));
                u.pending = true;
            } else {
                u.samples = 0;
            }
        }
    }

    /// Whether `f` lies inside a probed function (the ranges of its object's path are looked
    /// up once per object).
    fn inside_probed(&mut self, f: NormFrame) -> bool {
        let i = f.file as usize;
        let Some(entry) = self.objects.entries.get(i) else {
            return false;
        };
        if self.ranges.len() <= i {
            self.ranges.resize(self.objects.entries.len(), None);
        }
        let (by_path, by_inode) = (&self.ranges_by_path, &self.ranges_by_inode);
        let ranges = self.ranges[i].get_or_insert_with(|| {
            let mut v: Vec<(u64, u64)> = by_path.get(&*entry.path).cloned().unwrap_or_default();
            if let Some(r) = entry.inode.and_then(|i| by_inode.get(&i)) {
                v.extend_from_slice(r);
            }
            v.into_boxed_slice()
        });
        ranges.iter().any(|&(s, e)| f.offset >= s && f.offset < e)
    }

    /// Hands everything over to `sink` and fills in `report`: per-probe totals, losses by
    /// kind (reconciled with the kernel's counters when the recording has them), notes.
    pub(crate) fn finish(mut self, report: &mut RecordReport, sink: &mut dyn StackSink) {
        for ((root, pid, probe), map) in std::mem::take(&mut self.stacks) {
            let p = &self.probes[probe];
            let leaf = RawFrame::Symbol {
                module: Some(p.library.as_str().into()),
                name: p.function.as_str().into(),
            };
            let comm = self.roots.get(root as usize).cloned().unwrap_or_default();
            for (frames, weight) in map {
                let mut raw = Vec::with_capacity(frames.len() + 1);
                raw.push(leaf.clone());
                raw.extend(frames.iter().map(|f| self.raw_frame(f)));
                sink.add(RawStack {
                    pid,
                    comm: comm.clone(),
                    probe,
                    frames: raw,
                    weight,
                });
            }
        }
        // Losses: the kernel's per-event counters when the recording has them (they count
        // every hit and every sample it could not write, to the last one); else its
        // PERF_RECORD_LOST records, which also count lost process records.
        let unreadable = self
            .ledger
            .lost
            .get(&Loss::Unreadable)
            .copied()
            .unwrap_or(0);
        match self.counters.take() {
            Some((per_location, side_lost)) => {
                let hits: u64 = per_location.iter().map(|&(h, _)| h).sum();
                let dropped: u64 = per_location.iter().map(|&(_, l)| l).sum();
                self.ledger.lose(Loss::Dropped, dropped);
                report.hits = Some(hits);
                if let Err(why) = self.ledger.reconcile(hits) {
                    let accounted = self.ledger.hits();
                    if hits > accounted {
                        // Hits the kernel counted that reached no one: lost, and said so.
                        self.ledger.lose(Loss::Unreadable, hits - accounted);
                    }
                    report
                        .notes
                        .push(format!("{why}: the difference is counted as lost"));
                }
                if side_lost > 0 {
                    report.notes.push(format!(
                        "{side_lost} process records (mappings, forks, execs) were dropped by the kernel: some frames may be unnamed or rooted at `pid N`"
                    ));
                }
            }
            None => self.ledger.lose(Loss::Dropped, self.lost_records),
        }
        let lost = self.ledger.lost_total();
        if lost > 0 {
            sink.lost(lost);
            for (why, n) in &self.ledger.lost {
                report.notes.push(format!(
                    "{n} allocation events were lost: {}",
                    why.describe()
                ));
            }
            report.notes.push(format!(
                "counts are short by at most {lost} (counted + lost = calls)"
            ));
        }
        if unreadable > 0 && !self.unreadable_examples.is_empty() {
            report.notes.push(format!(
                "unreadable records, e.g.: {}",
                self.unreadable_examples.join("; ")
            ));
        }
        if !self.untraced.is_empty() {
            let (tid, why) = &self.untraced[0];
            report.notes.push(format!(
                "{} threads or processes could not be given probes (e.g. {tid}: {why}); their allocations are not counted, and the kernel cannot say how many they made",
                self.untraced.len()
            ));
        }
        report.lost = lost;
        report.per_probe = std::mem::take(&mut self.per_probe);
        report.inner = self.ledger.inner;
        for p in self.objects.problems.drain(..) {
            report.notes.push(p);
        }
        // Without stacks (`count`) only the immediate caller matters.
        if self.truncated > 0 && self.setup.stacks {
            report.notes.push(format!(
                "{} stacks were deeper than the copied stack bytes and end in `[stack truncated]` (raise the copy, or continue them with the kernel's frame-pointer chain)",
                self.truncated
            ));
        }
        if self.grown > 0 {
            report.notes.push(format!(
                "{} threads got a larger stack copy after a stack deeper than theirs (copies are sized per thread)",
                self.grown
            ));
        }
        if self.capped > 0 {
            report.notes.push(allocflame_core::source::deeper_than_note(
                self.capped,
                self.setup.max_depth,
            ));
        }
        if self.ledger.inner > 0 {
            report.notes.push(format!(
                "{} calls made inside another probed function (realloc(NULL) → malloc, …) were counted once, at the outer call",
                self.ledger.inner
            ));
        }
    }

    fn raw_frame(&self, f: &NormFrame) -> RawFrame {
        if f.file == TRUNCATED {
            return RawFrame::symbol("[stack truncated]");
        }
        if f.file == CAPPED {
            return RawFrame::symbol(&allocflame_core::source::deeper_than_frame(
                self.setup.max_depth,
            ));
        }
        match self.objects.entries.get(f.file as usize) {
            Some(e) => match &e.object {
                Some(object) => RawFrame::File {
                    object: object.clone(),
                    offset: f.offset,
                },
                // The mapped file could not be had: say where, without a name.
                None => RawFrame::Symbol {
                    module: Some(e.path.to_string_lossy().into()),
                    name: allocflame_core::symbolize::unknown_frame(&e.path, f.offset).into(),
                },
            },
            None => RawFrame::Address(f.offset),
        }
    }
}

fn bytes_path(b: &[u8]) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    PathBuf::from(std::ffi::OsStr::from_bytes(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{kind, regs};
    use allocflame_core::probes::{catalog, Platform};
    use allocflame_core::source::Collector;

    /// No file can be had: frames stay `file+offset`, unwinding falls back on frame pointers.
    struct NoFiles;
    impl Opener for NoFiles {
        fn open(
            &mut self,
            _: u32,
            p: &Path,
            _: Option<(u64, u64)>,
            _: (u64, u64),
        ) -> std::result::Result<std::fs::File, String> {
            Err(format!("{} is not here", p.display()))
        }
    }

    const LIBC: &str = "/lib/libc.so.6";
    const PROG: &str = "/bin/prog";

    fn setup() -> Setup {
        let probes = catalog(Platform::LinuxGlibc);
        let locations = probes
            .iter()
            .enumerate()
            .map(|(i, _)| Location {
                path: LIBC.into(),
                offset: 0x1000 * (i as u64 + 1),
                size: 0x100,
                probes: vec![i],
                inode: None,
            })
            .collect();
        Setup {
            probes: probes.iter().map(|p| p.to_string()).collect(),
            locations,
            layout: Layout::new(64, false),
            main_pid: 10,
            comm: "prog".into(),
            stacks: true,
            adaptive: false,
            max_depth: 64,
        }
    }

    fn loc(f: &str) -> usize {
        catalog(Platform::LinuxGlibc)
            .iter()
            .position(|p| p.function == f)
            .unwrap()
    }

    /// A raw sample of location `l` (event id `100 + l`) at `ip`, with `ret` at the stack
    /// pointer and `args` in the argument registers; frame pointer 0 ends the walk.
    fn sample(pid: u32, tid: u32, l: usize, args: [u64; 6], sp: u64, ret: u64) -> Vec<u8> {
        sample_with(pid, tid, l, args, sp, 0, &[ret, 0])
    }

    /// A sample whose stack holds `words` from `sp` up, with frame pointer `bp`.
    fn sample_with(
        pid: u32,
        tid: u32,
        l: usize,
        args: [u64; 6],
        sp: u64,
        bp: u64,
        words: &[u64],
    ) -> Vec<u8> {
        let mut r = [0u64; 9];
        for (a, &i) in args.iter().zip(&regs::ARGS) {
            r[i] = *a;
        }
        r[regs::IDX_SP] = sp;
        r[regs::IDX_BP] = bp;
        r[regs::IDX_IP] = 0x7000_0000 + 0x1000 * (l as u64 + 1);
        let stack: Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
        crate::record::tests::sample_bytes(100 + l as u64, pid, tid, 1, r, &stack, 64)
    }

    /// An interpreter of `s` that knows every location's event id (`100 + location`).
    fn with_ids(s: Setup) -> Interpreter<'static> {
        let n = s.locations.len();
        let mut i = Interpreter::new(s, Box::new(NoFiles)).unwrap();
        for l in 0..n {
            i.synthetic(&Synthetic::Ids {
                location: l,
                ids: vec![100 + l as u64],
            });
        }
        i
    }

    fn interp() -> Interpreter<'static> {
        let mut i = with_ids(setup());
        for (path, start, pgoff) in [(LIBC, 0x7000_0000u64, 0u64), (PROG, 0x40_0000, 0)] {
            i.synthetic(&Synthetic::Mapping {
                pid: 10,
                start,
                end: start + 0x10_0000,
                pgoff,
                inode: None,
                path: path.into(),
            });
        }
        i
    }

    fn profile(i: Interpreter<'_>) -> (Vec<(String, u64)>, RecordReport) {
        let mut report = RecordReport::new("perf", setup().probes.len());
        let mut sink = Collector::new(&[]);
        i.finish(&mut report, &mut sink);
        let mut lines: Vec<(String, u64)> = sink
            .finish()
            .folded_lines()
            .into_iter()
            .map(|(s, w)| (s, w.allocs))
            .collect();
        lines.sort();
        (lines, report)
    }

    #[test]
    fn realloc_of_null_counts_once_and_alternating_allocators_all_count() {
        let mut i = interp();
        let (sp, ret) = (0x7ffe_1000, 0x40_1234);
        for _ in 0..100 {
            i.ring_record(&sample(
                10,
                10,
                loc("realloc"),
                [0, 24, 0, 0, 0, 0],
                sp,
                ret,
            ));
            i.ring_record(&sample(10, 10, loc("malloc"), [24, 0, 0, 0, 0, 0], sp, ret));
        }
        // One call site, two allocators: fps[i % 2](64).
        for k in 0..1000 {
            let f = if k % 2 == 0 { "malloc" } else { "valloc" };
            i.ring_record(&sample(10, 10, loc(f), [64, 0, 0, 0, 0, 0], sp, ret + 0x10));
        }
        let (lines, report) = profile(i);
        assert_eq!(
            lines,
            vec![
                ("prog;prog+0x1233;realloc".to_owned(), 100),
                ("prog;prog+0x1243;malloc".to_owned(), 500),
                ("prog;prog+0x1243;valloc".to_owned(), 500),
            ]
        );
        assert_eq!(report.inner, 100);
        assert_eq!(report.lost, 0);
        assert_eq!(report.total().allocs, 1100);
    }

    #[test]
    fn stacks_deeper_than_the_limit_end_in_a_marker_and_a_note() {
        let mut s = setup();
        s.max_depth = 2;
        let mut i = with_ids(s);
        // A frame-pointer chain of two callers (no unwind info: framehop walks frame pointers):
        // at sp the return address, at bp = sp + 16 the saved bp (0: the end) and the next one.
        let sp = 0x7ffe_0000;
        let words = [0x40_1000, 0, 0, 0x40_2000, 0, 0];
        i.ring_record(&sample_with(
            10,
            10,
            loc("malloc"),
            [8, 0, 0, 0, 0, 0],
            sp,
            sp + 16,
            &words,
        ));
        let (lines, report) = profile(i);
        assert_eq!(lines.len(), 1);
        assert!(
            lines[0].0.starts_with("prog;[deeper than 2 frames];"),
            "{lines:?}"
        );
        assert!(
            report
                .notes
                .iter()
                .any(|n| n.contains("deeper than 2 frames")),
            "{:?}",
            report.notes
        );
    }

    #[test]
    fn a_caller_inside_a_probed_function_is_inner() {
        let mut i = interp();
        // malloc called from inside posix_memalign (libc + 0x5000 .. 0x5100).
        let ret = 0x7000_0000 + 0x5000 + 0x40;
        i.ring_record(&sample(
            10,
            10,
            loc("malloc"),
            [32, 0, 0, 0, 0, 0],
            0x7ffe_0000,
            ret,
        ));
        let (lines, report) = profile(i);
        assert!(lines.is_empty(), "{lines:?}");
        assert_eq!(report.inner, 1);
    }

    #[test]
    fn a_marker_counts_calls_and_leaves_the_allocations_inside_it_alone() {
        // The catalog and a marker on the program's `handle` (prog + 0x2000 .. 0x2100).
        let mut s = setup();
        let marker = s.probes.len();
        let probe = allocflame_core::probes::Probe::marker(PROG, "handle");
        s.probes.push(probe.to_string());
        s.locations.push(Location {
            path: PROG.into(),
            offset: 0x2000,
            size: 0x100,
            probes: vec![marker],
            inode: None,
        });
        let mut i = with_ids(s);
        for (path, start) in [(LIBC, 0x7000_0000u64), (PROG, 0x40_0000)] {
            i.synthetic(&Synthetic::Mapping {
                pid: 10,
                start,
                end: start + 0x10_0000,
                pgoff: 0,
                inode: None,
                path: path.into(),
            });
        }
        for _ in 0..2 {
            i.ring_record(&sample(10, 10, marker, [0; 6], 0x7ffe_0000, 0x40_1000));
        }
        // malloc called from inside `handle`: an allocation, not an inner call.
        i.ring_record(&sample(
            10,
            10,
            loc("malloc"),
            [32, 0, 0, 0, 0, 0],
            0x7ffe_0000,
            0x40_2040,
        ));
        let mut report = RecordReport::new("perf", marker + 1);
        let mut sink = Collector::new(&[]);
        i.finish(&mut report, &mut sink);
        let lines = sink.finish().folded_lines();
        assert_eq!(lines.len(), 1, "the marker's calls are no stack: {lines:?}");
        assert!(lines[0].0.ends_with("malloc"), "{lines:?}");
        assert_eq!(lines[0].1, Weight::new(1, 32));
        assert_eq!(report.inner, 0);
        assert_eq!(report.per_probe[marker], Weight::new(2, 0));
        assert_eq!(report.per_probe[loc("malloc")], Weight::new(1, 32));
    }

    #[test]
    fn roots_follow_forks_and_execs() {
        let mut i = interp();
        let fork = |pid: u32, ppid: u32| {
            let mut b = Vec::new();
            for v in [pid, ppid, pid, ppid] {
                b.extend_from_slice(&v.to_ne_bytes());
            }
            b.extend_from_slice(&5u64.to_ne_bytes());
            b.extend_from_slice(&[0u8; 24]);
            let mut h = kind::FORK.to_ne_bytes().to_vec();
            h.extend_from_slice(&0u16.to_ne_bytes());
            h.extend_from_slice(&((8 + b.len()) as u16).to_ne_bytes());
            h.extend(b);
            h
        };
        i.ring_record(&fork(11, 10));
        i.ring_record(&sample(
            11,
            11,
            loc("malloc"),
            [8, 0, 0, 0, 0, 0],
            0x7ffe_0000,
            0x40_1000,
        ));
        i.ring_record(&fork(12, 10));
        i.synthetic(&Synthetic::Process {
            pid: 12,
            comm: "other".into(),
            exec: true,
        });
        i.ring_record(&sample(
            12,
            12,
            loc("malloc"),
            [8, 0, 0, 0, 0, 0],
            0x7ffe_0000,
            0x40_1000,
        ));
        let (lines, _) = profile(i);
        let roots: Vec<&str> = lines
            .iter()
            .map(|(l, _)| l.split(';').next().unwrap())
            .collect();
        // The exec'd child lost its mappings: its frame is an address.
        assert_eq!(roots, vec!["other", "prog [child]"], "{lines:?}");
    }

    #[test]
    fn the_ledger_reconciles_with_the_kernel_counters() {
        let mut i = interp();
        for _ in 0..10 {
            i.ring_record(&sample(
                10,
                10,
                loc("calloc"),
                [4, 8, 0, 0, 0, 0],
                0x7ffe_0000,
                0x40_1000,
            ));
        }
        // A sample of an event we never opened, and one cut short.
        i.ring_record(&sample(10, 10, 40, [0; 6], 0x7ffe_0000, 0x40_1000));
        let mut cut = sample(10, 10, loc("calloc"), [0; 6], 0x7ffe_0000, 0x40_1000);
        cut.truncate(60);
        let n = cut.len() as u16;
        cut[6..8].copy_from_slice(&n.to_ne_bytes());
        i.ring_record(&cut);
        let mut per_location = vec![(0, 0); setup().locations.len()];
        // The kernel saw 16 hits of calloc and could not write 3 of them; one more reached
        // no one (it counts as lost too).
        per_location[loc("calloc")] = (16, 3);
        i.synthetic(&Synthetic::Counters {
            per_location,
            side_lost: 2,
        });
        let (lines, report) = profile(i);
        assert_eq!(lines, vec![("prog;prog+0xfff;calloc".to_owned(), 10)]);
        assert_eq!(report.hits, Some(16));
        assert_eq!(report.total().allocs + report.inner + report.lost, 16);
        assert_eq!(report.lost, 6);
        assert!(
            report.notes.iter().any(|n| n.contains("process records")),
            "{:?}",
            report.notes
        );
    }

    #[test]
    fn without_counters_lost_records_are_the_losses() {
        let mut i = interp();
        let mut b = Vec::new();
        b.extend_from_slice(&100u64.to_ne_bytes());
        b.extend_from_slice(&7u64.to_ne_bytes());
        b.extend_from_slice(&[0u8; 24]);
        let mut h = kind::LOST.to_ne_bytes().to_vec();
        h.extend_from_slice(&0u16.to_ne_bytes());
        h.extend_from_slice(&((8 + b.len()) as u16).to_ne_bytes());
        h.extend(b);
        i.ring_record(&h);
        let (_, report) = profile(i);
        assert_eq!(report.lost, 7);
        assert_eq!(report.hits, None);
    }
}
