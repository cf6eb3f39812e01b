//! Where a recording's uprobe events come from, and how they go away fast.
//!
//! A uprobe-PMU event (`perf_event_open` with `attr.uprobe_path`) is a kernel trace event of its
//! own: closing it unregisters that trace event, which waits for RCU grace periods
//! (`perf_uprobe_destroy` → `uprobe_unregister_sync` and `tracepoint_synchronize_unregister`)
//! under `event_mutex`, the mutex every uprobe open also takes. Measured here (Linux 6.18,
//! 2 CPUs): ~80 ms per event, serialized, whether the fds are closed by one thread or sixteen,
//! disabled first or not; the target's breakpoint goes only when the last event on it is closed;
//! and every trap walks every event's consumer (33 µs per malloc with ~1000 events in place). A
//! recording opens probes × CPUs × tasks events, so releasing them took seconds to minutes.
//!
//! So the events of a recording are opened on **tracefs probes shared by all of them** (one
//! `p:allocflame_G/pN FILE:OFFSET` per probe location in `uprobe_events`, opened as
//! `PERF_TYPE_TRACEPOINT` events: same samples, same filtering by task). Closing one of those is
//! cheap (8 µs, ~0.6 ms for the last one on a process, which takes the breakpoint out of it); only
//! the trace event's last close waits for the grace periods. That last reference is a *keeper*:
//! one disabled event per probe on a small **guardian** process (forked at the first probe, in a
//! session of its own, holding no fd of ours). At the end the recording closes its own events at
//! once — the target is back to its file's code when `record` returns — and hands the keepers
//! to the guardian, which closes them (~75 ms per probe, in the background) and deletes the
//! group from `uprobe_events`. If allocflame is killed, its exit closes everything and the
//! guardian, seeing its socket close, deletes the group as soon as the kernel lets it; a group
//! whose guardian is gone (both killed) is deleted by the next recording.
//!
//! Where tracefs cannot be written (no root: CAP_PERFMON alone; not mounted), a path cannot be
//! written into `uprobe_events` (whitespace), or `ALLOCFLAME_UPROBES=pmu` is set, events are
//! uprobe-PMU events as before, released in the background (`events::release_in_background`),
//! and a note says what that costs.

use std::ffi::CString;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use perf_event_open_sys::bindings as b;
use rustc_hash::{FxHashMap, FxHashSet};

use super::events::{self, EventSpec, Ring};

/// Tracefs mount points, in the order they are tried (never mounted by us).
const TRACEFS: [&str; 2] = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];

/// The prefix of every group this module writes into `uprobe_events`; the guardian's pid follows.
const GROUP_PREFIX: &str = "allocflame_";

/// Attaches a BPF program to an event (see [`Uprobes::open_with`]).
pub(crate) type Attach<'a> = dyn Fn(&OwnedFd) -> io::Result<()> + 'a;

/// The uprobe events of one recording: how they are opened, and their release.
pub(crate) struct Uprobes {
    pmu: u32,
    state: Mutex<State>,
}

struct State {
    route: Route,
    /// Ids of the events opened through the uprobe PMU (slow to release), until released.
    pmu_ids: FxHashSet<u64>,
    /// How many events were opened through the uprobe PMU.
    pmu_events: usize,
    /// Why the uprobe PMU was used, once.
    pmu_why: Option<String>,
}

enum Route {
    /// Nothing opened yet.
    Untried,
    Tracefs(Tracefs),
    /// Tracefs is not usable: every event through the uprobe PMU.
    Pmu,
}

impl Uprobes {
    /// Events through tracefs probes where possible, else through uprobe PMU `pmu`.
    pub(crate) fn new(pmu: u32) -> Uprobes {
        Uprobes {
            pmu,
            state: Mutex::new(State {
                route: Route::Untried,
                pmu_ids: FxHashSet::default(),
                pmu_events: 0,
                pmu_why: None,
            }),
        }
    }

