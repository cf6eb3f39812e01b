//! The record model of a perf recording and its decoder: ring-buffer records as the kernel
//! writes them, decoded bounds-checked into typed [`Record`]s, and the [`Synthetic`] records
//! the recorder adds itself (what `/proc` said, what ptrace saw, the kernel's counters). No
//! cfg: the decoder runs on every host, so saved captures are read anywhere.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// `perf_event_header.type` values (from `linux/perf_event.h`).
pub mod kind {
    /// PERF_RECORD_MMAP.
    pub const MMAP: u32 = 1;
    /// PERF_RECORD_LOST.
    pub const LOST: u32 = 2;
    /// PERF_RECORD_COMM.
    pub const COMM: u32 = 3;
    /// PERF_RECORD_EXIT.
    pub const EXIT: u32 = 4;
    /// PERF_RECORD_THROTTLE.
    pub const THROTTLE: u32 = 5;
    /// PERF_RECORD_UNTHROTTLE.
    pub const UNTHROTTLE: u32 = 6;
    /// PERF_RECORD_FORK.
    pub const FORK: u32 = 7;
    /// PERF_RECORD_SAMPLE.
    pub const SAMPLE: u32 = 9;
    /// PERF_RECORD_MMAP2.
    pub const MMAP2: u32 = 10;
}

/// `perf_event_header.misc` bits used here.
pub mod misc {
    /// PERF_RECORD_MISC_COMM_EXEC: the comm changed because of an exec.
    pub const COMM_EXEC: u16 = 1 << 13;
    /// PERF_RECORD_MISC_MMAP_BUILD_ID: an MMAP2 record carries a build-id, not dev/inode.
    pub const MMAP_BUILD_ID: u16 = 1 << 14;
}

/// `perf_event_attr.sample_type` bits used here.
pub mod sample {
    /// PERF_SAMPLE_TID.
    pub const TID: u64 = 1 << 1;
    /// PERF_SAMPLE_TIME.
    pub const TIME: u64 = 1 << 2;
    /// PERF_SAMPLE_CALLCHAIN.
    pub const CALLCHAIN: u64 = 1 << 5;
    /// PERF_SAMPLE_REGS_USER.
    pub const REGS_USER: u64 = 1 << 12;
    /// PERF_SAMPLE_STACK_USER.
    pub const STACK_USER: u64 = 1 << 13;
    /// PERF_SAMPLE_IDENTIFIER.
    pub const IDENTIFIER: u64 = 1 << 16;
}

/// Registers sampled at each probe hit, in the kernel's `perf_regs` numbering (x86-64).
pub mod regs {
    /// rcx.
    pub const CX: u64 = 2;
    /// rdx.
    pub const DX: u64 = 3;
    /// rsi.
    pub const SI: u64 = 4;
    /// rdi.
    pub const DI: u64 = 5;
    /// rbp.
    pub const BP: u64 = 6;
    /// rsp.
    pub const SP: u64 = 7;
    /// rip.
    pub const IP: u64 = 8;
    /// r8.
    pub const R8: u64 = 16;
    /// r9.
    pub const R9: u64 = 17;
    /// Sampled registers, in the order the kernel writes them (ascending register number).
    pub const ORDER: [u64; 9] = [CX, DX, SI, DI, BP, SP, IP, R8, R9];
    /// Index in a sample of each System V argument register (rdi, rsi, rdx, rcx, r8, r9).
    pub const ARGS: [usize; 6] = [3, 2, 1, 0, 7, 8];
    /// Index of rbp in a sample.
    pub const IDX_BP: usize = 4;
    /// Index of rsp in a sample.
    pub const IDX_SP: usize = 5;
    /// Index of rip in a sample.
    pub const IDX_IP: usize = 6;
    /// The `sample_regs_user` mask.
    pub const fn mask() -> u64 {
        let mut m = 0;
        let mut i = 0;
        while i < ORDER.len() {
            m |= 1 << ORDER[i];
            i += 1;
        }
        m
    }
}

/// What the samples of a recording carry, as its events were opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    /// `perf_event_attr.sample_type`.
    pub sample_type: u64,
    /// Bytes of user stack asked for per sample.
    pub stack_bytes: u32,
}

