//! perf_event_open uprobe events and their per-CPU ring buffers.
//!
//! One event per (probe location, task, CPU); every event of a CPU writes into that CPU's ring
//! buffer (`PERF_EVENT_IOC_SET_OUTPUT`, which needs per-CPU events to share a buffer across
//! tasks). No `inherit`: a uprobe-PMU event re-reads `attr.uprobe_path` as a pointer into the
//! *forking task's* memory when it is inherited, so after the target's exec every clone() and
//! fork() of the target would fail with EFAULT. New threads and children are instead caught
//! with ptrace (see `follow.rs`) and get events of their own before they run. What a uprobe event is
//! opened on (a tracefs probe or the uprobe PMU), and how it is released, is `uprobes.rs`'s.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{fence, AtomicBool, Ordering};

use allocflame_core::{Error, Result};
use perf_event_open_sys as sys;
use sys::bindings as b;

use super::uprobes::{Attach, Uprobes};
use crate::record::{regs, Layout};

/// PERF_FORMAT_ID | PERF_FORMAT_LOST: `read()` gives the count, the id and the samples lost.
const READ_FORMAT: u64 = (1 << 2) | (1 << 4);

/// Whether this kernel knows PERF_FORMAT_LOST (Linux ≥ 6.0); cleared on the first EINVAL.
static FORMAT_LOST: AtomicBool = AtomicBool::new(true);

/// What `read()` of an event gives: the count and id, and its lost samples where the kernel
/// counts them.
fn read_format() -> u64 {
    if counts_lost() {
        READ_FORMAT
    } else {
        READ_FORMAT & !(1 << 4)
    }
}

/// Whether events report their own lost samples (PERF_FORMAT_LOST).
pub(crate) fn counts_lost() -> bool {
    FORMAT_LOST.load(Ordering::Relaxed)
}

/// The dynamic PMU type of uprobes, from sysfs.
pub(crate) fn uprobe_pmu_type() -> Result<u32> {
    let path = "/sys/bus/event_source/devices/uprobe/type";
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::Unsupported(format!(
            "this kernel has no uprobe PMU ({path}: {e}); the perf backend needs Linux ≥ 4.17 built with CONFIG_UPROBE_EVENTS"
        ))
    })?;
    text.trim()
        .parse()
        .map_err(|_| Error::Backend(format!("{path}: unexpected content {text:?}")))
}

/// How to open one uprobe event.
pub(crate) struct EventSpec<'a> {
    /// The recording's uprobe events (tracefs probes or the uprobe PMU, see `uprobes.rs`).
    pub uprobes: &'a Uprobes,
    pub path: &'a Path,
    pub offset: u64,
    pub layout: Layout,
    /// Deepest frame-pointer callchain the kernel records (the hybrid unwinder's tail); 0
    /// records none.
    pub max_callchain: u16,
    /// Opened disabled, for [`enable`] later.
    pub disabled: bool,
    /// A BPF program to run at each hit (see `Uprobes::open_with`).
    pub program: Option<&'a Attach<'a>>,
}

fn base_attr(layout: &Layout) -> b::perf_event_attr {
    let mut attr = b::perf_event_attr {
        size: std::mem::size_of::<b::perf_event_attr>() as u32,
        sample_type: layout.sample_type,
        sample_regs_user: regs::mask(),
        sample_stack_user: layout.stack_bytes,
        clockid: libc::CLOCK_MONOTONIC,
        read_format: read_format(),
        ..Default::default()
    };
    attr.set_use_clockid(1);
    attr.set_sample_id_all(1);
    attr.set_exclude_kernel(1);
    attr.set_exclude_hv(1);
    attr
}

