//! Names: identifiers with word substitutions and punycode, operator and
//! local names (`L`), and the standard (`S…`) and repeated (`A…`)
//! substitutions.

use crate::node::{Kind, NodeId};
use crate::punycode;

use super::kinds::is_decl_name;
use super::{is_digit, Parser, MAX_IDENT, MAX_REPEAT, MAX_WORDS};

impl Parser<'_> {
    pub(super) fn identifier(&mut self) -> Option<NodeId> {
        let mut word_substs = false;
        let mut puny = false;
        if !is_digit(self.peek()) {
            return None;
        }
        if self.peek() == b'0' {
            self.next();
            if self.peek() == b'0' {
                self.next();
                puny = true;
            } else {
                word_substs = true;
            }
        }
        if !word_substs && !puny {
            // Plain `<len><chars>`: no intermediate string.
            let n = self.natural()? as usize;
            let end = self.pos.checked_add(n)?;
            if n == 0 || end > self.input.len() {
                return None;
            }
            let id = match self.input_base {
                Some(b)
                    if self.a.text.is_char_boundary(b + self.pos)
                        && self.a.text.is_char_boundary(b + end) =>
                {
                    let (s, e) = ((b + self.pos) as u32, (b + end) as u32);
                    self.a
                        .push(Kind::Identifier, crate::node::Payload::Text(s, e))?
                }
                _ => {
                    let s = std::str::from_utf8(&self.input[self.pos..end]).ok()?;
                    self.a.text_node(Kind::Identifier, s)?
                }
            };
            self.record_words(self.pos, end);
            self.pos = end;
            self.add_sub(id);
            return Some(id);
        }
        let mut ident = String::new();
        loop {
            while word_substs && self.peek().is_ascii_alphabetic() {
                let c = self.next();
                let idx = if c.is_ascii_lowercase() {
                    (c - b'a') as usize
                } else {
                    word_substs = false;
                    (c - b'A') as usize
                };
                let &(s, e) = self.words.get(idx)?;
                ident.push_str(std::str::from_utf8(&self.input[s..e]).ok()?);
                // Word substitutions can repeat long words: cap the name.
                if ident.len() > MAX_IDENT {
                    return None;
                }
            }
            if self.next_if(b'0') {
                break;
            }
            let n = self.natural()? as usize;
            if n == 0 {
                return None;
            }
            if puny {
                self.next_if(b'_');
            }
            let end = self.pos.checked_add(n)?;
            if end > self.input.len() {
                return None;
            }
            let slice = &self.input[self.pos..end];
            if puny {
                let s = std::str::from_utf8(slice).ok()?;
                ident.push_str(&punycode::decode(s)?);
            } else {
                ident.push_str(std::str::from_utf8(slice).ok()?);
                self.record_words(self.pos, end);
            }
            self.pos = end;
            if !word_substs {
                break;
            }
        }
        if ident.is_empty() {
            return None;
        }
        let id = self.a.text_node(Kind::Identifier, &ident)?;
        self.add_sub(id);
        Some(id)
    }

    pub(super) fn record_words(&mut self, start: usize, end: usize) {
        let is_start = |c: u8| c != b'_' && !c.is_ascii_digit() && c != 0;
        let is_end = |c: u8, prev: u8| {
            c == b'_' || c == 0 || (!prev.is_ascii_uppercase() && c.is_ascii_uppercase())
        };
        let mut word_start: Option<usize> = None;
        let mut i = start;
        while i <= end {
            let c = if i < end { self.input[i] } else { 0 };
            if let Some(ws) = word_start {
                if is_end(c, self.input[i - 1]) {
                    if i - ws >= 2 && self.words.len() < MAX_WORDS {
                        self.words.push((ws, i));
                    }
                    word_start = None;
                }
            }
            if word_start.is_none() && is_start(c) {
                word_start = Some(i);
            }
            i += 1;
        }
    }

    pub(super) fn operator_identifier(&mut self) -> Option<NodeId> {
        let ident = self.pop_kind(Kind::Identifier)?;
        const TABLE: &[u8; 26] = b"& @/= >    <*!|+?%-~   ^ .";
        let mut op = String::new();
        for ch in self.a.text(ident).chars() {
            if !ch.is_ascii() {
                op.push(ch);
                continue;
            }
            let c = ch as u8;
            if !c.is_ascii_lowercase() {
                return None;
            }
            let o = TABLE[(c - b'a') as usize];
            if o == b' ' {
                return None;
            }
            op.push(o as char);
        }
        let k = match self.next() {
            b'i' => Kind::InfixOperator,
            b'p' => Kind::PrefixOperator,
            b'P' => Kind::PostfixOperator,
            _ => return None,
        };
        self.a.text_node(k, &op)
    }

    pub(super) fn local_identifier(&mut self) -> Option<NodeId> {
        if self.next_if(b'L') {
            let d = self.pop_kind(Kind::Identifier)?;
            let name = self.pop_if(is_decl_name)?;
            return self.with(Kind::PrivateDeclName, &[d, name]);
        }
        if self.next_if(b'l') {
            let d = self.pop_kind(Kind::Identifier)?;
            return self.with(Kind::PrivateDeclName, &[d]);
        }
        let c = self.peek();
        if (b'a'..=b'j').contains(&c) || (b'A'..=b'J').contains(&c) {
            self.next();
            let name = self.pop()?;
            let s = (c as char).to_string();
            let r = self.a.text_node(Kind::RelatedEntityDeclName, &s)?;
            self.a.add(r, name);
            return Some(r);
        }
        let d = self.index_node()?;
        let name = self.pop_if(is_decl_name)?;
        self.with(Kind::LocalDeclName, &[d, name])
    }

    pub(super) fn standard_substitution(&mut self) -> Option<NodeId> {
        match self.next() {
            b'o' => self.a.text_node(Kind::Module, "__C"),
            b'C' => self.a.text_node(Kind::Module, "__C_Synthesized"),
            b'g' => {
                let t = self.pop_kind(Kind::Type)?;
                let opt = self.swift_type(Kind::Enum, "Optional")?;
                let tl = self.with(Kind::TypeList, &[t])?;
                let b = self.with(Kind::BoundGenericEnum, &[opt, tl])?;
                let r = self.ty(b)?;
                self.add_sub(r);
                Some(r)
            }
            _ => {
                self.back();
                let repeat = if is_digit(self.peek()) {
                    self.natural()?
                } else {
                    0
                };
                if repeat > MAX_REPEAT {
                    return None;
                }
                let second = self.next_if(b'c');
                let c = self.next();
                let (k, name) = standard_type(c, second)?;
                let n = self.swift_type(k, name)?;
                let mut r = repeat;
                while r > 1 {
                    self.push(n)?;
                    r -= 1;
                }
                Some(n)
            }
        }
    }

    pub(super) fn multi_substitutions(&mut self) -> Option<NodeId> {
        let mut repeat: Option<u64> = None;
        loop {
            let c = self.next();
            if c == 0 {
                return None;
            }
            if c.is_ascii_lowercase() {
                let n = self.push_multi(repeat, (c - b'a') as usize)?;
                self.push(n)?;
                repeat = None;
                continue;
            }
            if c.is_ascii_uppercase() {
                return self.push_multi(repeat, (c - b'A') as usize);
            }
            if c == b'_' {
                let idx = repeat?.checked_add(27)? as usize;
                return self.subs.get(idx).copied();
            }
            self.back();
            repeat = Some(self.natural()?);
        }
    }

    pub(super) fn push_multi(&mut self, repeat: Option<u64>, idx: usize) -> Option<NodeId> {
        let n = *self.subs.get(idx)?;
        let r = repeat.unwrap_or(0);
        if r > MAX_REPEAT {
            return None;
        }
        let mut k = r;
        while k > 1 {
            self.push(n)?;
            k -= 1;
        }
        Some(n)
    }
}

