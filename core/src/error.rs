//! The one error type of the core library.

use std::path::PathBuf;

/// Errors of the core library. Every variant says what went wrong and, where the user can do
/// something about it, what to do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Input that does not have the expected shape.
    #[error("{file}:{line}: {message}")]
    Parse {
        /// The file (or `<stdin>`) the input came from.
        file: String,
        /// 1-based line number.
        line: usize,
        /// What was found and what was expected.
        message: String,
    },
    /// A gzip-compressed input that cannot be unpacked (cut short or corrupt).
    #[error("{file}: looks gzip-compressed but cannot be unpacked: {source}")]
    Unpack {
        /// The file the input came from.
        file: String,
        /// What the decompressor said (`UnexpectedEof` for a cut file, `InvalidInput` for a
        /// corrupt one).
        #[source]
        source: std::io::Error,
    },
    /// A whole input that is not in any format allocflame reads.
    #[error("{file}: {message}")]
    Format {
        /// The file the input came from.
        file: String,
        /// Why it was rejected.
        message: String,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The path that was read or written.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A profile without any allocation in it.
    #[error("no allocations recorded: {hint}")]
    Empty {
        /// Why that may be and what to try.
        hint: String,
    },
    /// The facility is not available on this platform or build.
    #[error("not supported: {0}")]
    Unsupported(String),
    /// The operating system refused; `hint` says how to get the permission.
    #[error("permission denied: {what}\nhint: {hint}")]
    PermissionDenied {
        /// What was refused.
        what: String,
        /// What to do about it.
        hint: String,
    },
    /// A bad option or argument value.
    #[error("{0}")]
    Invalid(String),
    /// Rendering the flame graph failed: writing it, mostly.
    #[error("rendering failed: {0}")]
    Render(#[source] std::io::Error),
    /// A system call or other OS facility failed; `what` says what was being done
    /// ("cannot start the tracer thread", "perf_event_open of malloc in pid 42").
    #[error("{what}: {source}")]
    Os {
        /// What was being done.
        what: String,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// Sending a profile to a server failed (see [`crate::push`]); what was written locally
    /// stays where it was written.
    #[error("cannot push the profile to {url}: {message}")]
    Push {
        /// The server's URL as given.
        url: String,
        /// What the last attempt got and how many attempts were made.
        message: String,
    },
    /// Anything a backend reports that fits nowhere else.
    #[error("{0}")]
    Backend(String),
}

impl Error {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// An OS facility failing while doing `what`.
    pub fn os(what: impl Into<String>, source: std::io::Error) -> Self {
        Error::Os {
            what: what.into(),
            source,
        }
    }

    /// The I/O error underneath, if this is one (to match on its kind).
    pub fn io_error(&self) -> Option<&std::io::Error> {
        match self {
            Error::Io { source, .. }
            | Error::Unpack { source, .. }
            | Error::Render(source)
            | Error::Os { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Result with the core [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