    /// Opens a uprobe event as `spec` says on task `pid` on `cpu`.
    pub(crate) fn open(&self, spec: &EventSpec<'_>, pid: i32, cpu: i32) -> io::Result<OwnedFd> {
        self.open_with(
            spec.path,
            spec.offset,
            events::uprobe_attr(spec),
            pid,
            cpu,
            spec.program,
        )
    }

    /// Opens an event with attributes `attr` on the uprobe at `path`+`offset`, for task `pid`
    /// on `cpu`, by the route of the recording's other uprobe events.
    ///
    /// With `program`, a BPF program runs at each hit of the probe in the task: `program`
    /// attaches it to an event. The kernel keeps a tracefs probe's programs with the probe, not
    /// with each event (a second attach of the same program fails with EEXIST, and the program
    /// goes when the event it was attached through is closed), so on that route it is attached
    /// once, to the probe's keeper, which lives as long as the recording; on the uprobe PMU
    /// each event is a probe of its own and gets it.
    pub(crate) fn open_with(
        &self,
        path: &Path,
        offset: u64,
        base: b::perf_event_attr,
        pid: i32,
        cpu: i32,
        program: Option<&Attach<'_>>,
    ) -> io::Result<OwnedFd> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if matches!(st.route, Route::Untried) {
            st.route = match Tracefs::start() {
                Ok(t) => Route::Tracefs(t),
                Err(why) => {
                    st.pmu_why = Some(why);
                    Route::Pmu
                }
            };
        }
        if let Route::Tracefs(t) = &mut st.route {
            match t.probe(path, offset) {
                Ok(made) => {
                    if let Some(attach) = program {
                        if !t.made[made].program {
                            attach(&t.made[made].keeper)?;
                            t.made[made].program = true;
                        }
                    }
                    let mut attr = base;
                    attr.type_ = b::PERF_TYPE_TRACEPOINT;
                    attr.config = t.made[made].id;
                    // An error (a task that is gone, say) is the uprobe PMU's to tell, below.
                    if let Ok(fd) = events::open_attr(&mut attr, pid, cpu) {
                        return Ok(fd);
                    }
                }
                Err(e) => {
                    if st.pmu_why.is_none() {
                        st.pmu_why = Some(format!(
                            "{} could not be probed through tracefs: {e}",
                            path.display()
                        ));
                    }
                }
            }
        }
        let path = CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        let mut attr = base;
        attr.type_ = self.pmu;
        attr.__bindgen_anon_3.uprobe_path = path.as_ptr() as u64;
        attr.__bindgen_anon_4.probe_offset = offset;
        let fd = events::open_attr(&mut attr, pid, cpu)?;
        if let Some(attach) = program {
            attach(&fd)?;
        }
        st.pmu_events += 1;
        if let Ok(id) = events::event_id(&fd) {
            st.pmu_ids.insert(id);
        }
        Ok(fd)
    }

    /// What the report should say: events opened through the uprobe PMU are slow to release.
    pub(crate) fn notes(&self) -> Vec<String> {
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match (&st.pmu_why, st.pmu_events) {
            (Some(why), n) if n > 0 => vec![format!(
                "{n} uprobe events were opened through the uprobe PMU ({why}): the kernel releases them one by one, ~70 ms each, in the background after allocflame returns; a process that was attached runs with its breakpoints until then, and the next recording waits behind them (as root, with tracefs mounted, the release is immediate)"
            )],
            _ => Vec::new(),
        }
    }

    /// Releases the recording's events and ring buffers. The events on tracefs probes are
    /// closed here (cheap; no breakpoint of this recording is left in any process when this
    /// returns); the keepers go to the guardian, which closes them and deletes the probes in
    /// the background; uprobe-PMU events are released in the background (slow).
    pub(crate) fn release(&self, fds: Vec<OwnedFd>, rings: Vec<Ring>) {
        let (route, pmu_ids) = {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            (
                std::mem::replace(&mut st.route, Route::Pmu),
                std::mem::take(&mut st.pmu_ids),
            )
        };
        let (slow, fast): (Vec<OwnedFd>, Vec<OwnedFd>) = if pmu_ids.is_empty() {
            (Vec::new(), fds)
        } else {
            fds.into_iter()
                .partition(|fd| events::event_id(fd).is_ok_and(|id| pmu_ids.contains(&id)))
        };
        drop(fast);
        let mut slow = slow;
        if let Route::Tracefs(t) = route {
            let keepers = t.made.into_iter().map(|m| m.keeper).collect();
            if let Err(keepers) = t.guardian.take_over(keepers) {
                // The guardian is gone: close the keepers in the background too.
                slow.extend(keepers);
            }
        }
        if slow.is_empty() {
            drop(rings);
        } else {
            events::release_in_background(slow, rings);
        }
    }
}

