//! Raw captures: everything the interpreter was fed during a recording, in the order it was
//! fed, so that a replay on this or another machine with the same binaries gives the same
//! profile (`allocflame record --save-raw FILE`, then `allocflame render FILE`).
//!
//! Layout: the magic line, a little-endian u32 version, a u32-length-prefixed JSON [`Setup`],
//! then items, each a tag byte, a u32 length and the bytes: ring records as the kernel wrote
//! them (tag 1, native byte order, decoded by [`crate::record`]), [`Synthetic`] records as JSON
//! (tag 2), and the end of the recording as JSON [`End`] (tag 3). A capture cut short (the
//! recorder was killed) replays up to the cut, and says so.

use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use allocflame_core::{Error, Result};
use serde::{Deserialize, Serialize};

use crate::interpret::Setup;
use crate::record::Synthetic;

/// The first bytes of every raw capture.
pub const MAGIC: &[u8] = b"allocflame perf capture\n";
const VERSION: u32 = 1;
const TAG_RING: u8 = 1;
const TAG_SYNTHETIC: u8 = 2;
const TAG_END: u8 = 3;

/// Whether `head` (the first bytes of a file) starts a raw capture.
pub fn is_capture(head: &[u8]) -> bool {
    head.starts_with(MAGIC)
}

/// How the recording ended.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct End {
    /// The spawned program's exit code, when it exited.
    pub exit_code: Option<i32>,
    /// The signal that killed the spawned program (captures made before this field have
    /// 128 + the signal in `exit_code`).
    #[serde(default)]
    pub signal: Option<i32>,
    /// Whether the recording ended early.
    pub interrupted: bool,
    /// The recorder's notes (the interpreter's own are made again by the replay).
    pub notes: Vec<String>,
}

/// Writes a raw capture. A write error stops the capture (not the recording) and is kept for
/// the report.
// Written only by the Linux recorder.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub(crate) struct CaptureWriter {
    path: PathBuf,
    out: Option<BufWriter<std::fs::File>>,
    pub error: Option<String>,
}

// Written only by the Linux recorder.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
impl CaptureWriter {
    pub(crate) fn create(path: &Path, setup: &Setup) -> Result<Self> {
        let file = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
        let mut w = CaptureWriter {
            path: path.to_path_buf(),
            out: Some(BufWriter::with_capacity(1 << 20, file)),
            error: None,
        };
        let header = serde_json::to_vec(setup)
            .map_err(|e| Error::Backend(format!("cannot encode the capture header: {e}")))?;
        w.put(|o| {
            o.write_all(MAGIC)?;
            o.write_all(&VERSION.to_le_bytes())?;
            o.write_all(&(header.len() as u32).to_le_bytes())?;
            o.write_all(&header)
        });
        match w.error.take() {
            Some(e) => Err(Error::Backend(e)),
            None => Ok(w),
        }
    }

    fn put(&mut self, f: impl FnOnce(&mut BufWriter<std::fs::File>) -> io::Result<()>) {
        if let Some(o) = &mut self.out {
            if let Err(e) = f(o) {
                self.error = Some(format!(
                    "writing the raw capture {} failed ({e}); it ends there",
                    self.path.display()
                ));
                self.out = None;
            }
        }
    }

    fn item(&mut self, tag: u8, bytes: &[u8]) {
        self.put(|o| {
            o.write_all(&[tag])?;
            o.write_all(&(bytes.len() as u32).to_le_bytes())?;
            o.write_all(bytes)
        });
    }

    pub(crate) fn ring(&mut self, rec: &[u8]) {
        self.item(TAG_RING, rec);
    }

    pub(crate) fn synthetic(&mut self, s: &Synthetic) {
        match serde_json::to_vec(s) {
            Ok(b) => self.item(TAG_SYNTHETIC, &b),
            Err(e) => self.error = Some(format!("cannot encode a capture record: {e}")),
        }
    }

