//! The stop at the dynamic linker, made safe for any target: a tiny BPF program on the uprobe
//! of `_dl_debug_state` sends the task SIGTRAP only while it is ptraced (`task->ptrace != 0`).
//! Once allocflame's ptrace thread is gone — even killed with SIGKILL, while its events are
//! still being released — a hit sends nothing, so the stop can never kill the task. The offset
//! of `task_struct.ptrace` comes from the kernel's BTF (`/sys/kernel/btf/vmlinux`).
//!
//! Without BPF (no BTF, no CAP_BPF, an old kernel) the recorder falls back on a perf `sigtrap`
//! event, for programs it starts only.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};

/// The loaded program, attachable to any number of uprobe events, and its switch: a BPF
/// array of one value that the program reads at each hit (disabling a uprobe event does not
/// stop the program attached to it).
pub(crate) struct Stopper {
    prog: OwnedFd,
    switch: OwnedFd,
}

/// bpf(2).
fn bpf(cmd: libc::c_long, attr: &mut [u8; 128]) -> io::Result<i64> {
    // SAFETY: bpf(2) with a fully initialized attr whose pointers outlive the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr.as_mut_ptr(),
            attr.len() as libc::c_uint,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(r)
}

fn put32(a: &mut [u8; 128], at: usize, v: u32) {
    a[at..at + 4].copy_from_slice(&v.to_ne_bytes())
}

fn put64(a: &mut [u8; 128], at: usize, v: u64) {
    a[at..at + 8].copy_from_slice(&v.to_ne_bytes())
}

const BTF_KIND_STRUCT: u32 = 4;

/// The byte offset of member `member` of `struct name` in the kernel's BTF.
fn btf_member_offset(btf: &[u8], name: &str, member: &str) -> Option<u32> {
    let u16_at = |o: usize| Some(u16::from_le_bytes(btf.get(o..o + 2)?.try_into().ok()?));
    let u32_at = |o: usize| Some(u32::from_le_bytes(btf.get(o..o + 4)?.try_into().ok()?));
    if u16_at(0)? != 0xeb9f {
        return None;
    }
    let hdr_len = u32_at(4)? as usize;
    let (type_off, type_len) = (u32_at(8)? as usize, u32_at(12)? as usize);
    let str_off = u32_at(16)? as usize;
    let strings = hdr_len + str_off;
    let name_at = |off: u32| -> Option<&[u8]> {
        let start = strings + off as usize;
        let rest = btf.get(start..)?;
        let end = rest.iter().position(|&b| b == 0)?;
        Some(&rest[..end])
    };
    let mut at = hdr_len + type_off;
    let end = at + type_len;
    while at + 12 <= end {
        let name_off = u32_at(at)?;
        let info = u32_at(at + 4)?;
        let vlen = (info & 0xffff) as usize;
        let kind = (info >> 24) & 0x1f;
        let kind_flag = info >> 31;
        let extra = match kind {
            1 | 14 | 17 => 4,
            3 => 12,
            4 | 5 | 15 | 19 => 12 * vlen,
            6 | 13 => 8 * vlen,
            _ => 0,
        };
        if kind == BTF_KIND_STRUCT && name_at(name_off)? == name.as_bytes() {
            for i in 0..vlen {
                let m = at + 12 + 12 * i;
                if name_at(u32_at(m)?)? == member.as_bytes() {
                    let bits = u32_at(m + 8)?;
                    let bits = if kind_flag == 1 {
                        bits & 0xff_ffff
                    } else {
                        bits
                    };
                    return (bits % 8 == 0).then_some(bits / 8);
                }
            }
        }
        at += 12 + extra;
    }
    None
}

/// One BPF instruction.
fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> [u8; 8] {
    let mut b = [0u8; 8];
    b[0] = code;
    b[1] = (src << 4) | (dst & 0xf);
    b[2..4].copy_from_slice(&off.to_le_bytes());
    b[4..8].copy_from_slice(&imm.to_le_bytes());
    b
}

/// Offsets in `struct task_struct` the program reads.
struct TaskOffsets {
    ptrace: u32,
    parent: u32,
    flags: u32,
}

/// `PF_EXITING` in `task_struct.flags`: set as a task starts to exit.
const PF_EXITING: i32 = 0x4;