/// This recording's probes in tracefs.
struct Tracefs {
    control: PathBuf,
    events: PathBuf,
    group: String,
    guardian: Guardian,
    /// The probes made, and where each is, by (device, inode, offset) of the file probed.
    made: Vec<Made>,
    index: FxHashMap<(u64, u64, u64), usize>,
}

/// A probe in tracefs.
struct Made {
    /// Its trace event id.
    id: u64,
    /// The last reference of its trace event (see the module docs).
    keeper: OwnedFd,
    /// Whether a BPF program is attached (through the keeper).
    program: bool,
}

impl Tracefs {
    /// Finds a writable `uprobe_events`, deletes the groups of guardians that no longer exist,
    /// and starts this recording's guardian. The error says why tracefs is not used.
    fn start() -> std::result::Result<Tracefs, String> {
        if std::env::var_os("ALLOCFLAME_UPROBES").is_some_and(|v| v == "pmu") {
            return Err("ALLOCFLAME_UPROBES=pmu".into());
        }
        let mut why = String::new();
        let dir = TRACEFS.iter().map(Path::new).find(|d| {
            match std::fs::OpenOptions::new()
                .append(true)
                .open(d.join("uprobe_events"))
            {
                Ok(_) => true,
                Err(e) => {
                    if why.is_empty() {
                        why = format!("{}/uprobe_events: {e}", d.display());
                    }
                    false
                }
            }
        });
        let Some(dir) = dir else {
            return Err(why);
        };
        let control = dir.join("uprobe_events");
        delete_orphan_groups(&control);
        let guardian = Guardian::spawn(&control)
            .map_err(|e| format!("cannot start the process that releases the probes: {e}"))?;
        Ok(Tracefs {
            control,
            events: dir.join("events"),
            group: format!("{GROUP_PREFIX}{}", guardian.pid),
            guardian,
            made: Vec::new(),
            index: FxHashMap::default(),
        })
    }

    /// The probe on `path` at file offset `offset` (its place in `made`), made on first use.
    fn probe(&mut self, path: &Path, offset: u64) -> io::Result<usize> {
        let meta = std::fs::metadata(path)?;
        let key = (meta.dev(), meta.ino(), offset);
        if let Some(&made) = self.index.get(&key) {
            return Ok(made);
        }
        let bytes = path.as_os_str().as_encoded_bytes();
        if bytes
            .iter()
            .any(|c| c.is_ascii_whitespace() || c.is_ascii_control())
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a path with whitespace cannot be written into uprobe_events",
            ));
        }
        let name = format!("p{}", self.made.len());
        let mut line = format!("p:{}/{name} ", self.group).into_bytes();
        line.extend_from_slice(bytes);
        line.extend_from_slice(format!(":{offset:#x}\n").as_bytes());
        // Appending adds one probe; opening uprobe_events with O_TRUNC would delete them all.
        let mut control = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.control)?;
        control.write_all(&line)?;
        let created = (|| {
            let mut text = String::new();
            std::fs::File::open(self.events.join(&self.group).join(&name).join("id"))?
                .read_to_string(&mut text)?;
            let id: u64 = text
                .trim()
                .parse()
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "trace event id"))?;
            let mut attr = b::perf_event_attr {
                size: std::mem::size_of::<b::perf_event_attr>() as u32,
                type_: b::PERF_TYPE_TRACEPOINT,
                config: id,
                ..Default::default()
            };
            attr.set_disabled(1);
            attr.set_exclude_kernel(1);
            let keeper = events::open_attr(&mut attr, self.guardian.pid, -1)?;
            Ok((id, keeper))
        })();
        match created {
            Ok((id, keeper)) => {
                self.made.push(Made {
                    id,
                    keeper,
                    program: false,
                });
                self.index.insert(key, self.made.len() - 1);
                Ok(self.made.len() - 1)
            }
            Err(e) => {
                let _ = control.write_all(format!("-:{}/{name}\n", self.group).as_bytes());
                Err(e)
            }
        }
    }
}

