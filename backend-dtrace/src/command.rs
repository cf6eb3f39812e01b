//! The `dtrace` command line for a target.
//!
//! No cfg here: it is built (and tested) on every platform, and printed by `--dry-run`.

use std::ffi::OsString;

use allocflame_core::source::Target;
use allocflame_core::{Error, Result};

/// Where dtrace lives on macOS.
pub const DTRACE: &str = "/usr/sbin/dtrace";

/// The arguments of `dtrace` (without the program name) that run `script` on `target` and
/// write the traced data to `output`.
///
/// `-Z` lets probe descriptions match nothing: the `malloc_type_*` functions exist only on
/// macOS 14 and later, and a user probe's library may not be loaded when tracing starts.
/// `-q` leaves out dtrace's own headers. The trace data goes to `-o` rather than stdout,
/// because a program started with `-c` shares dtrace's stdout.
///
/// `dtrace -c` splits its command string at whitespace and knows no quoting, so an argument
/// holding whitespace is refused here rather than passed on split.
///
/// ```
/// use allocflame_backend_dtrace::command::arguments;
/// use allocflame_core::source::Target;
/// let args = arguments(&Target::spawn(["./prog", "10"]), "a.d", "a.out").unwrap();
/// assert_eq!(args, ["-Z", "-q", "-s", "a.d", "-o", "a.out", "-c", "./prog 10"]);
/// ```
pub fn arguments(target: &Target, script: &str, output: &str) -> Result<Vec<OsString>> {
    let mut args: Vec<OsString> = ["-Z", "-q", "-s", script, "-o", output]
        .into_iter()
        .map(OsString::from)
        .collect();
    match target {
        Target::Spawn { argv } => {
            if argv.is_empty() {
                return Err(Error::Invalid(
                    "no program to record: give it after `--`".into(),
                ));
            }
            let mut command = String::new();
            for arg in argv {
                let text = arg.to_str().ok_or_else(|| {
                    Error::Invalid(format!(
                        "argument {arg:?} is not UTF-8, which `dtrace -c` cannot pass on"
                    ))
                })?;
                if text.is_empty() || text.contains(char::is_whitespace) {
                    return Err(Error::Invalid(format!(
                        "argument `{text}` is empty or holds whitespace: `dtrace -c` splits its command at whitespace and cannot pass it. Start the program yourself and attach with `-p PID`, or use a wrapper script"
                    )));
                }
                if !command.is_empty() {
                    command.push(' ');
                }
                command.push_str(text);
            }
            args.push("-c".into());
            args.push(command.into());
        }
        Target::Attach { pid, .. } => {
            args.push("-p".into());
            args.push(pid.to_string().into());
        }
    }
    Ok(args)
}

/// `arg` quoted for a POSIX shell, if it needs quoting.
///
/// ```
/// use allocflame_backend_dtrace::command::shell_quote;
/// assert_eq!(shell_quote("-Z"), "-Z");
/// assert_eq!(shell_quote("./prog 10"), "'./prog 10'");
/// assert_eq!(shell_quote("it's"), r"'it'\''s'");
/// ```
pub fn shell_quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./=:,+@%".contains(c));
    if plain {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// The command line as text, for `--dry-run`.
pub fn display(program: &str, args: &[OsString]) -> String {
    std::iter::once(program.to_owned())
        .chain(args.iter().map(|a| shell_quote(&a.to_string_lossy())))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attach_and_refusals() {
        let t = Target::Attach {
            pid: 42,
            duration: None,
        };
        let args = arguments(&t, "s.d", "o.txt").unwrap();
        assert_eq!(&args[6..], ["-p", "42"]);
        assert!(arguments(&Target::spawn(["./p", "a b"]), "s", "o").is_err());
        assert!(arguments(&Target::spawn(Vec::<String>::new()), "s", "o").is_err());
        assert_eq!(
            display(
                "dtrace",
                &arguments(&Target::spawn(["./p", "1"]), "s.d", "o").unwrap()
            ),
            "dtrace -Z -q -s s.d -o o -c './p 1'"
        );
    }
}
