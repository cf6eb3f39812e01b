//! Facts about processes on macOS: whether SIP lets DTrace trace one (code-signing flags,
//! SIP's DTrace restriction), its name, and whether it is stopped or suspended, so that an
//! attached target is never left that way.

use allocflame_core::{Error, Result};
use mach2::kern_return::KERN_SUCCESS;
use mach2::port::{mach_port_name_t, MACH_PORT_NULL};
use mach2::traps::{mach_task_self, task_for_pid};

use crate::errors;

// Code-signing status of a process (<sys/codesign.h>); exported by libSystem.
extern "C" {
    fn csops(
        pid: libc::pid_t,
        ops: u32,
        useraddr: *mut libc::c_void,
        usersize: libc::size_t,
    ) -> libc::c_int;
    fn csr_check(mask: u32) -> libc::c_int;
}
const CS_OPS_STATUS: u32 = 0;
const CS_RESTRICT: u32 = 0x800;
const CS_PLATFORM_BINARY: u32 = 0x0400_0000;
const CS_GET_TASK_ALLOW: u32 = 0x4;
const CS_RUNTIME: u32 = 0x0001_0000;
/// `csr_check(CSR_ALLOW_UNRESTRICTED_DTRACE) == 0` when SIP's DTrace restriction is off.
const CSR_ALLOW_UNRESTRICTED_DTRACE: u32 = 1 << 5;

pub fn sip_restricts_dtrace() -> bool {
    // SAFETY: csr_check only reads the boot configuration.
    unsafe { csr_check(CSR_ALLOW_UNRESTRICTED_DTRACE) != 0 }
}

pub fn process_name(pid: u32) -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: proc_name writes at most `buf.len()` bytes into `buf`.
    let n = unsafe {
        libc::proc_name(
            pid as libc::c_int,
            buf.as_mut_ptr().cast(),
            buf.len() as u32,
        )
    };
    (n > 0).then(|| String::from_utf8_lossy(&buf[..n as usize]).into_owned())
}

pub fn check_pid(pid: u32) -> Result<String> {
    // SAFETY: signal 0 only checks that the process exists.
    if unsafe { libc::kill(pid as libc::pid_t, 0) } != 0
        && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
    {
        return Err(Error::Invalid(format!("no process with pid {pid}")));
    }
    let name = process_name(pid).unwrap_or_else(|| format!("pid {pid}"));
    if sip_restricts_dtrace() {
        let mut flags: u32 = 0;
        // SAFETY: CS_OPS_STATUS writes one u32 into `flags`.
        let ok = unsafe {
            csops(
                pid as libc::pid_t,
                CS_OPS_STATUS,
                (&mut flags as *mut u32).cast(),
                4,
            )
        } == 0;
        if ok
            && (flags & (CS_PLATFORM_BINARY | CS_RESTRICT) != 0
                || (flags & CS_RUNTIME != 0 && flags & CS_GET_TASK_ALLOW == 0))
        {
            return Err(errors::sip_blocked(format!(
                "{name} (pid {pid}) is an Apple platform binary, restricted or hardened-runtime process, which DTrace cannot trace while System Integrity Protection is on"
            )));
        }
    }
    Ok(name)
}

/// `struct mach_task_basic_info` of <mach/task_info.h>, which mach2 does not define.
#[repr(C)]
#[derive(Default)]
struct MachTaskBasicInfo {
    virtual_size: u64,
    resident_size: u64,
    resident_size_max: u64,
    user_time: [i32; 2],
    system_time: [i32; 2],
    policy: i32,
    suspend_count: i32,
}

/// A task port of another process, released when dropped.
struct Task(mach_port_name_t);

impl Task {
    fn of(pid: u32) -> Option<Task> {
        let mut port: mach_port_name_t = MACH_PORT_NULL;
        // SAFETY: task_for_pid writes one port name into `port`.
        let kr = unsafe { task_for_pid(mach_task_self(), pid as libc::c_int, &mut port) };
        (kr == KERN_SUCCESS && port != MACH_PORT_NULL).then_some(Task(port))
    }