/// Deletes the `allocflame_PID` groups whose guardian no longer exists (its recording and the
/// guardian were both killed). A group still in use is busy and stays.
fn delete_orphan_groups(control: &Path) {
    let Ok(text) = std::fs::read_to_string(control) else {
        return;
    };
    let mut orphans: Vec<&str> = text
        .lines()
        .filter_map(|l| {
            let group = l.split_once(':')?.1.split_once('/')?.0;
            let pid: u32 = group.strip_prefix(GROUP_PREFIX)?.parse().ok()?;
            (!Path::new(&format!("/proc/{pid}")).exists()).then_some(group)
        })
        .collect();
    orphans.sort_unstable();
    orphans.dedup();
    if let Ok(mut f) = std::fs::OpenOptions::new().append(true).open(control) {
        for g in orphans {
            let _ = f.write_all(format!("-:{g}/\n").as_bytes());
        }
    }
}

/// The process that holds the keepers at the end and deletes the probes (see the module docs).
struct Guardian {
    pid: i32,
    sock: OwnedFd,
}

/// Fds per message (the kernel takes at most 253, SCM_MAX_FD).
const FDS_PER_MESSAGE: usize = 250;

impl Guardian {
    /// Forks the guardian (twice: it is reparented to init, so no caller ever has it as a
    /// child) and learns its pid.
    fn spawn(control: &Path) -> io::Result<Guardian> {
        let control = CString::new(control.as_os_str().as_encoded_bytes())
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        let mut sv = [-1 as RawFd; 2];
        // SAFETY: socketpair writes two fds.
        if unsafe {
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
                0,
                sv.as_mut_ptr(),
            )
        } != 0
        {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: both fds were just created and are owned here.
        let (ours, theirs) = unsafe { (OwnedFd::from_raw_fd(sv[0]), OwnedFd::from_raw_fd(sv[1])) };
        // SAFETY: the children only make async-signal-safe calls (this process may have other
        // threads) on data prepared before the fork, and end with _exit.
        unsafe {
            let child = libc::fork();
            if child == 0 {
                if libc::fork() == 0 {
                    guardian_main(theirs.as_raw_fd(), control.as_ptr());
                }
                libc::_exit(0);
            }
            if child < 0 {
                return Err(io::Error::last_os_error());
            }
            libc::waitpid(child, std::ptr::null_mut(), 0);
        }
        drop(theirs);
        let mut pid = [0u8; 4];
        // SAFETY: reading 4 bytes into a 4-byte buffer; EOF (0) if the guardian never started.
        let n = unsafe { libc::read(ours.as_raw_fd(), pid.as_mut_ptr().cast(), 4) };
        if n != 4 {
            return Err(io::Error::other("the guardian process did not start"));
        }
        Ok(Guardian {
            pid: i32::from_ne_bytes(pid),
            sock: ours,
        })
    }

    /// Hands `keepers` over (the guardian closes them and deletes the probes); gives them
    /// back if the guardian is gone.
    fn take_over(self, keepers: Vec<OwnedFd>) -> std::result::Result<(), Vec<OwnedFd>> {
        for chunk in keepers.chunks(FDS_PER_MESSAGE) {
            if send_fds(&self.sock, chunk).is_err() {
                return Err(keepers);
            }
        }
        // Our copies, and then the socket (its EOF tells the guardian to go ahead).
        drop(keepers);
        drop(self.sock);
        Ok(())
    }
}

