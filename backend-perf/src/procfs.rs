//! Everything read from `/proc`, in one place: mappings, process state, names, threads, the
//! tracer of a task, and the files behind mappings. The parsers take text, so they are tested
//! on any host; the readers return `None` when the process is gone.

/// One line of `/proc/PID/maps`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapsEntry {
    /// Start address.
    pub start: u64,
    /// End address (exclusive).
    pub end: u64,
    /// `rwxp` permissions.
    pub perms: String,
    /// File offset of `start`.
    pub offset: u64,
    /// Device (glibc's `makedev` encoding) and inode; inode 0 for anonymous mappings.
    pub inode: (u64, u64),
    /// The path or pseudo-name (`[heap]`), with a ` (deleted)` suffix removed; empty when
    /// anonymous. Paths may contain spaces.
    pub path: String,
    /// Whether the kernel marked the file deleted.
    pub deleted: bool,
}

impl MapsEntry {
    /// Whether the mapping is executable.
    pub fn executable(&self) -> bool {
        self.perms.as_bytes().get(2) == Some(&b'x')
    }

    /// Whether it maps a file (by absolute path).
    pub fn is_file(&self) -> bool {
        self.path.starts_with('/')
    }
}

/// Parses `/proc/PID/maps` text. Lines that do not parse are skipped (the kernel writes none).
pub fn parse_maps(text: &str) -> Vec<MapsEntry> {
    text.lines().filter_map(parse_maps_line).collect()
}

fn parse_maps_line(line: &str) -> Option<MapsEntry> {
    // start-end perms offset dev inode [spaces] path — the path is the rest of the line.
    let mut rest = line;
    let mut field = || -> Option<&str> {
        let t = rest.trim_start_matches(' ');
        let end = t.find(' ').unwrap_or(t.len());
        let (f, r) = t.split_at(end);
        rest = r;
        (!f.is_empty()).then_some(f)
    };
    let range = field()?;
    let perms = field()?.to_owned();
    let offset = u64::from_str_radix(field()?, 16).ok()?;
    let dev = field()?;
    let ino: u64 = field()?.parse().ok()?;
    let (maj, min) = dev.split_once(':')?;
    let (maj, min) = (
        u64::from_str_radix(maj, 16).ok()?,
        u64::from_str_radix(min, 16).ok()?,
    );
    let (s, e) = range.split_once('-')?;
    let (start, end) = (
        u64::from_str_radix(s, 16).ok()?,
        u64::from_str_radix(e, 16).ok()?,
    );
    let path = rest.trim_start_matches(' ');
    let (path, deleted) = match path.strip_suffix(" (deleted)") {
        Some(p) => (p, true),
        None => (path, false),
    };
    Some(MapsEntry {
        start,
        end,
        perms,
        offset,
        inode: (crate::record::makedev(maj, min), ino),
        path: path.to_owned(),
        deleted,
    })
}

/// The mappings of `pid`, or `None` when it is gone (or not ours to read).
pub fn maps(pid: u32) -> Option<Vec<MapsEntry>> {
    std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .ok()
        .map(|t| parse_maps(&t))
}

/// The state letter of a `/proc/PID/stat` line (`R`, `S`, `Z`, …).
pub fn parse_stat_state(stat: &str) -> Option<char> {
    // The name in parentheses may hold anything, even ") "; the state follows the last ')'.
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .next()?
        .chars()
        .next()
}

/// Whether task `tid` is running or runnable (`R`), not asleep, stopped or gone.
pub fn running(tid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{tid}/stat"))
        .ok()
        .and_then(|s| parse_stat_state(&s))
        == Some('R')
}

/// Whether `pid` is alive: it exists and is no zombie.
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| parse_stat_state(&s))
        .is_some_and(|state| state != 'Z' && state != 'X')
}

/// The name (`comm`) of `pid`.
pub fn comm(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim_end_matches('\n').to_owned())
}

/// The thread ids of `pid`, sorted.
pub fn tids(pid: u32) -> Vec<i32> {
    let mut out: Vec<i32> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    out.sort_unstable();
    out
}

/// A field of `/proc/PID/status` text (`TracerPid`, `Tgid`, …).
pub fn parse_status_field<'a>(status: &'a str, name: &str) -> Option<&'a str> {
    status.lines().find_map(|l| {
        l.strip_prefix(name)
            .and_then(|r| r.strip_prefix(':'))
            .map(str::trim)
    })
}