impl Layout {
    /// The layout the recorder uses: identifier, tid, time, registers and the stack copy, with
    /// the kernel's callchain when `callchain`.
    pub fn new(stack_bytes: u32, callchain: bool) -> Self {
        Layout {
            sample_type: sample::IDENTIFIER
                | sample::TID
                | sample::TIME
                | sample::REGS_USER
                | sample::STACK_USER
                | if callchain { sample::CALLCHAIN } else { 0 },
            stack_bytes,
        }
    }

    /// Whether samples carry the kernel's frame-pointer callchain.
    pub fn callchain(&self) -> bool {
        self.sample_type & sample::CALLCHAIN != 0
    }
}

/// Sample record `rec` with its stack copy cut to the first `keep` bytes (all an unwinder read
/// of it), still telling whether the copy had ended short of what was asked (`short`): its size
/// field then exceeds the bytes copied. `None` when the record has no such stack.
pub fn trim_stack(rec: &[u8], stack_at: usize, keep: usize, short: bool) -> Option<Vec<u8>> {
    let word = |at: usize| -> Option<usize> {
        Some(u64::from_ne_bytes(rec.get(at..at + 8)?.try_into().ok()?) as usize)
    };
    if stack_at < 8 {
        return None;
    }
    let size = word(stack_at)?;
    let copied = word(stack_at.checked_add(8)?.checked_add(size)?)?.min(size);
    let keep = keep.next_multiple_of(8).min(copied);
    let new_size = if short { keep + 8 } else { keep };
    let rest = stack_at + 8 + size + 8;
    let mut out = Vec::with_capacity(stack_at + new_size + 16 + rec.len().saturating_sub(rest));
    out.extend_from_slice(&rec[..stack_at]);
    out.extend_from_slice(&(new_size as u64).to_ne_bytes());
    out.extend_from_slice(&rec[stack_at + 8..stack_at + 8 + keep]);
    out.resize(stack_at + 8 + new_size, 0);
    out.extend_from_slice(&(keep as u64).to_ne_bytes());
    out.extend_from_slice(rec.get(rest..)?);
    let len = u16::try_from(out.len()).ok()?;
    out[6..8].copy_from_slice(&len.to_ne_bytes());
    Some(out)
}

/// Why a record could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The record ends before a field it must have.
    #[error("record of type {kind} is {len} bytes, too short for its {field}")]
    Short {
        /// Its type.
        kind: u32,
        /// Its length.
        len: usize,
        /// The field that did not fit.
        field: &'static str,
    },
    /// The header's size disagrees with the bytes given.
    #[error("record header says {said} bytes, {got} given")]
    Size {
        /// The header's size.
        said: usize,
        /// The bytes given.
        got: usize,
    },
    /// The layout is not one this decoder knows (a sample type bit it does not read).
    #[error("sample type {0:#x} is not supported by this decoder")]
    Layout(u64),
}

/// One probe hit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sample<'a> {
    /// The event's id (which probe, task and CPU).
    pub id: u64,
    /// Process id.
    pub pid: u32,
    /// Thread id.
    pub tid: u32,
    /// CLOCK_MONOTONIC ns.
    pub time: u64,
    /// The kernel's frame-pointer callchain, raw u64 entries (empty unless asked for).
    pub callchain: Vec<u64>,
    /// The sampled registers in [`regs::ORDER`], or `None` when the kernel had none (a hit
    /// with no user registers: never at a uprobe).
    pub regs: Option<[u64; 9]>,
    /// The copied user stack, from the stack pointer up.
    pub stack: &'a [u8],
    /// Bytes of stack the event asked for (the copy is shorter where the stack's memory ends).
    pub stack_asked: usize,
    /// Where the stack copy's size field is in the record (0: no stack).
    pub stack_at: usize,
}

/// A file mapping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mmap<'a> {
    /// Process id.
    pub pid: u32,
    /// Thread id.
    pub tid: u32,
    /// Start address.
    pub start: u64,
    /// Length in bytes.
    pub len: u64,
    /// File offset of `start`.
    pub pgoff: u64,
    /// Device (glibc's `makedev` encoding) and inode, when the record carries them.
    pub inode: Option<(u64, u64)>,
    /// The build-id, when the record carries one instead.
    pub build_id: Option<&'a [u8]>,
    /// `PROT_*` bits (MMAP2 only; MMAP records are executable mappings).
    pub prot: u32,
    /// The path (or `[anon]`-like name).
    pub filename: &'a [u8],
    /// Time stamp.
    pub time: u64,
}