fn send_fds(sock: &OwnedFd, fds: &[OwnedFd]) -> io::Result<()> {
    let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
    let data_len = std::mem::size_of_val(&raw[..]) as libc::c_uint;
    // SAFETY: CMSG_SPACE is arithmetic.
    let space = unsafe { libc::CMSG_SPACE(data_len) } as usize;
    let mut control = vec![0u64; space.div_ceil(8)];
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    // SAFETY: a zeroed msghdr is valid; the pointers set below outlive the sendmsg call, and
    // the control buffer holds one cmsghdr with `raw` after it.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = space;
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(data_len) as usize;
        std::ptr::copy_nonoverlapping(
            raw.as_ptr().cast::<u8>(),
            libc::CMSG_DATA(cmsg),
            data_len as usize,
        );
        if libc::sendmsg(sock.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The guardian: async-signal-safe calls only, no allocation (forked from a process that may
/// have other threads).
///
/// # Safety
/// Only to be called in a freshly forked child; `sock` is its end of the socket pair and
/// `control` the NUL-terminated path of `uprobe_events`.
unsafe fn guardian_main(sock: RawFd, control: *const libc::c_char) -> ! {
    // Out of the caller's session and process group: a Ctrl-C or hangup of the terminal does
    // not reach it, and it holds none of the caller's fds (a pipe the caller's reader waits on).
    libc::setsid();
    if sock > 0 {
        libc::syscall(libc::SYS_close_range, 0u32, (sock - 1) as u32, 0u32);
    }
    libc::syscall(libc::SYS_close_range, (sock + 1) as u32, u32::MAX, 0u32);
    let pid = libc::getpid();
    libc::write(sock, (&pid as *const i32).cast(), 4);
    // The keepers arrive at the end of the recording; EOF when the recording is done (or gone).
    loop {
        let mut byte = [0u8; 1];
        let mut iov = libc::iovec {
            iov_base: byte.as_mut_ptr().cast(),
            iov_len: 1,
        };
        let mut control_buf = [0u64; 140]; // ≥ CMSG_SPACE(253 × 4)
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control_buf.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control_buf);
        let n = libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC);
        if n > 0 || (n < 0 && *libc::__errno_location() == libc::EINTR) {
            continue;
        }
        break;
    }
    // Closing the keepers is the slow part: each probe's last close waits for grace periods.
    libc::syscall(libc::SYS_close_range, 0u32, u32::MAX, 0u32);
    // "-:allocflame_PID/\n" deletes the whole group.
    let mut cmd = [0u8; 64];
    let mut len = 0;
    for &c in b"-:".iter().chain(GROUP_PREFIX.as_bytes()) {
        cmd[len] = c;
        len += 1;
    }
    let mut digits = [0u8; 12];
    let mut nd = 0;
    let mut p = pid as u32;
    loop {
        digits[nd] = b'0' + (p % 10) as u8;
        nd += 1;
        p /= 10;
        if p == 0 {
            break;
        }
    }
    while nd > 0 {
        nd -= 1;
        cmd[len] = digits[nd];
        len += 1;
    }
    cmd[len] = b'/';
    cmd[len + 1] = b'\n';
    len += 2;
    let fd = libc::open(control, libc::O_WRONLY | libc::O_APPEND | libc::O_CLOEXEC);
    if fd >= 0 {
        // Busy while a killed recording's exit is still closing its events: wait for that
        // (up to a minute).
        for _ in 0..3000 {
            if libc::write(fd, cmd.as_ptr().cast(), len) >= 0 {
                break;
            }
            if *libc::__errno_location() != libc::EBUSY {
                break;
            }
            let pause = libc::timespec {
                tv_sec: 0,
                tv_nsec: 20_000_000,
            };
            libc::nanosleep(&pause, std::ptr::null_mut());
        }
    }
    libc::_exit(0)
}
