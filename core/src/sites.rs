//! Allocation sites: the code that asked for memory, found above the allocation machinery.
//!
//! Every recorded stack ends in the allocator that was probed (`malloc`, `swift_allocObject`).
//! Above it sit more functions whose only job is to allocate: the other entries of the
//! allocator (`__libc_malloc`, `operator new`), relays (`strdup`, `swift_slowAlloc`,
//! `CRYPTO_malloc`) and the collection machinery of the standard libraries that grows a buffer
//! (`std::vector<…>::_M_realloc_insert`, `Swift._ArrayBuffer…`, `alloc::raw_vec::…`). The
//! **site** of a stack is the first frame above all that: the function a developer changes to
//! allocate less. [`Machinery`] is the one list; `alloc: NAME` lines of a rule file extend it.
//!
//! ```
//! use allocflame_core::sites::Machinery;
//! let m = Machinery::default();
//! let stack = ["app", "main", "Store::put", "std::vector<int>::_M_realloc_insert",
//!              "std::__new_allocator<int>::allocate", "operator new", "malloc"];
//! assert_eq!(m.site(&stack), Some(2), "Store::put asked for the memory");
//! assert_eq!(m.site(&["app", "main", "strdup", "malloc"]), Some(1));
//! ```

/// Functions that allocate for their caller: a frame with one of these names is never a site.
/// The names are compared after demangling (`operator new`) and as the binaries spell them
/// (`_Znwm`), with glibc's `__libc_`/`__GI_` spellings reduced as
/// [`base_name`](crate::once::base_name) does.
/// The catalogs' allocators of every platform ([`crate::probes::is_catalog_function`]) are
/// machinery too.
const ALLOCATORS: &[&str] = &[
    // glibc's internals below its entries.
    "int_malloc",
    "int_realloc",
    "int_memalign",
    "tcache_init",
    "malloc_hook_ini",
    // glibc relays: the copy is the caller's request.
    "strdup",
    "strndup",
    "wcsdup",
    "asprintf",
    "vasprintf",
    "vasprintf_internal",
    "open_memstream",
    // glibc's stdio buffers: allocated for the caller's first printf, puts or fwrite.
    "IO_file_doallocate",
    "IO_doallocbuf",
    "IO_new_file_overflow",
    "IO_new_file_xsputn",
    "IO_file_xsputn",
    "IO_file_overflow",
    "IO_switch_to_get_mode",
    "IO_new_file_underflow",
    "IO_file_underflow",
    "IO_default_uflow",
    "IO_getline",
    "IO_getline_info",
    "IO_new_fopen",
    "IO_new_fdopen",
    "fopen_internal",
    "printf_buffer_flush_to_file",
    "printf_buffer_to_file_done",
    "vfprintf_internal",
    "outstring_func",
    "printf_positional",
    "printf",
    "fprintf",
    "vfprintf",
    "puts",
    "IO_puts",
    "fputs",
    "IO_fputs",
    "fwrite",
    "IO_fwrite",
    "getline",
    "getdelim",
    "IO_getdelim",
    // The Swift runtime.
    "swift_allocObject",
    "swift_slowAlloc",
    "swift_allocBox",
    "swift_allocEmptyBox",
    "swift_bufferAllocate",
    "swift_slowAllocTyped",
    "swift_coroFrameAlloc",
    "swift_task_alloc",
    "swift_job_allocate",
    // Rust's global allocator (v0 symbols demangle to `__rustc::__rust_alloc`).
    "__rustc::__rust_alloc",
    "__rustc::__rust_alloc_zeroed",
    "__rustc::__rust_realloc",
    "__rust_alloc",
    "__rust_alloc_zeroed",
    "__rust_realloc",
    "__rdl_alloc",
    "__rdl_alloc_zeroed",
    "__rdl_realloc",
    "rust_alloc",
    "rust_alloc_zeroed",
    "rust_realloc",
    // Allocation wrappers of common C libraries and runtimes.
    "xmalloc",
    "xcalloc",
    "xrealloc",
    "xstrdup",
    "g_malloc",
    "g_malloc0",
    "g_realloc",
    "g_try_malloc",
    "g_try_malloc0",
    "g_strdup",
    "CRYPTO_malloc",
    "CRYPTO_zalloc",
    "CRYPTO_realloc",
    "CRYPTO_clear_realloc",
    "CRYPTO_strdup",
    "CRYPTO_strndup",
    "CRYPTO_memdup",
    "Perl_safesysmalloc",
    "Perl_safesyscalloc",
    "Perl_safesysrealloc",
    "PyMem_Malloc",
    "PyMem_Calloc",
    "PyMem_Realloc",
    "PyMem_RawMalloc",
    "PyMem_RawCalloc",
    "PyMem_RawRealloc",
    "PyObject_Malloc",
    "PyObject_Calloc",
    "PyObject_Realloc",
    "_PyObject_Malloc",
    "_PyObject_Calloc",
    "_PyObject_Realloc",
    "_PyMem_RawMalloc",
    "_PyMem_RawCalloc",
    "_PyMem_RawRealloc",
    "_PyMem_DebugRawMalloc",
    "_PyMem_DebugRawCalloc",
    "_PyMem_DebugRawRealloc",
];

