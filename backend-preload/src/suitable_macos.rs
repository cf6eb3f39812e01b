//! Whether a program can be recorded in process on macOS, known from the file: dyld takes
//! `DYLD_INSERT_LIBRARIES` out for programs System Integrity Protection covers (those under
//! `/usr/bin`, `/bin`, `/sbin`, `/usr/sbin`, `/usr/libexec`, `/System`), restricted ones (a
//! `__RESTRICT` segment, the restrict code-signing flag, setuid or setgid), and those signed with
//! the hardened runtime without the entitlements that let the variable and an ad-hoc signed
//! library in; and a library for one architecture loads only into programs of it (not an
//! x86_64 program under Rosetta, not arm64e). Scripts are judged by their interpreter. No cfg:
//! the Mach-O checks are tested on every host.

use std::path::{Path, PathBuf};

use allocflame_core::source::{RecordOptions, Target};

/// The directories System Integrity Protection covers.
pub const SIP_DIRS: [&str; 6] = [
    "/usr/bin",
    "/bin",
    "/sbin",
    "/usr/sbin",
    "/usr/libexec",
    "/System",
];

const DTRACE: &str = "use --backend dtrace";

/// Whether `path` (resolved) lies where System Integrity Protection covers it.
pub fn sip_protected(path: &Path) -> bool {
    SIP_DIRS.iter().any(|d| path.starts_with(d))
}

/// [`crate::applies`] on macOS.
pub fn applies(target: &Target, options: &RecordOptions) -> Result<(), String> {
    if crate::library().is_empty() {
        return Err(format!(
            "this allocflame was built without the in-process library for macOS (its build printed why); {DTRACE}"
        ));
    }
    let argv = match target {
        Target::Spawn { argv } => argv,
        Target::Attach { .. } => {
            return Err(format!(
                "attaching to a running process: injection needs a program started here; {DTRACE}"
            ))
        }
    };
    if let Some(p) = crate::macos_catalog::foreign_probe(&options.probes) {
        return Err(format!(
            "the probe {p}: the in-process library interposes only the allocator catalog"
        ));
    }
    let Some(program) = argv.first() else {
        return Err("no program to run".into());
    };
    // A program that cannot be found is the backend's error to report, not a reason.
    let Some(path) = resolve(Path::new(program)) else {
        return Ok(());
    };
    #[cfg(unix)]
    // SAFETY: geteuid and getegid have no preconditions.
    let (euid, egid) = unsafe { (libc::geteuid(), libc::getegid()) };
    #[cfg(not(unix))]
    let (euid, egid) = (0, 0);
    match unsuitable(&path, euid, egid, std::env::consts::ARCH) {
        Some(why) => Err(why),
        None => Ok(()),
    }
}

/// The file `program` runs: itself when it names a directory, else the first executable file
/// of that name in `PATH`.
pub fn resolve(program: &Path) -> Option<PathBuf> {
    if program.components().count() > 1 {
        return std::fs::canonicalize(program).ok();
    }
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
        .and_then(|p| std::fs::canonicalize(p).ok())
}

/// Why `program` cannot load the library built for `arch` (`std::env::consts::ARCH`), or
/// `None` when it can. `euid` and `egid` are the ids it would be started with.
pub fn unsuitable(program: &Path, euid: u32, egid: u32, arch: &str) -> Option<String> {
    let mut path = std::fs::canonicalize(program).unwrap_or_else(|_| program.to_path_buf());
    for _ in 0..4 {
        let shown = path.display().to_string();
        if sip_protected(&path) {
            return Some(format!(
                "{shown} is protected by System Integrity Protection, and macOS gives it no DYLD_INSERT_LIBRARIES: {DTRACE}"
            ));
        }
        if let Some(why) = set_id(&path, euid, egid) {
            return Some(why);
        }
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) => return Some(format!("{shown}: cannot be read ({e})")),
        };
        if let Some(interpreter) = crate::suitable::shebang(&bytes) {
            path = std::fs::canonicalize(&interpreter).unwrap_or(interpreter);
            continue;
        }
        return macho(&shown, &bytes, arch);
    }
    Some(format!(
        "{}: scripts nest more than four interpreters deep",
        program.display()
    ))
}

#[cfg(unix)]
fn set_id(path: &Path, euid: u32, egid: u32) -> Option<String> {
    use std::os::unix::fs::MetadataExt as _;
    let m = std::fs::metadata(path).ok()?;
    let which = if m.mode() & 0o4000 != 0 && m.uid() != euid {
        "setuid"
    } else if m.mode() & 0o2000 != 0 && m.gid() != egid {
        "setgid"
    } else {
        return None;
    };
    Some(format!(
        "{} is {which}: dyld ignores DYLD_INSERT_LIBRARIES for it; {DTRACE}",
        path.display()
    ))
}

