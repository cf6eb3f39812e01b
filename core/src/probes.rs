//! The probe catalog: which allocation functions are probed on each platform, and which
//! argument carries the requested size.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::error::Error;

/// Where the size of an allocation is found among a probed function's arguments (0-based, as
/// DTrace's `arg0`… and the System V / AArch64 argument registers count them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum SizeArg {
    /// The function's size is not known; only calls are counted.
    None,
    /// The size is argument `n`.
    Arg(u8),
    /// The size is argument `a` times argument `b` (`calloc(n, size)`).
    Product(u8, u8),
}

impl SizeArg {
    /// The requested size, given the function's arguments.
    pub fn size(self, args: &[u64]) -> u64 {
        let arg = |i: u8| args.get(i as usize).copied().unwrap_or(0);
        match self {
            SizeArg::None => 0,
            SizeArg::Arg(i) => arg(i),
            SizeArg::Product(a, b) => arg(a).saturating_mul(arg(b)),
        }
    }

    /// The highest argument index the size needs, if any.
    pub fn max_arg(self) -> Option<u8> {
        match self {
            SizeArg::None => None,
            SizeArg::Arg(i) => Some(i),
            SizeArg::Product(a, b) => Some(a.max(b)),
        }
    }
}

impl fmt::Display for SizeArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SizeArg::None => f.write_str("-"),
            SizeArg::Arg(i) => write!(f, "arg{i}"),
            SizeArg::Product(a, b) => write!(f, "arg{a}*arg{b}"),
        }
    }
}

impl FromStr for SizeArg {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let one = |t: &str| -> Result<u8, Error> {
            let t = t.trim();
            let digits = t.strip_prefix("arg").unwrap_or(t);
            match digits.parse::<u8>() {
                Ok(n) if n < 6 => Ok(n),
                _ => Err(Error::Invalid(format!(
                    "size argument `{t}`: expected an argument index 0-5 (`1` or `arg1`), or a product like `arg0*arg1`"
                ))),
            }
        };
        match s.split_once('*') {
            Some((a, b)) => Ok(SizeArg::Product(one(a)?, one(b)?)),
            None if s.is_empty() || s == "-" => Ok(SizeArg::None),
            None => Ok(SizeArg::Arg(one(s)?)),
        }
    }
}

/// One probed function.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Probe {
    /// The library that defines it: a short name (`libc`, `libsystem_malloc.dylib`,
    /// `libswiftCore`) that backends resolve in the target's mappings, or a path.
    pub library: String,
    /// The function's symbol name.
    pub function: String,
    /// Where its size argument is.
    pub size: SizeArg,
    /// Whether it marks a unit of work (`check --per FUNCTION`, a request handler) instead of
    /// an allocation: its calls are counted, and never enter a profile or an allocation total
    /// (nor make the allocations inside it "inner"). Written `LIB:FUNC:marker`. Default is
    /// `false`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub marker: bool,
}

impl Probe {
    /// A probe on `library`'s `function` with its size in `size`.
    pub fn new(library: &str, function: &str, size: SizeArg) -> Self {
        Probe {
            library: library.to_owned(),
            function: function.to_owned(),
            size,
            marker: false,
        }
    }

    /// A marker on `library`'s `function`: its calls are counted, not as allocations (see
    /// [`Probe::marker`]).
    pub fn marker(library: &str, function: &str) -> Self {
        Probe {
            marker: true,
            ..Probe::new(library, function, SizeArg::None)
        }
    }
}

impl fmt::Display for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.library, self.function)?;
        if self.size != SizeArg::None {
            write!(f, ":{}", self.size)?;
        }
        if self.marker {
            write!(f, ":{MARKER}")?;
        }
        Ok(())
    }
}

/// The suffix of a marker probe's text form (`/usr/bin/srv:handle_request:marker`).
const MARKER: &str = "marker";

