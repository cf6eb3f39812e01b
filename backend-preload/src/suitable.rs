//! Whether a program can be recorded in process, known from the file the kernel will run: the
//! dynamic loader must be glibc's (the library is built against it) and must honour
//! `LD_PRELOAD`, which it does not for a statically linked program, one with another libc's
//! loader (musl), or a setuid or setgid program run by another user (secure execution).
//! Scripts are judged by their interpreter.

use std::path::{Path, PathBuf};

const PT_INTERP: u32 = 3;

/// Why `program` cannot load the library, or `None` when it can. `euid` and `egid` are the
/// ids it would be started with.
pub fn unsuitable(program: &Path, euid: u32, egid: u32) -> Option<String> {
    unsuitable_in(Path::new("/"), program, euid, egid)
}

/// [`unsuitable`] for a program of a process whose root is `root` (`/proc/PID/root`):
/// `program` is a path this process can open (e.g. under that root), and the interpreters that
/// scripts name are looked up in `root`.
pub fn unsuitable_in(root: &Path, program: &Path, euid: u32, egid: u32) -> Option<String> {
    let mut path = program.to_path_buf();
    for _ in 0..4 {
        let bytes = match read_head(&path) {
            Ok(b) => b,
            Err(e) => return Some(format!("{}: cannot be read ({e})", path.display())),
        };
        if let Some(why) = secure_execution(&path, euid, egid) {
            return Some(why);
        }
        if let Some(interpreter) = shebang(&bytes) {
            path = in_root(root, &interpreter);
            continue;
        }
        return elf_loader(&path, &bytes).or_else(|| own_allocator(&path));
    }
    Some(format!(
        "{}: scripts nest more than four interpreters deep",
        program.display()
    ))
}

fn in_root(root: &Path, path: &Path) -> PathBuf {
    if root == Path::new("/") {
        return path.to_path_buf();
    }
    match path.strip_prefix("/") {
        Ok(rel) => root.join(rel),
        Err(_) => root.join(path),
    }
}

fn read_head(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    let mut f = std::fs::File::open(path)?;
    let mut buf = Vec::new();
    f.by_ref().take(64 << 10).read_to_end(&mut buf)?;
    Ok(buf)
}

#[cfg(unix)]
fn secure_execution(path: &Path, euid: u32, egid: u32) -> Option<String> {
    use std::os::unix::fs::MetadataExt as _;
    let m = std::fs::metadata(path).ok()?;
    if m.mode() & 0o4000 != 0 && m.uid() != euid {
        return Some(format!(
            "{} is setuid: the dynamic loader ignores LD_PRELOAD for it",
            path.display()
        ));
    }
    if m.mode() & 0o2000 != 0 && m.gid() != egid {
        return Some(format!(
            "{} is setgid: the dynamic loader ignores LD_PRELOAD for it",
            path.display()
        ));
    }
    None
}

#[cfg(not(unix))]
fn secure_execution(_path: &Path, _euid: u32, _egid: u32) -> Option<String> {
    None
}

/// The interpreter of a `#!` script.
pub(crate) fn shebang(bytes: &[u8]) -> Option<PathBuf> {
    let rest = bytes.strip_prefix(b"#!")?;
    let line = rest.split(|&b| b == b'\n').next()?;
    let text = String::from_utf8_lossy(line);
    let interpreter = text.split_whitespace().next()?;
    Some(PathBuf::from(interpreter))
}

fn elf_loader(path: &Path, b: &[u8]) -> Option<String> {
    let shown = path.display();
    if b.len() < 64 || &b[0..4] != b"\x7fELF" {
        return Some(format!("{shown}: not an ELF program or a script"));
    }
    if b[4] != 2 || b[5] != 1 || u16::from_le_bytes([b[18], b[19]]) != 62 {
        return Some(format!("{shown}: not an x86-64 program"));
    }
    let u16_at = |o: usize| b.get(o..o + 2).map(|x| u16::from_le_bytes([x[0], x[1]]));
    let u32_at = |o: usize| {
        b.get(o..o + 4)
            .map(|x| u32::from_le_bytes([x[0], x[1], x[2], x[3]]))
    };
    let u64_at = |o: usize| {
        b.get(o..o + 8)
            .and_then(|x| x.try_into().ok())
            .map(u64::from_le_bytes)
    };
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(32), u16_at(54), u16_at(56)) else {
        return Some(format!("{shown}: a damaged ELF header"));
    };
    for i in 0..usize::from(phnum) {
        let ph = phoff as usize + i * usize::from(phentsize);
        if u32_at(ph) != Some(PT_INTERP) {
            continue;
        }
        let (Some(off), Some(size)) = (u64_at(ph + 8), u64_at(ph + 32)) else {
            break;
        };
        let interp = read_at(path, off, size.min(4096));
        let interp = interp.trim_end_matches('\0');
        if interp.contains("musl") {
            return Some(format!(
                "{shown} uses musl's dynamic loader ({interp}); the library is built for glibc"
            ));
        }
        return None;
    }
    Some(format!(
        "{shown} is statically linked: there is no dynamic loader to load the library"
    ))
}

/// An allocator linked into the program itself: calls to it never reach the dynamic loader
/// (Rust's `#[global_allocator]` mimalloc calls `mi_malloc`), and an executable's own `malloc`
/// comes before any preloaded one.
fn own_allocator(path: &Path) -> Option<String> {
    use object::{Object as _, ObjectSymbol as _};
    let f = std::fs::File::open(path).ok()?;
    // SAFETY: read-only; a program rewritten in place meanwhile gives a wrong answer at worst.
    let data = unsafe { memmap2::Mmap::map(&f) }.ok()?;
    let file = object::File::parse(&*data).ok()?;
    let names: Vec<&str> = crate::shm::FUNCTIONS
        .iter()
        .flat_map(|f| {
            std::iter::once(*f).chain(allocflame_core::probes::linked_in_names(f).iter().copied())
        })
        .collect();
    let found = file
        .symbols()
        .chain(file.dynamic_symbols())
        .filter(|s| s.is_definition())
        .find_map(|s| s.name().ok().filter(|n| names.contains(n)))?;
    Some(format!(
        "{} has its own allocator linked in (it defines `{found}`): its calls never reach the injected library",
        path.display()
    ))
}

fn read_at(path: &Path, off: u64, len: u64) -> String {
    use std::io::{Read as _, Seek as _, SeekFrom};
    let mut out = Vec::new();
    if let Ok(mut f) = std::fs::File::open(path) {
        if f.seek(SeekFrom::Start(off)).is_ok() {
            let _ = f.take(len).read_to_end(&mut out);
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_script_names_its_interpreter() {
        assert_eq!(
            shebang(b"#!/usr/bin/env python3\nprint(1)\n"),
            Some(PathBuf::from("/usr/bin/env"))
        );
        assert_eq!(shebang(b"\x7fELF"), None);
    }

    #[test]
    fn what_is_not_elf_says_so() {
        let why = elf_loader(Path::new("x"), b"hello").unwrap();
        assert!(why.contains("not an ELF"), "{why}");
    }
}
