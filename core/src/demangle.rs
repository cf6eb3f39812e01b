//! Demangling of Swift, C++ (Itanium) and Rust (legacy and v0) names behind one interface.
//!
//! Swift names go through the `swift-demangle` crate (ours, memory-safe), C++ through
//! `cpp_demangle`, Rust through `rustc-demangle`. A name that cannot be demangled stays as it
//! was; nothing here panics or runs without bound on any input: inputs and outputs are capped,
//! and `cpp_demangle` runs with recursion limits and a writer that stops at a size cap.

use std::borrow::Cow;
use std::fmt;

use crate::profile::Profile;

/// How names are demangled.
#[derive(Clone, Copy, Debug)]
pub struct DemangleOptions {
    /// Print Swift names the way `swift demangle --simplified` does. Default is `true`.
    pub simplified: bool,
    /// Print C++ parameter lists and return types (`f(int, char const*)` rather than `f`),
    /// as `c++filt` does. Default is `false`: flame graph frames stay short, as perf prints them.
    pub cpp_parameters: bool,
}

impl Default for DemangleOptions {
    fn default() -> Self {
        DemangleOptions {
            simplified: true,
            cpp_parameters: false,
        }
    }
}

impl DemangleOptions {
    /// Everything in full: Swift as `swift demangle`, C++ as `c++filt`.
    pub fn full() -> Self {
        DemangleOptions {
            simplified: false,
            cpp_parameters: true,
        }
    }
}

/// Longest mangled name handed to a demangler; longer tokens are left alone.
const MAX_SYMBOL_LEN: usize = 8192;
/// Longest demangled C++ name; `cpp_demangle` output can grow exponentially through
/// back-references, so the writer gives up past this size.
const MAX_CPP_OUTPUT: usize = 64 * 1024;

/// Demangles one symbol, or `None` if it is not a mangled name this module knows.
pub fn demangle_symbol(name: &str, options: &DemangleOptions) -> Option<String> {
    if name.len() > MAX_SYMBOL_LEN || name.len() < 3 {
        return None;
    }
    if swift_demangle::is_swift_symbol(name) {
        let o = swift_demangle::Options {
            simplified: options.simplified,
            ..Default::default()
        };
        return swift_demangle::demangle(name, &o);
    }
    // Mach-O adds one more leading underscore to every symbol.
    if let Some(rest) = name.strip_prefix('_') {
        if rest.starts_with("_T0") || rest.starts_with("$s") || rest.starts_with("$S") {
            let o = swift_demangle::Options {
                simplified: options.simplified,
                ..Default::default()
            };
            return swift_demangle::demangle(rest, &o);
        }
    }
    if name.starts_with("_R") {
        return demangle_rust(name);
    }
    if name.starts_with("_ZN") && looks_like_rust_legacy(name) {
        if let Some(d) = demangle_rust(name) {
            return Some(d);
        }
    }
    if name.starts_with("_Z") {
        return demangle_cpp(name, options);
    }
    if let Some(rest) = name.strip_prefix('_') {
        if rest.starts_with("_Z") {
            return demangle_cpp(rest, options);
        }
    }
    None
}

/// Rust legacy names are `_ZN…17h<16 hex digits>E` (possibly with a `.llvm.…` suffix). The
/// names themselves may hold dots (`_$LT$mimalloc..MiMalloc$u20$as…`): the hash is found at the
/// end or before a dot.
fn looks_like_rust_legacy(name: &str) -> bool {
    let is_hash_end = |end: usize| {
        end >= 20 && name.as_bytes()[end - 1] == b'E' && name.is_char_boundary(end - 20) && {
            let h = &name[end - 20..end - 1];
            h.starts_with("17h") && h[3..].bytes().all(|b| b.is_ascii_hexdigit())
        }
    };
    is_hash_end(name.len()) || name.match_indices('.').any(|(i, _)| is_hash_end(i))
}

fn demangle_rust(name: &str) -> Option<String> {
    let d = rustc_demangle::try_demangle(name).ok()?;
    // `{:#}` drops the hash, as perf and FlameGraph tools show Rust frames.
    let s = format!("{d:#}");
    if s == name {
        None
    } else {
        Some(s)
    }
}

/// A `fmt::Write` that fails once more than `cap` bytes were written.
struct Capped {
    out: String,
    cap: usize,
}