/// Opens the event `attr` describes on task `pid` (-1: every task) on `cpu` (-1: any CPU).
pub(crate) fn open_attr(attr: &mut b::perf_event_attr, pid: i32, cpu: i32) -> io::Result<OwnedFd> {
    loop {
        // SAFETY: `attr` is a fully initialized perf_event_attr; pointers in it outlive the call.
        let fd = unsafe {
            sys::perf_event_open(attr, pid, cpu, -1, b::PERF_FLAG_FD_CLOEXEC as libc::c_ulong)
        };
        if fd >= 0 {
            // SAFETY: the kernel just handed us this fd, nobody else owns it.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EINVAL) && attr.read_format & (1 << 4) != 0 {
            // A kernel before 6.0: no per-event lost counts (PERF_RECORD_LOST still says).
            FORMAT_LOST.store(false, Ordering::Relaxed);
            attr.read_format &= !(1 << 4);
            continue;
        }
        return Err(e);
    }
}

/// Opens a uprobe event on task `pid` on `cpu`.
pub(crate) fn open_uprobe(spec: &EventSpec<'_>, pid: i32, cpu: i32) -> io::Result<OwnedFd> {
    spec.uprobes.open(spec, pid, cpu)
}

/// The attributes of a uprobe event as `spec` says, but for its type and what it probes.
pub(crate) fn uprobe_attr(spec: &EventSpec<'_>) -> b::perf_event_attr {
    let mut attr = base_attr(&spec.layout);
    attr.__bindgen_anon_1.sample_period = 1;
    if spec.disabled {
        attr.set_disabled(1);
    }
    if spec.max_callchain > 0 {
        attr.set_exclude_callchain_kernel(1);
        attr.sample_max_stack = spec.max_callchain;
    }
    attr
}

/// The `sig_data` of the events that stop a task for the recorder (`si_perf_data`).
pub(crate) const TRAP_DATA: u64 = 0x616c_6c6f_6366_6c6d;

/// Opens a uprobe event on task `pid` that sends it SIGTRAP (TRAP_PERF) at each hit, for the
/// tracer to stop it there; the kernel removes it at the task's next exec.
pub(crate) fn open_trap(
    uprobes: &Uprobes,
    path: &Path,
    offset: u64,
    pid: i32,
) -> io::Result<OwnedFd> {
    let mut attr = bare_attr();
    attr.sig_data = TRAP_DATA;
    attr.set_sigtrap(1);
    uprobes.open_with(path, offset, attr, pid, -1, None)
}

/// Opens a uprobe event on task `pid` that records nothing, where the BPF program that `attach`
/// attaches runs at each hit (see `Uprobes::open_with`).
pub(crate) fn open_bare_uprobe(
    uprobes: &Uprobes,
    path: &Path,
    offset: u64,
    pid: i32,
    attach: &Attach<'_>,
) -> io::Result<OwnedFd> {
    uprobes.open_with(path, offset, bare_attr(), pid, -1, Some(attach))
}

/// A uprobe event that samples nothing, gone at the task's next exec, read like the others at
/// the end (its id is neither a probe's nor a side event's).
fn bare_attr() -> b::perf_event_attr {
    let mut attr = b::perf_event_attr {
        size: std::mem::size_of::<b::perf_event_attr>() as u32,
        read_format: read_format(),
        ..Default::default()
    };
    attr.__bindgen_anon_1.sample_period = 1;
    attr.set_remove_on_exec(1);
    attr.set_exclude_kernel(1);
    attr.set_exclude_hv(1);
    attr
}

/// Opens the event that reports task `pid`'s mappings, names, forks and exits on `cpu` (a
/// dummy software event: its losses are lost process records, never allocations).
pub(crate) fn open_side(layout: &Layout, pid: i32, cpu: i32) -> io::Result<OwnedFd> {
    let mut attr = base_attr(layout);
    attr.type_ = b::PERF_TYPE_SOFTWARE;
    attr.config = b::PERF_COUNT_SW_DUMMY as u64;
    attr.set_mmap(1);
    attr.set_mmap2(1);
    attr.set_comm(1);
    attr.set_comm_exec(1);
    attr.set_task(1);
    open_attr(&mut attr, pid, cpu)
}

