//! Starting the target held before `exec`, so that the probes are in place before its first
//! instruction: fork, open the events on the child (or prepare its environment), then let it exec.

use std::ffi::{CString, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use allocflame_core::source::ProgramExit;
use allocflame_core::{Error, Result};

use crate::inherited::{Inherited, MAX_SIGNAL};

/// A forked child waiting for [`HeldChild::release`] to exec the program.
pub struct HeldChild {
    /// Its process id.
    pub pid: i32,
    go: i32,
    exec_err: i32,
}

/// Looks `program` up in `PATH` as a shell would.
pub fn resolve_program(program: &OsString) -> Result<PathBuf> {
    let p = Path::new(program);
    let candidate = if p.as_os_str().as_bytes().contains(&b'/') {
        Some(p.to_path_buf())
    } else {
        std::env::var_os("PATH").and_then(|path| {
            std::env::split_paths(&path)
                .map(|d| d.join(p))
                .find(|c| is_executable(c))
        })
    };
    match candidate {
        Some(c) if is_executable(&c) => Ok(c),
        Some(c) if c.exists() => Err(Error::Invalid(format!(
            "{}: not an executable file (check its permissions)",
            c.display()
        ))),
        _ => Err(Error::Invalid(format!(
            "{}: program not found{}",
            p.display(),
            if p.as_os_str().as_bytes().contains(&b'/') {
                ""
            } else {
                " in PATH (give a path like ./prog)"
            }
        ))),
    }
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

fn cstr(s: &[u8]) -> Result<CString> {
    CString::new(s).map_err(|_| Error::Invalid("an argument contains a NUL byte".into()))
}

fn pipe() -> io::Result<[i32; 2]> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two fds.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fds)
}

/// What the child restores before `exec`, prepared before the fork (the child of a
/// multi-threaded process may only make async-signal-safe calls, and allocates nothing).
struct Untouched {
    /// The mask the user's shell gave allocflame.
    mask: libc::sigset_t,
    /// Signals to reset to "ignore" (ignored at start) or "default" (all others: caught by
    /// allocflame, or ignored by Rust's runtime, as SIGPIPE is).
    ignore: libc::sigaction,
    default: libc::sigaction,
    inherited: Inherited,
}

impl Untouched {
    fn new() -> Untouched {
        let inherited = Inherited::get();
        // SAFETY: plain C structs, filled through libc's own functions.
        unsafe {
            let mut mask: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut mask);
            for sig in 1..=MAX_SIGNAL {
                if inherited.blocks(sig) {
                    libc::sigaddset(&mut mask, sig);
                }
            }
            let mut ignore: libc::sigaction = std::mem::zeroed();
            ignore.sa_sigaction = libc::SIG_IGN;
            libc::sigemptyset(&mut ignore.sa_mask);
            let mut default: libc::sigaction = std::mem::zeroed();
            default.sa_sigaction = libc::SIG_DFL;
            libc::sigemptyset(&mut default.sa_mask);
            Untouched {
                mask,
                ignore,
                default,
                inherited,
            }
        }
    }

    /// In the child, right before `exec`: the dispositions, mask and standard descriptors the
    /// user's shell gave allocflame. Only async-signal-safe calls (sigaction, sigprocmask,
    /// close).
    ///
    /// # Safety
    /// Call only in the forked child.
    unsafe fn restore(&self) {
        for sig in 1..=MAX_SIGNAL {
            if sig == libc::SIGKILL || sig == libc::SIGSTOP {
                continue;
            }
            let action = if self.inherited.ignores(sig) {
                &self.ignore
            } else {
                &self.default
            };
            if libc::sigaction(sig, action, std::ptr::null_mut()) != 0 {
                // glibc keeps signals 32 and 33 for itself and refuses to set them; the kernel
                // does not.
                set_raw(sig, action.sa_sigaction);
            }
        }
        libc::sigprocmask(libc::SIG_SETMASK, &self.mask, std::ptr::null_mut());
        for fd in 0..3 {
            if self.inherited.closed & (1 << fd) != 0 {
                libc::close(fd);
            }
        }
    }
}