/// Name prefixes of the standard libraries' collection machinery. An unbroken run of such
/// frames right above the allocator belongs to it (a `std::vector` growing its buffer); the
/// frame above the run asked. Frames of these libraries elsewhere in a stack are the program's.
const LIBRARY_PREFIXES: &[&str] = &[
    "std::",
    "__gnu_cxx::",
    "__cxxabiv1::",
    "alloc::",
    "core::",
    "hashbrown::",
    "Swift.",
    // Unnamed frames of the libraries themselves (stripped binaries).
    "libstdc++.so",
    "libc++.so",
    "libswiftCore.so",
];

/// Frames that start every program or thread: never the program's own functions.
const ENTRY_POINTS: &[&str] = &[
    "_start",
    "__libc_start_main",
    "__libc_start_main_impl",
    "__libc_start_main_alias_2",
    "__libc_start_call_main",
    "start_thread",
    "clone",
    "clone3",
    "_dl_start_user",
    "_dl_start",
    "_dl_init",
    "call_init",
    "_pthread_start",
    "thread_start",
    "start",
];

/// Which frames allocate on the program's behalf. Default is the built-in list; rule files add
/// names with `alloc: NAME` lines.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Machinery {
    /// Frame names added to the built-in list (exact names as the graph writes them).
    pub extra: Vec<String>,
}

impl Machinery {
    /// Whether a frame named `name` allocates for its caller.
    pub fn contains(&self, name: &str) -> bool {
        if self.extra.iter().any(|e| e == name) {
            return true;
        }
        let name = name.strip_prefix('<').unwrap_or(name);
        if name.starts_with("operator new")
            || name.starts_with("_Znw")
            || name.starts_with("_Zna")
            || name.starts_with("operator delete")
            // A Rust global allocator (`<mimalloc::MiMalloc as …::GlobalAlloc>::alloc`).
            || name.contains("GlobalAlloc>::")
            // A Swift class's allocating initializer, made by the compiler: `Node(…)` in the
            // caller's source is the request.
            || name.contains(".__allocating_init(")
            || (name.starts_with("$s") && Machinery::swift_allocating_init(name))
        {
            return true;
        }
        // `__GI___libc_malloc`, `malloc@plt`, `_int_malloc`: the catalog's spellings.
        let base = crate::once::base_name(name);
        let base = base.strip_prefix('_').unwrap_or(base);
        ALLOCATORS.contains(&name)
            || ALLOCATORS.contains(&base)
            || crate::probes::is_catalog_function(base)
    }

    /// Whether the mangled Swift `name` is an allocating initializer (`…fC`, also specialized:
    /// `…fCSi_Tgm5`), as `--no-demangle` leaves it.
    fn swift_allocating_init(name: &str) -> bool {
        crate::demangle::demangle_symbol(name, &crate::demangle::DemangleOptions::default())
            .is_some_and(|d| d.contains(".__allocating_init("))
    }

    /// Whether `name` is a frame of a standard library's collection machinery.
    /// A trait method's frame is the library's when its type is, or when the trait is and the
    /// type is a builtin one (`<u8 as alloc::vec::spec_from_elem::SpecFromElem>::from_elem`);
    /// `<app::Thing as core::fmt::Display>::fmt` is the program's.
    fn library(name: &str) -> bool {
        let of_library = |n: &str| LIBRARY_PREFIXES.iter().any(|p| n.starts_with(p));
        let name = name.strip_prefix("specialized ").unwrap_or(name);
        match name.strip_prefix('<') {
            Some(inner) => {
                of_library(inner)
                    || inner
                        .split_once(" as ")
                        .is_some_and(|(ty, tr)| !ty.contains("::") && of_library(tr))
            }
            None => of_library(name),
        }
    }

    /// The index of the allocation site in `frames` (root first; index 0 names the process):
    /// the first frame above the leaf (the probed allocator), the other machinery, and the run
    /// of standard-library frames right above them. A stack whose frames are all machinery up
    /// to a library run that reaches the root gets the first frame above the machinery; a
    /// stack of machinery alone has none.
    pub fn site<S: AsRef<str>>(&self, frames: &[S]) -> Option<usize> {
        if frames.len() < 2 {
            return None;
        }
        let mut i = frames.len() - 1;
        // The leaf is the probe that fired, whatever its name.
        while i > 1 && self.contains(frames[i - 1].as_ref()) {
            i -= 1;
        }
        if i <= 1 {
            return None;
        }
        let above = i - 1;
        let mut j = above;
        while j > 1 && Machinery::library(frames[j].as_ref()) {
            j -= 1;
        }
        if Machinery::library(frames[j].as_ref()) {
            Some(above)
        } else {
            Some(j)
        }
    }