/// Opens the owner of `cpu`'s ring buffer: a CPU-wide dummy event that records nothing itself
/// and never ends, so tasks that start after others ended still have a buffer to write to.
pub(crate) fn open_ring_owner(layout: &Layout, cpu: i32, wakeup_bytes: u32) -> io::Result<OwnedFd> {
    let mut attr = base_attr(layout);
    attr.type_ = b::PERF_TYPE_SOFTWARE;
    attr.config = b::PERF_COUNT_SW_DUMMY as u64;
    attr.__bindgen_anon_2.wakeup_watermark = wakeup_bytes;
    attr.set_watermark(1);
    open_attr(&mut attr, -1, cpu)
}

/// Starts an event opened disabled (PERF_EVENT_IOC_ENABLE).
pub(crate) fn enable(fd: &OwnedFd) {
    // SAFETY: an ioctl without argument on a perf fd; an error (already gone) is harmless.
    unsafe { sys::ioctls::ENABLE(fd.as_raw_fd(), 0) };
}

/// Stops an event from counting and writing (PERF_EVENT_IOC_DISABLE).
pub(crate) fn disable(fd: &OwnedFd) {
    // SAFETY: an ioctl without argument on a perf fd; an error (already gone) is harmless.
    unsafe { sys::ioctls::DISABLE(fd.as_raw_fd(), 0) };
}

/// An event's count, id and lost samples (0 when the kernel does not count them).
pub(crate) fn read_counter(fd: &OwnedFd) -> Option<(u64, u64, u64)> {
    let mut buf = [0u64; 3];
    // SAFETY: reading at most 24 bytes into a 24-byte buffer.
    let n = unsafe {
        libc::read(
            fd.as_raw_fd(),
            buf.as_mut_ptr() as *mut libc::c_void,
            std::mem::size_of_val(&buf),
        )
    };
    match n {
        24 => Some((buf[0], buf[1], buf[2])),
        16 => Some((buf[0], buf[1], 0)),
        _ => None,
    }
}

/// Whether the kernel took an event away from its task (POLLHUP: the task exited, or exec'd a
/// setuid program, which detaches every event).
pub(crate) fn hung_up(fd: &OwnedFd) -> bool {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: 0,
        revents: 0,
    };
    // SAFETY: polling one fd we own, without waiting.
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    n > 0 && p.revents & libc::POLLHUP != 0
}

