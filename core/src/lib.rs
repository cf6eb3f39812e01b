//! # allocflame-core
//!
//! The platform-independent heart of allocflame: the folded-stack [`Profile`] model, the
//! [`source::EventSource`] trait that every backend implements, the probe catalog
//! ([`probes`]), importers of existing captures (`perf script`, DTrace, folded files),
//! demangling of Swift, C++ and Rust names, prettify rules, and rendering through inferno, all
//! chained by [`pipeline`]: raw stacks → symbolize → profile → demangle → rules → filters →
//! outputs (folded, SVG, [`pprof`], and [`push`] to a Pyroscope-compatible server).
//!
//! It knows nothing of any particular kernel facility: backends live in their own crates.
//!
//! ```
//! use allocflame_core::{import, render, Profile, WeightKind};
//! let text = "prog;main;work;malloc 7\nprog;main;calloc 3\n";
//! let profile = import::read_bytes(text.as_bytes(), "example.folded", None).unwrap();
//! assert_eq!(profile.total().allocs, 10);
//! let mut svg = Vec::new();
//! render::flamegraph(&profile, &render::RenderOptions::default(), &mut svg).unwrap();
//! assert!(String::from_utf8(svg).unwrap().contains("allocations"));
//! ```

#![forbid(unsafe_code)]

pub mod budget;
pub mod demangle;
pub mod error;
pub mod html;
pub mod import;
pub mod once;
pub mod pipeline;
pub mod pprof;
pub mod prettify;
pub mod probes;
pub mod profile;
pub mod push;
pub mod render;
pub mod report;
pub mod sites;
pub mod source;
pub mod symbolize;

pub use error::{Error, Result};
pub use profile::{FrameId, Labels, Profile, Weight, WeightKind};
