//! What the Linux and macOS recorders share: the shared file allocflame creates, the injected
//! library written where programs can load it, and handing the tables' stacks over.

use std::fs::File;
use std::io::{self, Write as _};
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::{DirBuilderExt as _, FileExt as _, MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use rustc_hash::{FxHashMap, FxHashSet};

use allocflame_core::source::{
    ObjectFile, RawFrame, RawStack, RecordOptions, RecordReport, StackSink, Target,
};
use allocflame_core::{Error, Result, Weight};

use crate::shm;

/// The program a recording of `target` starts, once `applies` agreed; `other` names the
/// backend that attaches.
pub(crate) fn program_to_start<'t>(
    target: &'t Target,
    options: &RecordOptions,
    other: &str,
) -> Result<&'t [std::ffi::OsString]> {
    let argv = match target {
        Target::Spawn { argv } if !argv.is_empty() => argv,
        Target::Spawn { .. } => return Err(Error::Invalid("no program to run".into())),
        Target::Attach { .. } => {
            return Err(Error::Unsupported(format!(
                "the in-process backend starts programs; attaching to a running one needs --backend {other}"
            )))
        }
    };
    crate::applies(target, options).map_err(Error::Unsupported)?;
    Ok(argv)
}

/// An OS error while doing `what`.
pub(crate) fn os(what: &str) -> impl FnOnce(io::Error) -> Error + '_ {
    move |source| Error::Os {
        what: what.to_owned(),
        source,
    }
}

/// Free bytes of the file system holding `dir`.
pub(crate) fn free_bytes(dir: &Path) -> Option<u64> {
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs fills the struct we pass.
    unsafe {
        let mut s: libc::statvfs = std::mem::zeroed();
        (libc::statvfs(c.as_ptr(), &mut s) == 0).then(|| s.f_bavail as u64 * s.f_frsize as u64)
    }
}

/// The shared file: created here, mapped by every process that loads the library, removed when
/// the recording ends.
pub(crate) struct SharedFile {
    pub path: PathBuf,
    pub file: File,
    pub capacity: u64,
}

impl Drop for SharedFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The header's flags and depth limit for `options`.
fn layout_options(options: &RecordOptions) -> (u32, u32) {
    let mut flags = 0;
    if options.follow_children {
        flags |= shm::FLAG_FOLLOW;
    }
    if options.stacks {
        flags |= shm::FLAG_STACKS;
    }
    // The allocator's own frame is the first of `max_depth`; the library keeps the callers.
    (flags, (options.max_depth.clamp(2, 1025) - 1) as u32)
}