/// The kernel's id of an event (what `PERF_SAMPLE_IDENTIFIER` reports).
pub(crate) fn event_id(fd: &OwnedFd) -> io::Result<u64> {
    let mut id = 0u64;
    // SAFETY: ID writes one u64 to the pointer.
    if unsafe { sys::ioctls::ID(fd.as_raw_fd(), &mut id) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(id)
}

/// Makes `fd` write its records into the ring buffer of `leader` (same CPU).
pub(crate) fn redirect_output_raw(fd: &OwnedFd, leader: std::os::fd::RawFd) -> io::Result<()> {
    // SAFETY: both fds are open perf events.
    if unsafe { sys::ioctls::SET_OUTPUT(fd.as_raw_fd(), leader) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A perf ring buffer, read in place.
/// A ring buffer's mapping, shared by the reader's [`Ring`] and the tracer's [`Gauge`]: unmapped
/// when the last of them is gone.
struct Mapping {
    base: *mut u8,
    len: usize,
}

// SAFETY: the mapping is only read and written through volatile accesses of the metadata page
// (the kernel's protocol) and by the one reader of the data area.
unsafe impl Send for Mapping {}
// SAFETY: as above; the gauge only loads `data_head` and `data_tail`.
unsafe impl Sync for Mapping {}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmapping what `Ring::new` mapped, once nothing refers to it.
        unsafe { libc::munmap(self.base as *mut libc::c_void, self.len) };
    }
}

/// How full a ring buffer is, read by a thread other than its reader.
#[derive(Clone)]
pub(crate) struct Gauge {
    map: std::sync::Arc<Mapping>,
    size: u64,
}

impl Gauge {
    /// The bytes written and not yet consumed.
    pub(crate) fn unread(&self) -> u64 {
        let meta = self.map.base as *const b::perf_event_mmap_page;
        // SAFETY: volatile loads of the metadata page, mapped while `map` lives.
        let (head, tail) = unsafe {
            (
                std::ptr::addr_of!((*meta).data_head).read_volatile(),
                std::ptr::addr_of!((*meta).data_tail).read_volatile(),
            )
        };
        head.saturating_sub(tail)
    }

    /// The bytes written and not yet consumed, in eighths of the buffer.
    pub(crate) fn eighths(&self) -> u64 {
        self.unread() * 8 / self.size.max(1)
    }
}

pub(crate) struct Ring {
    fd: OwnedFd,
    map: std::sync::Arc<Mapping>,
    base: *mut u8,
    data: *const u8,
    size: u64,
    /// Head as loaded at the start of the current batch.
    head: u64,
    tail: u64,
    /// A record that wraps around the end of the buffer, copied out.
    scratch: Vec<u8>,
}

impl Ring {
    /// Maps a ring buffer of `data_pages` (a power of two) pages for `fd`.
    pub(crate) fn new(fd: OwnedFd, data_pages: usize) -> io::Result<Ring> {
        let page = page_size();
        let len = (data_pages + 1) * page;
        // SAFETY: mapping a perf fd as the man page describes; checked for MAP_FAILED.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let base = base as *mut u8;
        let meta = base as *const b::perf_event_mmap_page;
        // SAFETY: the first page is the metadata page.
        let (offset, size) = unsafe {
            let off = std::ptr::addr_of!((*meta).data_offset).read_volatile();
            let size = std::ptr::addr_of!((*meta).data_size).read_volatile();
            (off, size)
        };
        let (offset, size) = if size == 0 {
            (page as u64, (data_pages * page) as u64)
        } else {
            (offset, size)
        };
        Ok(Ring {
            fd,
            map: std::sync::Arc::new(Mapping { base, len }),
            base,
            // SAFETY: data_offset lies inside the mapping.
            data: unsafe { base.add(offset as usize) },
            size,
            head: 0,
            tail: 0,
            scratch: Vec::new(),
        })
    }

    pub(crate) fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    /// A view of how full this buffer is, for another thread.
    pub(crate) fn gauge(&self) -> Gauge {
        Gauge {
            map: self.map.clone(),
            size: self.size,
        }
    }

    /// The bytes of its data area.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// The bytes the kernel wrote that are not consumed yet.
    pub(crate) fn unread(&self) -> u64 {
        // SAFETY: reading the metadata page the kernel updates.
        let head = unsafe { std::ptr::addr_of!((*self.meta()).data_head).read_volatile() };
        head.saturating_sub(self.tail)
    }

    fn meta(&self) -> *mut b::perf_event_mmap_page {
        self.base as *mut b::perf_event_mmap_page
    }

    /// Loads the kernel's head for a new batch.
    pub(crate) fn load_head(&mut self) {
        // SAFETY: reading the metadata page the kernel updates.
        self.head = unsafe { std::ptr::addr_of!((*self.meta()).data_head).read_volatile() };
        fence(Ordering::Acquire);
        // SAFETY: as above; data_tail is ours.
        self.tail = unsafe { std::ptr::addr_of!((*self.meta()).data_tail).read_volatile() };
    }

    /// The next record of the batch, or `None` when the batch is done. The record stays in the
    /// buffer until [`Ring::consume`].
    pub(crate) fn peek(&mut self) -> Option<&[u8]> {
        if self.tail >= self.head {
            return None;
        }
        let mask = self.size - 1;
        let at = (self.tail & mask) as usize;
        // SAFETY: the header (8 bytes, 8-aligned) never wraps: records are 8-byte multiples.
        let size = unsafe {
            let hdr = self.data.add(at) as *const b::perf_event_header;
            std::ptr::addr_of!((*hdr).size).read_volatile()
        } as usize;
        if size < 8 || self.tail + size as u64 > self.head {
            return None;
        }
        if at + size <= self.size as usize {
            // SAFETY: the whole record lies in the data area and the kernel won't overwrite it
            // before we move the tail.
            Some(unsafe { std::slice::from_raw_parts(self.data.add(at), size) })
        } else {
            let first = self.size as usize - at;
            self.scratch.clear();
            // SAFETY: both parts lie inside the data area.
            unsafe {
                self.scratch
                    .extend_from_slice(std::slice::from_raw_parts(self.data.add(at), first));
                self.scratch
                    .extend_from_slice(std::slice::from_raw_parts(self.data, size - first));
            }
            Some(&self.scratch)
        }
    }

    /// Releases the record last returned by [`Ring::peek`] to the kernel.
    pub(crate) fn consume(&mut self) {
        let mask = self.size - 1;
        let at = (self.tail & mask) as usize;
        // SAFETY: as in peek.
        let size = unsafe {
            let hdr = self.data.add(at) as *const b::perf_event_header;
            std::ptr::addr_of!((*hdr).size).read_volatile()
        } as u64;
        self.tail += size;
        fence(Ordering::Release);
        // SAFETY: data_tail is the reader's field.
        unsafe { std::ptr::addr_of_mut!((*self.meta()).data_tail).write_volatile(self.tail) };
    }
}

// SAFETY: the mapping belongs to the Ring alone; moving it to another thread is fine.
unsafe impl Send for Ring {}

pub(crate) fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 {
        p as usize
    } else {
        4096
    }
}