impl fmt::Write for Capped {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.out.len() + s.len() > self.cap {
            return Err(fmt::Error);
        }
        self.out.push_str(s);
        Ok(())
    }
}

fn demangle_cpp(name: &str, options: &DemangleOptions) -> Option<String> {
    // cpp_demangle bounds its recursion with these limits (its documented defaults, safe
    // even in a debug build) and our writer bounds the output. `catch_unwind` is a last resort: cpp_demangle has had panics on
    // fuzzed input in the past, and one odd symbol in a profile must not take the profiler
    // down. It does not help against stack overflow, which the limits prevent.
    let parse = cpp_demangle::ParseOptions::default().recursion_limit(96);
    let mut opts = cpp_demangle::DemangleOptions::new().recursion_limit(128);
    if !options.cpp_parameters {
        opts = opts.no_params().no_return_type();
    }
    std::panic::catch_unwind(|| {
        let sym = cpp_demangle::Symbol::new_with_options(name.as_bytes(), &parse).ok()?;
        let mut w = Capped {
            out: String::new(),
            cap: MAX_CPP_OUTPUT,
        };
        sym.structured_demangle(&mut w, &opts).ok()?;
        Some(w.out)
    })
    .ok()
    .flatten()
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b == b'.'
}

/// Whether a mangled name may start at `s` (the byte before it is not part of a word).
fn mangled_start(s: &[u8]) -> bool {
    const STARTS: &[&[u8]] = &[
        b"_Z",
        b"__Z",
        b"_R",
        b"$s",
        b"$S",
        b"$e",
        b"_$s",
        b"_$S",
        b"_$e",
        b"_T",
        b"__T0",
        b"@__swiftmacro_",
    ];
    STARTS.iter().any(|p| s.starts_with(p))
}

/// Replaces every mangled name found in `text`.
///
/// A candidate starts at `_Z`, `_R`, `$s`, `_T`… after a non-word character (start of text,
/// space, `;`, `` ` ``, `(`…) and runs over letters, digits, `_`, `$` and `.`; it is replaced
/// only if it demangles (a trailing `.suffix` that does not demangle is kept as it was), so
/// ordinary words stay unchanged.
pub fn demangle_text<'a>(text: &'a str, options: &DemangleOptions) -> Cow<'a, str> {
    let b = text.as_bytes();
    if !b.iter().any(|&c| c == b'_' || c == b'$' || c == b'@') {
        return Cow::Borrowed(text);
    }
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut i = 0;
    while i < b.len() {
        let at_boundary = i == 0 || !(is_token_byte(b[i - 1]) || b[i - 1] == b'@');
        if !at_boundary || !mangled_start(&b[i..]) {
            i += 1;
            continue;
        }
        let start = i;
        let mut end = i;
        if b[end] == b'@' {
            end += 1;
        }
        while end < b.len() && is_token_byte(b[end]) {
            end += 1;
        }
        // Try the whole token, then without trailing `.xxx` parts.
        let mut cand_end = end;
        let mut found = None;
        for _ in 0..4 {
            let cand = &text[start..cand_end];
            if let Some(d) = demangle_symbol(cand, options) {
                found = Some((d, cand_end));
                break;
            }
            match cand.rfind('.') {
                Some(p) if p > 0 => cand_end = start + p,
                _ => break,
            }
        }
        if let Some((d, e)) = found {
            let o = out.get_or_insert_with(|| String::with_capacity(text.len() + 32));
            o.push_str(&text[copied..start]);
            o.push_str(&d);
            copied = e;
            i = e;
        } else {
            i = end.max(i + 1);
        }
    }
    match out {
        None => Cow::Borrowed(text),
        Some(mut o) => {
            o.push_str(&text[copied..]);
            Cow::Owned(o)
        }
    }
}