    fn suspend_count(&self) -> Option<i32> {
        let mut info = MachTaskBasicInfo::default();
        let mut count = (std::mem::size_of::<MachTaskBasicInfo>() / 4) as u32;
        // SAFETY: `info` has room for MACH_TASK_BASIC_INFO_COUNT natural_t words, as `count`
        // says.
        let kr = unsafe {
            mach2::task::task_info(
                self.0,
                mach2::task_info::MACH_TASK_BASIC_INFO,
                (&mut info as *mut MachTaskBasicInfo).cast(),
                &mut count,
            )
        };
        (kr == KERN_SUCCESS).then_some(info.suspend_count)
    }
}

impl Drop for Task {
    fn drop(&mut self) {
        // SAFETY: the port name is ours, from task_for_pid.
        unsafe { mach2::mach_port::mach_port_deallocate(mach_task_self(), self.0) };
    }
}

/// Whether the process is stopped by a signal (SIGSTOP, a tracer), per its BSD status.
fn bsd_stopped(pid: u32) -> bool {
    // SAFETY: an all-zero proc_bsdinfo is a valid value of this plain C struct.
    let mut info: libc::proc_bsdinfo = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::proc_bsdinfo>() as libc::c_int;
    // SAFETY: proc_pidinfo writes at most `size` bytes into `info`.
    let n = unsafe {
        libc::proc_pidinfo(
            pid as libc::c_int,
            libc::PROC_PIDTBSDINFO,
            0,
            (&mut info as *mut libc::proc_bsdinfo).cast(),
            size,
        )
    };
    n == size && info.pbi_status == libc::SSTOP
}

/// How an attached process was before the recording: restored afterwards.
pub struct Held {
    pid: u32,
    stopped: bool,
    suspend_count: Option<i32>,
}

impl Held {
    /// Notes the state of `pid` before dtrace attaches.
    pub fn before(pid: u32) -> Held {
        Held {
            pid,
            stopped: bsd_stopped(pid),
            suspend_count: Task::of(pid).and_then(|t| t.suspend_count()),
        }
    }

    /// Undoes a stop or a Mach suspension that dtrace left behind (it may, if it was killed
    /// while it held the process). Returns a note when something had to be undone.
    pub fn release(&self) -> Option<String> {
        let mut undone = Vec::new();
        if let (Some(before), Some(task)) = (self.suspend_count, Task::of(self.pid)) {
            let mut n = 0;
            while task.suspend_count().is_some_and(|c| c > before) && n < 16 {
                // SAFETY: a task port we hold; resuming only lowers a suspend count.
                unsafe { mach2::task::task_resume(task.0) };
                n += 1;
            }
            if n > 0 {
                undone.push(format!("resumed its task {n} time(s)"));
            }
        }
        if !self.stopped && bsd_stopped(self.pid) {
            // SAFETY: SIGCONT to the process we attached to, which was running before.
            unsafe { libc::kill(self.pid as libc::pid_t, libc::SIGCONT) };
            undone.push("sent SIGCONT".to_owned());
        }
        (!undone.is_empty()).then(|| {
            format!(
                "dtrace left process {} stopped; allocflame {}",
                self.pid,
                undone.join(" and ")
            )
        })
    }
}

/// Ends `pid` if it still runs and is still the program `name` (so a reused pid is left
/// alone): a spawned target must not outlive its recording. Returns a note if it had to.
pub fn end_leftover(pid: u32, name: Option<&str>) -> Option<String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    // dtrace's own ending of the program may take a moment.
    while process_name(pid).is_some() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let running = process_name(pid)?;
    // proc_name gives at most MAXCOMLEN (16) bytes of the name.
    if name.is_some_and(|n| !n.starts_with(running.as_str())) {
        return None;
    }
    // SAFETY: a signal to the program this recording started.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
    Some(format!(
        "the program ({running}, pid {pid}) still ran after dtrace ended; allocflame killed it"
    ))
}