/// The pid tracing task `tid` (0: not traced).
pub fn tracer_of(tid: i32) -> u32 {
    std::fs::read_to_string(format!("/proc/{tid}/status"))
        .ok()
        .and_then(|s| parse_status_field(&s, "TracerPid")?.parse().ok())
        .unwrap_or(0)
}

/// The thread group (process) of task `tid`; `tid` itself when /proc does not say.
pub fn tgid_of(tid: i32) -> i32 {
    std::fs::read_to_string(format!("/proc/{tid}/status"))
        .ok()
        .and_then(|s| parse_status_field(&s, "Tgid")?.parse().ok())
        .unwrap_or(tid)
}

/// Whether a stop of allocflame's is on its way to task `tid`: SIGTRAP (the stopper's), or an
/// unblocked SIGCHLD (the brake's), pending for the thread itself.
pub fn trap_pending(tid: i32) -> bool {
    let Ok(s) = std::fs::read_to_string(format!("/proc/{tid}/status")) else {
        return false;
    };
    let mask = |field| {
        parse_status_field(&s, field)
            .and_then(|m| u64::from_str_radix(m, 16).ok())
            .unwrap_or(0)
    };
    let bit = |sig: i32| 1u64 << (sig - 1);
    let (pending, blocked) = (mask("SigPnd"), mask("SigBlk"));
    pending & bit(libc::SIGTRAP) != 0 || pending & !blocked & bit(libc::SIGCHLD) != 0
}

/// The file behind the mapping `start..end` of `pid` (`/proc/PID/map_files/START-END`): the
/// very file mapped, even when its path now names another.
pub fn map_file(pid: u32, start: u64, end: u64) -> std::io::Result<std::fs::File> {
    std::fs::File::open(format!("/proc/{pid}/map_files/{start:x}-{end:x}"))
}

/// The device (glibc encoding) and inode of an open file.
pub fn inode_of(file: &std::fs::File) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    file.metadata().ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_lines_with_spaces_deleted_and_anonymous() {
        let text = "\
55d0c0a00000-55d0c0a01000 r-xp 00001000 08:01 1234    /tmp/my dir/prog with spaces
7f0000000000-7f0000021000 rw-p 00000000 00:00 0 
7f1000000000-7f1000100000 r-xp 00028000 fd:00 99 /usr/lib/libc.so.6 (deleted)
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0                          [stack]
garbage line
";
        let m = parse_maps(text);
        assert_eq!(m.len(), 4);
        assert_eq!(m[0].path, "/tmp/my dir/prog with spaces");
        assert!(m[0].executable() && m[0].is_file());
        assert_eq!(m[0].offset, 0x1000);
        assert_eq!(m[0].inode, (crate::record::makedev(8, 1), 1234));
        assert_eq!(m[1].path, "");
        assert!(!m[1].executable());
        assert_eq!(m[2].path, "/usr/lib/libc.so.6");
        assert!(m[2].deleted);
        assert_eq!(m[2].inode.0, crate::record::makedev(0xfd, 0));
        assert_eq!(m[3].path, "[stack]");
        assert!(!m[3].is_file());
    }

    #[test]
    fn stat_and_status() {
        assert_eq!(parse_stat_state("12 (a) b) c) S 1 2 3"), Some('S'));
        assert_eq!(parse_stat_state("12 (zombie) Z 1"), Some('Z'));
        assert_eq!(parse_stat_state("nonsense"), None);
        let status = "Name:\tx\nTgid:\t42\nTracerPid:\t7\n";
        assert_eq!(parse_status_field(status, "TracerPid"), Some("7"));
        assert_eq!(parse_status_field(status, "Tgid"), Some("42"));
        assert_eq!(parse_status_field(status, "Nope"), None);
    }

    #[test]
    fn this_process_maps_itself() {
        if !cfg!(target_os = "linux") {
            return;
        }
        let m = maps(std::process::id()).expect("own maps");
        assert!(m.iter().any(|e| e.executable() && e.is_file()));
        assert!(alive(std::process::id()));
        assert!(comm(std::process::id()).is_some());
        assert!(!tids(std::process::id()).is_empty());
    }
}
