//! Parser for the Swift 4+ mangling (`$s`, `$S`, `_T0`, `$e`, …).
//!
//! The mangling is postfix: operands come first and an operator character
//! combines what is on a node stack. The parser therefore runs a loop over
//! the input pushing and popping nodes; the only recursion is bounded by
//! the tree depth limit. Every operator that can fail returns `None`, and
//! the whole symbol then stays undemangled.
//!
//! This module holds the parser state, the input and node-stack helpers and
//! the operator dispatch; the operators themselves live by area:
//! [`identifiers`] (names and substitutions), [`types`], [`functions`]
//! (function and SIL function types), [`generics`], [`conformances`],
//! [`metadata`] (`M…`, `W…`), [`specializations`] (`T…`), [`autodiff`] and
//! [`entities`]; [`kinds`] says which node kinds may stand where.

mod autodiff;
mod conformances;
mod entities;
mod functions;
mod generics;
mod identifiers;
mod kinds;
mod metadata;
mod specializations;
mod types;

use crate::node::{Arena, Kind, NodeId};
use kinds::{is_entity, is_function_attr};

const MAX_WORDS: usize = 26;
const MAX_REPEAT: u64 = 2048;
const MAX_STACK: usize = 4096;
/// Longest identifier built from word substitutions.
const MAX_IDENT: usize = 4096;

pub(crate) struct Parser<'a> {
    pub a: &'a mut Arena,
    input: &'a [u8],
    pos: usize,
    stack: Vec<NodeId>,
    subs: Vec<NodeId>,
    words: Vec<(usize, usize)>,
    old_function_types: bool,
    pub nesting: u32,
    input_base: Option<usize>,
}

fn is_digit(c: u8) -> bool {
    c.is_ascii_digit()
}

impl<'a> Parser<'a> {
    pub fn new(a: &'a mut Arena, input_str: &'a str, old_function_types: bool) -> Self {
        let input = input_str.as_bytes();
        // A copy of the input in the arena's text lets plain identifiers
        // point into it instead of being copied one by one.
        let input_base = if a.text.len() + input_str.len() <= crate::node::MAX_TEXT {
            let b = a.text.len();
            a.text.push_str(input_str);
            Some(b)
        } else {
            None
        };
        let mut stack = std::mem::take(&mut a.scratch_stack);
        stack.clear();
        let mut subs = std::mem::take(&mut a.scratch_subs);
        subs.clear();
        Parser {
            a,
            input,
            pos: 0,
            stack,
            subs,
            words: Vec::new(),
            old_function_types,
            nesting: 0,
            input_base,
        }
    }

    fn peek(&self) -> u8 {
        self.input.get(self.pos).copied().unwrap_or(0)
    }

    fn next(&mut self) -> u8 {
        match self.input.get(self.pos) {
            Some(&c) => {
                self.pos += 1;
                c
            }
            None => 0,
        }
    }