const CALL: u8 = 0x85;
const MOV_X: u8 = 0xbf;
const MOV_K: u8 = 0xb7;
const ADD_K: u8 = 0x07;
const SUB_X: u8 = 0x1f;
const AND_K: u8 = 0x57;
const JNE_K: u8 = 0x55;
const JEQ_K: u8 = 0x15;
const JSLT_X: u8 = 0xcd;
const LDX_W: u8 = 0x61;
const LDX_DW: u8 = 0x79;
const STX_W: u8 = 0x63;
const ST_W: u8 = 0x62;
const ATOMIC_DW: u8 = 0xdb;
const EXIT: u8 = 0x95;
const LD_IMM64: u8 = 0x18;
const PSEUDO_MAP_FD: u8 = 1;
const MAP_LOOKUP_ELEM: i32 = 1;
const GET_SMP_PROCESSOR_ID: i32 = 8;
const GET_CURRENT_TASK: i32 = 35;
const PROBE_READ_KERNEL: i32 = 113;
const SEND_SIGNAL_THREAD: i32 = 117;

/// A program being written: its instructions, and the jumps to patch to its end.
#[derive(Default)]
struct Asm {
    code: Vec<(u8, u8, u8, i16, i32)>,
    to_out: Vec<usize>,
}

impl Asm {
    fn op(&mut self, code: u8, dst: u8, src: u8, off: i16, imm: i32) {
        self.code.push((code, dst, src, off, imm));
    }

    /// A conditional jump to the end of the program.
    fn out_if(&mut self, code: u8, dst: u8, src: u8, imm: i32) {
        self.to_out.push(self.code.len());
        self.op(code, dst, src, 0, imm);
    }

    /// `r0 = bpf_map_lookup_elem(map, &key)`, the key at r10 - 4; to the end when absent.
    fn lookup(&mut self, map: i32) {
        self.op(LD_IMM64, 1, PSEUDO_MAP_FD, 0, map);
        self.op(0, 0, 0, 0, 0);
        self.op(MOV_X, 2, 10, 0, 0);
        self.op(ADD_K, 2, 0, 0, -4);
        self.op(CALL, 0, 0, 0, MAP_LOOKUP_ELEM);
        self.out_if(JEQ_K, 0, 0, 0);
    }

    /// Reads `size` bytes at r3 into the stack slot at r10 + `slot`; to the end on failure.
    fn read(&mut self, slot: i32, size: i32) {
        self.op(MOV_X, 1, 10, 0, 0);
        self.op(ADD_K, 1, 0, 0, slot);
        self.op(MOV_K, 2, 0, 0, size);
        self.op(CALL, 0, 0, 0, PROBE_READ_KERNEL);
        self.out_if(JNE_K, 0, 0, 0);
    }

    /// `if (current->ptrace && !(current->parent->flags & PF_EXITING))
    ///      bpf_send_signal_thread(signal);` — `parent` is the tracer of a traced task: once
    /// allocflame's ptrace thread starts to exit (killed), no signal is sent, even before the
    /// kernel detaches the task.
    fn signal_if_traced(&mut self, o: &TaskOffsets, signal: i32) {
        self.op(CALL, 0, 0, 0, GET_CURRENT_TASK);
        self.op(MOV_X, 6, 0, 0, 0);
        // current->ptrace
        self.op(MOV_X, 3, 6, 0, 0);
        self.op(ADD_K, 3, 0, 0, o.ptrace as i32);
        self.read(-8, 4);
        self.op(LDX_W, 1, 10, -8, 0);
        self.out_if(JEQ_K, 1, 0, 0);
        // current->parent
        self.op(MOV_X, 3, 6, 0, 0);
        self.op(ADD_K, 3, 0, 0, o.parent as i32);
        self.read(-16, 8);
        // parent->flags
        self.op(LDX_DW, 3, 10, -16, 0);
        self.op(ADD_K, 3, 0, 0, o.flags as i32);
        self.read(-8, 4);
        self.op(LDX_W, 1, 10, -8, 0);
        self.op(AND_K, 1, 0, 0, PF_EXITING);
        self.out_if(JNE_K, 1, 0, 0);
        self.op(MOV_K, 1, 0, 0, signal);
        self.op(CALL, 0, 0, 0, SEND_SIGNAL_THREAD);
    }

    /// Ends the program with `return ret;`, where every jump to the end lands.
    fn finish(mut self, ret: i32) -> Vec<u8> {
        let out = self.code.len();
        self.op(MOV_K, 0, 0, 0, ret);
        self.op(EXIT, 0, 0, 0, 0);
        for &j in &self.to_out {
            self.code[j].3 = (out - j - 1) as i16;
        }
        self.code
            .into_iter()
            .flat_map(|(c, d, s, off, imm)| insn(c, d, s, off, imm))
            .collect()
    }
}