/// A decoded ring-buffer record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record<'a> {
    /// A probe hit.
    Sample(Sample<'a>),
    /// A mapping.
    Mmap(Mmap<'a>),
    /// A thread was named; `exec` when an exec named it.
    Comm {
        /// Process id.
        pid: u32,
        /// Thread id.
        tid: u32,
        /// Whether an exec caused it.
        exec: bool,
        /// The new name.
        name: &'a [u8],
        /// Time stamp.
        time: u64,
    },
    /// A task was created.
    Fork {
        /// Its process id.
        pid: u32,
        /// Its parent's process id.
        ppid: u32,
        /// Its thread id.
        tid: u32,
        /// Time stamp.
        time: u64,
    },
    /// A task ended.
    Exit {
        /// Its process id.
        pid: u32,
        /// Its thread id.
        tid: u32,
        /// Time stamp.
        time: u64,
    },
    /// The kernel dropped `lost` records (of any kind) of event `id`.
    Lost {
        /// The event.
        id: u64,
        /// How many records.
        lost: u64,
        /// Time stamp.
        time: u64,
    },
    /// A record type this recorder does not use (throttling, …), kept for accounting.
    Other {
        /// Its type.
        kind: u32,
    },
}

struct Reader<'a> {
    rec: &'a [u8],
    kind: u32,
}

impl<'a> Reader<'a> {
    fn u64(&self, at: usize, field: &'static str) -> Result<u64, DecodeError> {
        self.rec
            .get(at..at + 8)
            .map(|s| u64::from_ne_bytes([s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]]))
            .ok_or(self.short(field))
    }

    fn u32(&self, at: usize, field: &'static str) -> Result<u32, DecodeError> {
        self.rec
            .get(at..at + 4)
            .map(|s| u32::from_ne_bytes([s[0], s[1], s[2], s[3]]))
            .ok_or(self.short(field))
    }

    fn bytes(&self, at: usize, len: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        at.checked_add(len)
            .and_then(|end| self.rec.get(at..end))
            .ok_or(self.short(field))
    }

    fn short(&self, field: &'static str) -> DecodeError {
        DecodeError::Short {
            kind: self.kind,
            len: self.rec.len(),
            field,
        }
    }

    /// The time of a non-sample record, from its `sample_id_all` trailer (pid/tid, time, id).
    fn trailer_time(&self) -> Result<u64, DecodeError> {
        let at = self
            .rec
            .len()
            .checked_sub(16)
            .ok_or(self.short("sample_id trailer"))?;
        self.u64(at, "sample_id time")
    }
}

/// A C string in a fixed-size field: the bytes up to the first NUL.
fn c_str(b: &[u8]) -> &[u8] {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    &b[..end]
}

/// The type of a raw record, from its header.
pub fn record_kind(rec: &[u8]) -> Option<u32> {
    rec.get(0..4)
        .map(|s| u32::from_ne_bytes([s[0], s[1], s[2], s[3]]))
}

/// The event id of a raw sample (its first field), without decoding the rest.
pub fn sample_id(rec: &[u8]) -> Option<u64> {
    (record_kind(rec) == Some(kind::SAMPLE)).then_some(())?;
    Reader {
        rec,
        kind: kind::SAMPLE,
    }
    .u64(8, "id")
    .ok()
}

/// The time stamp of a raw record: samples carry it after id and pid/tid; other records in the
/// `sample_id_all` trailer. 0 when it has none.
pub fn record_time(rec: &[u8]) -> u64 {
    let r = Reader {
        rec,
        kind: record_kind(rec).unwrap_or(0),
    };
    if r.kind == kind::SAMPLE {
        r.u64(24, "time").unwrap_or(0)
    } else if rec.len() >= 8 + 24 {
        r.trailer_time().unwrap_or(0)
    } else {
        0
    }
}