/// Demangles every frame of a profile.
pub fn demangle_profile(profile: &Profile, options: &DemangleOptions) -> Profile {
    profile.map_frames(|f| demangle_text(f, options))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> DemangleOptions {
        DemangleOptions::full()
    }

    #[test]
    fn swift_full_and_simplified() {
        assert_eq!(
            demangle_symbol("$s4main5helloyySiF", &full()).as_deref(),
            Some("main.hello(Swift.Int) -> ()")
        );
        assert_eq!(
            demangle_symbol("$s4main5helloyySiF", &DemangleOptions::default()).as_deref(),
            Some("hello(_:)")
        );
    }

    #[test]
    fn cpp_and_rust() {
        assert_eq!(
            demangle_symbol("_ZN3foo3barEv", &full()).as_deref(),
            Some("foo::bar()")
        );
        assert_eq!(
            demangle_symbol("_ZN4core3fmt5write17h0123456789abcdefE", &full()).as_deref(),
            Some("core::fmt::write")
        );
        assert_eq!(
            demangle_symbol("_RNvCs1234_7mycrate3foo", &full()).as_deref(),
            Some("mycrate::foo")
        );
        // Dots inside the names (`..` is `::`), and an LLVM suffix after the hash.
        let impl_name = "_ZN71_$LT$mimalloc..MiMalloc$u20$as$u20$core..alloc..global..GlobalAlloc$GT$5alloc17h9f7d62802636edccE";
        assert_eq!(
            demangle_symbol(impl_name, &full()).as_deref(),
            Some("<mimalloc::MiMalloc as core::alloc::global::GlobalAlloc>::alloc")
        );
        assert_eq!(
            demangle_symbol(&format!("{impl_name}.llvm.123"), &full()).as_deref(),
            Some("<mimalloc::MiMalloc as core::alloc::global::GlobalAlloc>::alloc")
        );
    }

    #[test]
    fn text_replaces_only_mangled_names() {
        let o = full();
        assert_eq!(
            demangle_text("main;_ZN3foo3barEv;malloc 12", &o),
            "main;foo::bar();malloc 12"
        );
        assert_eq!(
            demangle_text("libfoo.so`_ZN3foo3barEv+0x12", &o),
            "libfoo.so`foo::bar()+0x12"
        );
        assert_eq!(
            demangle_text("  7f12 $s4main5helloyySiF+0x1c (/tmp/a.out)", &o),
            "  7f12 main.hello(Swift.Int) -> ()+0x1c (/tmp/a.out)"
        );
        for plain in [
            "_Toggle the _Zebra",
            "a_Z b$sX",
            "_Tt",
            "hello world",
            "$sfoo",
            "_R",
        ] {
            assert_eq!(demangle_text(plain, &o), plain);
        }
    }

    #[test]
    fn cpp_pathological_names_are_bounded() {
        let o = full();
        // Template arguments that refer back to everything before them: the output doubles
        // with every level, so it must hit the size cap and stay mangled.
        let mut exp = String::from("_Z1fI");
        for _ in 0..40 {
            exp.push_str("NS_");
        }
        exp.push_str("EvT_");
        let _ = demangle_symbol(&exp, &o);
        let mut nested = String::from("_Z1f");
        for _ in 0..5000 {
            nested.push('P');
        }
        nested.push('i');
        assert_eq!(demangle_symbol(&nested, &o), None);
        let mut subst = String::from("_Z1fI1A");
        for i in 0..60 {
            subst.push_str(&format!("S{}_", i.min(35)));
        }
        subst.push_str("EvT_");
        let r = demangle_symbol(&subst, &o);
        assert!(r.map(|s| s.len() <= MAX_CPP_OUTPUT).unwrap_or(true));
    }

    #[test]
    fn never_panics_on_garbage() {
        let o = full();
        let mut x: u64 = 0x9e3779b97f4a7c15;
        let alphabet = b"_ZRT$s0123456789NESaAbBcCdDfFgGiIlLmMnNoOpPqQrRtTuUvVwWxXyYzZ.;`";
        for _ in 0..20_000 {
            let mut s = String::new();
            let len = (x % 40) as usize;
            for _ in 0..len {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                s.push(alphabet[(x % alphabet.len() as u64) as usize] as char);
            }
            let _ = demangle_text(&s, &o);
            let _ = demangle_symbol(&s, &o);
        }
    }

    #[test]
    fn cpp_parameters_only_when_asked() {
        let short = demangle_symbol("_ZN3foo3barEic", &DemangleOptions::default());
        assert_eq!(short.as_deref(), Some("foo::bar"));
        let long = demangle_symbol("_ZN3foo3barEic", &DemangleOptions::full());
        assert_eq!(long.as_deref(), Some("foo::bar(int, char)"));
    }
}