/// `if (*switch) signal_if_traced(SIGTRAP); return 0;`
fn program(o: &TaskOffsets, switch: i32) -> Vec<u8> {
    let mut a = Asm::default();
    a.op(ST_W, 10, 0, -4, 0);
    a.lookup(switch);
    a.op(LDX_W, 1, 0, 0, 0);
    a.out_if(JEQ_K, 1, 0, 0);
    a.signal_if_traced(o, libc::SIGTRAP);
    a.finish(0)
}

/// The brake, on every allocation event (the sample is kept: `return 1`):
/// ```text
/// c = &counters[cpu];
/// if (c->limit) {
///     n = atomic_add(&c->produced, 1) + 1;
///     if ((s64)(n - c->consumed) >= c->limit) signal_if_traced(SIGCHLD);
/// }
/// ```
fn brake_program(o: &TaskOffsets, counters: i32) -> Vec<u8> {
    let mut a = Asm::default();
    a.op(CALL, 0, 0, 0, GET_SMP_PROCESSOR_ID);
    a.op(STX_W, 10, 0, -4, 0);
    a.lookup(counters);
    a.op(MOV_X, 7, 0, 0, 0);
    a.op(LDX_DW, 1, 7, 16, 0);
    a.out_if(JEQ_K, 1, 0, 0);
    a.op(MOV_K, 2, 0, 0, 1);
    a.op(ATOMIC_DW, 7, 2, 0, 0);
    a.op(LDX_DW, 2, 7, 0, 0);
    a.op(LDX_DW, 3, 7, 8, 0);
    a.op(SUB_X, 2, 3, 0, 0);
    a.out_if(JSLT_X, 2, 1, 0);
    a.signal_if_traced(o, libc::SIGCHLD);
    a.finish(1)
}

/// The offsets the programs read, from the kernel's BTF.
fn task_offsets() -> Result<TaskOffsets, String> {
    let btf = std::fs::read("/sys/kernel/btf/vmlinux")
        .map_err(|e| format!("no kernel BTF (/sys/kernel/btf/vmlinux: {e})"))?;
    let member = |name: &str| {
        btf_member_offset(&btf, "task_struct", name)
            .ok_or(format!("the kernel's BTF has no task_struct.{name}"))
    };
    Ok(TaskOffsets {
        ptrace: member("ptrace")?,
        parent: member("parent")?,
        flags: member("flags")?,
    })
}

/// A BPF array of `entries` values of `value_size` bytes (`BPF_F_MMAPABLE` when `mmapable`).
fn create_array(value_size: u32, entries: u32, mmapable: bool) -> Result<OwnedFd, String> {
    let mut attr = [0u8; 128];
    const BPF_MAP_CREATE: libc::c_long = 0;
    const BPF_MAP_TYPE_ARRAY: u32 = 2;
    const BPF_F_MMAPABLE: u32 = 1 << 10;
    put32(&mut attr, 0, BPF_MAP_TYPE_ARRAY);
    put32(&mut attr, 4, 4);
    put32(&mut attr, 8, value_size);
    put32(&mut attr, 12, entries);
    put32(&mut attr, 16, if mmapable { BPF_F_MMAPABLE } else { 0 });
    let fd = bpf(BPF_MAP_CREATE, &mut attr).map_err(|e| format!("cannot create a BPF map: {e}"))?;
    // SAFETY: the kernel just handed us this fd.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Loads `code` as a kprobe-type program (what uprobe events run) named `name` (NUL-ended,
/// at most 16 bytes).
fn load_program(code: &[u8], name: &[u8]) -> Result<OwnedFd, String> {
    let license = b"GPL\0";
    let mut log = vec![0u8; 4096];
    // union bpf_attr for BPF_PROG_LOAD, the fields up to prog_name.
    let mut attr = [0u8; 128];
    const BPF_PROG_TYPE_KPROBE: u32 = 2;
    put32(&mut attr, 0, BPF_PROG_TYPE_KPROBE);
    put32(&mut attr, 4, (code.len() / 8) as u32);
    put64(&mut attr, 8, code.as_ptr() as u64);
    put64(&mut attr, 16, license.as_ptr() as u64);
    put32(&mut attr, 24, 1);
    put32(&mut attr, 28, log.len() as u32);
    put64(&mut attr, 32, log.as_mut_ptr() as u64);
    attr[48..48 + name.len().min(16)].copy_from_slice(&name[..name.len().min(16)]);
    const BPF_PROG_LOAD: libc::c_long = 5;
    match bpf(BPF_PROG_LOAD, &mut attr) {
        // SAFETY: the kernel just handed us this fd.
        Ok(fd) => Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) }),
        Err(e) => {
            let text = String::from_utf8_lossy(&log);
            let text = text.trim_end_matches('\0').trim();
            Err(if text.is_empty() {
                format!("cannot load a BPF program: {e}")
            } else {
                format!("cannot load a BPF program: {e}: {text}")
            })
        }
    }
}

