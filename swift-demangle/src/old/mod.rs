//! Parser for the pre-Swift-4 mangling (`_T…`, `_Tt…`).
//!
//! Unlike the new mangling it is prefix-ordered, so this is a recursive
//! descent parser; every recursion goes through [`Old::enter`], which caps
//! the depth. It builds the same node kinds as the new parser so one
//! printer serves both.
//!
//! This module holds the parser state, the entry points and the input
//! helpers (with the depth cap); the grammar lives by area: [`globals`],
//! [`specializations`], [`entities`] (with names, contexts and
//! substitutions), [`generics`] and [`types`].

mod entities;
mod generics;
mod globals;
mod specializations;
mod types;

use crate::node::{Arena, Kind, NodeId};

const MAX_DEPTH: u32 = 200;

struct Old<'a> {
    a: &'a mut Arena,
    s: &'a [u8],
    pos: usize,
    subs: Vec<NodeId>,
    depth: u32,
    stack_base: usize,
}

pub(crate) fn parse_symbol(a: &mut Arena, input: &[u8], stack_base: usize) -> Option<NodeId> {
    let mut p = Old {
        a,
        s: input,
        pos: 0,
        subs: Vec::new(),
        depth: 0,
        stack_base,
    };
    let top = p.a.node(Kind::Global)?;
    p.global(top)?;
    if p.pos < p.s.len() {
        // IRGen adds suffixes like `_31` to partial apply thunks; only accept
        // a plain suffix after a complete symbol.
        let rest = std::str::from_utf8(&p.s[p.pos..]).ok()?;
        if !rest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
        {
            return None;
        }
        let n = p.a.text_node(Kind::Suffix, rest)?;
        p.a.add(top, n);
    }
    Some(top)
}

pub(crate) fn parse_type_symbol(a: &mut Arena, input: &[u8], stack_base: usize) -> Option<NodeId> {
    let mut p = Old {
        a,
        s: input,
        pos: 0,
        subs: Vec::new(),
        depth: 0,
        stack_base,
    };
    let t = p.ty()?;
    if p.pos != p.s.len() {
        return None;
    }
    let top = p.a.node(Kind::Global)?;
    let tm = p.a.with(Kind::TypeMangling, &[t])?;
    p.a.add(top, tm);
    Some(top)
}

impl Old<'_> {
    fn peek(&self) -> u8 {
        self.s.get(self.pos).copied().unwrap_or(0)
    }

    fn peek_at(&self, i: usize) -> u8 {
        self.s.get(self.pos + i).copied().unwrap_or(0)
    }

    fn next(&mut self) -> u8 {
        let c = self.peek();
        if self.pos < self.s.len() {
            self.pos += 1;
        }
        c
    }

    fn next_if(&mut self, c: u8) -> bool {
        if self.pos < self.s.len() && self.s[self.pos] == c {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn next_if_str(&mut self, t: &[u8]) -> bool {
        if self.s[self.pos..].starts_with(t) {
            self.pos += t.len();
            true
        } else {
            false
        }
    }

    fn enter(&mut self) -> Option<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH
            || self.stack_base.abs_diff(crate::stack_position()) > crate::STACK_BUDGET
        {
            None
        } else {
            Some(())
        }
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    fn natural(&mut self) -> Option<u64> {
        if !self.peek().is_ascii_digit() {
            return None;
        }
        let mut n: u64 = 0;
        while self.peek().is_ascii_digit() {
            n = n
                .checked_mul(10)?
                .checked_add(u64::from(self.next() - b'0'))?;
            if n > u64::from(u32::MAX) {
                return None;
            }
        }
        Some(n)
    }

    /// Like `index`, but a too-large number saturates (the printer shows
    /// at most 128 generic parameters anyway).
    fn saturating_index(&mut self) -> Option<u64> {
        if self.next_if(b'_') {
            return Some(0);
        }
        if !self.peek().is_ascii_digit() {
            return None;
        }
        let mut n: u64 = 0;
        while self.peek().is_ascii_digit() {
            n = n
                .saturating_mul(10)
                .saturating_add(u64::from(self.next() - b'0'))
                .min(u64::from(u32::MAX));
        }
        if self.next_if(b'_') {
            Some(n + 1)
        } else {
            None
        }
    }

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

    fn ty_node(&mut self, c: NodeId) -> Option<NodeId> {
        self.a.ty(c)
    }

    fn add_sub(&mut self, n: NodeId) {
        if self.subs.len() < 4096 {
            self.subs.push(n);
        }
    }
}