/// Decodes one raw record (header included) of a recording with `layout`.
pub fn decode<'a>(rec: &'a [u8], layout: &Layout) -> Result<Record<'a>, DecodeError> {
    let k = record_kind(rec).ok_or(DecodeError::Short {
        kind: 0,
        len: rec.len(),
        field: "header",
    })?;
    let r = Reader { rec, kind: k };
    let size = u16::from_ne_bytes(
        r.bytes(6, 2, "header")?
            .try_into()
            .map_err(|_| r.short("header"))?,
    ) as usize;
    if size != rec.len() {
        return Err(DecodeError::Size {
            said: size,
            got: rec.len(),
        });
    }
    let misc = u16::from_ne_bytes(
        r.bytes(4, 2, "header")?
            .try_into()
            .map_err(|_| r.short("header"))?,
    );
    Ok(match k {
        kind::SAMPLE => Record::Sample(decode_sample(&r, layout)?),
        kind::MMAP2 => {
            let (inode, build_id) = if misc & misc::MMAP_BUILD_ID != 0 {
                let n = (r.bytes(40, 1, "build-id size")?[0] as usize).min(20);
                (None, Some(r.bytes(44, n, "build-id")?))
            } else {
                let (maj, min) = (r.u32(40, "maj")? as u64, r.u32(44, "min")? as u64);
                (Some((makedev(maj, min), r.u64(48, "ino")?)), None)
            };
            // The file name runs from 72 to the sample_id trailer (24 bytes).
            let end = rec.len().checked_sub(24).filter(|&e| e >= 72);
            Record::Mmap(Mmap {
                pid: r.u32(8, "pid")?,
                tid: r.u32(12, "tid")?,
                start: r.u64(16, "addr")?,
                len: r.u64(24, "len")?,
                pgoff: r.u64(32, "pgoff")?,
                inode,
                build_id,
                prot: r.u32(64, "prot")?,
                filename: c_str(
                    end.and_then(|e| rec.get(72..e))
                        .ok_or(r.short("filename"))?,
                ),
                time: r.trailer_time()?,
            })
        }
        kind::MMAP => {
            let end = rec.len().checked_sub(24).filter(|&e| e >= 40);
            Record::Mmap(Mmap {
                pid: r.u32(8, "pid")?,
                tid: r.u32(12, "tid")?,
                start: r.u64(16, "addr")?,
                len: r.u64(24, "len")?,
                pgoff: r.u64(32, "pgoff")?,
                inode: None,
                build_id: None,
                // MMAP records (without MMAP2) are only written for executable mappings.
                prot: 4,
                filename: c_str(
                    end.and_then(|e| rec.get(40..e))
                        .ok_or(r.short("filename"))?,
                ),
                time: r.trailer_time()?,
            })
        }
        kind::COMM => {
            let end = rec.len().checked_sub(24).filter(|&e| e >= 16);
            Record::Comm {
                pid: r.u32(8, "pid")?,
                tid: r.u32(12, "tid")?,
                exec: misc & misc::COMM_EXEC != 0,
                name: c_str(end.and_then(|e| rec.get(16..e)).ok_or(r.short("comm"))?),
                time: r.trailer_time()?,
            }
        }
        kind::FORK => Record::Fork {
            pid: r.u32(8, "pid")?,
            ppid: r.u32(12, "ppid")?,
            tid: r.u32(16, "tid")?,
            time: r.u64(24, "time")?,
        },
        kind::EXIT => Record::Exit {
            pid: r.u32(8, "pid")?,
            tid: r.u32(16, "tid")?,
            time: r.u64(24, "time")?,
        },
        kind::LOST => Record::Lost {
            id: r.u64(8, "id")?,
            lost: r.u64(16, "lost")?,
            time: r.trailer_time().unwrap_or(0),
        },
        other => Record::Other { kind: other },
    })
}

fn decode_sample<'a>(r: &Reader<'a>, layout: &Layout) -> Result<Sample<'a>, DecodeError> {
    let known = sample::IDENTIFIER
        | sample::TID
        | sample::TIME
        | sample::CALLCHAIN
        | sample::REGS_USER
        | sample::STACK_USER;
    let want = sample::IDENTIFIER | sample::TID | sample::TIME;
    if layout.sample_type & !known != 0 || layout.sample_type & want != want {
        return Err(DecodeError::Layout(layout.sample_type));
    }
    let id = r.u64(8, "id")?;
    let pid = r.u32(16, "pid")?;
    let tid = r.u32(20, "tid")?;
    let time = r.u64(24, "time")?;
    let mut at = 32;
    let mut callchain = Vec::new();
    if layout.sample_type & sample::CALLCHAIN != 0 {
        let nr = r.u64(at, "callchain length")? as usize;
        let chain = r.bytes(at + 8, nr.saturating_mul(8), "callchain")?;
        callchain = chain
            .chunks_exact(8)
            .map(|c| u64::from_ne_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect();
        at += 8 + 8 * nr;
    }
    let mut regs_out = None;
    if layout.sample_type & sample::REGS_USER != 0 {
        let abi = r.u64(at, "regs abi")?;
        at += 8;
        if abi != 0 {
            let mut v = [0u64; 9];
            for (i, slot) in v.iter_mut().enumerate() {
                *slot = r.u64(at + 8 * i, "regs")?;
            }
            at += 8 * regs::ORDER.len();
            regs_out = Some(v);
        }
    }
    let mut stack: &[u8] = &[];
    let mut stack_asked = 0;
    let mut stack_at = 0;
    if layout.sample_type & sample::STACK_USER != 0 {
        stack_at = at;
        let size = r.u64(at, "stack size")? as usize;
        stack_asked = size;
        if size > 0 {
            let data = r.bytes(at + 8, size, "stack")?;
            let dyn_size = r.u64(at + 8 + size, "stack dyn_size")? as usize;
            stack = &data[..dyn_size.min(size)];
        }
    }
    Ok(Sample {
        id,
        pid,
        tid,
        time,
        callchain,
        regs: regs_out,
        stack,
        stack_asked,
        stack_at,
    })
}

