//! Interpreting a saved raw capture offline: the same interpreter as a live recording, fed
//! from the file, with object files found by path or in search directories and accepted only
//! when their build-id is the one the recording saw.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use allocflame_core::source::{RecordReport, StackSink};
use allocflame_core::symbolize::hex;
use allocflame_core::{Error, Result};
use rustc_hash::FxHashMap;

use crate::capture::{CaptureReader, Item};
use crate::interpret::Interpreter;
use crate::objects::{build_id_of, Opener};
use crate::record::Synthetic;

/// How to replay. Construct with `Default` and set what differs.
#[derive(Clone, Debug)]
pub struct ReplayOptions {
    /// Directories searched first for the recorded objects (checked by build-id), each by file
    /// name and as a root holding the recorded path (a container's or chroot's root directory,
    /// a copy of the recorded machine's `/`). Default is none.
    pub search_dirs: Vec<PathBuf>,
    /// Whether the recorded paths themselves are tried after the search directories. Default is
    /// `true`; `false` makes a replay independent of the machine's own files (golden tests).
    pub recorded_paths: bool,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions {
            search_dirs: Vec::new(),
            recorded_paths: true,
        }
    }
}

/// What the capture says of each object: its build-id, and where the recorder found it.
type Identities = Rc<RefCell<FxHashMap<(PathBuf, Option<(u64, u64)>), Identity>>>;

#[derive(Clone)]
struct Identity {
    build_id: Option<Vec<u8>>,
    seen_at: Option<PathBuf>,
}

struct ReplayOpener {
    options: ReplayOptions,
    identities: Identities,
}

impl Opener for ReplayOpener {
    fn open(
        &mut self,
        _pid: u32,
        path: &Path,
        inode: Option<(u64, u64)>,
        _range: (u64, u64),
    ) -> std::result::Result<std::fs::File, String> {
        let ids = self.identities.borrow();
        let want = ids
            .get(&(path.to_path_buf(), inode))
            .or_else(|| ids.iter().find(|((p, _), _)| p == path).map(|(_, id)| id))
            .cloned();
        let Some(Identity {
            build_id: want,
            seen_at,
        }) = want
        else {
            return Err(format!(
                "{}: the capture does not say which file it was; its frames are left unnamed",
                path.display()
            ));
        };
        let name = path.file_name().unwrap_or(path.as_os_str());
        let under_root = path.strip_prefix("/").unwrap_or(path);
        let recorded = self
            .options
            .recorded_paths
            .then(|| seen_at.into_iter().chain([path.to_path_buf()]));
        let candidates = self
            .options
            .search_dirs
            .iter()
            .flat_map(|d| [d.join(name), d.join(under_root)])
            .chain(recorded.into_iter().flatten());
        for c in candidates {
            let Ok(file) = std::fs::File::open(&c) else {
                continue;
            };
            match (&want, build_id_of(&file)) {
                (Some(w), Some(h)) if *w == h => return Ok(file),
                // Without a build-id nothing tells a replaced file: the path is taken as is.
                (None, _) => return Ok(file),
                _ => {}
            }
        }
        Err(format!(
            "{} (build-id {}) is not on this machine{}: its frames are left unnamed (give its directory with --binaries DIR)",
            path.display(),
            want.as_deref().map_or_else(|| "none".into(), hex),
            if self.options.recorded_paths { " at that path" } else { "" }
        ))
    }
}

/// Replays the raw capture in `input` (named `file` in messages), handing stacks to `sink`
/// as the recording did.
pub fn replay_reader(
    input: impl std::io::Read,
    file: &str,
    options: &ReplayOptions,
    sink: &mut dyn StackSink,
) -> Result<RecordReport> {
    let mut reader = CaptureReader::new(input, file)?;
    let setup = reader.setup.clone();
    let probes = setup.checked_probes()?;
    let identities: Identities = Rc::default();
    let opener = ReplayOpener {
        options: options.clone(),
        identities: identities.clone(),
    };
    let mut interp = Interpreter::new(setup, Box::new(opener))?;
    let mut report = RecordReport::new("perf", probes.len());
    let mut end = None;
    loop {
        match reader.next_item() {
            Ok(Some(Item::Ring(rec))) => interp.ring_record(&rec),
            Ok(Some(Item::Synthetic(s))) => {
                if let Synthetic::Object {
                    path,
                    inode,
                    build_id,
                    seen_at,
                } = &s
                {
                    identities.borrow_mut().insert(
                        (path.clone(), *inode),
                        Identity {
                            build_id: build_id.clone(),
                            seen_at: seen_at.clone(),
                        },
                    );
                }
                interp.synthetic(&s);
            }
            Ok(Some(Item::End(e))) => {
                end = Some(e);
                break;
            }
            Ok(None) => break,
            Err(e @ Error::Format { .. }) => {
                report.notes.push(format!("{e}; replayed up to there"));
                report.interrupted = true;
                break;
            }
            Err(e) => return Err(e),
        }
        interp.outbox.clear();
    }
    match end {
        Some(end) => {
            report.exit_code = end.exit_code;
            report.signal = end.signal;
            report.interrupted |= end.interrupted;
            report.notes.extend(end.notes);
        }
        None if !report.interrupted => {
            report.notes.push(format!(
                "{file}: the capture has no end (the recording was cut short); replayed what it holds"
            ));
            report.interrupted = true;
        }
        None => {}
    }
    interp.finish(&mut report, sink);
    Ok(report)
}

/// The probes of the raw capture at `path`, in the order its stacks name them (for the sink's
/// labels).
pub fn capture_probes(path: &Path) -> Result<Vec<allocflame_core::probes::Probe>> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    CaptureReader::new(std::io::BufReader::new(file), &path.display().to_string())?
        .setup
        .checked_probes()
}

/// Replays the raw capture at `path`.
pub fn replay(
    path: &Path,
    options: &ReplayOptions,
    sink: &mut dyn StackSink,
) -> Result<RecordReport> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    replay_reader(
        std::io::BufReader::with_capacity(1 << 20, file),
        &path.display().to_string(),
        options,
        sink,
    )
}
