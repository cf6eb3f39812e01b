//! Turning ring-buffer records into aggregated stacks: process bookkeeping (fork, exec, mmap),
//! unwinding, the counted-once rule, and per-stack weights.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use allocflame_core::source::{RawFrame, RawStack, RecordOptions, RecordReport, StackSink};
use allocflame_core::Weight;
use framehop::x86_64::{CacheX86_64, UnwindRegsX86_64};
use framehop::Unwinder;
use perf_event_open_sys::bindings as b;
use rustc_hash::FxHashMap;

use super::events::{record_time, regs, u32_at, u64_at, Ring};
use super::follow::Shared;
use super::process::{read_proc_maps, Files, Mapping, NormFrame, Process};
use super::resolve::Location;

/// The last probe hit of a thread, to recognize a probed function that tail-calls another
/// (glibc's `realloc(NULL, n)` ends in `jmp malloc`): the inner hit has the same stack pointer
/// and return address.
#[derive(Clone, Copy)]
struct LastHit {
    loc: usize,
    sp: u64,
    ret: u64,
}

/// Callchain entries at or above this are context markers (PERF_CONTEXT_USER, …).
const PERF_CONTEXT_MAX: u64 = (-4095i64) as u64;

type StackMap = FxHashMap<Box<[NormFrame]>, Weight>;

pub(crate) struct Tracer<'a> {
    options: &'a RecordOptions,
    locs: Vec<Location>,
    /// Event id → location, refreshed from `shared` when an id is new.
    ids: FxHashMap<u64, usize>,
    shared: Arc<Shared>,
    files: Files,
    procs: FxHashMap<u32, Process>,
    /// Interned root frames.
    roots: Vec<String>,
    root_ids: FxHashMap<String, u32>,
    main_pid: u32,
    /// Pids that exec'd since we saw them (their root is their own name).
    exec_seen: rustc_hash::FxHashSet<u32>,
    last_hit: FxHashMap<u32, LastHit>,
    /// Per file id: the file-offset ranges of probed functions in it.
    probe_ranges: FxHashMap<u32, Vec<(u64, u64)>>,
    stacks: FxHashMap<(u32, u32, usize), StackMap>,
    per_probe: Vec<Weight>,
    lost: u64,
    nested: u64,
    cache: CacheX86_64,
    addrs: Vec<u64>,
    norm: Vec<NormFrame>,
    pub progress: Option<Arc<AtomicU64>>,
    counted: u64,
    /// Whether samples carry the kernel's frame-pointer callchain.
    callchain: bool,
    /// Stacks continued with the kernel's callchain past the copied stack.
    spliced: u64,
    /// Samples of events we do not know (never expected).
    unknown: u64,
    /// Stacks cut at the end of the copied stack bytes.
    truncated: u64,
}

/// The file id of the `[stack truncated]` marker frame.
const TRUNCATED: u32 = u32::MAX - 1;

impl<'a> Tracer<'a> {
    pub(crate) fn new(
        options: &'a RecordOptions,
        locs: Vec<Location>,
        shared: Arc<Shared>,
        main_pid: u32,
        comm: String,
        callchain: bool,
    ) -> Self {
        let mut files = Files::default();
        let mut probe_ranges: FxHashMap<u32, Vec<(u64, u64)>> = FxHashMap::default();
        for loc in &locs {
            let id = files.intern(&loc.path);
            probe_ranges
                .entry(id)
                .or_default()
                .push((loc.offset, loc.offset + loc.size.max(1)));
        }
        let mut t = Tracer {
            options,
            per_probe: vec![Weight::default(); options.probes.len()],
            locs,
            ids: FxHashMap::default(),
            shared,
            files,
            procs: FxHashMap::default(),
            roots: Vec::new(),
            root_ids: FxHashMap::default(),
            main_pid,
            exec_seen: Default::default(),
            last_hit: FxHashMap::default(),
            probe_ranges,
            stacks: FxHashMap::default(),
            lost: 0,
            nested: 0,
            cache: CacheX86_64::new(),
            addrs: Vec::with_capacity(64),
            norm: Vec::with_capacity(64),
            progress: None,
            counted: 0,
            callchain,
            spliced: 0,
            unknown: 0,
            truncated: 0,
        };
        let root = t.root_id(main_pid, &comm);
        t.procs.insert(main_pid, Process::new(comm, root));
        t
    }