/// Makes `event` (a uprobe event) run `prog` at each hit.
fn attach_program(prog: &OwnedFd, event: &OwnedFd) -> io::Result<()> {
    const PERF_EVENT_IOC_SET_BPF: libc::c_ulong = 0x4004_2408;
    // SAFETY: an ioctl with an int argument on a perf fd.
    let r = unsafe {
        libc::ioctl(
            event.as_raw_fd(),
            PERF_EVENT_IOC_SET_BPF as _,
            prog.as_raw_fd(),
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

impl Stopper {
    /// Loads the program, or says why it cannot be.
    pub(crate) fn load() -> Result<Stopper, String> {
        let offsets = task_offsets()?;
        // An array of one u32, the switch.
        let switch = create_array(4, 1, false)?;
        let prog = load_program(&program(&offsets, switch.as_raw_fd()), b"af_stop\0")?;
        let stopper = Stopper { prog, switch };
        stopper
            .turn(true)
            .map_err(|e| format!("cannot set a BPF map: {e}"))?;
        Ok(stopper)
    }

    /// Turns the stops on or off; once off, no hit that starts after this returns asks for
    /// a stop.
    pub(crate) fn turn(&self, on: bool) -> io::Result<()> {
        let key = 0u32;
        let value = u32::from(on);
        let mut attr = [0u8; 128];
        const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
        put32(&mut attr, 0, self.switch.as_raw_fd() as u32);
        put64(&mut attr, 8, &key as *const u32 as u64);
        put64(&mut attr, 16, &value as *const u32 as u64);
        bpf(BPF_MAP_UPDATE_ELEM, &mut attr).map(|_| ())
    }

    /// Makes `event` (a uprobe event) run the program at each hit.
    pub(crate) fn attach(&self, event: &OwnedFd) -> io::Result<()> {
        attach_program(&self.prog, event)
    }
}

/// The brake: a reader that falls behind is caught in the kernel, whatever the scheduler does
/// to allocflame's threads. A BPF program on every allocation event counts the samples of each
/// CPU (`produced`); the reader, after each batch, sets `consumed` to what that count was less
/// the samples still unread in that CPU's buffer (estimated from its unread bytes, so that
/// samples that were never written, lost or of a disabled event, cannot accumulate). Once a
/// CPU's buffer holds three quarters of the samples it can (the reader's ordinary slack is up to half, the tracer's pause starts at 3/8), each task that allocates there is sent
/// SIGCHLD with `SI_KERNEL` (only while it is traced, as with the stopper), which stops it in
/// a signal-delivery stop before it runs another instruction of its own; the tracer holds it
/// until the reader has caught up, and never delivers that signal. (SIGCHLD, because were it
/// ever delivered, its default is to be ignored; the kernel sends it with `SI_KERNEL` for
/// nothing else.)
pub(crate) struct Brake {
    prog: OwnedFd,
    _map: OwnedFd,
    /// The map's values, mapped: per CPU, produced, consumed and limit.
    values: *mut u64,
    len: usize,
    entries: usize,
    ring_bytes: AtomicU64,
    record_bytes: AtomicU64,
}

// SAFETY: the mapped values are only accessed through atomics.
unsafe impl Send for Brake {}
// SAFETY: as above.
unsafe impl Sync for Brake {}

/// A buffer that holds fewer samples than this gets no brake: it would stop the program every
/// few allocations (such a buffer is the user's choice, and its losses are counted).
const BRAKE_MIN_SAMPLES: u64 = 64;

impl Brake {
    /// Loads the program, with a value for each of `cpus`, or says why it cannot be.
    pub(crate) fn load(cpus: &[i32]) -> Result<Brake, String> {
        let offsets = task_offsets()?;
        let entries = cpus.iter().copied().max().unwrap_or(0).max(0) as usize + 1;
        let map = create_array(24, entries as u32, true)?;
        let page = super::events::page_size();
        let len = (entries * 24).next_multiple_of(page);
        // SAFETY: mapping a BPF_F_MMAPABLE array as the kernel documents; checked for failure.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                map.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(format!(
                "cannot map a BPF array: {}",
                io::Error::last_os_error()
            ));
        }
        let prog = match load_program(&brake_program(&offsets, map.as_raw_fd()), b"af_brake\0") {
            Ok(prog) => prog,
            Err(e) => {
                // SAFETY: unmapping what was mapped above, unused.
                unsafe { libc::munmap(base, len) };
                return Err(e);
            }
        };
        Ok(Brake {
            prog,
            _map: map,
            values: base as *mut u64,
            len,
            entries,
            ring_bytes: AtomicU64::new(0),
            record_bytes: AtomicU64::new(1),
        })
    }

    fn value(&self, cpu: usize, field: usize) -> &AtomicU64 {
        // SAFETY: `cpu` < entries, and the values stay mapped while `self` lives; the kernel
        // keeps them 8-aligned.
        unsafe { AtomicU64::from_ptr(self.values.add(cpu * 3 + field)) }
    }

    /// Makes `event` (an allocation event) run the program at each hit.
    pub(crate) fn attach(&self, event: &OwnedFd) -> io::Result<()> {
        attach_program(&self.prog, event)
    }

    /// Engages the brake for buffers of `ring_bytes`, whose samples are at most
    /// `record_bytes` (it grows with [`Brake::grow_record`]).
    pub(crate) fn set_ring(&self, ring_bytes: u64, record_bytes: u64) {
        self.ring_bytes.store(ring_bytes, Ordering::Relaxed);
        self.record_bytes
            .store(record_bytes.max(1), Ordering::Relaxed);
        self.set_limits();
    }

    /// Samples may now be as large as `record_bytes`.
    pub(crate) fn grow_record(&self, record_bytes: u64) {
        if self.record_bytes.fetch_max(record_bytes, Ordering::Relaxed) < record_bytes {
            self.set_limits();
        }
    }

    /// The samples a buffer holds at which the brake engages (0: never).
    pub(crate) fn limit(&self) -> u64 {
        let fit = self.ring_bytes.load(Ordering::Relaxed)
            / self.record_bytes.load(Ordering::Relaxed).max(1);
        if fit >= BRAKE_MIN_SAMPLES {
            fit * 3 / 4
        } else {
            0
        }
    }

    fn set_limits(&self) {
        let limit = self.limit();
        for cpu in 0..self.entries {
            self.value(cpu, 2).store(limit, Ordering::Relaxed);
        }
    }

    /// The reader's count for `cpu`'s buffer, which has `unread` bytes still to read.
    pub(crate) fn sync(&self, cpu: i32, unread: u64) {
        let Ok(cpu) = usize::try_from(cpu) else {
            return;
        };
        if cpu >= self.entries {
            return;
        }
        let produced = self.value(cpu, 0).load(Ordering::Acquire);
        let pending = unread.div_ceil(self.record_bytes.load(Ordering::Relaxed).max(1));
        self.value(cpu, 1)
            .store(produced.saturating_sub(pending), Ordering::Release);
    }

    /// Releases the brake for good: no hit that starts after this returns asks for a stop.
    pub(crate) fn off(&self) {
        for cpu in 0..self.entries {
            self.value(cpu, 2).store(0, Ordering::SeqCst);
        }
    }
}

impl Drop for Brake {
    fn drop(&mut self) {
        // SAFETY: unmapping what `load` mapped; nothing refers to it any more.
        unsafe { libc::munmap(self.values as *mut libc::c_void, self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_kernels_btf_has_the_task_struct_members_read() {
        let Ok(btf) = std::fs::read("/sys/kernel/btf/vmlinux") else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true and this kernel has no BTF (/sys/kernel/btf/vmlinux)"
            );
            eprintln!("SKIPPED: needs the kernel's BTF (/sys/kernel/btf/vmlinux)");
            return;
        };
        for m in ["ptrace", "parent", "flags"] {
            let off = btf_member_offset(&btf, "task_struct", m);
            assert!(off.is_some_and(|o| o < 16384), "{m}: {off:?}");
        }
        assert_ne!(btf_member_offset(&btf, "task_struct", "ptrace"), Some(0));
    }
}