    fn next_if(&mut self, c: u8) -> bool {
        if self.peek() == c && self.pos < self.input.len() {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn next_if_str(&mut self, s: &[u8]) -> bool {
        if self.input[self.pos..].starts_with(s) {
            self.pos += s.len();
            true
        } else {
            false
        }
    }

    fn back(&mut self) {
        if self.pos > 0 {
            self.pos -= 1;
        }
    }

    fn natural(&mut self) -> Option<u64> {
        if !is_digit(self.peek()) {
            return None;
        }
        let mut n: u64 = 0;
        while is_digit(self.peek()) {
            n = n
                .checked_mul(10)?
                .checked_add(u64::from(self.next() - b'0'))?;
            if n > u64::from(u32::MAX) {
                return None;
            }
        }
        Some(n)
    }

    /// `_` → 0, `<n>_` → n + 1.
    fn index(&mut self) -> Option<u64> {
        if self.next_if(b'_') {
            return Some(0);
        }
        let n = self.natural()?;
        if self.next_if(b'_') {
            Some(n + 1)
        } else {
            None
        }
    }

    fn index_node(&mut self) -> Option<NodeId> {
        let i = self.index()?;
        self.a.index_node(Kind::Number, i)
    }

    fn push(&mut self, n: NodeId) -> Option<()> {
        if self.stack.len() >= MAX_STACK {
            return None;
        }
        self.stack.push(n);
        Some(())
    }

    fn pop(&mut self) -> Option<NodeId> {
        self.stack.pop()
    }

    fn pop_kind(&mut self, k: Kind) -> Option<NodeId> {
        let &top = self.stack.last()?;
        if self.a.kind(top) == k {
            self.stack.pop()
        } else {
            None
        }
    }

    fn pop_if(&mut self, f: impl Fn(Kind) -> bool) -> Option<NodeId> {
        let &top = self.stack.last()?;
        if f(self.a.kind(top)) {
            self.stack.pop()
        } else {
            None
        }
    }

    fn top_kind(&self) -> Option<Kind> {
        self.stack.last().map(|&n| self.a.kind(n))
    }

    fn add_sub(&mut self, n: NodeId) {
        if self.subs.len() < 4096 {
            self.subs.push(n);
        }
    }

    fn with(&mut self, k: Kind, ch: &[NodeId]) -> Option<NodeId> {
        self.a.with(k, ch)
    }

    fn ty(&mut self, c: NodeId) -> Option<NodeId> {
        self.a.ty(c)
    }

    fn swift_type(&mut self, k: Kind, name: &str) -> Option<NodeId> {
        let m = self.a.text_node(Kind::Module, "Swift")?;
        let i = self.a.text_node(Kind::Identifier, name)?;
        let n = self.with(k, &[m, i])?;
        self.ty(n)
    }

    /// Parses a whole symbol (after its prefix) into a `Global` node.
    pub fn parse_symbol(&mut self) -> Option<NodeId> {
        let r = self.parse_symbol_inner();
        self.a.scratch_stack = std::mem::take(&mut self.stack);
        self.a.scratch_subs = std::mem::take(&mut self.subs);
        r
    }

    fn parse_symbol_inner(&mut self) -> Option<NodeId> {
        self.parse_all()?;
        let top = self.a.node(Kind::Global)?;
        let suffix = self.pop_kind(Kind::Suffix);
        let mut parent = top;
        while let Some(attr) = self.pop_if(is_function_attr) {
            self.a.add(parent, attr);
            let k = self.a.kind(attr);
            if k == Kind::PartialApplyForwarder || k == Kind::PartialApplyObjCForwarder {
                parent = attr;
            }
        }
        let rest = std::mem::take(&mut self.stack);
        for &n in &rest {
            if self.a.kind(n) == Kind::Type {
                let c = self.a.child(n, 0)?;
                self.a.add(parent, c);
            } else {
                self.a.add(parent, n);
            }
        }
        self.stack = rest;
        self.stack.clear();
        if self.a.num_children(top) == 0 {
            return None;
        }
        if let Some(s) = suffix {
            self.a.add(top, s);
        }
        Some(top)
    }

    fn parse_all(&mut self) -> Option<()> {
        while self.pos < self.input.len() {
            let n = self.operator()?;
            self.push(n)?;
        }
        Some(())
    }

    fn operator(&mut self) -> Option<NodeId> {
        self.operator_inner()
    }

    fn operator_inner(&mut self) -> Option<NodeId> {
        let c = self.next();
        match c {
            b'A' => self.multi_substitutions(),
            b'B' => self.builtin_type(),
            b'C' => self.any_generic_type(Kind::Class),
            b'D' => self.type_mangling(),
            b'E' => self.extension_context(),
            b'F' => self.plain_function(),
            b'G' => self.bound_generic_type(),
            b'H' => self.h_operator(),
            b'I' => self.impl_function_type(),
            b'K' => self.a.node(Kind::ThrowsAnnotation),
            b'L' => self.local_identifier(),
            b'M' => self.metatype(),
            b'N' => {
                let t = self.pop_kind(Kind::Type)?;
                self.with(Kind::TypeMetadata, &[t])
            }
            b'O' => self.any_generic_type(Kind::Enum),
            b'P' => self.any_generic_type(Kind::Protocol),
            b'Q' => self.archetype(),
            b'R' => self.generic_requirement(),
            b'S' => self.standard_substitution(),
            b'T' => self.thunk_or_specialization(),
            b'V' => self.any_generic_type(Kind::Structure),
            b'W' => self.witness(),
            b'X' => self.special_type(),
            b'Y' => self.type_annotation(),
            b'Z' => {
                let e = self.pop_if(is_entity)?;
                self.with(Kind::Static, &[e])
            }
            b'a' => self.any_generic_type(Kind::TypeAlias),
            b'c' => self.pop_function_type(Kind::FunctionType, false),
            b'd' => self.a.node(Kind::VariadicMarker),
            b'f' => self.function_entity(),
            b'g' => self.retroactive_conformance(),
            b'h' => {
                let t = self.pop_type_child()?;
                let n = self.with(Kind::Shared, &[t])?;
                self.ty(n)
            }
            b'i' => self.subscript(),
            b'l' => self.generic_signature(false),
            b'm' => {
                let t = self.pop_kind(Kind::Type)?;
                let n = self.with(Kind::Metatype, &[t])?;
                self.ty(n)
            }
            b'n' => {
                let t = self.pop_type_child()?;
                let n = self.with(Kind::Owned, &[t])?;
                self.ty(n)
            }
            b'o' => self.operator_identifier(),
            b'p' => {
                let l = self.protocol_list()?;
                self.ty(l)
            }
            b'q' => {
                let p = self.generic_param_index()?;
                self.ty(p)
            }
            b'r' => self.generic_signature(true),
            b's' => self.a.text_node(Kind::Module, "Swift"),
            b't' => self.pop_tuple(),
            b'u' => self.generic_type(),
            b'v' => self.variable(),
            b'w' => self.value_witness(),
            b'x' => {
                let p = self.generic_param(0, 0)?;
                self.ty(p)
            }
            b'y' => self.a.node(Kind::EmptyList),
            b'z' => {
                let t = self.pop_type_child()?;
                let n = self.with(Kind::InOut, &[t])?;
                self.ty(n)
            }
            b'_' => self.a.node(Kind::FirstElementMarker),
            b'.' => {
                self.back();
                let s = std::str::from_utf8(&self.input[self.pos..]).ok()?;
                self.pos = self.input.len();
                self.a.text_node(Kind::Suffix, s)
            }
            b'$' => self.integer_or_value(),
            _ => {
                self.back();
                self.identifier()
            }
        }
    }

    fn h_operator(&mut self) -> Option<NodeId> {
        match self.next() {
            b'A' => self.dependent_conformance_associated(),
            b'C' => self.concrete_conformance(),
            b'D' => self.dependent_conformance_root(),
            b'O' => {
                let t = self.pop_kind(Kind::Type)?;
                let c = self.pop_dependent_conformance()?;
                self.with(Kind::DependentProtocolConformanceOpaque, &[c, t])
            }
            b'I' => self.dependent_conformance_inherited(),
            b'P' => {
                let p = self.pop_protocol()?;
                self.with(Kind::ProtocolConformanceRefInTypeModule, &[p])
            }
            b'p' => {
                let p = self.pop_protocol()?;
                self.with(Kind::ProtocolConformanceRefInProtocolModule, &[p])
            }
            b'X' => self.pack_conformance(),
            b'c' => {
                let c = self.pop_protocol_conformance()?;
                self.with(Kind::ProtocolConformanceDescriptorRecord, &[c])
            }
            b'n' => {
                let t = self.pop_kind(Kind::Type)?;
                self.with(Kind::NominalTypeDescriptorRecord, &[t])
            }
            b'o' => {
                let n = self.pop()?;
                self.with(Kind::OpaqueTypeDescriptorRecord, &[n])
            }
            b'r' => {
                let p = self.pop_protocol()?;
                self.with(Kind::ProtocolDescriptorRecord, &[p])
            }
            b'F' => self.a.node(Kind::AccessibleFunctionRecord),
            _ => {
                self.back();
                self.back();
                self.identifier()
            }
        }
    }

    fn integer_or_value(&mut self) -> Option<NodeId> {
        if self.next_if(b'n') {
            let v = self.index()?;
            let n = self.a.index_node(Kind::NegativeInteger, v)?;
            return self.ty(n);
        }
        let v = self.index()?;
        let n = self.a.index_node(Kind::Integer, v)?;
        self.ty(n)
    }

    /// Unused by the loop but kept for symmetry with the old parser.
    #[allow(dead_code)]
    fn top_is(&self, k: Kind) -> bool {
        self.top_kind() == Some(k)
    }

    #[allow(dead_code)]
    fn rest(&self) -> &[u8] {
        &self.input[self.pos..]
    }

    #[allow(dead_code)]
    fn consume_prefix(&mut self, s: &[u8]) -> bool {
        self.next_if_str(s)
    }
}