#[cfg(not(unix))]
fn set_id(_path: &Path, _euid: u32, _egid: u32) -> Option<String> {
    None
}

const MH_MAGIC_64: u32 = 0xfeed_facf;
const FAT_MAGIC: u32 = 0xcafe_babe;
const CPU_ARM64: u32 = 0x0100_000c;
const CPU_X86_64: u32 = 0x0100_0007;
const CPU_SUBTYPE_ARM64E: u32 = 2;
const LC_SEGMENT_64: u32 = 0x19;
const LC_CODE_SIGNATURE: u32 = 0x1d;
const CS_RESTRICT: u32 = 0x800;
const CS_RUNTIME: u32 = 0x1_0000;

fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

/// The checks on a Mach-O program (thin, or the slice for `arch` of a universal one).
fn macho(shown: &str, b: &[u8], arch: &str) -> Option<String> {
    let cpu = if arch == "x86_64" {
        CPU_X86_64
    } else {
        CPU_ARM64
    };
    let name = if cpu == CPU_X86_64 { "x86_64" } else { "arm64" };
    let slice: &[u8] = match be32(b, 0) {
        Some(FAT_MAGIC) => {
            let n = be32(b, 4).unwrap_or(0).min(64) as usize;
            let found = (0..n).find_map(|i| {
                let e = 8 + i * 20;
                (be32(b, e)? == cpu).then_some(())?;
                let (off, size) = (be32(b, e + 8)? as usize, be32(b, e + 12)? as usize);
                b.get(off..off.checked_add(size)?)
            });
            match found {
                Some(s) => s,
                None => {
                    return Some(format!(
                        "{shown} has no {name} code, and the in-process library is built for {name}; {DTRACE}"
                    ))
                }
            }
        }
        _ => b,
    };
    if le32(slice, 0) != Some(MH_MAGIC_64) {
        return Some(format!("{shown}: not a Mach-O program or a script"));
    }
    if le32(slice, 4) != Some(cpu) {
        return Some(format!(
            "{shown} is not an {name} program (the in-process library is built for {name}); {DTRACE}"
        ));
    }
    if cpu == CPU_ARM64 && le32(slice, 8).map(|s| s & 0xff) == Some(CPU_SUBTYPE_ARM64E) {
        return Some(format!(
            "{shown} is an arm64e program, which loads no arm64 library; {DTRACE}"
        ));
    }
    let ncmds = le32(slice, 16)?.min(65536);
    let mut at = 32usize;
    let mut signature = None;
    for _ in 0..ncmds {
        let (cmd, size) = (le32(slice, at)?, le32(slice, at + 4)? as usize);
        if cmd == LC_SEGMENT_64 && slice.get(at + 8..at + 24)?.starts_with(b"__RESTRICT\0") {
            return Some(format!(
                "{shown} is restricted (a __RESTRICT segment): dyld ignores DYLD_INSERT_LIBRARIES for it; {DTRACE}"
            ));
        }
        if cmd == LC_CODE_SIGNATURE {
            let (off, len) = (
                le32(slice, at + 8)? as usize,
                le32(slice, at + 12)? as usize,
            );
            signature = slice.get(off..off.checked_add(len)?);
        }
        if size < 8 {
            break;
        }
        at = at.checked_add(size)?;
    }
    signature.and_then(|s| signed(shown, s))
}