    /// Loads the current mappings of an attached process.
    pub(crate) fn seed_maps(&mut self, pid: u32) {
        let maps = read_proc_maps(pid, &mut self.files);
        if let Some(p) = self.procs.get_mut(&pid) {
            for m in maps {
                p.add_mapping(&mut self.files, m);
            }
        }
    }

    /// The root frame of `pid` named `comm`: the target's own name; a forked child that did not
    /// exec is `NAME [child]`; a process that exec'd is rooted at its program's name.
    fn root_id(&mut self, pid: u32, comm: &str) -> u32 {
        let name = if pid == self.main_pid || self.exec_seen.contains(&pid) {
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
            // A process we saw no fork of (attached later, or records lost): read what we can.
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .map(|s| s.trim_end().to_owned())
                .unwrap_or_else(|_| format!("pid {pid}"));
            let root = self.root_id(pid, &comm);
            let mut p = Process::new(comm, root);
            for m in read_proc_maps(pid, &mut self.files) {
                p.add_mapping(&mut self.files, m);
            }
            self.procs.insert(pid, p);
        }
        self.procs.get_mut(&pid).expect("inserted above")
    }

    /// Handles every record stamped before `until`, merging the per-CPU buffers in time order.
    pub(crate) fn drain(&mut self, rings: &mut [Ring], until: u64) {
        for r in rings.iter_mut() {
            r.load_head();
        }
        loop {
            let mut best: Option<(usize, u64)> = None;
            for (i, r) in rings.iter_mut().enumerate() {
                if let Some(rec) = r.peek() {
                    let t = record_time(rec);
                    if t < until && best.map_or(true, |(_, bt)| t < bt) {
                        best = Some((i, t));
                    }
                }
            }
            let Some((i, _)) = best else { break };
            if let Some(rec) = rings[i].peek() {
                // The record is borrowed from the ring; handle it before releasing it.
                let rec: &[u8] = rec;
                self.handle(rec);
            }
            rings[i].consume();
        }
        if let Some(p) = &self.progress {
            p.store(self.counted, Ordering::Relaxed);
        }
    }

