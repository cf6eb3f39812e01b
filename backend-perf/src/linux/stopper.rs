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

/// `if (current->ptrace && !(current->parent->flags & PF_EXITING))
///      bpf_send_signal_thread(SIGTRAP);` — `parent` is the tracer of a traced task: once
/// allocflame's ptrace thread starts to exit (killed), no stop is asked for, even before the
/// kernel detaches the task.
fn program(o: &TaskOffsets, switch: i32) -> Vec<u8> {
    const CALL: u8 = 0x85;
    const MOV_X: u8 = 0xbf;
    const MOV_K: u8 = 0xb7;
    const ADD_K: u8 = 0x07;
    const AND_K: u8 = 0x57;
    const JNE_K: u8 = 0x55;
    const JEQ_K: u8 = 0x15;
    const LDX_W: u8 = 0x61;
    const LDX_DW: u8 = 0x79;
    const EXIT: u8 = 0x95;
    const LD_IMM64: u8 = 0x18;
    const ST_W: u8 = 0x62;
    const PSEUDO_MAP_FD: u8 = 1;
    const MAP_LOOKUP_ELEM: i32 = 1;
    const GET_CURRENT_TASK: i32 = 35;
    const PROBE_READ_KERNEL: i32 = 113;
    const SEND_SIGNAL_THREAD: i32 = 117;
    // Instructions, and the indices of the jumps to patch to `out`.
    let mut code: Vec<(u8, u8, u8, i16, i32)> = Vec::new();
    let mut to_out: Vec<usize> = Vec::new();
    // The switch: *bpf_map_lookup_elem(&switch, &0) != 0.
    code.push((ST_W, 10, 0, -4, 0));
    code.push((LD_IMM64, 1, PSEUDO_MAP_FD, 0, switch));
    code.push((0, 0, 0, 0, 0));
    code.push((MOV_X, 2, 10, 0, 0));
    code.push((ADD_K, 2, 0, 0, -4));
    code.push((CALL, 0, 0, 0, MAP_LOOKUP_ELEM));
    to_out.push(code.len());
    code.push((JEQ_K, 0, 0, 0, 0));
    code.push((LDX_W, 1, 0, 0, 0));
    to_out.push(code.len());
    code.push((JEQ_K, 1, 0, 0, 0));
    // read `size` bytes at r3 into the stack slot at r10 + `slot`; out on failure
    let read =
        |code: &mut Vec<(u8, u8, u8, i16, i32)>, to_out: &mut Vec<usize>, slot: i32, size: i32| {
            code.push((MOV_X, 1, 10, 0, 0));
            code.push((ADD_K, 1, 0, 0, slot));
            code.push((MOV_K, 2, 0, 0, size));
            code.push((CALL, 0, 0, 0, PROBE_READ_KERNEL));
            to_out.push(code.len());
            code.push((JNE_K, 0, 0, 0, 0));
        };
    code.push((CALL, 0, 0, 0, GET_CURRENT_TASK));
    code.push((MOV_X, 6, 0, 0, 0));
    // current->ptrace
    code.push((MOV_X, 3, 6, 0, 0));
    code.push((ADD_K, 3, 0, 0, o.ptrace as i32));
    read(&mut code, &mut to_out, -8, 4);
    code.push((LDX_W, 1, 10, -8, 0));
    to_out.push(code.len());
    code.push((JEQ_K, 1, 0, 0, 0));
    // current->parent
    code.push((MOV_X, 3, 6, 0, 0));
    code.push((ADD_K, 3, 0, 0, o.parent as i32));
    read(&mut code, &mut to_out, -16, 8);
    // parent->flags
    code.push((LDX_DW, 3, 10, -16, 0));
    code.push((ADD_K, 3, 0, 0, o.flags as i32));
    read(&mut code, &mut to_out, -8, 4);
    code.push((LDX_W, 1, 10, -8, 0));
    code.push((AND_K, 1, 0, 0, PF_EXITING));
    to_out.push(code.len());
    code.push((JNE_K, 1, 0, 0, 0));
    code.push((MOV_K, 1, 0, 0, libc::SIGTRAP));
    code.push((CALL, 0, 0, 0, SEND_SIGNAL_THREAD));
    let out = code.len();
    code.push((MOV_K, 0, 0, 0, 0));
    code.push((EXIT, 0, 0, 0, 0));
    for &j in &to_out {
        code[j].3 = (out - j - 1) as i16;
    }
    code.into_iter()
        .flat_map(|(c, d, s, off, imm)| insn(c, d, s, off, imm))
        .collect()
}

impl Stopper {
    /// Loads the program, or says why it cannot be.
    pub(crate) fn load() -> Result<Stopper, String> {
        let btf = std::fs::read("/sys/kernel/btf/vmlinux")
            .map_err(|e| format!("no kernel BTF (/sys/kernel/btf/vmlinux: {e})"))?;
        let member = |name: &str| {
            btf_member_offset(&btf, "task_struct", name)
                .ok_or(format!("the kernel's BTF has no task_struct.{name}"))
        };
        let offsets = TaskOffsets {
            ptrace: member("ptrace")?,
            parent: member("parent")?,
            flags: member("flags")?,
        };
        // An array of one u32, the switch.
        let mut attr = [0u8; 128];
        const BPF_MAP_CREATE: libc::c_long = 0;
        const BPF_MAP_TYPE_ARRAY: u32 = 2;
        put32(&mut attr, 0, BPF_MAP_TYPE_ARRAY);
        put32(&mut attr, 4, 4);
        put32(&mut attr, 8, 4);
        put32(&mut attr, 12, 1);
        let fd =
            bpf(BPF_MAP_CREATE, &mut attr).map_err(|e| format!("cannot create a BPF map: {e}"))?;
        // SAFETY: the kernel just handed us this fd.
        let switch = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        let code = program(&offsets, switch.as_raw_fd());
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
        attr[48..56].copy_from_slice(b"af_stop\0");
        const BPF_PROG_LOAD: libc::c_long = 5;
        let loaded = bpf(BPF_PROG_LOAD, &mut attr);
        if let Err(e) = loaded {
            let text = String::from_utf8_lossy(&log);
            let text = text.trim_end_matches('\0').trim();
            return Err(if text.is_empty() {
                format!("cannot load a BPF program: {e}")
            } else {
                format!("cannot load a BPF program: {e}: {text}")
            });
        }
        let fd = loaded.unwrap_or(-1);
        // SAFETY: the kernel just handed us this fd.
        let prog = unsafe { OwnedFd::from_raw_fd(fd as i32) };
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
        const PERF_EVENT_IOC_SET_BPF: libc::c_ulong = 0x4004_2408;
        // SAFETY: an ioctl with an int argument on a perf fd.
        let r = unsafe {
            libc::ioctl(
                event.as_raw_fd(),
                PERF_EVENT_IOC_SET_BPF as _,
                self.prog.as_raw_fd(),
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
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
