//! The usual obstacles, recognised from dtrace's messages and from the target's path, each
//! turned into an error that says what to do.
//!
//! No cfg here: the classification is plain text work, tested on every platform.

use std::path::Path;

use allocflame_core::Error;

/// What to do when DTrace needs root.
pub const ROOT_HINT: &str = "DTrace needs root: run the same command with sudo (`sudo allocflame record --backend dtrace -- PROGRAM`), or record without root with the in-process backend (drop `--backend dtrace`)";

/// What to do when System Integrity Protection keeps DTrace off the target.
pub const SIP_HINT: &str = "with System Integrity Protection on, DTrace cannot trace Apple-signed programs, programs under /System, /usr (except /usr/local), /bin or /sbin, or hardened-runtime apps without the get-task-allow entitlement. Build the program into your own directory (a debug build has get-task-allow), or trace a copy: `cp /bin/ls /tmp/ls && codesign --remove-signature /tmp/ls`. Turning off SIP's DTrace restriction (`csrutil enable --without dtrace` from Recovery) also works, at your own risk";

/// The error for a missing `dtrace` binary.
pub fn dtrace_missing() -> Error {
    Error::Unsupported(
        "dtrace was not found (looked for /usr/sbin/dtrace and in PATH); it ships with macOS: check that /usr/sbin is intact, or use the in-process backend (drop `--backend dtrace`)".into(),
    )
}

/// The error for a run without root.
pub fn not_root() -> Error {
    Error::PermissionDenied {
        what: "DTrace cannot be used by a user other than root".into(),
        hint: ROOT_HINT.into(),
    }
}

/// Whether System Integrity Protection covers `path`: `dtrace -c` cannot start a program there.
///
/// ```
/// use allocflame_backend_dtrace::errors::sip_protected_path;
/// assert!(sip_protected_path("/bin/ls".as_ref()));
/// assert!(!sip_protected_path("/usr/local/bin/rg".as_ref()));
/// ```
pub fn sip_protected_path(path: &Path) -> bool {
    const PROTECTED: [&str; 5] = ["/System", "/usr", "/bin", "/sbin", "/Library/Apple"];
    PROTECTED.iter().any(|p| path.starts_with(p)) && !path.starts_with("/usr/local")
}

/// The error for a target in a SIP-protected location or with restricted signing flags.
pub fn sip_blocked(what: String) -> Error {
    Error::PermissionDenied {
        what,
        hint: SIP_HINT.into(),
    }
}

/// Counts of what dtrace said it dropped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Drops {
    /// Aggregation updates that found the aggregation buffer full (`N aggregation drops`).
    pub aggregation: u64,
    /// `self->` variables that could not be stored (`N dynamic variable drops`): the nesting
    /// guard of those calls failed.
    pub dynamic: u64,
    /// Principal buffer drops (`N drops on CPU k`).
    pub principal: u64,
}

impl Drops {
    /// Whether nothing was dropped.
    pub fn is_empty(&self) -> bool {
        *self == Drops::default()
    }
}

/// Adds up the drop messages in dtrace's stderr.
///
/// ```
/// use allocflame_backend_dtrace::errors::drops;
/// let d = drops("dtrace: 12 aggregation drops on CPU 3\ndtrace: 3 aggregation drops on CPU 0\n");
/// assert_eq!(d.aggregation, 15);
/// ```
pub fn drops(stderr: &str) -> Drops {
    let mut d = Drops::default();
    for line in stderr.lines() {
        let Some(rest) = line.trim().strip_prefix("dtrace: ") else {
            continue;
        };
        let mut words = rest.split_whitespace();
        let Some(n) = words.next().and_then(|w| w.parse::<u64>().ok()) else {
            continue;
        };
        let kind: Vec<&str> = words.collect();
        match kind.as_slice() {
            ["aggregation", "drops", ..] => d.aggregation += n,
            ["dynamic", "variable", "drops", ..] => d.dynamic += n,
            ["drops", "on", "CPU", ..] => d.principal += n,
            _ => {}
        }
    }
    d
}

/// The last `n` non-blank lines of `text`, for an error message.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Turns dtrace's stderr, after it failed without output, into an error that says what to do.
/// `code` is its exit code, if it exited.
///
/// ```
/// use allocflame_backend_dtrace::errors::classify;
/// use allocflame_core::Error;
/// let e = classify("dtrace: failed to initialize dtrace: DTrace requires additional privileges", Some(1));
/// assert!(matches!(e, Error::PermissionDenied { .. }));
/// ```
pub fn classify(stderr: &str, code: Option<i32>) -> Error {
    let lower = stderr.to_ascii_lowercase();
    let has = |s: &str| lower.contains(s);
    let last = tail(stderr, 6);
    if has("requires additional privileges")
        || has("you must be root")
        || (has("/dev/dtrace") && has("permission denied"))
    {
        return not_root();
    }
    if has("failed to execute") || has("failed to create process") {
        if has("no such file") {
            return Error::Invalid(format!(
                "dtrace could not start the program: it was not found (dtrace -c needs a path or a name in PATH):\n{last}"
            ));
        }
        // `(os/kern) failure` is what the kernel answers when SIP refuses to let dtrace
        // control the new process; with SIP off the same command works.
        return sip_blocked(format!(
            "dtrace could not start the program under tracing (System Integrity Protection refuses restricted binaries):\n{last}"
        ));
    }
    if has("failed to grab pid") || has("failed to grab process") {
        if has("no such process") {
            return Error::Invalid(format!("no such process:\n{last}"));
        }
        return sip_blocked(format!(
            "dtrace could not attach to the process (System Integrity Protection protects it, or it is being debugged):\n{last}"
        ));
    }
    if has("invalid probe specifier") || has("syntax error") || has("failed to compile") {
        return Error::Backend(format!(
            "dtrace rejected the generated D script; this is a bug in allocflame, please report it with the output of `--dry-run`:\n{last}"
        ));
    }
    if has("system integrity protection is on")
        && (has("could not enable tracing") || has("cannot"))
    {
        return sip_blocked(format!("dtrace could not enable its probes:\n{last}"));
    }
    let status = match code {
        Some(c) => format!("exit code {c}"),
        None => "killed by a signal".to_owned(),
    };
    Error::Backend(format!(
        "dtrace failed ({status}) without printing the aggregations:\n{last}"
    ))
}
