//! Parser for the pre-Swift-4 mangling (`_T…`, `_Tt…`).
//!
//! Unlike the new mangling it is prefix-ordered, so this is a recursive
//! descent parser; every recursion goes through [`Old::enter`], which caps
//! the depth. It builds the same node kinds as the new parser so one
//! printer serves both.

use crate::node::{Arena, Kind, NodeId};
use crate::punycode;

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

    // ----- globals -----

    fn global(&mut self, top: NodeId) -> Option<()> {
        self.enter()?;
        let r = self.global_inner(top);
        self.leave();
        r
    }

    fn global_inner(&mut self, top: NodeId) -> Option<()> {
        // Attributes that wrap another global.
        if self.next_if_str(b"PA") {
            let k = if self.next_if(b'o') {
                Kind::PartialApplyObjCForwarder
            } else {
                Kind::PartialApplyForwarder
            };
            let n = self.a.node(k)?;
            if self.next_if_str(b"__T") {
                self.global(n)?;
            }
            self.a.add(top, n);
            return Some(());
        }
        if self.next_if(b'T') {
            match self.next() {
                b'o' => self.attr(top, Kind::ObjCAttribute)?,
                b'O' => self.attr(top, Kind::NonObjCAttribute)?,
                b'D' => self.attr(top, Kind::DynamicAttribute)?,
                b'd' => self.attr(top, Kind::DirectMethodReferenceAttribute)?,
                b'v' => self.attr(top, Kind::VTableAttribute)?,
                b'S' => {
                    let spec = self.specialization()?;
                    self.a.add(top, spec);
                    if !self.next_if_str(b"_T") {
                        return None;
                    }
                    // The specialized function is a symbol of its own.
                    self.subs.clear();
                    return self.global(top);
                }
                b'R' | b'r' => {
                    let k = if self.s[self.pos - 1] == b'R' {
                        Kind::ReabstractionThunkHelper
                    } else {
                        Kind::ReabstractionThunk
                    };
                    let n = self.a.node(k)?;
                    if self.peek() == b'G' {
                        self.next();
                        let sig = self.generic_signature()?;
                        self.a.add(n, sig);
                    }
                    let t1 = self.ty()?;
                    let t2 = self.ty()?;
                    self.a.add(n, t1);
                    self.a.add(n, t2);
                    self.a.add(top, n);
                }
                b'W' => {
                    let conf = self.protocol_conformance()?;
                    let e = self.entity()?;
                    let n = self.a.with(Kind::ProtocolWitness, &[conf, e])?;
                    self.a.add(top, n);
                }
                _ => return None,
            }
            return Some(());
        }
        let n = match self.peek() {
            b'M' => {
                self.next();
                self.metadata()?
            }
            b'w' => {
                self.next();
                let c1 = self.next();
                let c2 = self.next();
                let idx = crate::print::VALUE_WITNESSES
                    .iter()
                    .position(|(code, _)| code.as_bytes() == [c1, c2])?;
                let vw = self.a.index_node(Kind::ValueWitness, idx as u64)?;
                let t = self.ty()?;
                self.a.add(vw, t);
                vw
            }
            b'W' => {
                self.next();
                self.witness()?
            }
            b't' => {
                self.next();
                let t = self.ty()?;
                self.a.with(Kind::TypeMangling, &[t])?
            }
            _ => self.entity()?,
        };
        self.a.add(top, n);
        Some(())
    }

    fn attr(&mut self, top: NodeId, k: Kind) -> Option<()> {
        let n = self.a.node(k)?;
        self.a.add(top, n);
        self.global(top)
    }

    fn metadata(&mut self) -> Option<NodeId> {
        let k = match self.peek() {
            b'P' => Kind::GenericTypeMetadataPattern,
            b'a' => Kind::TypeMetadataAccessFunction,
            b'L' => Kind::TypeMetadataLazyCache,
            b'm' => Kind::Metaclass,
            b'n' => Kind::NominalTypeDescriptor,
            b'f' => Kind::FullTypeMetadata,
            b'p' => {
                self.next();
                let p = self.protocol_name()?;
                let t = self.ty_node(p)?;
                return self.a.with(Kind::ProtocolDescriptor, &[t]);
            }
            _ => {
                let t = self.ty()?;
                return self.a.with(Kind::TypeMetadata, &[t]);
            }
        };
        self.next();
        let t = self.ty()?;
        self.a.with(k, &[t])
    }

    fn witness(&mut self) -> Option<NodeId> {
        match self.next() {
            b'V' => {
                let t = self.ty()?;
                self.a.with(Kind::ValueWitnessTable, &[t])
            }
            b'v' => {
                let d = match self.next() {
                    b'd' => 0,
                    b'i' => 1,
                    _ => return None,
                };
                let dn = self.a.index_node(Kind::Directness, d)?;
                let e = self.entity()?;
                self.a.with(Kind::FieldOffset, &[dn, e])
            }
            b'P' => {
                let c = self.protocol_conformance()?;
                self.a.with(Kind::ProtocolWitnessTable, &[c])
            }
            b'G' => {
                let c = self.protocol_conformance()?;
                self.a.with(Kind::GenericProtocolWitnessTable, &[c])
            }
            b'I' => {
                let c = self.protocol_conformance()?;
                self.a
                    .with(Kind::GenericProtocolWitnessTableInstantiationFunction, &[c])
            }
            b'a' => {
                let c = self.protocol_conformance()?;
                self.a.with(Kind::ProtocolWitnessTableAccessor, &[c])
            }
            b'l' => {
                let t = self.ty()?;
                let c = self.protocol_conformance()?;
                self.a.with(Kind::LazyProtocolWitnessTableAccessor, &[t, c])
            }
            b'L' => {
                let t = self.ty()?;
                let c = self.protocol_conformance()?;
                self.a
                    .with(Kind::LazyProtocolWitnessTableCacheVariable, &[t, c])
            }
            b't' => {
                let c = self.protocol_conformance()?;
                let name = self.decl_name()?;
                self.a
                    .with(Kind::AssociatedTypeMetadataAccessor, &[c, name])
            }
            b'T' => {
                let c = self.protocol_conformance()?;
                let name = self.decl_name()?;
                let p = self.protocol_name()?;
                let pt = self.ty_node(p)?;
                self.a
                    .with(Kind::AssociatedTypeWitnessTableAccessor, &[c, name, pt])
            }
            _ => None,
        }
    }

    fn protocol_conformance(&mut self) -> Option<NodeId> {
        self.enter()?;
        let r = (|| {
            let mut sig = None;
            if self.next_if(b'u') {
                sig = Some(self.generic_signature()?);
            }
            let mut t = self.ty()?;
            if let Some(s) = sig {
                let d = self.a.with(Kind::DependentGenericType, &[s, t])?;
                t = self.ty_node(d)?;
            }
            let p = self.protocol_name()?;
            let pt = self.ty_node(p)?;
            let m = self.module()?;
            self.a.with(Kind::ProtocolConformance, &[t, pt, m])
        })();
        self.leave();
        r
    }

    // ----- specializations -----

    fn specialization(&mut self) -> Option<NodeId> {
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

    fn spec_kind(&mut self, param: NodeId, v: u64) -> Option<()> {
        let n = self
            .a
            .index_node(Kind::FunctionSignatureSpecializationParamKind, v)?;
        self.a.add(param, n);
        Some(())
    }

    fn spec_payload(&mut self, param: NodeId, text: &str) -> Option<()> {
        let n = self
            .a
            .text_node(Kind::FunctionSignatureSpecializationParamPayload, text)?;
        self.a.add(param, n);
        Some(())
    }

    /// An identifier-like payload: `<len><chars>`.
    fn spec_len_text(&mut self) -> Option<String> {
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

    fn func_sig_param(&mut self, param: NodeId) -> Option<()> {
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

    // ----- entities -----

    fn entity(&mut self) -> Option<NodeId> {
        self.enter()?;
        let r = self.entity_inner();
        self.leave();
        r
    }

    fn entity_inner(&mut self) -> Option<NodeId> {
        let is_static = self.next_if(b'Z');
        let e = match self.peek() {
            b'F' | b'v' | b'I' | b'i' => {
                let kind_c = self.next();
                let ctx = self.context()?;
                self.entity_name(kind_c, ctx)?
            }
            _ => {
                let t = self.nominal_type()?;
                self.a.skip_type(t)
            }
        };
        if is_static {
            self.a.with(Kind::Static, &[e])
        } else {
            Some(e)
        }
    }

    fn entity_name(&mut self, kind_c: u8, ctx: NodeId) -> Option<NodeId> {
        let plain = |p: &mut Self, k: Kind| -> Option<NodeId> {
            let name = p.decl_name()?;
            let t = p.ty()?;
            p.a.with(k, &[ctx, name, t])
        };
        if kind_c == b'i' {
            // Subscript entity itself (its decl name is always `subscript`).
            let _name = self.decl_name()?;
            let t = self.ty()?;
            return self.a.with(Kind::Subscript, &[ctx, t]);
        }
        if kind_c == b'v' {
            return plain(self, Kind::Variable);
        }
        if kind_c == b'I' {
            // Initializer entities: `Iv…i` variable initializer, `IF…A_` default argument.
            let name = self.entity_name_inner(ctx)?;
            return Some(name);
        }
        self.entity_name_inner(ctx)
    }

    fn accessor(&mut self, ctx: NodeId, k: Kind) -> Option<NodeId> {
        // Accessors of subscripts use the `i` decl name.
        let name_or_sub = if self.next_if(b'i') {
            let t = self.ty()?;
            let s = self.a.with(Kind::Subscript, &[ctx, t])?;
            return self.a.with(k, &[s]);
        } else {
            self.decl_name()?
        };
        let t = self.ty()?;
        let v = self.a.with(Kind::Variable, &[ctx, name_or_sub, t])?;
        self.a.with(k, &[v])
    }

    fn entity_name_inner(&mut self, ctx: NodeId) -> Option<NodeId> {
        let c = self.peek();
        match c {
            b'D' | b'd' | b'E' | b'e' | b'i' | b'Z' => {
                self.next();
                let k = match c {
                    b'Z' => Kind::IsolatedDeallocator,
                    b'D' => Kind::Deallocator,
                    b'd' => Kind::Destructor,
                    b'E' => Kind::IVarDestroyer,
                    b'e' => Kind::IVarInitializer,
                    _ => Kind::Initializer,
                };
                self.a.with(k, &[ctx])
            }
            b'C' | b'c' => {
                self.next();
                let t = self.ty()?;
                let k = if c == b'C' {
                    Kind::Allocator
                } else {
                    Kind::Constructor
                };
                self.a.with(k, &[ctx, t])
            }
            b'A' => {
                self.next();
                let i = self.index()?;
                let n = self.a.index_node(Kind::Number, i)?;
                self.a.with(Kind::DefaultArgumentInitializer, &[ctx, n])
            }
            b'U' | b'u' => {
                self.next();
                let i = self.index()?;
                let n = self.a.index_node(Kind::Number, i)?;
                let t = self.ty()?;
                let k = if c == b'U' {
                    Kind::ExplicitClosure
                } else {
                    Kind::ImplicitClosure
                };
                self.a.with(k, &[ctx, n, t])
            }
            b'g' | b's' | b'm' | b'w' | b'W' | b'G' => {
                self.next();
                let k = match c {
                    b'g' => Kind::Getter,
                    b's' => Kind::Setter,
                    b'm' => Kind::MaterializeForSet,
                    b'w' => Kind::WillSet,
                    b'W' => Kind::DidSet,
                    _ => Kind::GlobalGetter,
                };
                self.accessor(ctx, k)
            }
            b'a' | b'l' => {
                self.next();
                let k = match (c, self.next()) {
                    (b'a', b'O') => Kind::OwningMutableAddressor,
                    (b'a', b'o') => Kind::NativeOwningMutableAddressor,
                    (b'a', b'p') => Kind::NativePinningMutableAddressor,
                    (b'a', b'u') => Kind::UnsafeMutableAddressor,
                    (b'l', b'O') => Kind::OwningAddressor,
                    (b'l', b'o') => Kind::NativeOwningAddressor,
                    (b'l', b'p') => Kind::NativePinningAddressor,
                    (b'l', b'u') => Kind::UnsafeAddressor,
                    _ => return None,
                };
                self.accessor(ctx, k)
            }
            _ => {
                let name = self.decl_name()?;
                let t = self.ty()?;
                self.a.with(Kind::Function, &[ctx, name, t])
            }
        }
    }

    fn decl_name(&mut self) -> Option<NodeId> {
        if self.next_if(b'L') {
            let i = self.index()?;
            let n = self.a.index_node(Kind::Number, i)?;
            let id = self.identifier()?;
            return self.a.with(Kind::LocalDeclName, &[n, id]);
        }
        if self.next_if(b'P') {
            let d = self.identifier()?;
            let id = self.identifier()?;
            return self.a.with(Kind::PrivateDeclName, &[d, id]);
        }
        self.identifier()
    }

    fn identifier(&mut self) -> Option<NodeId> {
        let mut puny = false;
        let mut op_kind: Option<Kind> = None;
        if self.next_if(b'X') {
            puny = true;
        }
        if self.next_if(b'o') {
            op_kind = Some(match self.next() {
                b'p' => Kind::PrefixOperator,
                b'P' => Kind::PostfixOperator,
                b'i' => Kind::InfixOperator,
                _ => return None,
            });
        }
        let n = self.natural()? as usize;
        if n == 0 {
            return None;
        }
        let end = self.pos.checked_add(n)?;
        if end > self.s.len() {
            return None;
        }
        let raw = std::str::from_utf8(&self.s[self.pos..end]).ok()?;
        self.pos = end;
        let text = if puny {
            punycode::decode(raw)?
        } else {
            raw.to_string()
        };
        let node = match op_kind {
            Some(k) => {
                let mut op = String::new();
                for ch in text.chars() {
                    if !ch.is_ascii() {
                        op.push(ch);
                        continue;
                    }
                    const TABLE: &[u8; 26] = b"& @/= >    <*!|+?%-~   ^ .";
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
                self.a.text_node(k, &op)?
            }
            None => self.a.text_node(Kind::Identifier, &text)?,
        };
        Some(node)
    }

    fn module(&mut self) -> Option<NodeId> {
        if self.next_if(b's') {
            return self.a.text_node(Kind::Module, "Swift");
        }
        if self.peek() == b'S' {
            let s = self.substitution()?;
            let k = self.a.kind(s);
            if k != Kind::Module {
                return None;
            }
            return Some(s);
        }
        let id = self.identifier()?;
        let m = self.a.change_kind(id, Kind::Module)?;
        self.add_sub(m);
        Some(m)
    }

    fn context(&mut self) -> Option<NodeId> {
        self.enter()?;
        let r = self.context_inner();
        self.leave();
        r
    }

    fn context_inner(&mut self) -> Option<NodeId> {
        match self.peek() {
            b'E' => {
                self.next();
                let m = self.module()?;
                let t = self.context()?;
                self.a.with(Kind::Extension, &[m, t])
            }
            b'e' => {
                self.next();
                let m = self.module()?;
                let sig = self.generic_signature()?;
                let t = self.context()?;
                self.a.with(Kind::Extension, &[m, t, sig])
            }
            b'S' => {
                let s = self.substitution()?;
                Some(self.a.skip_type(s))
            }
            b'F' | b'I' | b'v' | b'Z' => self.entity(),
            b'C' | b'V' | b'O' | b'P' => {
                let t = self.nominal_type()?;
                Some(self.a.skip_type(t))
            }
            _ => self.module(),
        }
    }

    fn nominal_type(&mut self) -> Option<NodeId> {
        if self.peek() == b'S' {
            return self.substitution();
        }
        let k = match self.next() {
            b'C' => Kind::Class,
            b'V' => Kind::Structure,
            b'O' => Kind::Enum,
            b'P' => Kind::Protocol,
            b'a' => Kind::TypeAlias,
            _ => return None,
        };
        let ctx = self.context()?;
        let name = self.decl_name()?;
        let n = self.a.with(k, &[ctx, name])?;
        let t = self.ty_node(n)?;
        self.add_sub(t);
        Some(t)
    }

    fn protocol_name(&mut self) -> Option<NodeId> {
        // Protocols appear without their `P` in lists and conformances.
        if self.peek() == b'S' {
            let s = self.substitution()?;
            let inner = self.a.skip_type(s);
            if self.a.kind(inner) == Kind::Protocol {
                return Some(inner);
            }
            // A module substitution starts the protocol's context.
            if self.a.kind(inner) != Kind::Module {
                return None;
            }
            let name = self.decl_name()?;
            let p = self.a.with(Kind::Protocol, &[inner, name])?;
            let t = self.ty_node(p)?;
            self.add_sub(t);
            return Some(p);
        }
        let ctx = self.context()?;
        let name = self.decl_name()?;
        let p = self.a.with(Kind::Protocol, &[ctx, name])?;
        let t = self.ty_node(p)?;
        self.add_sub(t);
        Some(p)
    }

    fn substitution(&mut self) -> Option<NodeId> {
        if !self.next_if(b'S') {
            return None;
        }
        let swift_type = |p: &mut Self, k: Kind, name: &str| -> Option<NodeId> {
            let m = p.a.text_node(Kind::Module, "Swift")?;
            let i = p.a.text_node(Kind::Identifier, name)?;
            let n = p.a.with(k, &[m, i])?;
            p.ty_node(n)
        };
        let c = self.next();
        let r = match c {
            b'o' => self.a.text_node(Kind::Module, "__C")?,
            b'C' => self.a.text_node(Kind::Module, "__C_Synthesized")?,
            b's' => self.a.text_node(Kind::Module, "Swift")?,
            b'a' => swift_type(self, Kind::Structure, "Array")?,
            b'b' => swift_type(self, Kind::Structure, "Bool")?,
            b'c' => swift_type(self, Kind::Structure, "UnicodeScalar")?,
            b'd' => swift_type(self, Kind::Structure, "Double")?,
            b'f' => swift_type(self, Kind::Structure, "Float")?,
            b'i' => swift_type(self, Kind::Structure, "Int")?,
            b'V' => swift_type(self, Kind::Structure, "UnsafeRawPointer")?,
            b'v' => swift_type(self, Kind::Structure, "UnsafeMutableRawPointer")?,
            b'P' => swift_type(self, Kind::Structure, "UnsafePointer")?,
            b'p' => swift_type(self, Kind::Structure, "UnsafeMutablePointer")?,
            b'Q' => swift_type(self, Kind::Enum, "ImplicitlyUnwrappedOptional")?,
            b'q' => swift_type(self, Kind::Enum, "Optional")?,
            b'R' => swift_type(self, Kind::Structure, "UnsafeBufferPointer")?,
            b'r' => swift_type(self, Kind::Structure, "UnsafeMutableBufferPointer")?,
            b'S' => swift_type(self, Kind::Structure, "String")?,
            b'u' => swift_type(self, Kind::Structure, "UInt")?,
            _ => {
                self.pos -= 1;
                let i = self.index()? as usize;
                return self.subs.get(i).copied();
            }
        };
        Some(r)
    }

    // ----- generics -----

    fn generic_signature(&mut self) -> Option<NodeId> {
        let sig = self.a.node(Kind::DependentGenericSignature)?;
        let mut counts = 0;
        while self.peek() != b'R' && self.peek() != b'r' {
            let c = if self.next_if(b'z') {
                0
            } else {
                self.saturating_index()? + 1
            };
            let n = self.a.index_node(Kind::DependentGenericParamCount, c)?;
            self.a.add(sig, n);
            counts += 1;
            if counts > 64 || self.pos >= self.s.len() {
                return None;
            }
        }
        if counts == 0 {
            let n = self.a.index_node(Kind::DependentGenericParamCount, 1)?;
            self.a.add(sig, n);
        }
        if self.next_if(b'r') {
            return Some(sig);
        }
        if !self.next_if(b'R') {
            return None;
        }
        while !self.next_if(b'r') {
            let req = self.generic_requirement()?;
            self.a.add(sig, req);
            if self.a.num_children(sig) > 256 {
                return None;
            }
        }
        Some(sig)
    }

    fn generic_param_type(&mut self) -> Option<NodeId> {
        let (depth, index) = if self.next_if(b'd') {
            let d = self.index()? + 1;
            let i = self.index()?;
            (d, i)
        } else if self.next_if(b'x') {
            (0, 0)
        } else {
            (0, self.index()? + 1)
        };
        let p = self.a.node(Kind::DependentGenericParamType)?;
        let d = self.a.index_node(Kind::Index, depth)?;
        let i = self.a.index_node(Kind::Index, index)?;
        self.a.add(p, d);
        self.a.add(p, i);
        self.ty_node(p)
    }

    fn constrained_type(&mut self) -> Option<NodeId> {
        if self.next_if(b'w') {
            return self.assoc_simple();
        }
        if self.next_if(b'W') {
            return self.assoc_compound();
        }
        self.generic_param_type()
    }

    fn assoc_name(&mut self) -> Option<NodeId> {
        let proto = if self.next_if(b'P') {
            let p = self.protocol_name()?;
            Some(self.ty_node(p)?)
        } else {
            None
        };
        if proto.is_none() && self.peek() == b'S' {
            let s = self.substitution()?;
            if self.a.kind(s) != Kind::DependentAssociatedTypeRef {
                return None;
            }
            return Some(s);
        }
        let id = self.identifier()?;
        let s = self.a.text(id).to_string();
        let r = self.a.text_node(Kind::Identifier, &s)?;
        let n = self.a.with(Kind::DependentAssociatedTypeRef, &[r])?;
        if let Some(p) = proto {
            self.a.add(n, p);
        }
        self.add_sub(n);
        Some(n)
    }

    fn assoc_simple(&mut self) -> Option<NodeId> {
        let base = self.generic_param_type()?;
        let name = self.assoc_name()?;
        let d = self.a.with(Kind::DependentMemberType, &[base, name])?;
        self.ty_node(d)
    }

    fn assoc_compound(&mut self) -> Option<NodeId> {
        let mut base = self.generic_param_type()?;
        while !self.next_if(b'_') {
            let name = self.assoc_name()?;
            let d = self.a.with(Kind::DependentMemberType, &[base, name])?;
            base = self.ty_node(d)?;
            if self.pos >= self.s.len() {
                return None;
            }
        }
        Some(base)
    }

    fn generic_requirement(&mut self) -> Option<NodeId> {
        let t = self.constrained_type()?;
        if self.next_if(b'z') {
            let second = self.ty()?;
            return self
                .a
                .with(Kind::DependentGenericSameTypeRequirement, &[t, second]);
        }
        if self.next_if(b'l') {
            let c = self.next();
            let name = (c as char).to_string();
            let (size, align) = match c {
                b'U' | b'R' | b'N' | b'C' | b'D' | b'T' => (None, None),
                b'E' | b'M' => {
                    let s = self.natural()?;
                    if !self.next_if(b'_') {
                        return None;
                    }
                    let al = self.natural()?;
                    (Some(s), Some(al))
                }
                b'e' | b'm' => (Some(self.natural()?), None),
                _ => return None,
            };
            let id = self.a.text_node(Kind::Identifier, &name)?;
            let r = self
                .a
                .with(Kind::DependentGenericLayoutRequirement, &[t, id])?;
            if let Some(s) = size {
                let n = self.a.index_node(Kind::Number, s)?;
                self.a.add(r, n);
            }
            if let Some(al) = align {
                let n = self.a.index_node(Kind::Number, al)?;
                self.a.add(r, n);
            }
            return Some(r);
        }
        let constraint = if self.peek() == b'C' {
            self.ty()?
        } else if self.peek() == b'S' {
            let s = self.substitution()?;
            let inner = self.a.skip_type(s);
            if self.a.kind(inner) == Kind::Module {
                let name = self.decl_name()?;
                let p = self.a.with(Kind::Protocol, &[inner, name])?;
                let pt = self.ty_node(p)?;
                self.add_sub(pt);
                pt
            } else if self.a.kind(s) == Kind::Type {
                s
            } else {
                self.ty_node(s)?
            }
        } else {
            let p = self.protocol_name()?;
            self.ty_node(p)?
        };
        self.a.with(
            Kind::DependentGenericConformanceRequirement,
            &[t, constraint],
        )
    }

    // ----- types -----

    fn ty(&mut self) -> Option<NodeId> {
        self.enter()?;
        let r = self.ty_inner();
        self.leave();
        r
    }

    fn function_type(&mut self, k: Kind) -> Option<NodeId> {
        let f = self.a.node(k)?;
        if self.next_if(b'z') {
            let t = self.a.node(Kind::ThrowsAnnotation)?;
            self.a.add(f, t);
        }
        let args = self.ty()?;
        let a = self.a.with(Kind::ArgumentTuple, &[args])?;
        let ret = self.ty()?;
        let r = self.a.with(Kind::ReturnType, &[ret])?;
        self.a.add(f, a);
        self.a.add(f, r);
        self.ty_node(f)
    }

    fn ty_inner(&mut self) -> Option<NodeId> {
        let c = self.peek();
        match c {
            b'B' => {
                self.next();
                let name: String = match self.next() {
                    b'b' => "Builtin.BridgeObject".into(),
                    b'B' => "Builtin.UnsafeValueBuffer".into(),
                    b'f' => {
                        let n = self.natural()?;
                        if !self.next_if(b'_') || n == 0 || n > 4096 {
                            return None;
                        }
                        format!("Builtin.FPIEEE{n}")
                    }
                    b'i' => {
                        let n = self.natural()?;
                        if !self.next_if(b'_') || n == 0 || n > 4096 {
                            return None;
                        }
                        format!("Builtin.Int{n}")
                    }
                    b'v' => {
                        let n = self.natural()?;
                        if n == 0 || n > 4096 {
                            return None;
                        }
                        let elt = self.ty()?;
                        let e = self.a.skip_type(elt);
                        if self.a.kind(e) != Kind::BuiltinTypeName {
                            return None;
                        }
                        let t = self.a.text(e).strip_prefix("Builtin.")?.to_string();
                        format!("Builtin.Vec{n}x{t}")
                    }
                    b'O' => "Builtin.UnknownObject".into(),
                    b'o' => "Builtin.NativeObject".into(),
                    b'p' => "Builtin.RawPointer".into(),
                    b't' => "Builtin.SILToken".into(),
                    b'w' => "Builtin.Word".into(),
                    _ => return None,
                };
                let n = self.a.text_node(Kind::BuiltinTypeName, &name)?;
                self.ty_node(n)
            }
            b'a' => {
                self.next();
                let ctx = self.context()?;
                let name = self.decl_name()?;
                let n = self.a.with(Kind::TypeAlias, &[ctx, name])?;
                let t = self.ty_node(n)?;
                self.add_sub(t);
                Some(t)
            }
            b'b' => {
                self.next();
                self.function_type(Kind::ObjCBlock)
            }
            b'c' => {
                self.next();
                self.function_type(Kind::CFunctionPointer)
            }
            b'D' => {
                self.next();
                let t = self.ty()?;
                let n = self.a.with(Kind::DynamicSelf, &[t])?;
                self.ty_node(n)
            }
            b'E' => {
                self.next();
                if !self.next_if_str(b"RR") {
                    return None;
                }
                let n = self.a.node(Kind::ErrorType)?;
                self.ty_node(n)
            }
            b'F' | b'f' | b'K' => {
                self.next();
                let k = match c {
                    b'F' => Kind::FunctionType,
                    b'f' => Kind::UncurriedFunctionType,
                    _ => Kind::AutoClosureType,
                };
                self.function_type(k)
            }
            b'G' => {
                self.next();
                let base = self.ty()?;
                let nominal = self.a.skip_type(base);
                let b = self.bound_generic_args(nominal, 0)?;
                self.ty_node(b)
            }
            b'M' => {
                self.next();
                let t = self.ty()?;
                let n = self.a.with(Kind::Metatype, &[t])?;
                self.ty_node(n)
            }
            b'P' => {
                self.next();
                if self.next_if(b'M') {
                    let t = self.ty()?;
                    let n = self.a.with(Kind::ExistentialMetatype, &[t])?;
                    return self.ty_node(n);
                }
                let list = self.a.node(Kind::TypeList)?;
                while !self.next_if(b'_') {
                    let p = self.protocol_name()?;
                    let t = self.ty_node(p)?;
                    self.a.add(list, t);
                    if self.pos >= self.s.len() || self.a.num_children(list) > 256 {
                        return None;
                    }
                }
                let n = self.a.with(Kind::ProtocolList, &[list])?;
                self.ty_node(n)
            }
            b'Q' => {
                self.next();
                // Archetypes: `Q<index>` → A, B, …; `Qd<d><i>`.
                let t = self.generic_param_type_q()?;
                Some(t)
            }
            b'q' => {
                self.next();
                self.generic_param_type()
            }
            b'x' => {
                self.next();
                let p = self.a.node(Kind::DependentGenericParamType)?;
                let d = self.a.index_node(Kind::Index, 0)?;
                let i = self.a.index_node(Kind::Index, 0)?;
                self.a.add(p, d);
                self.a.add(p, i);
                self.ty_node(p)
            }
            b'w' => {
                self.next();
                self.assoc_simple()
            }
            b'W' => {
                self.next();
                self.assoc_compound()
            }
            b'R' => {
                self.next();
                let t = self.ty()?;
                let n = self.a.with(Kind::InOut, &[t])?;
                self.ty_node(n)
            }
            b'k' => {
                self.next();
                let t = self.ty()?;
                let n = self.a.with(Kind::NoDerivative, &[t])?;
                self.ty_node(n)
            }
            b'S' => {
                let s = self.substitution()?;
                if self.a.kind(s) == Kind::Module {
                    // A module starts a nominal type's context only after C/V/O.
                    return None;
                }
                if self.a.kind(s) == Kind::Type {
                    Some(s)
                } else {
                    self.ty_node(s)
                }
            }
            b'T' | b't' => {
                self.next();
                let tuple = self.a.node(Kind::Tuple)?;
                while !self.next_if(b'_') {
                    let elt = self.a.node(Kind::TupleElement)?;
                    if self.peek().is_ascii_digit()
                        || (self.peek() == b'X' && self.peek_at(1).is_ascii_digit())
                    {
                        let id = self.identifier()?;
                        let s = self.a.text(id).to_string();
                        let n = self.a.text_node(Kind::TupleElementName, &s)?;
                        self.a.add(elt, n);
                    }
                    let t = self.ty()?;
                    self.a.add(elt, t);
                    self.a.add(tuple, elt);
                    if self.pos >= self.s.len() || self.a.num_children(tuple) > 256 {
                        return None;
                    }
                }
                if c == b't' {
                    if let Some(&last) = self.a.children(tuple).last() {
                        let v = self.a.node(Kind::VariadicMarker)?;
                        self.a.add(last, v);
                    }
                }
                self.ty_node(tuple)
            }
            b'u' => {
                self.next();
                let sig = self.generic_signature()?;
                let t = self.ty()?;
                let n = self.a.with(Kind::DependentGenericType, &[sig, t])?;
                self.ty_node(n)
            }
            b'X' => {
                self.next();
                match self.next() {
                    b'o' | b'u' | b'w' => {
                        let k = match self.s[self.pos - 1] {
                            b'o' => Kind::Unowned,
                            b'u' => Kind::Unmanaged,
                            _ => Kind::Weak,
                        };
                        let t = self.ty()?;
                        let n = self.a.with(k, &[t])?;
                        self.ty_node(n)
                    }
                    b'b' => {
                        let t = self.ty()?;
                        let n = self.a.with(Kind::SILBoxType, &[t])?;
                        self.ty_node(n)
                    }
                    b'M' => {
                        let r = match self.next() {
                            b't' => "@thin",
                            b'T' => "@thick",
                            b'o' => "@objc_metatype",
                            _ => return None,
                        };
                        let rn = self.a.text_node(Kind::MetatypeRepresentation, r)?;
                        let t = self.ty()?;
                        let n = self.a.with(Kind::Metatype, &[rn, t])?;
                        self.ty_node(n)
                    }
                    b'F' => self.impl_function_type(),
                    _ => None,
                }
            }
            b'C' | b'V' | b'O' => self.nominal_type(),
            _ => None,
        }
    }

    /// Generic arguments, outermost type first, one `_`-terminated list per
    /// nesting level.
    fn bound_generic_args(&mut self, nominal: NodeId, depth: u32) -> Option<NodeId> {
        if depth > 32 {
            return None;
        }
        let k = self.a.kind(nominal);
        let bound_kind = match k {
            Kind::Class => Kind::BoundGenericClass,
            Kind::Structure => Kind::BoundGenericStructure,
            Kind::Enum => Kind::BoundGenericEnum,
            _ => return None,
        };
        let mut nominal = nominal;
        let parent = self.a.child(nominal, 0)?;
        if matches!(
            self.a.kind(parent),
            Kind::Class | Kind::Structure | Kind::Enum
        ) {
            let bp = self.bound_generic_args(parent, depth + 1)?;
            let nn = self.a.with(k, &[bp])?;
            for i in 1..self.a.num_children(nominal) {
                let c = self.a.child(nominal, i)?;
                self.a.add(nn, c);
            }
            nominal = nn;
        }
        let list = self.a.node(Kind::TypeList)?;
        while !self.next_if(b'_') {
            let t = self.ty()?;
            self.a.add(list, t);
            if self.pos >= self.s.len() || self.a.num_children(list) > 256 {
                return None;
            }
        }
        if self.a.num_children(list) == 0 {
            return Some(nominal);
        }
        let t = self.ty_node(nominal)?;
        self.a.with(bound_kind, &[t, list])
    }

    fn generic_param_type_q(&mut self) -> Option<NodeId> {
        if self.next_if(b'u') {
            let n = self.a.node(Kind::OpaqueReturnType)?;
            return self.ty_node(n);
        }
        let (depth, index) = if self.next_if(b'd') {
            let d = self.index()? + 1;
            let i = self.index()?;
            (d, i)
        } else {
            (0, self.index()?)
        };
        let p = self.a.node(Kind::DependentGenericParamType)?;
        let d = self.a.index_node(Kind::Index, depth)?;
        let i = self.a.index_node(Kind::Index, index)?;
        self.a.add(p, d);
        self.a.add(p, i);
        self.ty_node(p)
    }

    fn impl_function_type(&mut self) -> Option<NodeId> {
        let f = self.a.node(Kind::ImplFunctionType)?;
        let cc = match self.next() {
            b'e' => {
                let e = self.a.node(Kind::ImplEscaping)?;
                self.a.add(f, e);
                self.next()
            }
            c => c,
        };
        let callee = match cc {
            b't' => "@convention(thin)",
            b'o' => "@callee_owned",
            b'g' => "@callee_guaranteed",
            b'd' => "@callee_unowned",
            _ => return None,
        };
        let n = self.a.text_node(Kind::ImplConvention, callee)?;
        self.a.add(f, n);
        // Function attributes: `Cb` block, `Cc` c, `Cm` method, `CO` objc method, `Cw` witness.
        if self.next_if(b'C') {
            let conv = match self.next() {
                b'b' => "block",
                b'c' => "c",
                b'm' => "method",
                b'O' => "objc_method",
                b'w' => "witness_method",
                _ => return None,
            };
            let fc = self.a.node(Kind::ImplFunctionConvention)?;
            let name = self.a.text_node(Kind::ImplFunctionConventionName, conv)?;
            self.a.add(fc, name);
            self.a.add(f, fc);
        }
        if self.next_if(b'G') {
            let sig = self.generic_signature()?;
            self.a.add(f, sig);
        }
        if !self.next_if(b'_') {
            return None;
        }
        // Parameters, then `_`, then results, then `_`.
        while !self.next_if(b'_') {
            let p = self.impl_param(Kind::ImplParameter, false)?;
            self.a.add(f, p);
            if self.pos >= self.s.len() {
                return None;
            }
        }
        while !self.next_if(b'_') {
            let r = self.impl_param(Kind::ImplResult, true)?;
            self.a.add(f, r);
            if self.pos >= self.s.len() {
                return None;
            }
        }
        self.ty_node(f)
    }

    fn impl_param(&mut self, k: Kind, result: bool) -> Option<NodeId> {
        let mut kind = k;
        let conv = if result && self.next_if_str(b"zo") {
            kind = Kind::ImplErrorResult;
            "@owned"
        } else {
            match self.next() {
                b'i' => {
                    if result {
                        "@out"
                    } else {
                        "@in"
                    }
                }
                b'l' => "@inout",
                b'L' => "@inout_aliasable",
                b'G' => "@in_guaranteed",
                b'e' => "@in_constant",
                b'o' => "@owned",
                b'g' => "@guaranteed",
                b'd' => "@unowned",
                b'D' => "@unowned_inner_pointer",
                b'a' => "@autoreleased",
                b'r' => "@out",
                _ => return None,
            }
        };
        let c = self.a.text_node(Kind::ImplConvention, conv)?;
        let t = self.ty()?;
        self.a.with(kind, &[c, t])
    }
}
