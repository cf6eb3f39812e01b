//! Turns a node tree into text, in full or simplified form.
//!
//! The printer recurses over the tree; the tree depth is bounded by
//! [`MAX_DEPTH`] here, the output length by `max_output`, and the number of
//! visited nodes by a step budget, because substitutions make the tree a
//! DAG whose expansion can be exponential in the input length.
//!
//! This module holds the output helpers, the budget checks and the entry
//! point [`Printer::print`]; the node kinds are printed by area:
//! [`entities`], [`types`], [`functions`] (function and SIL function
//! types), [`generics`] (signatures, dependent types, conformances),
//! [`specializations`] (with automatic differentiation), [`thunks`] (and
//! other code symbols, macro expansions) and [`metadata`] (witness tables,
//! metadata, descriptors).

mod entities;
mod functions;
mod generics;
mod metadata;
mod specializations;
mod thunks;
mod types;

use crate::node::{Arena, Kind, NodeId};

pub(crate) const MAX_DEPTH: u32 = 192;

/// Function-signature specialization parameter kinds and flags.
pub(crate) mod spec_kind {
    pub const CONST_FUNCTION: u64 = 0;
    pub const CONST_GLOBAL: u64 = 1;
    pub const CONST_INTEGER: u64 = 2;
    pub const CONST_FLOAT: u64 = 3;
    pub const CONST_STRING: u64 = 4;
    pub const CLOSURE_PROP: u64 = 5;
    pub const BOX_TO_VALUE: u64 = 6;
    pub const BOX_TO_STACK: u64 = 7;
    pub const IN_OUT_TO_OUT: u64 = 8;
    pub const CONST_KEYPATH: u64 = 9;
    pub const DEAD: u64 = 1 << 6;
    pub const OWNED_TO_GUARANTEED: u64 = 1 << 7;
    pub const SROA: u64 = 1 << 8;
    pub const GUARANTEED_TO_OWNED: u64 = 1 << 9;
    pub const EXISTENTIAL_TO_GENERIC: u64 = 1 << 10;
}

/// Value witness codes and names, in index order.
pub(crate) const VALUE_WITNESSES: &[(&str, &str)] = &[
    ("al", "allocateBuffer"),
    ("ca", "assignWithCopy"),
    ("ta", "assignWithTake"),
    ("de", "deallocateBuffer"),
    ("xx", "destroy"),
    ("XX", "destroyBuffer"),
    ("Xx", "destroyArray"),
    ("CP", "initializeBufferWithCopyOfBuffer"),
    ("Cp", "initializeBufferWithCopy"),
    ("cp", "initializeWithCopy"),
    ("Tk", "initializeBufferWithTake"),
    ("tk", "initializeWithTake"),
    ("pr", "projectBuffer"),
    ("TK", "initializeBufferWithTakeOfBuffer"),
    ("Cc", "initializeArrayWithCopy"),
    ("Tt", "initializeArrayWithTakeFrontToBack"),
    ("tT", "initializeArrayWithTakeBackToFront"),
    ("xs", "storeExtraInhabitant"),
    ("xg", "getExtraInhabitantIndex"),
    ("ug", "getEnumTag"),
    ("up", "destructiveProjectEnumData"),
    ("ui", "destructiveInjectEnumTag"),
    ("et", "getEnumTagSinglePayload"),
    ("st", "storeEnumTagSinglePayload"),
];

/// What to print.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Style {
    pub sugar: bool,
    pub qualify: bool,
    pub extension_contexts: bool,
    pub unmangled_suffix: bool,
    pub module_names: bool,
    pub generic_specializations: bool,
    pub protocol_conformances: bool,
    pub where_clauses: bool,
    pub entity_types: bool,
    pub short_partial_apply: bool,
    pub short_thunk: bool,
    pub short_value_witness: bool,
    pub private_discriminators: bool,
    pub function_argument_types: bool,
    pub async_resume_partial: bool,
}

impl Style {
    pub fn full() -> Self {
        Style {
            sugar: true,
            qualify: true,
            extension_contexts: true,
            unmangled_suffix: true,
            module_names: true,
            generic_specializations: true,
            protocol_conformances: true,
            where_clauses: true,
            entity_types: true,
            short_partial_apply: false,
            short_thunk: false,
            short_value_witness: false,
            private_discriminators: true,
            function_argument_types: true,
            async_resume_partial: true,
        }
    }