/// Parses `LIB:FUNC[:SIZE_ARG]`, the form of `--probe`: `libswiftCore:swift_allocObject:1`,
/// `/opt/lib/libmyalloc.so:my_alloc:arg0`, `libc:my_calloc:0*1`; and a marker's
/// `LIB:FUNC:marker`, as [`Display`](fmt::Display) writes it.
impl FromStr for Probe {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        if let Some(probe) = s.strip_suffix(MARKER).and_then(|p| p.strip_suffix(':')) {
            let probe: Probe = probe.parse()?;
            if probe.size != SizeArg::None {
                return Err(Error::Invalid(format!(
                    "probe `{s}`: a marker counts calls and has no size argument"
                )));
            }
            return Ok(Probe {
                marker: true,
                ..probe
            });
        }
        let bad = || {
            Error::Invalid(format!(
                "probe `{s}`: expected LIB:FUNC[:SIZE_ARG], e.g. `libc:malloc:0` or `/path/libfoo.so:foo_alloc`"
            ))
        };
        // A path may hold ':' only in odd cases; split the function and size from the right.
        let mut parts: Vec<&str> = s.rsplitn(3, ':').collect();
        parts.reverse();
        let (library, function, size) = match parts.as_slice() {
            [lib, func] => (*lib, *func, SizeArg::None),
            [lib, func, size] => match size.parse::<SizeArg>() {
                Ok(sz) => (*lib, *func, sz),
                // `a:b:c` where c is no size: the library path held a ':'.
                Err(e) if size.chars().next().is_some_and(|c| c.is_ascii_digit()) => return Err(e),
                Err(_) => {
                    let (lib, func) = s.rsplit_once(':').ok_or_else(bad)?;
                    (lib, func, SizeArg::None)
                }
            },
            _ => return Err(bad()),
        };
        if library.is_empty() || function.is_empty() || function.contains(char::is_whitespace) {
            return Err(bad());
        }
        Ok(Probe::new(library, function, size))
    }
}

/// The platforms the catalog knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Platform {
    /// Linux with glibc.
    LinuxGlibc,
    /// macOS (libsystem_malloc).
    MacOs,
}

impl Platform {
    /// The platform this build runs on (Linux for every non-Apple target).
    pub const fn current() -> Platform {
        if cfg!(target_vendor = "apple") {
            Platform::MacOs
        } else {
            Platform::LinuxGlibc
        }
    }
}

const GLIBC: &[(&str, SizeArg)] = &[
    ("malloc", SizeArg::Arg(0)),
    ("calloc", SizeArg::Product(0, 1)),
    ("realloc", SizeArg::Arg(1)),
    ("reallocarray", SizeArg::Product(1, 2)),
    ("posix_memalign", SizeArg::Arg(2)),
    ("aligned_alloc", SizeArg::Arg(1)),
    ("memalign", SizeArg::Arg(1)),
    ("valloc", SizeArg::Arg(0)),
    ("pvalloc", SizeArg::Arg(0)),
];

const MACOS: &[(&str, SizeArg)] = &[
    ("malloc", SizeArg::Arg(0)),
    ("calloc", SizeArg::Product(0, 1)),
    ("realloc", SizeArg::Arg(1)),
    ("reallocf", SizeArg::Arg(1)),
    ("valloc", SizeArg::Arg(0)),
    ("posix_memalign", SizeArg::Arg(2)),
    ("aligned_alloc", SizeArg::Arg(1)),
    ("malloc_zone_malloc", SizeArg::Arg(1)),
    ("malloc_zone_calloc", SizeArg::Product(1, 2)),
    ("malloc_zone_realloc", SizeArg::Arg(2)),
    ("malloc_zone_valloc", SizeArg::Arg(1)),
    ("malloc_zone_memalign", SizeArg::Arg(2)),
    ("malloc_type_malloc", SizeArg::Arg(0)),
    ("malloc_type_calloc", SizeArg::Product(0, 1)),
    ("malloc_type_realloc", SizeArg::Arg(1)),
    ("malloc_type_valloc", SizeArg::Arg(0)),
    ("malloc_type_aligned_alloc", SizeArg::Arg(1)),
    ("malloc_type_posix_memalign", SizeArg::Arg(2)),
    ("malloc_type_zone_malloc", SizeArg::Arg(1)),
    ("malloc_type_zone_calloc", SizeArg::Product(1, 2)),
    ("malloc_type_zone_realloc", SizeArg::Arg(2)),
    ("malloc_type_zone_valloc", SizeArg::Arg(1)),
    ("malloc_type_zone_memalign", SizeArg::Arg(2)),
];