    /// Writes the end and flushes; returns the first error, if any.
    pub(crate) fn finish(mut self, end: &End) -> Option<String> {
        if let Ok(b) = serde_json::to_vec(end) {
            self.item(TAG_END, &b);
        }
        self.put(|o| o.flush());
        self.error
    }
}

/// One item of a capture.
#[derive(Debug)]
pub(crate) enum Item {
    Ring(Vec<u8>),
    Synthetic(Synthetic),
    End(End),
}

/// Reads a raw capture item by item.
pub(crate) struct CaptureReader<R: Read> {
    file: String,
    input: R,
    pub setup: Setup,
    /// Items read so far.
    items: u64,
}

fn format_error(file: &str, message: String) -> Error {
    Error::Format {
        file: file.to_owned(),
        message,
    }
}

impl<R: Read> CaptureReader<R> {
    pub(crate) fn new(mut input: R, file: &str) -> Result<Self> {
        let mut magic = vec![0u8; MAGIC.len()];
        input
            .read_exact(&mut magic)
            .map_err(|e| Error::io(file, e))?;
        if magic != MAGIC {
            return Err(format_error(file, "not an allocflame raw capture".into()));
        }
        let mut word = [0u8; 4];
        input
            .read_exact(&mut word)
            .map_err(|_| format_error(file, "capture ends in its header".into()))?;
        let version = u32::from_le_bytes(word);
        if version != VERSION {
            return Err(format_error(
                file,
                format!("capture version {version}; this allocflame reads version {VERSION}"),
            ));
        }
        input
            .read_exact(&mut word)
            .map_err(|_| format_error(file, "capture ends in its header".into()))?;
        let len = u32::from_le_bytes(word) as usize;
        if len > 64 << 20 {
            return Err(format_error(file, format!("header of {len} bytes")));
        }
        let mut header = vec![0u8; len];
        input
            .read_exact(&mut header)
            .map_err(|_| format_error(file, "capture ends in its header".into()))?;
        let setup: Setup = serde_json::from_slice(&header)
            .map_err(|e| format_error(file, format!("bad capture header: {e}")))?;
        if let Err(e) = setup.checked_probes() {
            return Err(format_error(file, format!("bad capture header: {e}")));
        }
        Ok(CaptureReader {
            file: file.to_owned(),
            input,
            setup,
            items: 0,
        })
    }

    /// The next item; `Ok(None)` at a clean end of file, an error for a cut or garbled item
    /// (what came before it stays usable).
    pub(crate) fn next_item(&mut self) -> Result<Option<Item>> {
        let mut tag = [0u8; 1];
        match self.input.read(&mut tag) {
            Ok(0) => return Ok(None),
            Ok(_) => {}
            Err(e) => return Err(Error::io(&self.file, e)),
        }
        let mut word = [0u8; 4];
        let cut = |n: u64| {
            format!("the capture is cut short after {n} items (was the recording killed?)")
        };
        self.input
            .read_exact(&mut word)
            .map_err(|_| format_error(&self.file, cut(self.items)))?;
        let len = u32::from_le_bytes(word) as usize;
        if len > 16 << 20 {
            return Err(format_error(
                &self.file,
                format!("item {} claims {len} bytes", self.items + 1),
            ));
        }
        let mut bytes = vec![0u8; len];
        self.input
            .read_exact(&mut bytes)
            .map_err(|_| format_error(&self.file, cut(self.items)))?;
        self.items += 1;
        let bad = |what: &str, e: serde_json::Error, n: u64| {
            format_error(&self.file, format!("item {n}: bad {what}: {e}"))
        };
        Ok(Some(match tag[0] {
            TAG_RING => Item::Ring(bytes),
            TAG_SYNTHETIC => Item::Synthetic(
                serde_json::from_slice(&bytes).map_err(|e| bad("record", e, self.items))?,
            ),
            TAG_END => {
                Item::End(serde_json::from_slice(&bytes).map_err(|e| bad("end", e, self.items))?)
            }
            t => {
                return Err(format_error(
                    &self.file,
                    format!("item {}: unknown tag {t}", self.items),
                ))
            }
        }))
    }
}