    pub fn simplified() -> Self {
        Style {
            sugar: true,
            qualify: true,
            extension_contexts: false,
            unmangled_suffix: false,
            module_names: false,
            generic_specializations: false,
            protocol_conformances: false,
            where_clauses: false,
            entity_types: false,
            short_partial_apply: true,
            short_thunk: true,
            short_value_witness: true,
            private_discriminators: false,
            function_argument_types: false,
            async_resume_partial: false,
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum TypePr {
    No,
    Colon,
    FunctionStyle,
}

pub(crate) struct Printer<'a> {
    a: &'a Arena,
    o: Style,
    pub out: String,
    max_output: usize,
    steps: u32,
    pub invalid: bool,
    spec_prefix_printed: bool,
    /// Nested demangling of specialization payloads.
    pub nesting: u32,
    /// Stack position when demangling started (see `STACK_BUDGET`).
    pub stack_base: usize,
}

type R = Option<NodeId>;

impl<'a> Printer<'a> {
    pub fn new(a: &'a Arena, o: Style, max_output: usize) -> Self {
        Printer {
            a,
            o,
            out: String::with_capacity(256),
            max_output,
            steps: 0,
            invalid: false,
            spec_prefix_printed: false,
            nesting: 0,
            stack_base: crate::stack_position(),
        }
    }

    fn s(&mut self, t: &str) {
        if self.out.len() + t.len() > self.max_output {
            self.invalid = true;
            return;
        }
        self.out.push_str(t);
    }

    fn c(&mut self, ch: char) {
        if self.out.len() + 4 > self.max_output {
            self.invalid = true;
            return;
        }
        self.out.push(ch);
    }

    fn num(&mut self, n: u64) {
        // Decimal without a heap allocation.
        let mut buf = [0u8; 20];
        let mut i = buf.len();
        let mut v = n;
        loop {
            i -= 1;
            buf[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        if let Ok(t) = std::str::from_utf8(&buf[i..]) {
            self.s(t);
        }
    }

    fn k(&self, n: NodeId) -> Kind {
        self.a.kind(n)
    }

    fn ch(&mut self, n: NodeId, i: usize) -> Option<NodeId> {
        let c = self.a.child(n, i);
        if c.is_none() {
            self.invalid = true;
        }
        c
    }

    fn nch(&self, n: NodeId) -> usize {
        self.a.num_children(n)
    }

    fn text(&self, n: NodeId) -> &'a str {
        self.a.text(n)
    }

    fn child_of_kind(&self, n: NodeId, k: Kind) -> Option<NodeId> {
        self.a
            .children(n)
            .iter()
            .copied()
            .find(|&c| self.a.kind(c) == k)
    }

    fn children(&mut self, n: NodeId, sep: &str, depth: u32) {
        let ch = self.a.children(n);
        for (i, &c) in ch.iter().enumerate() {
            if i > 0 {
                self.s(sep);
            }
            self.p(c, depth);
        }
    }

    fn pc(&mut self, n: NodeId, i: usize, depth: u32) {
        if let Some(c) = self.ch(n, i) {
            self.p(c, depth);
        }
    }

    pub fn p(&mut self, n: NodeId, depth: u32) {
        self.print(n, depth, false);
    }

    fn is_swift_module(&self, n: NodeId) -> bool {
        self.k(n) == Kind::Module && self.text(n) == "Swift"
    }

    fn is_ident(&self, n: NodeId, s: &str) -> bool {
        self.k(n) == Kind::Identifier && self.text(n) == s
    }

    fn print_outlined(&mut self, n: NodeId, what: &str, depth: u32) {
        self.s(what);
        self.pc(n, 0, depth);
    }

    /// Prints node `n`. Returns a context still to be printed in postfix form.
    ///
    /// After the budget checks, the node goes down a chain of areas, each
    /// printing the kinds it knows and passing any other kind on: entities,
    /// types, functions, generics, specializations, thunks, metadata, and
    /// last [`Self::print_unknown_kind`].
    ///
    /// Optimized builds inline the whole chain back into this function, as
    /// it was when it was one match (a chain of calls costs about 5% more
    /// instructions). Unoptimized builds keep
    /// the calls: each area's frame then holds only its own locals, which
    /// keeps debug builds well inside `STACK_BUDGET` on deep trees.
    pub fn print(&mut self, n: NodeId, depth: u32, as_prefix: bool) -> R {
        self.steps += 1;
        if depth > MAX_DEPTH
            || self.steps > 200_000
            || self.invalid
            || self.stack_base.abs_diff(crate::stack_position()) > crate::STACK_BUDGET
        {
            self.invalid = true;
            return None;
        }
        let depth = depth + 1;
        let k = self.k(n);
        self.print_entity_kind(n, k, depth, as_prefix)
    }

    fn print_quoted(&mut self, t: &str) {
        self.s("\"");
        for ch in t.chars() {
            match ch {
                '\\' => self.s("\\\\"),
                '\t' => self.s("\\t"),
                '\n' => self.s("\\n"),
                '\r' => self.s("\\r"),
                '"' => self.s("\\\""),
                '\0' => self.s("\\0"),
                c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                    let s = format!("\\x{:02X}", c as u32);
                    self.s(&s);
                }
                c => self.c(c),
            }
        }
        self.s("\"");
    }

    /// Identifiers print as they are (raw identifiers carry their own
    /// backquotes in the mangled text).
    fn print_identifier(&mut self, t: &str) {
        self.s(t);
    }

    /// The end of the chain of areas: a kind no area prints.
    fn print_unknown_kind(&mut self, _n: NodeId, _k: Kind, _depth: u32, _as_prefix: bool) -> R {
        self.invalid = true;
        None
    }
}