/// The code signature's verdict: the restrict flag, or the hardened runtime without the
/// entitlements that let `DYLD_INSERT_LIBRARIES` and a library of another signer in.
fn signed(shown: &str, sig: &[u8]) -> Option<String> {
    const CODE_DIRECTORY: u32 = 0xfade_0c02;
    const ENTITLEMENTS: u32 = 0xfade_7171;
    if be32(sig, 0) != Some(0xfade_0cc0) {
        return None;
    }
    let count = be32(sig, 8)?.min(64) as usize;
    let mut flags = 0;
    let mut entitlements: &[u8] = &[];
    for i in 0..count {
        let off = be32(sig, 12 + i * 8 + 4)? as usize;
        let blob = sig.get(off..)?;
        match be32(blob, 0)? {
            CODE_DIRECTORY => flags |= be32(blob, 12)?,
            ENTITLEMENTS => {
                let len = (be32(blob, 4)? as usize).min(blob.len());
                entitlements = &blob[..len];
            }
            _ => {}
        }
    }
    let has = |key: &str| entitlements.windows(key.len()).any(|w| w == key.as_bytes());
    if flags & CS_RESTRICT != 0 {
        return Some(format!(
            "{shown} is restricted (its code signature says so): dyld ignores DYLD_INSERT_LIBRARIES for it; {DTRACE}"
        ));
    }
    if flags & CS_RUNTIME != 0
        && !(has("com.apple.security.cs.allow-dyld-environment-variables")
            && has("com.apple.security.cs.disable-library-validation"))
    {
        return Some(format!(
            "{shown} is signed with the hardened runtime, which keeps DYLD_INSERT_LIBRARIES (or a library of another signer) out; {DTRACE}"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A thin 64-bit Mach-O header for `cpu` with the load commands `cmds`.
    fn thin(cpu: u32, subtype: u32, cmds: &[Vec<u8>]) -> Vec<u8> {
        let mut b = Vec::new();
        for v in [MH_MAGIC_64, cpu, subtype, 2, cmds.len() as u32, 0, 0, 0] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        for c in cmds {
            b.extend_from_slice(c);
        }
        b
    }

    fn segment(name: &str) -> Vec<u8> {
        let mut c = Vec::new();
        c.extend_from_slice(&LC_SEGMENT_64.to_le_bytes());
        c.extend_from_slice(&72u32.to_le_bytes());
        let mut n = [0u8; 16];
        n[..name.len()].copy_from_slice(name.as_bytes());
        c.extend_from_slice(&n);
        c.resize(72, 0);
        c
    }

    #[test]
    fn protected_directories_are_whole_components() {
        assert!(sip_protected(Path::new("/usr/bin/true")));
        assert!(sip_protected(Path::new("/System/Library/x")));
        assert!(!sip_protected(Path::new("/usr/local/bin/x")));
        assert!(!sip_protected(Path::new("/binaries/x")));
        let why = unsuitable(Path::new("/bin/sh"), 0, 0, "aarch64").unwrap();
        assert!(why.contains("System Integrity Protection"), "{why}");
        assert!(why.contains("--backend dtrace"), "{why}");
    }

    #[test]
    fn a_plain_program_of_the_architecture_applies() {
        let b = thin(CPU_ARM64, 0, &[segment("__TEXT")]);
        assert_eq!(macho("p", &b, "aarch64"), None);
        let why = macho("p", &b, "x86_64").unwrap();
        assert!(why.contains("not an x86_64 program"), "{why}");
        let why = macho("p", &thin(CPU_ARM64, 2, &[]), "aarch64").unwrap();
        assert!(why.contains("arm64e"), "{why}");
        let why = macho(
            "p",
            &thin(CPU_ARM64, 0, &[segment("__RESTRICT")]),
            "aarch64",
        )
        .unwrap();
        assert!(why.contains("restricted"), "{why}");
        assert!(macho("p", b"\x7fELF", "aarch64")
            .unwrap()
            .contains("not a Mach-O"));
    }

    #[test]
    fn a_universal_program_is_judged_by_its_slice() {
        let slice = thin(CPU_X86_64, 3, &[segment("__TEXT")]);
        let mut b = Vec::new();
        for v in [FAT_MAGIC, 1, CPU_X86_64, 3, 4096, slice.len() as u32, 12] {
            b.extend_from_slice(&v.to_be_bytes());
        }
        b.resize(4096, 0);
        b.extend_from_slice(&slice);
        assert_eq!(macho("p", &b, "x86_64"), None);
        let why = macho("p", &b, "aarch64").unwrap();
        assert!(why.contains("no arm64 code"), "{why}");
    }

    #[test]
    fn the_hardened_runtime_without_entitlements_is_refused() {
        let mut cd = Vec::new();
        for v in [0xfade_0c02u32, 16, 0x2_0400, CS_RUNTIME] {
            cd.extend_from_slice(&v.to_be_bytes());
        }
        let mut sig = Vec::new();
        for v in [0xfade_0cc0u32, 20 + 16, 1, 0, 20] {
            sig.extend_from_slice(&v.to_be_bytes());
        }
        sig.extend_from_slice(&cd);
        let why = signed("p", &sig).unwrap();
        assert!(why.contains("hardened runtime"), "{why}");
        cd[12..16].copy_from_slice(&0u32.to_be_bytes());
        sig.truncate(20);
        sig.extend_from_slice(&cd);
        assert_eq!(signed("p", &sig), None);
        // Damaged signatures give no verdict, never a panic.
        for cut in 0..sig.len() {
            let _ = signed("p", &sig[..cut]);
        }
    }
}