    fn handle(&mut self, rec: &[u8]) {
        let kind = u32_at(rec, 0);
        let misc = u16::from_ne_bytes([rec[4], rec[5]]) as u32;
        match kind {
            b::PERF_RECORD_SAMPLE => self.sample(rec),
            b::PERF_RECORD_LOST => self.lost += u64_at(rec, 16),
            b::PERF_RECORD_FORK => {
                let (pid, ppid) = (u32_at(rec, 8), u32_at(rec, 12));
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
            b::PERF_RECORD_COMM => {
                let (pid, tid) = (u32_at(rec, 8), u32_at(rec, 12));
                let name = rec.get(16..).unwrap_or_default();
                let end = name.iter().position(|&c| c == 0).unwrap_or(name.len());
                let comm = String::from_utf8_lossy(&name[..end]).into_owned();
                let exec = misc & b::PERF_RECORD_MISC_COMM_EXEC != 0;
                if exec {
                    self.exec_seen.insert(pid);
                }
                if pid == tid || exec {
                    let root = self.root_id(pid, &comm);
                    let p = self.process(pid);
                    if exec {
                        p.clear();
                    }
                    p.comm = comm;
                    p.root = root;
                }
            }
            b::PERF_RECORD_MMAP2 => self.mmap2(rec),
            _ => {}
        }
    }

    fn mmap2(&mut self, rec: &[u8]) {
        let pid = u32_at(rec, 8);
        let (start, len, pgoff) = (u64_at(rec, 16), u64_at(rec, 24), u64_at(rec, 32));
        let prot = u32_at(rec, 64);
        let name = rec.get(72..).unwrap_or_default();
        let end = name.iter().position(|&c| c == 0).unwrap_or(name.len());
        let name = &name[..end];
        if prot & libc::PROT_EXEC as u32 == 0 || name.first() != Some(&b'/') {
            return;
        }
        let path = Path::new(std::ffi::OsStr::from_bytes_compat(name));
        let file = self.files.intern(path);
        let m = Mapping {
            start,
            end: start + len,
            pgoff,
            file,
        };
        // Borrow dance: the process and the file table are separate fields.
        if !self.procs.contains_key(&pid) {
            self.process(pid);
        }
        if let Some(p) = self.procs.get_mut(&pid) {
            p.add_mapping(&mut self.files, m);
        }
    }

    fn sample(&mut self, rec: &[u8]) {
        let id = u64_at(rec, 8);
        if !self.ids.contains_key(&id) {
            if let Ok(map) = self.shared.ids.lock() {
                self.ids.clone_from(&map);
            }
        }
        let Some(&loc) = self.ids.get(&id) else {
            self.unknown += 1;
            return;
        };
        let (pid, tid) = (u32_at(rec, 16), u32_at(rec, 20));
        let mut at = 32;
        let chain: &[u8] = if self.callchain {
            let nr = u64_at(rec, at) as usize;
            let c = rec.get(at + 8..at + 8 + 8 * nr).unwrap_or_default();
            at += 8 + 8 * nr;
            c
        } else {
            &[]
        };
        let abi = u64_at(rec, at);
        let nregs = regs::ORDER.len();
        let (r, stack_at) = if abi == 0 {
            ([0u64; 9], at + 8)
        } else {
            let mut r = [0u64; 9];
            for (i, v) in r.iter_mut().enumerate() {
                *v = u64_at(rec, at + 8 + 8 * i);
            }
            (r, at + 8 + 8 * nregs)
        };
        let size = u64_at(rec, stack_at) as usize;
        let data_at = stack_at + 8;
        let dyn_size = if size > 0 {
            (u64_at(rec, data_at + size) as usize).min(size)
        } else {
            0
        };
        let stack = rec.get(data_at..data_at + dyn_size).unwrap_or_default();
        let (ip, sp, bp) = (r[regs::IDX_IP], r[regs::IDX_SP], r[regs::IDX_BP]);
        let ret = u64_at(stack, 0);
        let probe = self.locs[loc].probes[0];
        let args: [u64; 6] = regs::ARGS.map(|i| r[i]);
        let weight = Weight::new(1, self.options.probes[probe].size.size(&args));

        // Counted once, part 1: a tail call from another probed function.
        let this = LastHit { loc, sp, ret };
        if let Some(last) = self.last_hit.get(&tid) {
            if last.sp == sp && last.ret == ret && last.loc != loc && sp != 0 {
                self.nested += 1;
                return;
            }
        }
        self.last_hit.insert(tid, this);

        // Unwind: framehop with the module's CFI, reading the copied stack.
        let mut truncated;
        self.addrs.clear();
        self.norm.clear();
        let max_depth = self.options.max_depth.max(2);
        {
            let procs = &mut self.procs;
            if !procs.contains_key(&pid) {
                self.process(pid);
            }
            let Some(proc_) = self.procs.get(&pid) else {
                return;
            };
            let mut read_stack = |addr: u64| -> Result<u64, ()> {
                let off = addr.checked_sub(sp).ok_or(())? as usize;
                stack
                    .get(off..off + 8)
                    .map(|s| u64::from_ne_bytes(s.try_into().unwrap_or_default()))
                    .ok_or(())
            };
            let mut frames = proc_.unwinder.iter_frames(
                ip,
                UnwindRegsX86_64::new(ip, sp, bp),
                &mut self.cache,
                &mut read_stack,
            );
            let complete = loop {
                match frames.next() {
                    Ok(Some(f)) => {
                        self.addrs.push(f.address_for_lookup());
                        if self.addrs.len() >= max_depth {
                            break true;
                        }
                    }
                    Ok(None) => break true,
                    // Only running out of copied stack means a cut stack; other errors are
                    // how unwinding often ends at the root.
                    Err(framehop::Error::CouldNotReadStack(a)) => {
                        break a < sp || a.saturating_sub(sp) < (dyn_size as u64).saturating_sub(8)
                    }
                    Err(_) => break true,
                }
            };
            // Past the copied stack, continue with the kernel's frame-pointer callchain. Its
            // entry j is our frame j + d (d = 1 when the allocator's caller keeps a frame
            // pointer: the kernel's walk skips it); the shift must hold for every frame both
            // have, so recursion cannot misalign it and a chain that went astray through code
            // without frame pointers is not used.
            truncated = !complete;
            if !complete && self.addrs.len() >= 2 && !chain.is_empty() {
                let user: Vec<u64> = chain
                    .chunks_exact(8)
                    .map(|c| u64::from_ne_bytes(c.try_into().unwrap_or_default()))
                    .filter(|&a| a < PERF_CONTEXT_MAX)
                    .collect();
                let k = self.addrs.len();
                let shift = [1usize, 0, 2, 3].into_iter().find(|&d| {
                    k > d + 1
                        && user.len() > k - d
                        && (1..k - d).all(|j| user[j].wrapping_sub(1) == self.addrs[j + d])
                });
                if let Some(d) = shift {
                    self.spliced += 1;
                    truncated = false;
                    for &a in &user[k - d..] {
                        if self.addrs.len() >= max_depth || a == 0 {
                            break;
                        }
                        self.addrs.push(a - 1);
                    }
                }
            }
            for &a in self.addrs.iter().skip(1) {
                self.norm.push(proc_.normalize(a));
            }
        }
        // Counted once, part 2: a caller frame inside a probed function.
        for f in &self.norm {
            if let Some(ranges) = self.probe_ranges.get(&f.file) {
                if ranges.iter().any(|&(s, e)| f.offset >= s && f.offset < e) {
                    self.nested += 1;
                    return;
                }
            }
        }
        if truncated {
            self.truncated += 1;
            self.norm.push(NormFrame {
                file: TRUNCATED,
                offset: 0,
            });
        }
        self.per_probe[probe] += weight;
        self.counted += 1;
        if self.options.stacks {
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

    /// Hands everything over to `sink` and fills in `report`.
    pub(crate) fn finish(self, report: &mut RecordReport, sink: &mut dyn StackSink) {
        for ((root, pid, probe), map) in self.stacks {
            let p = &self.options.probes[probe];
            let leaf = RawFrame::Symbol {
                module: Some(p.library.as_str().into()),
                name: p.function.as_str().into(),
            };
            let comm = self.roots.get(root as usize).cloned().unwrap_or_default();
            for (frames, weight) in map {
                let mut raw = Vec::with_capacity(frames.len() + 1);
                raw.push(leaf.clone());
                raw.extend(
                    frames
                        .iter()
                        .map(|f| match self.files.paths.get(f.file as usize) {
                            _ if f.file == TRUNCATED => RawFrame::symbol("[stack truncated]"),
                            Some(path) => RawFrame::file(path.to_path_buf(), f.offset),
                            None => RawFrame::Address(f.offset),
                        }),
                );
                sink.add(RawStack {
                    pid,
                    comm: comm.clone(),
                    probe,
                    frames: raw,
                    weight,
                });
            }
        }
        if self.lost > 0 {
            sink.lost(self.lost);
            report.notes.push(format!(
                "{} allocation events were lost (ring buffer overrun): counts are short by that much",
                self.lost
            ));
        }
        report.lost = self.lost + self.unknown;
        if self.unknown > 0 {
            sink.lost(self.unknown);
            report.notes.push(format!(
                "{} samples of unknown events were dropped",
                self.unknown
            ));
        }
        report.per_probe = self.per_probe;
        if self.truncated > 0 {
            report.notes.push(format!(
                "{} stacks were deeper than the copied stack bytes and end in `[stack truncated]` (raise the copy, or continue them with the kernel's frame-pointer chain)",
                self.truncated
            ));
        }
        if self.nested > 0 {
            report.notes.push(format!(
                "{} calls made inside another probed function (realloc(NULL) → malloc, …) were counted once, at the outer call",
                self.nested
            ));
        }
    }
}

trait OsStrCompat {
    fn from_bytes_compat(b: &[u8]) -> &std::ffi::OsStr;
}

impl OsStrCompat for std::ffi::OsStr {
    fn from_bytes_compat(b: &[u8]) -> &std::ffi::OsStr {
        use std::os::unix::ffi::OsStrExt;
        std::ffi::OsStr::from_bytes(b)
    }
}
