//! Old-mangling generics: generic signatures, generic parameters,
//! associated type paths and requirements.

use crate::node::{Kind, NodeId};

use super::Old;

impl Old<'_> {
    pub(super) fn generic_signature(&mut self) -> Option<NodeId> {
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

    pub(super) fn generic_param_type(&mut self) -> Option<NodeId> {
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

    pub(super) fn constrained_type(&mut self) -> Option<NodeId> {
        if self.next_if(b'w') {
            return self.assoc_simple();
        }
        if self.next_if(b'W') {
            return self.assoc_compound();
        }
        self.generic_param_type()
    }

    pub(super) fn assoc_name(&mut self) -> Option<NodeId> {
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

    pub(super) fn assoc_simple(&mut self) -> Option<NodeId> {
        let base = self.generic_param_type()?;
        let name = self.assoc_name()?;
        let d = self.a.with(Kind::DependentMemberType, &[base, name])?;
        self.ty_node(d)
    }

    pub(super) fn assoc_compound(&mut self) -> Option<NodeId> {
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

    pub(super) fn generic_requirement(&mut self) -> Option<NodeId> {
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
}