/// Whether `function` is an allocator of the catalog of any platform (`malloc`,
/// `malloc_zone_calloc`).
pub fn is_catalog_function(function: &str) -> bool {
    GLIBC.iter().chain(MACOS).any(|&(f, _)| f == function)
}

/// The library that holds the allocator on `platform`.
pub const fn allocator_library(platform: Platform) -> &'static str {
    match platform {
        Platform::LinuxGlibc => "libc",
        Platform::MacOs => "libsystem_malloc.dylib",
    }
}

/// The names allocators linked into a program under their own prefix give a catalog function,
/// with its arguments in the same places (the size where the catalog's probe reads it): mimalloc
/// (`mi_`, what Rust's `mimalloc` crate calls, `_aligned` with the alignment after the size) and
/// jemalloc built with a prefix (`_rjem_`, Rust's `tikv-jemallocator`; `mallocx`/`rallocx` take
/// flags after the size). A zeroing `mi_zalloc*` counts as `malloc`: its size is its first
/// argument, not a count times a size.
pub fn linked_in_names(function: &str) -> &'static [&'static str] {
    match function {
        "malloc" => &[
            "mi_malloc",
            "mi_malloc_aligned",
            "mi_zalloc",
            "mi_zalloc_aligned",
            "_rjem_malloc",
            "_rjem_mallocx",
        ],
        "calloc" => &["mi_calloc", "_rjem_calloc"],
        "realloc" => &[
            "mi_realloc",
            "mi_realloc_aligned",
            "_rjem_realloc",
            "_rjem_rallocx",
        ],
        "posix_memalign" => &["mi_posix_memalign", "_rjem_posix_memalign"],
        "aligned_alloc" => &["mi_aligned_alloc", "_rjem_aligned_alloc"],
        _ => &[],
    }
}

/// The allocation functions probed by default on `platform`.
///
/// ```
/// use allocflame_core::probes::{catalog, Platform, SizeArg};
/// let linux = catalog(Platform::LinuxGlibc);
/// assert_eq!(linux[0].function, "malloc");
/// assert_eq!(linux[1].size, SizeArg::Product(0, 1)); // calloc(n, size)
/// assert!(catalog(Platform::MacOs).iter().any(|p| p.function == "malloc_type_malloc"));
/// ```
pub fn catalog(platform: Platform) -> Vec<Probe> {
    let table = match platform {
        Platform::LinuxGlibc => GLIBC,
        Platform::MacOs => MACOS,
    };
    let lib = allocator_library(platform);
    table
        .iter()
        .map(|&(f, size)| Probe::new(lib, f, size))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_probe_forms() {
        let p: Probe = "libswiftCore:swift_allocObject:1".parse().unwrap();
        assert_eq!(
            p,
            Probe::new("libswiftCore", "swift_allocObject", SizeArg::Arg(1))
        );
        let p: Probe = "/opt/x.so:my_alloc".parse().unwrap();
        assert_eq!(p.size, SizeArg::None);
        let p: Probe = "libc:my_calloc:arg0*arg1".parse().unwrap();
        assert_eq!(p.size, SizeArg::Product(0, 1));
        assert!("malloc".parse::<Probe>().is_err());
        assert!("libc:malloc:9".parse::<Probe>().is_err());
        assert_eq!(p.to_string(), "libc:my_calloc:arg0*arg1");
        let m = Probe::marker("/srv/bin/srv", "handle_request");
        assert_eq!(m.to_string(), "/srv/bin/srv:handle_request:marker");
        assert_eq!(m.to_string().parse::<Probe>().unwrap(), m);
        assert!("/srv/bin/srv:handle_request:1:marker"
            .parse::<Probe>()
            .is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(SizeArg::Product(0, 1).size(&[3, 8]), 24);
        assert_eq!(SizeArg::Arg(2).size(&[0, 0, 64]), 64);
        assert_eq!(SizeArg::Arg(5).size(&[1]), 0);
    }
}