/// Sets signal `sig`'s disposition to `handler` (`SIG_IGN` or `SIG_DFL`) with the
/// `rt_sigaction` system call itself (async-signal-safe).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
unsafe fn set_raw(sig: i32, handler: libc::sighandler_t) {
    use crate::inherited::KernelSigaction;
    let action = KernelSigaction {
        handler,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    libc::syscall(
        libc::SYS_rt_sigaction,
        sig,
        &action as *const KernelSigaction,
        std::ptr::null_mut::<KernelSigaction>(),
        std::mem::size_of::<u64>(),
    );
}

/// Where the kernel's `struct sigaction` is not known here, such signals stay as they are.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
unsafe fn set_raw(_sig: i32, _handler: libc::sighandler_t) {}

/// Forks a child that waits for [`HeldChild::release`] and then execs `argv` with the signal
/// dispositions, signal mask and standard descriptors allocflame was started with
/// ([`Inherited`]), whatever allocflame changed since.
pub(crate) fn spawn_held(program: &Path, argv: &[OsString]) -> Result<HeldChild> {
    spawn_held_with(program, argv, None)
}

/// [`spawn_held`] with the environment `env` (`NAME=value` entries) instead of allocflame's
/// own.
pub fn spawn_held_with(
    program: &Path,
    argv: &[OsString],
    env: Option<&[OsString]>,
) -> Result<HeldChild> {
    let path = cstr(program.as_os_str().as_bytes())?;
    let args: Vec<CString> = argv
        .iter()
        .map(|a| cstr(a.as_bytes()))
        .collect::<Result<_>>()?;
    let mut arg_ptrs: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    arg_ptrs.push(std::ptr::null());
    let vars: Option<Vec<CString>> = env
        .map(|e| e.iter().map(|v| cstr(v.as_bytes())).collect::<Result<_>>())
        .transpose()?;
    let mut env_ptrs: Option<Vec<*const libc::c_char>> = vars
        .as_ref()
        .map(|v| v.iter().map(|a| a.as_ptr()).collect());
    if let Some(p) = env_ptrs.as_mut() {
        p.push(std::ptr::null());
    }
    let io_err = |e: io::Error| Error::os("cannot start the program", e);
    let go = pipe().map_err(io_err)?;
    let exec_err = pipe().map_err(io_err)?;
    let untouched = Untouched::new();
    // SAFETY: between fork and exec the child only calls async-signal-safe functions (read,
    // close, sigaction, sigprocmask, execv, write, _exit) on memory prepared before the fork.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io_err(io::Error::last_os_error()));
    }
    if pid == 0 {
        // SAFETY: see above.
        unsafe {
            libc::close(go[1]);
            libc::close(exec_err[0]);
            let mut b = 0u8;
            let n = libc::read(go[0], &mut b as *mut u8 as *mut libc::c_void, 1);
            if n == 1 {
                untouched.restore();
                match &env_ptrs {
                    Some(env) => libc::execve(path.as_ptr(), arg_ptrs.as_ptr(), env.as_ptr()),
                    None => libc::execv(path.as_ptr(), arg_ptrs.as_ptr()),
                };
            }
            let e: i32 = *libc::__errno_location();
            libc::write(exec_err[1], &e as *const i32 as *const libc::c_void, 4);
            libc::_exit(127);
        }
    }
    // SAFETY: closing the child's ends in the parent.
    unsafe {
        libc::close(go[0]);
        libc::close(exec_err[1]);
    }
    Ok(HeldChild {
        pid,
        go: go[1],
        exec_err: exec_err[0],
    })
}

impl HeldChild {
    /// Lets the child exec; an exec failure is reported here.
    pub fn release(&mut self, program: &Path) -> Result<()> {
        let b = 1u8;
        // SAFETY: writing one byte to our pipe end, then reading the CLOEXEC error pipe, which
        // reports EOF once exec succeeded.
        unsafe {
            libc::write(self.go, &b as *const u8 as *const libc::c_void, 1);
            libc::close(self.go);
            self.go = -1;
            let mut e = 0i32;
            let n = libc::read(self.exec_err, &mut e as *mut i32 as *mut libc::c_void, 4);
            libc::close(self.exec_err);
            self.exec_err = -1;
            if n == 4 {
                return Err(Error::Invalid(format!(
                    "{}: cannot execute: {}",
                    program.display(),
                    io::Error::from_raw_os_error(e)
                )));
            }
        }
        Ok(())
    }

    /// Kills a child that never ran the program (events could not be opened).
    pub fn abandon(&mut self) {
        // SAFETY: killing and reaping our own child.
        unsafe {
            libc::kill(self.pid, libc::SIGKILL);
            libc::waitpid(self.pid, std::ptr::null_mut(), 0);
            if self.go >= 0 {
                libc::close(self.go);
            }
            if self.exec_err >= 0 {
                libc::close(self.exec_err);
            }
        }
        self.go = -1;
        self.exec_err = -1;
    }
}

/// How a child whose `waitpid` status is `status` ended; `None` if it did not (a stop).
pub fn exit_of(status: i32) -> Option<ProgramExit> {
    if libc::WIFEXITED(status) {
        Some(ProgramExit::Code(libc::WEXITSTATUS(status)))
    } else if libc::WIFSIGNALED(status) {
        Some(ProgramExit::Signal(libc::WTERMSIG(status)))
    } else {
        None
    }
}

/// Waits for (`block`) or looks at our child `pid`: how it ended; `None` while it runs, or
/// when it is not our child (any more).
pub fn try_wait(pid: i32, block: bool) -> Option<ProgramExit> {
    let mut status = 0;
    // SAFETY: waiting for our own child.
    let r = unsafe { libc::waitpid(pid, &mut status, if block { 0 } else { libc::WNOHANG }) };
    (r == pid).then(|| exit_of(status)).flatten()
}