/// glibc's `makedev`: the `st_dev` of a file on device `maj:min`.
pub fn makedev(maj: u64, min: u64) -> u64 {
    ((maj & 0xffff_f000) << 32) | ((maj & 0xfff) << 8) | ((min & 0xffff_ff00) << 12) | (min & 0xff)
}

/// Records the recorder adds to the ring buffers' own: what `/proc` and ptrace told it, and
/// what the kernel's counters said at the end. Saved in a raw capture like ring records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Synthetic {
    /// Event ids of probe `location` (an index into the capture's locations), opened for a task.
    Ids {
        /// The location.
        location: usize,
        /// Its new event ids.
        ids: Vec<u64>,
    },
    /// A probe location found during the recording (an allocator in a library a process
    /// loaded, or in another root): it gets the next location index.
    Location {
        /// The location.
        location: crate::interpret::Location,
    },
    /// Event ids of side-record events (mmap, comm, fork, exit of a task): their losses are
    /// lost process records, not allocations.
    SideIds {
        /// The ids.
        ids: Vec<u64>,
    },
    /// An executable file mapping read from `/proc/PID/maps` (attach, or after an exec whose
    /// records the kernel did not send).
    Mapping {
        /// Process id.
        pid: u32,
        /// Start address.
        start: u64,
        /// End address.
        end: u64,
        /// File offset of `start`.
        pgoff: u64,
        /// Device and inode.
        inode: Option<(u64, u64)>,
        /// The path.
        path: PathBuf,
    },
    /// A process seen for the first time, named `comm` (attach, or an exec the kernel sent
    /// no records of: a setuid program drops the events it had).
    Process {
        /// Process id.
        pid: u32,
        /// Its name.
        comm: String,
        /// Whether it just exec'd (its old mappings are gone).
        exec: bool,
    },
    /// The identity of an object file as the recorder found it, before the mapping that
    /// needed it: lets a replay check that it reads the same file.
    Object {
        /// The path.
        path: PathBuf,
        /// Device and inode (as mapped).
        inode: Option<(u64, u64)>,
        /// Its build-id.
        build_id: Option<Vec<u8>>,
        /// Where the recorder found it, when that is not `path`: the file of a process in
        /// another root (a chroot, a container) is at that root's path plus `path` here.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seen_at: Option<PathBuf>,
    },
    /// A task that could not be given probes: its calls are not seen.
    Untraced {
        /// Its id.
        tid: u32,
        /// Why.
        why: String,
    },
    /// The kernel's counters at the end: per location, probe hits and samples it could not
    /// write; and side records it could not write.
    Counters {
        /// Per location: (hits, lost samples).
        per_location: Vec<(u64, u64)>,
        /// Side records lost.
        side_lost: u64,
    },
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn header(kind: u32, misc: u16, body: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&kind.to_ne_bytes());
        v.extend_from_slice(&misc.to_ne_bytes());
        v.extend_from_slice(&((8 + body.len()) as u16).to_ne_bytes());
        v.extend_from_slice(body);
        v
    }

    fn trailer(pid: u32, tid: u32, time: u64, id: u64) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&pid.to_ne_bytes());
        v.extend_from_slice(&tid.to_ne_bytes());
        v.extend_from_slice(&time.to_ne_bytes());
        v.extend_from_slice(&id.to_ne_bytes());
        v
    }

    /// A sample as the kernel writes it for [`Layout::new`].
    pub(crate) fn sample_bytes(
        id: u64,
        pid: u32,
        tid: u32,
        time: u64,
        regs: [u64; 9],
        stack: &[u8],
        stack_bytes: usize,
    ) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&id.to_ne_bytes());
        b.extend_from_slice(&pid.to_ne_bytes());
        b.extend_from_slice(&tid.to_ne_bytes());
        b.extend_from_slice(&time.to_ne_bytes());
        b.extend_from_slice(&2u64.to_ne_bytes()); // PERF_SAMPLE_REGS_ABI_64
        for r in regs {
            b.extend_from_slice(&r.to_ne_bytes());
        }
        b.extend_from_slice(&(stack_bytes as u64).to_ne_bytes());
        let mut data = stack.to_vec();
        data.resize(stack_bytes, 0);
        b.extend_from_slice(&data);
        b.extend_from_slice(&(stack.len() as u64).to_ne_bytes());
        header(kind::SAMPLE, 2, &b)
    }

    #[test]
    fn samples_decode_with_registers_and_stack() {
        let layout = Layout::new(16, false);
        let regs = [1, 2, 3, 4, 5, 6, 7, 8, 9];
        let rec = sample_bytes(42, 100, 101, 5000, regs, &[0xaa; 8], 16);
        assert_eq!(sample_id(&rec), Some(42));
        assert_eq!(record_time(&rec), 5000);
        match decode(&rec, &layout).unwrap() {
            Record::Sample(s) => {
                assert_eq!((s.id, s.pid, s.tid, s.time), (42, 100, 101, 5000));
                assert_eq!(s.regs, Some(regs));
                assert_eq!(s.stack, &[0xaa; 8]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn side_records_decode() {
        let layout = Layout::new(16, false);
        let mut body = Vec::new();
        for v in [7u32, 8] {
            body.extend_from_slice(&v.to_ne_bytes());
        }
        for v in [0x1000u64, 0x2000, 0x0] {
            body.extend_from_slice(&v.to_ne_bytes());
        }
        for v in [8u32, 1] {
            body.extend_from_slice(&v.to_ne_bytes());
        }
        body.extend_from_slice(&1234u64.to_ne_bytes());
        body.extend_from_slice(&0u64.to_ne_bytes());
        body.extend_from_slice(&5u32.to_ne_bytes());
        body.extend_from_slice(&2u32.to_ne_bytes());
        body.extend_from_slice(b"/bin/prog\0\0\0\0\0\0\0");
        body.extend(trailer(7, 8, 99, 3));
        let rec = header(kind::MMAP2, 0, &body);
        assert_eq!(record_time(&rec), 99);
        match decode(&rec, &layout).unwrap() {
            Record::Mmap(m) => {
                assert_eq!((m.pid, m.start, m.len, m.prot), (7, 0x1000, 0x2000, 5));
                assert_eq!(m.inode, Some((makedev(8, 1), 1234)));
                assert_eq!(m.filename, b"/bin/prog");
            }
            other => panic!("{other:?}"),
        }
        let mut body = Vec::new();
        body.extend_from_slice(&7u32.to_ne_bytes());
        body.extend_from_slice(&7u32.to_ne_bytes());
        body.extend_from_slice(b"prog\0\0\0\0");
        body.extend(trailer(7, 7, 100, 3));
        let rec = header(kind::COMM, misc::COMM_EXEC, &body);
        assert_eq!(
            decode(&rec, &layout).unwrap(),
            Record::Comm {
                pid: 7,
                tid: 7,
                exec: true,
                name: b"prog",
                time: 100
            }
        );
    }

    #[test]
    fn truncated_and_garbled_records_are_errors_not_panics() {
        let layout = Layout::new(64, false);
        let rec = sample_bytes(1, 2, 3, 4, [0; 9], &[1; 64], 64);
        for cut in 0..rec.len() {
            let mut r = rec[..cut].to_vec();
            if r.len() >= 8 {
                let n = r.len() as u16;
                r[6..8].copy_from_slice(&n.to_ne_bytes());
            }
            assert!(decode(&r, &layout).is_err(), "cut at {cut}");
        }
        // A stack size that runs past the end.
        let mut r = rec.clone();
        let at = 32 + 8 + 9 * 8;
        r[at..at + 8].copy_from_slice(&u64::MAX.to_ne_bytes());
        assert!(decode(&r, &layout).is_err());
        assert!(decode(
            &rec,
            &Layout {
                sample_type: 1,
                stack_bytes: 0
            }
        )
        .is_err());
    }
}