/// The one-letter standard substitutions (`Si` = `Swift.Int`, …).
pub(super) fn standard_type(c: u8, second_level: bool) -> Option<(Kind, &'static str)> {
    use Kind::*;
    if second_level {
        return Some(match c {
            b'A' => (Protocol, "Actor"),
            b'C' => (Structure, "CheckedContinuation"),
            b'c' => (Structure, "UnsafeContinuation"),
            b'E' => (Structure, "CancellationError"),
            b'e' => (Structure, "UnownedSerialExecutor"),
            b'F' => (Protocol, "Executor"),
            b'f' => (Protocol, "SerialExecutor"),
            b'G' => (Structure, "TaskGroup"),
            b'g' => (Structure, "ThrowingTaskGroup"),
            b'h' => (Protocol, "TaskExecutor"),
            b'I' => (Protocol, "AsyncIteratorProtocol"),
            b'i' => (Protocol, "AsyncSequence"),
            b'J' => (Structure, "UnownedJob"),
            b'M' => (Class, "MainActor"),
            b'P' => (Structure, "TaskPriority"),
            b'S' => (Structure, "AsyncStream"),
            b's' => (Structure, "AsyncThrowingStream"),
            b'T' => (Structure, "Task"),
            b't' => (Structure, "UnsafeCurrentTask"),
            _ => return None,
        });
    }
    Some(match c {
        b'A' => (Structure, "AutoreleasingUnsafeMutablePointer"),
        b'a' => (Structure, "Array"),
        b'B' => (Protocol, "BinaryFloatingPoint"),
        b'b' => (Structure, "Bool"),
        b'c' => (Structure, "UnicodeScalar"),
        b'D' => (Structure, "Dictionary"),
        b'd' => (Structure, "Double"),
        b'E' => (Protocol, "Encodable"),
        b'e' => (Protocol, "Decodable"),
        b'F' => (Protocol, "FloatingPoint"),
        b'f' => (Structure, "Float"),
        b'G' => (Protocol, "RandomNumberGenerator"),
        b'H' => (Protocol, "Hashable"),
        b'h' => (Structure, "Set"),
        b'I' => (Structure, "DefaultIndices"),
        b'i' => (Structure, "Int"),
        b'J' => (Structure, "Character"),
        b'j' => (Protocol, "Numeric"),
        b'K' => (Protocol, "BidirectionalCollection"),
        b'k' => (Protocol, "RandomAccessCollection"),
        b'L' => (Protocol, "Comparable"),
        b'l' => (Protocol, "Collection"),
        b'M' => (Protocol, "MutableCollection"),
        b'm' => (Protocol, "RangeReplaceableCollection"),
        b'N' => (Structure, "ClosedRange"),
        b'n' => (Structure, "Range"),
        b'O' => (Structure, "ObjectIdentifier"),
        b'P' => (Structure, "UnsafePointer"),
        b'p' => (Structure, "UnsafeMutablePointer"),
        b'Q' => (Protocol, "Equatable"),
        b'q' => (Enum, "Optional"),
        b'R' => (Structure, "UnsafeBufferPointer"),
        b'r' => (Structure, "UnsafeMutableBufferPointer"),
        b'S' => (Structure, "String"),
        b's' => (Structure, "Substring"),
        b'T' => (Protocol, "Sequence"),
        b't' => (Protocol, "IteratorProtocol"),
        b'U' => (Protocol, "UnsignedInteger"),
        b'u' => (Structure, "UInt"),
        b'V' => (Structure, "UnsafeRawPointer"),
        b'v' => (Structure, "UnsafeMutableRawPointer"),
        b'W' => (Structure, "UnsafeRawBufferPointer"),
        b'w' => (Structure, "UnsafeMutableRawBufferPointer"),
        b'X' => (Protocol, "RangeExpression"),
        b'x' => (Protocol, "Strideable"),
        b'Y' => (Protocol, "RawRepresentable"),
        b'y' => (Protocol, "StringProtocol"),
        b'Z' => (Protocol, "SignedInteger"),
        b'z' => (Protocol, "BinaryInteger"),
        _ => return None,
    })
}