impl SharedFile {
    /// A new shared file in `dir` for a recording with `options`, at most `wanted` bytes;
    /// `decider`: allocflame answers the library's exec intents and rule requests.
    pub(crate) fn create(
        dir: &Path,
        wanted: Option<u64>,
        options: &RecordOptions,
        decider: bool,
    ) -> Result<SharedFile> {
        // Writing past a tmpfs's size would kill the program with SIGBUS: stay within half of
        // what is free (the file is sparse, but what is written must fit).
        let room = free_bytes(dir).unwrap_or(1 << 30) / 2;
        let capacity = wanted.unwrap_or(1 << 30).min(room).max(1 << 20);
        static SERIAL: AtomicU32 = AtomicU32::new(0);
        let path = dir.join(format!(
            "allocflame-{}-{}",
            std::process::id(),
            SERIAL.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_file(&path);
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?;
        let shared = SharedFile {
            path,
            file,
            capacity,
        };
        shared
            .file
            .set_len(capacity)
            .map_err(os("cannot size the shared file"))?;
        let (flags, depth) = layout_options(options);
        shared
            .file
            .write_all_at(&shm::header(capacity, flags, depth, decider), 0)
            .map_err(os("cannot write the shared file"))?;
        Ok(shared)
    }

    /// Tells the library which process is the program allocflame started.
    pub(crate) fn set_main_pid(&self, pid: u32) {
        let _ = self
            .file
            .write_all_at(&pid.to_le_bytes(), shm::MAIN_PID_OFFSET);
    }

    /// The file as it is now.
    pub(crate) fn map(&self) -> Result<memmap2::Mmap> {
        // SAFETY: the file is ours; the programs writing into it only add records and counts,
        // which the reader treats as untrusted bytes.
        unsafe {
            memmap2::MmapOptions::new()
                .len(self.capacity as usize)
                .map(&self.file)
        }
        .map_err(os("cannot map the shared file"))
    }
}

/// Writes the embedded library where the programs can load it: a directory of this user's,
/// that no one else can write, under a name that changes with its content (a new file each
/// time, never one rewritten in place: macOS kills a process that maps a signed file changed
/// under it). `ext`: the file name's extension; `missing`: the error when the library was not
/// built.
pub(crate) fn install_library(ext: &str, missing: &str) -> Result<PathBuf> {
    let bytes = crate::library();
    if bytes.is_empty() {
        return Err(Error::Unsupported(missing.into()));
    }
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    let dir = std::env::temp_dir().join(format!("allocflame-{euid}"));
    match std::fs::DirBuilder::new().mode(0o755).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(source) => return Err(Error::Io { path: dir, source }),
    }
    let meta = std::fs::symlink_metadata(&dir).map_err(|source| Error::Io {
        path: dir.clone(),
        source,
    })?;
    if !meta.is_dir() || meta.uid() != euid || meta.mode() & 0o022 != 0 {
        return Err(Error::Invalid(format!(
            "{}: not a directory of this user's that only it can write; remove it",
            dir.display()
        )));
    }
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let path = dir.join(format!("liballocflame_preload-{hash:016x}.{ext}"));
    if std::fs::read(&path).is_ok_and(|b| b == bytes) {
        return Ok(path);
    }
    let tmp = dir.join(format!(".preload-{}.tmp", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(&tmp)
        .and_then(|mut f| f.write_all(bytes))
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
    Ok(path)
}

/// The handshake's other half: each image that should have loaded the library (the program;
/// each image a process exec'd, or spawned, with the library's variables) did, with a process
/// record made after its exec; what did not is said, never left out silently. `why` tells why
/// the image at a path may not have loaded it, and what to do.
pub(crate) fn not_loaded(
    contents: &shm::Contents,
    intents: &[shm::Intent],
    main: u32,
    why: &dyn Fn(Option<&str>) -> String,
) -> Vec<String> {
    let mut notes = Vec::new();
    let images: Vec<&shm::ProcessRecord> =
        contents.processes.iter().filter(|p| !p.forked).collect();
    if !images.iter().any(|p| p.pid == main) {
        notes.push(format!(
            "the program (pid {main}) did not load the in-process library, so none of its allocations are counted ({})",
            why(None)
        ));
    }
    let mut matched: FxHashSet<u64> = FxHashSet::default();
    // Oldest first, so that each spawn finds the first child made after it.
    for i in intents.iter().rev().filter(|i| i.state == shm::I_FOLLOW) {
        let spawn = i.flags & shm::I_SPAWN != 0;
        let found = images.iter().find(|p| {
            p.offset > i.offset
                && !matched.contains(&p.offset)
                && if spawn {
                    p.ppid == i.pid
                } else {
                    p.pid == i.pid
                }
        });
        if let Some(p) = found {
            matched.insert(p.offset);
            continue;
        }
        let how = if spawn { "started" } else { "exec'd" };
        notes.push(format!(
            "pid {} {how} {}, which did not load the in-process library: its allocations, and those of the programs it starts, are not counted ({})",
            i.pid,
            i.path,
            why(Some(&i.path))
        ));
    }
    notes
}

/// Object files opened while their processes ran, by (path, build-id) as the library
/// recorded them: symbolization reads these even if the path names another file by then.
pub(crate) type Held = FxHashMap<(PathBuf, Option<Vec<u8>>), File>;

/// `object` under the path of the file itself (the loader names a library by the link it
/// found, `libgnutls.so.30`; the kernel's mappings, and the perf backend, by the file), with
/// the file itself when it was held.
fn canonical(object: Arc<ObjectFile>, held: &Held) -> Arc<ObjectFile> {
    let file = held
        .get(&(object.path.clone(), object.build_id.clone()))
        .and_then(|f| f.try_clone().ok());
    let path = std::fs::canonicalize(&object.path).unwrap_or_else(|_| object.path.clone());
    if path == object.path && file.is_none() {
        return object;
    }
    Arc::new(ObjectFile {
        path,
        build_id: object.build_id.clone(),
        file,
    })
}

/// Hands the tables' stacks to `sink` (each under the probe `index` maps its function to,
/// named `names[function]` at the leaf), and says what the file tells of losses and cut
/// stacks; `stopped` words the note on stacks the unwinder could not take further; `held`: the
/// files opened while the processes ran.
#[allow(clippy::too_many_arguments)]
pub(crate) fn hand_over(
    contents: shm::Contents,
    held: &Held,
    index: &[Option<usize>],
    names: &[&str],
    stopped: &str,
    options: &RecordOptions,
    sink: &mut dyn StackSink,
    report: &mut RecordReport,
) {
    // One `Arc` per object, so the collector symbolizes each file once.
    let mut objects: FxHashMap<Arc<ObjectFile>, Arc<ObjectFile>> = FxHashMap::default();
    for s in contents.stacks {
        let (Some(probe), Some(name)) = (
            index.get(s.function).copied().flatten(),
            names.get(s.function),
        ) else {
            continue;
        };
        let mut frames = Vec::with_capacity(s.frames.len() + 1);
        frames.push(RawFrame::symbol(name));
        for f in s.frames {
            frames.push(match f {
                RawFrame::File { object, offset } => {
                    let object = objects
                        .entry(object.clone())
                        .or_insert_with(|| canonical(object, held))
                        .clone();
                    RawFrame::File { object, offset }
                }
                other => other,
            });
        }
        let weight = Weight::new(s.count, s.bytes);
        report.per_probe[probe] += weight;
        sink.add(RawStack {
            pid: s.pid,
            comm: s.root,
            probe,
            frames,
            weight,
        });
    }
    if contents.overflow > 0 {
        report.lost += contents.overflow;
        sink.lost(contents.overflow);
        report.notes.push(format!(
            "{} allocations were not recorded: the shared file was full (raise its size)",
            contents.overflow
        ));
    }
    if contents.unwind_stops > 0 {
        report.notes.push(format!(
            "{} allocations have stacks that end {stopped}: callers beyond it, if any, are not shown",
            contents.unwind_stops
        ));
    }
    if contents.capped > 0 {
        report.notes.push(allocflame_core::source::deeper_than_note(
            contents.capped,
            options.max_depth,
        ));
    }
    for d in contents.damage.iter().take(3) {
        report
            .notes
            .push(format!("the shared file is damaged: {d}"));
    }
}
