//! What the user's shell gave this process, read before Rust's runtime changes it: which
//! signals were ignored, which were blocked, and which of the standard descriptors were
//! closed. A program started by allocflame gets exactly that back before its `exec`
//! ([`crate::PerfSource`] does it), so it runs as it would without allocflame.
//!
//! Rust's runtime sets SIGPIPE to "ignore" before `main` (and the setting survives `exec`), and
//! opens `/dev/null` on a closed stdin, stdout or stderr; allocflame itself then catches SIGINT
//! and SIGTERM. A function in `.init_array` runs before all that: the dynamic loader calls it
//! before `main`, with the process as `exec` left it.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};

/// Signals ignored at start, bit `n - 1` for signal `n`.
static IGNORED: AtomicU64 = AtomicU64::new(0);
/// Signals blocked at start, bit `n - 1` for signal `n`.
static BLOCKED: AtomicU64 = AtomicU64::new(0);
/// Standard descriptors closed at start, bit `fd`.
static CLOSED: AtomicU8 = AtomicU8::new(0);
/// Whether [`record`] ran.
static RECORDED: AtomicBool = AtomicBool::new(false);

/// The highest signal number looked at (Linux has 64, macOS 31).
#[cfg(target_os = "linux")]
pub const MAX_SIGNAL: i32 = 64;
/// The highest signal number looked at (Linux has 64, macOS 31).
#[cfg(not(target_os = "linux"))]
pub const MAX_SIGNAL: i32 = 31;

/// Runs before `main` (and before Rust's runtime sets anything up): only libc calls on the
/// process's own state, no allocation, no Rust runtime.
extern "C" fn record() {
    let mut ignored = 0u64;
    let mut blocked = 0u64;
    // SAFETY: querying the process's own signal state and descriptors into local storage.
    unsafe {
        let mut mask: libc::sigset_t = std::mem::zeroed();
        let have_mask = libc::sigprocmask(libc::SIG_SETMASK, std::ptr::null(), &mut mask) == 0;
        for sig in 1..=MAX_SIGNAL {
            let mut old: libc::sigaction = std::mem::zeroed();
            let handler = if libc::sigaction(sig, std::ptr::null(), &mut old) == 0 {
                Some(old.sa_sigaction)
            } else {
                raw_handler(sig)
            };
            if handler == Some(libc::SIG_IGN) {
                ignored |= 1 << (sig - 1);
            }
            if have_mask && libc::sigismember(&mask, sig) == 1 {
                blocked |= 1 << (sig - 1);
            }
        }
        let mut closed = 0u8;
        for fd in 0..3 {
            if libc::fcntl(fd, libc::F_GETFD) == -1 {
                closed |= 1 << fd;
            }
        }
        CLOSED.store(closed, Ordering::Relaxed);
    }
    IGNORED.store(ignored, Ordering::Relaxed);
    BLOCKED.store(blocked, Ordering::Relaxed);
    RECORDED.store(true, Ordering::Release);
}

/// The kernel's `struct sigaction` on Linux x86-64 and AArch64.
#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
#[repr(C)]
pub(crate) struct KernelSigaction {
    pub handler: libc::sighandler_t,
    pub flags: libc::c_ulong,
    pub restorer: usize,
    pub mask: u64,
}

/// The handler of signal `sig` read with the `rt_sigaction` system call itself: glibc refuses
/// to tell it for the signals it keeps for itself (32 and 33).
#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
fn raw_handler(sig: i32) -> Option<libc::sighandler_t> {
    let mut old = KernelSigaction {
        handler: 0,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    // SAFETY: the kernel writes one `struct sigaction` of the size given.
    let r = unsafe {
        libc::syscall(
            libc::SYS_rt_sigaction,
            sig,
            std::ptr::null::<KernelSigaction>(),
            &mut old as *mut KernelSigaction,
            std::mem::size_of::<u64>(),
        )
    };
    (r == 0).then_some(old.handler)
}

#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
)))]
fn raw_handler(_sig: i32) -> Option<libc::sighandler_t> {
    None
}

// The loader runs `.init_array` entries before `main`; `used` keeps the entry in the object
// file, and the statics above (which the rest of the crate reads) keep that file linked in.
#[cfg(target_os = "linux")]
#[used]
#[link_section = ".init_array"]
static RECORD_AT_START: extern "C" fn() = record;

#[cfg(target_vendor = "apple")]
#[used]
#[link_section = "__DATA,__mod_init_func"]
static RECORD_AT_START: extern "C" fn() = record;

/// Signal dispositions, signal mask and standard descriptors as this process got them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Inherited {
    /// Signals that were ignored, bit `n - 1` for signal `n`.
    pub ignored: u64,
    /// Signals that were blocked, bit `n - 1` for signal `n`.
    pub blocked: u64,
    /// Standard descriptors (0, 1, 2) that were closed, bit `fd`.
    pub closed: u8,
}

impl Inherited {
    /// What this process was started with; where the start could not be observed (no
    /// constructor ran on this platform), the defaults: nothing ignored, blocked or closed.
    pub fn get() -> Inherited {
        if RECORDED.load(Ordering::Acquire) {
            return Inherited {
                ignored: IGNORED.load(Ordering::Relaxed),
                blocked: BLOCKED.load(Ordering::Relaxed),
                closed: CLOSED.load(Ordering::Relaxed),
            };
        }
        Inherited {
            ignored: 0,
            blocked: 0,
            closed: 0,
        }
    }

    /// Whether signal `sig` was ignored.
    pub fn ignores(&self, sig: i32) -> bool {
        (1..=MAX_SIGNAL).contains(&sig) && self.ignored & (1 << (sig - 1)) != 0
    }

    /// Whether signal `sig` was blocked.
    pub fn blocks(&self, sig: i32) -> bool {
        (1..=MAX_SIGNAL).contains(&sig) && self.blocked & (1 << (sig - 1)) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_before_rusts_runtime_ignored_sigpipe() {
        let inherited = Inherited::get();
        assert!(
            RECORDED.load(Ordering::Acquire),
            "the constructor did not run"
        );
        // SAFETY: reading this process's SIGPIPE disposition.
        let now_ignored = unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            libc::sigaction(libc::SIGPIPE, std::ptr::null(), &mut old);
            old.sa_sigaction == libc::SIG_IGN
        };
        assert!(now_ignored, "Rust's runtime ignores SIGPIPE");
        // cargo (std::process::Command) starts test binaries with SIGPIPE at its default.
        assert!(!inherited.ignores(libc::SIGPIPE), "{inherited:?}");
    }
}
