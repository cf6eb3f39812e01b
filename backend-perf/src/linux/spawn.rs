//! Starting the target held before `exec`, so that the probes are in place before its first
//! instruction: fork, open the events on the child, then let it exec.

use std::ffi::{CString, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use allocflame_core::{Error, Result};

/// A forked child waiting for [`HeldChild::release`] to exec the program.
pub(crate) struct HeldChild {
    pub pid: i32,
    go: i32,
    exec_err: i32,
}

/// Looks `program` up in `PATH` as a shell would.
pub(crate) fn resolve_program(program: &OsString) -> Result<PathBuf> {
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

/// Forks a child that waits for [`HeldChild::release`] and then execs `argv`.
pub(crate) fn spawn_held(program: &Path, argv: &[OsString]) -> Result<HeldChild> {
    let path = cstr(program.as_os_str().as_bytes())?;
    let args: Vec<CString> = argv
        .iter()
        .map(|a| cstr(a.as_bytes()))
        .collect::<Result<_>>()?;
    let mut arg_ptrs: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    arg_ptrs.push(std::ptr::null());
    let io_err = |e: io::Error| Error::os("cannot start the program", e);
    let go = pipe().map_err(io_err)?;
    let exec_err = pipe().map_err(io_err)?;
    // SAFETY: between fork and exec the child only calls async-signal-safe functions (read,
    // close, execv, write, _exit) on memory prepared before the fork.
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
                libc::execv(path.as_ptr(), arg_ptrs.as_ptr());
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
    pub(crate) fn release(&mut self, program: &Path) -> Result<()> {
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
    pub(crate) fn abandon(&mut self) {
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

/// The exit of a waited-for child: its code, or 128 + the signal that killed it.
pub(crate) fn try_wait(pid: i32, block: bool) -> Option<i32> {
    let mut status = 0;
    // SAFETY: waiting for our own child.
    let r = unsafe { libc::waitpid(pid, &mut status, if block { 0 } else { libc::WNOHANG }) };
    if r == pid {
        if libc::WIFEXITED(status) {
            return Some(libc::WEXITSTATUS(status));
        }
        if libc::WIFSIGNALED(status) {
            return Some(128 + libc::WTERMSIG(status));
        }
    }
    if r < 0 {
        // Not our child any more (reaped elsewhere): treat as gone.
        return Some(-1);
    }
    None
}
