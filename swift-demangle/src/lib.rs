//! A memory-safe Swift symbol demangler.
//!
//! It turns mangled Swift names (`$s4main3fooyyF`, `_T0…`, the pre-Swift-4
//! `_T…` form, `@__swiftmacro_…`) into readable text, either in full like
//! `swift demangle` or simplified like `swift demangle --simplified`.
//!
//! It is written for tools that read names from arbitrary binaries
//! (profilers, symbolizers): no input makes it panic, recurse without bound
//! or allocate without bound. A name that cannot be demangled gives `None`.
//! It does not resolve symbolic references (the `\x01`… forms used inside
//! metadata), and it is not a remangler.
//!
//! ```
//! use swift_demangle::{demangle, Options};
//!
//! let full = demangle("$s4main5helloyySiF", &Options::default()).unwrap();
//! assert_eq!(full, "main.hello(Swift.Int) -> ()");
//! let short = demangle("$s4main5helloyySiF", &Options { simplified: true, ..Options::default() });
//! assert_eq!(short.as_deref(), Some("hello(_:)"));
//! ```

#![forbid(unsafe_code)]

mod node;
mod old;
mod parse;
mod print;
mod punycode;

use std::cell::RefCell;

use node::{Arena, NodeId};
use print::{Printer, Style};

/// How to print a demangled name.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Print like `swift demangle --simplified`: no module names, no
    /// argument types, short thunk names. Default is `false`.
    pub simplified: bool,
    /// Longest output, in bytes, before demangling gives up. Default is
    /// 65536.
    pub max_output: usize,
    /// Most tree nodes one name may build. Default is 65536.
    pub max_nodes: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            simplified: false,
            max_output: 1 << 16,
            max_nodes: 1 << 16,
        }
    }
}

/// Most stack, in bytes, one demangling may use (besides the depth limits):
/// debug builds have large frames, and profilers demangle on worker threads
/// with small stacks.
pub(crate) const STACK_BUDGET: usize = 384 * 1024;

/// The address of a local: where the stack is now.
#[inline(never)]
pub(crate) fn stack_position() -> usize {
    let marker = 0u8;
    std::hint::black_box(&marker) as *const u8 as usize
}

/// Longest input accepted; longer names are left alone.
pub const MAX_INPUT_LEN: usize = 1 << 15;

/// Whether `name` starts like a Swift mangled name (it may still fail to
/// demangle).
pub fn is_swift_symbol(name: &str) -> bool {
    prefix(name).is_some()
}

#[derive(Clone, Copy, PartialEq)]
enum Scheme {
    /// Swift 4+ mangling; `bool` = the `_T0` form, which labels tuple
    /// elements the old way.
    New(bool),
    Old,
    OldType,
}

fn prefix(name: &str) -> Option<(usize, Scheme)> {
    const NEW: &[(&str, bool)] = &[
        ("_T0", true),
        ("$s", false),
        ("$S", false),
        ("$e", false),
        ("_$s", false),
        ("_$S", false),
        ("_$e", false),
        ("@__swiftmacro_", false),
    ];
    for &(p, old_fn) in NEW {
        if name.starts_with(p) {
            return Some((p.len(), Scheme::New(old_fn)));
        }
    }
    if let Some(rest) = name.strip_prefix("_Tt") {
        let _ = rest;
        return Some((3, Scheme::OldType));
    }
    if name.starts_with("_T") {
        return Some((2, Scheme::Old));
    }
    None
}

/// Demangles `name`, or `None` if it is not a Swift mangled name this
/// demangler understands (the caller then shows it unchanged).
pub fn demangle(name: &str, options: &Options) -> Option<String> {
    let style = if options.simplified {
        Style::simplified()
    } else {
        Style::full()
    };
    demangle_with(name, options, style, 0)
}

pub(crate) fn demangle_nested(
    name: &str,
    options: &Options,
    style: Style,
    nesting: u32,
) -> Option<String> {
    demangle_with(name, options, style, nesting)
}

fn demangle_with(name: &str, options: &Options, style: Style, nesting: u32) -> Option<String> {
    if name.len() > MAX_INPUT_LEN {
        return None;
    }
    let (plen, scheme) = prefix(name)?;
    // One arena per thread, reused: allocation would otherwise dominate.
    // A nested demangling (specialization payloads) finds it borrowed and
    // uses a fresh one.
    thread_local! {
        static ARENA: RefCell<Arena> = RefCell::new(Arena::new(0));
    }
    let stack_base = stack_position();
    let run = |arena: &mut Arena| {
        arena.clear();
        arena.max_nodes = options.max_nodes;
        let root = parse_tree(arena, name, plen, scheme, nesting, stack_base)?;
        let mut pr = Printer::new(arena, style, options.max_output);
        pr.nesting = nesting;
        pr.stack_base = stack_base;
        pr.p(root, 0);
        if pr.invalid || pr.out.is_empty() {
            return None;
        }
        Some(pr.out)
    };
    ARENA
        .try_with(|cell| match cell.try_borrow_mut() {
            Ok(mut arena) => {
                let r = run(&mut arena);
                // Do not keep a huge arena alive after a pathological input.
                if arena.nodes.capacity() > 1 << 14 || arena.text.capacity() > 1 << 16 {
                    *arena = Arena::new(0);
                }
                r
            }
            Err(_) => run(&mut Arena::new(options.max_nodes)),
        })
        .unwrap_or_else(|_| run(&mut Arena::new(options.max_nodes)))
}

fn parse_tree(
    arena: &mut Arena,
    name: &str,
    plen: usize,
    scheme: Scheme,
    nesting: u32,
    stack_base: usize,
) -> Option<NodeId> {
    // Every prefix is ASCII, so `plen` is a char boundary.
    let rest_str = name.get(plen..)?;
    let rest = rest_str.as_bytes();
    match scheme {
        Scheme::New(old_fn) => {
            let mut p = parse::Parser::new(arena, rest_str, old_fn);
            p.nesting = nesting;
            p.parse_symbol()
        }
        Scheme::Old => old::parse_symbol(arena, rest, stack_base),
        Scheme::OldType => old::parse_type_symbol(arena, rest, stack_base),
    }
}