    /// Whether a frame is the program's own function, for the ranking by total: named (not
    /// `libfoo.so+0x1234`), not an entry point, not machinery.
    pub fn is_program(&self, name: &str) -> bool {
        let unnamed = name.contains("+0x") || name.starts_with('[');
        !unnamed && !ENTRY_POINTS.contains(&name) && !self.contains(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sites_of_c_cpp_swift_and_rust_stacks() {
        let m = Machinery::default();
        let s = |f: &[&str]| m.site(f).map(|i| f[i].to_owned());
        assert_eq!(
            s(&["p", "_start", "main", "parse", "__GI___libc_malloc"]).as_deref(),
            Some("parse")
        );
        assert_eq!(
            s(&["p", "main", "handle", "_Znwm", "malloc"]).as_deref(),
            Some("handle")
        );
        assert_eq!(
            s(&[
                "p",
                "main",
                "split_words",
                "std::basic_string<char>::_M_construct",
                "operator new",
                "malloc"
            ])
            .as_deref(),
            Some("split_words")
        );
        assert_eq!(
            s(&[
                "p",
                "Server.respond()",
                "Swift._ContiguousArrayBuffer.init()",
                "swift_allocObject",
                "swift_slowAlloc",
                "malloc"
            ])
            .as_deref(),
            Some("Server.respond()")
        );
        assert_eq!(
            s(&[
                "p",
                "app::load",
                "alloc::raw_vec::RawVec<T>::grow_one",
                "__rust_alloc",
                "malloc"
            ])
            .as_deref(),
            Some("app::load")
        );
        assert_eq!(
            s(&["p", "std::thread::run", "operator new", "malloc"]).as_deref(),
            Some("std::thread::run"),
            "a library run up to the root: its leaf-most frame"
        );
        assert_eq!(
            s(&[
                "p",
                "app::make_box",
                "alloc::boxed::Box<T>::new",
                "<alloc::alloc::Global as core::alloc::Allocator>::allocate",
                "__rustc::__rust_alloc",
                "<mimalloc::MiMalloc as core::alloc::global::GlobalAlloc>::alloc",
                "malloc"
            ])
            .as_deref(),
            Some("app::make_box"),
            "a global allocator and the functions inlined into the caller"
        );
        assert_eq!(
            s(&[
                "p",
                "app::make_zeroed",
                "alloc::vec::from_elem",
                "<u8 as alloc::vec::spec_from_elem::SpecFromElem>::from_elem",
                "__rustc::__rust_alloc_zeroed",
                "malloc"
            ])
            .as_deref(),
            Some("app::make_zeroed"),
            "a library trait's impl for a builtin type"
        );
        assert_eq!(
            s(&[
                "p",
                "app::main",
                "<app::Thing as core::fmt::Display>::fmt",
                "alloc::fmt::format",
                "__rustc::__rust_alloc",
                "malloc"
            ])
            .as_deref(),
            Some("<app::Thing as core::fmt::Display>::fmt"),
            "the program's impl of a library trait"
        );
        assert_eq!(
            s(&[
                "p",
                "makeNodes(_:)",
                "Node.__allocating_init(_:_:)",
                "swift_allocObject",
                "swift_slowAlloc",
                "malloc"
            ])
            .as_deref(),
            Some("makeNodes(_:)")
        );
        assert_eq!(
            s(&[
                "p",
                "$s4main9makeBoxesySayAA3BoxCySiGGSiF",
                "$s4main3BoxCyACyxGxcfCSi_Tgm5",
                "swift_allocObject",
                "malloc"
            ])
            .as_deref(),
            Some("$s4main9makeBoxesySayAA3BoxCySiGGSiF"),
            "mangled, specialized"
        );
        assert_eq!(s(&["p", "malloc"]), None);
        assert_eq!(s(&["p", "strdup", "malloc"]), None);
        assert_eq!(
            s(&["p", "main", "my_alloc"]).as_deref(),
            Some("main"),
            "the leaf is the probe, whatever its name"
        );
        let m = Machinery {
            extra: vec!["pool_get".into()],
        };
        assert_eq!(m.site(&["p", "main", "pool_get", "malloc"]), Some(1));
    }

    #[test]
    fn entry_points_are_not_the_program() {
        let m = Machinery::default();
        assert!(!m.is_program("_start"));
        assert!(!m.is_program("__libc_start_call_main"));
        assert!(!m.is_program("malloc"));
        assert!(m.is_program("main"));
        assert!(!m.is_program("libc.so.6+0x29ca7"));
        assert!(!m.is_program("[unknown 0x1234]"));
        assert!(!m.is_program("__GI__IO_file_doallocate"));
    }
}
