//! Old-mangling specializations (`_TTS…`): generic and function-signature
//! specializations with their parameter payloads.

use crate::node::{Kind, NodeId};

use super::Old;

impl Old<'_> {
    pub(super) fn specialization(&mut self) -> Option<NodeId> {
        match self.next() {
            b'g' | b'r' => {
                let k = if self.s[self.pos - 1] == b'g' {
                    Kind::GenericSpecialization
                } else {
                    Kind::GenericSpecializationNotReAbstracted
                };
                let spec = self.a.node(k)?;
                if self.next_if(b'q') {
                    let s = self.a.node(Kind::IsSerialized)?;
                    self.a.add(spec, s);
                }
                let c = self.next();
                if !c.is_ascii_digit() {
                    return None;
                }
                let p = self
                    .a
                    .index_node(Kind::SpecializationPassID, u64::from(c - b'0'))?;
                self.a.add(spec, p);
                while !self.next_if(b'_') {
                    let t = self.ty()?;
                    let param = self.a.with(Kind::GenericSpecializationParam, &[t])?;
                    while !self.next_if(b'_') {
                        let pc = self.protocol_conformance()?;
                        self.a.add(param, pc);
                    }
                    self.a.add(spec, param);
                    if self.a.num_children(spec) > 256 {
                        return None;
                    }
                }
                Some(spec)
            }
            b'f' => {
                let spec = self.a.node(Kind::FunctionSignatureSpecialization)?;
                if self.next_if(b'q') {
                    let s = self.a.node(Kind::IsSerialized)?;
                    self.a.add(spec, s);
                }
                let c = self.next();
                if !c.is_ascii_digit() {
                    return None;
                }
                let p = self
                    .a
                    .index_node(Kind::SpecializationPassID, u64::from(c - b'0'))?;
                self.a.add(spec, p);
                let mut no = 0u64;
                while !self.next_if(b'_') {
                    let param = self
                        .a
                        .index_node(Kind::FunctionSignatureSpecializationParam, no)?;
                    self.func_sig_param(param)?;
                    self.a.add(spec, param);
                    no += 1;
                    if no > 256 {
                        return None;
                    }
                }
                Some(spec)
            }
            _ => None,
        }
    }

    pub(super) fn spec_kind(&mut self, param: NodeId, v: u64) -> Option<()> {
        let n = self
            .a
            .index_node(Kind::FunctionSignatureSpecializationParamKind, v)?;
        self.a.add(param, n);
        Some(())
    }

    pub(super) fn spec_payload(&mut self, param: NodeId, text: &str) -> Option<()> {
        let n = self
            .a
            .text_node(Kind::FunctionSignatureSpecializationParamPayload, text)?;
        self.a.add(param, n);
        Some(())
    }

    /// An identifier-like payload: `<len><chars>`.
    pub(super) fn spec_len_text(&mut self) -> Option<String> {
        let n = self.natural()? as usize;
        let end = self.pos.checked_add(n)?;
        if end > self.s.len() {
            return None;
        }
        let t = std::str::from_utf8(&self.s[self.pos..end])
            .ok()?
            .to_string();
        self.pos = end;
        Some(t)
    }

    pub(super) fn func_sig_param(&mut self, param: NodeId) -> Option<()> {
        use crate::print::spec_kind as sk;
        if self.next_if(b'n') {
            return if self.next_if(b'_') { Some(()) } else { None };
        }
        if self.next_if_str(b"cp") {
            // Constant propagation.
            match self.next() {
                b'f' if self.peek() == b'l' => {
                    self.next();
                    self.spec_kind(param, sk::CONST_FLOAT)?;
                    let start = self.pos;
                    while self.peek() != b'_' && self.pos < self.s.len() {
                        self.next();
                    }
                    let t = std::str::from_utf8(&self.s[start..self.pos])
                        .ok()?
                        .to_string();
                    self.spec_payload(param, &t)?;
                }
                b'f' => {
                    self.next_if(b'r');
                    self.spec_kind(param, sk::CONST_FUNCTION)?;
                    let t = self.spec_len_text()?;
                    self.spec_payload(param, &t)?;
                }
                b'g' => {
                    self.spec_kind(param, sk::CONST_GLOBAL)?;
                    let t = self.spec_len_text()?;
                    self.spec_payload(param, &t)?;
                }
                b'i' => {
                    self.spec_kind(param, sk::CONST_INTEGER)?;
                    let start = self.pos;
                    while self.peek() != b'_' && self.pos < self.s.len() {
                        self.next();
                    }
                    let t = std::str::from_utf8(&self.s[start..self.pos])
                        .ok()?
                        .to_string();
                    self.spec_payload(param, &t)?;
                }
                b'l' => {
                    self.spec_kind(param, sk::CONST_FLOAT)?;
                    let start = self.pos;
                    while self.peek() != b'_' && self.pos < self.s.len() {
                        self.next();
                    }
                    let t = std::str::from_utf8(&self.s[start..self.pos])
                        .ok()?
                        .to_string();
                    self.spec_payload(param, &t)?;
                }
                b's' => {
                    self.spec_kind(param, sk::CONST_STRING)?;
                    let enc = match self.next() {
                        b'e' => match self.next() {
                            b'0' => "u8",
                            b'1' => "u16",
                            _ => return None,
                        },
                        _ => return None,
                    };
                    self.spec_payload(param, enc)?;
                    if !self.next_if(b'v') {
                        return None;
                    }
                    let t = self.spec_len_text()?;
                    self.spec_payload(param, &t)?;
                }
                _ => return None,
            }
            return if self.next_if(b'_') { Some(()) } else { None };
        }
        if self.next_if_str(b"cl") {
            self.spec_kind(param, sk::CLOSURE_PROP)?;
            let t = self.spec_len_text()?;
            self.spec_payload(param, &t)?;
            while self.peek() != b'_' {
                let ty = self.ty()?;
                self.a.add(param, ty);
            }
            self.next();
            return Some(());
        }
        if self.next_if_str(b"i_") {
            return self.spec_kind(param, sk::BOX_TO_VALUE);
        }
        if self.next_if_str(b"k_") {
            return self.spec_kind(param, sk::BOX_TO_STACK);
        }
        let mut v = 0;
        if self.next_if(b'd') {
            v |= sk::DEAD;
        }
        if self.next_if(b'g') {
            v |= sk::OWNED_TO_GUARANTEED;
        }
        if self.next_if(b'o') {
            v |= sk::GUARANTEED_TO_OWNED;
        }
        if self.next_if(b's') {
            v |= sk::SROA;
        }
        if v == 0 || !self.next_if(b'_') {
            return None;
        }
        self.spec_kind(param, v)
    }
}