/// CLOCK_MONOTONIC now, in ns: the clock the events stamp records with.
pub(crate) fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: writes one timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Releases perf event fds without waiting (the uprobe-PMU route, see `uprobes.rs`): a
/// uprobe-PMU event's release waits for RCU grace periods (~80 ms each, serialized in the
/// kernel), so a short-lived grandchild process takes
/// over the last references and exits, which closes them in the background. Our own copies
/// then close at once. The grandchild keeps no other fd (no pipe of ours stays open) and is
/// reparented to init, so no caller ever sees it as a child. If forking fails, the fds are
/// closed here, the slow way.
pub(crate) fn release_in_background(fds: Vec<OwnedFd>, keep_alive: Vec<Ring>) {
    // The grandchild must hold the *last* references: it waits for EOF on this pipe, which
    // comes when we have closed our copies.
    let mut pipe = [-1i32; 2];
    // SAFETY: pipe2 writes two fds.
    if unsafe { libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return;
    }
    let mut raw: Vec<libc::c_uint> = fds
        .iter()
        .map(|f| f.as_raw_fd() as libc::c_uint)
        .chain(
            keep_alive
                .iter()
                .map(|r| r.fd().as_raw_fd() as libc::c_uint),
        )
        .chain([pipe[0] as libc::c_uint])
        .collect();
    raw.sort_unstable();
    raw.dedup();
    // The gaps between our fds, to close in the grandchild (prepared before fork: the child of
    // a multi-threaded process may only make async-signal-safe calls).
    let mut gaps: Vec<(libc::c_uint, libc::c_uint)> = Vec::with_capacity(raw.len() + 1);
    let mut next = 0;
    for &fd in &raw {
        if fd > next {
            gaps.push((next, fd - 1));
        }
        next = fd + 1;
    }
    gaps.push((next, libc::c_uint::MAX));
    // SAFETY: fork/_exit/close_range/waitpid only; the children touch nothing else.
    unsafe {
        let child = libc::fork();
        if child == 0 {
            if libc::fork() == 0 {
                for &(a, b) in &gaps {
                    libc::syscall(libc::SYS_close_range, a, b, 0);
                }
                let mut byte = 0u8;
                while libc::read(pipe[0], &mut byte as *mut u8 as *mut libc::c_void, 1) < 0 {}
                libc::_exit(0);
            }
            libc::_exit(0);
        }
        if child > 0 {
            libc::waitpid(child, std::ptr::null_mut(), 0);
        }
    }
    drop(keep_alive);
    drop(fds);
    // SAFETY: closing our pipe ends; the write end's close is the grandchild's signal.
    unsafe {
        libc::close(pipe[0]);
        libc::close(pipe[1]);
    }
}
