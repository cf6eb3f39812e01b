//! Generics: bound generic types (`G`), generic parameters (`q`, `x`),
//! generic signatures and requirements (`l`, `r`, `R…`), dependent member
//! types and archetypes (`Q…`).

use crate::node::{Kind, NodeId};

use super::kinds::is_requirement;
use super::Parser;

impl Parser<'_> {
    pub(super) fn bound_generics(&mut self) -> Option<(SmallList, Option<NodeId>)> {
        let mut retro: Option<NodeId> = None;
        while let Some(r) = self.pop_kind(Kind::RetroactiveConformance) {
            let l = match retro {
                Some(l) => l,
                None => {
                    let l = self.a.node(Kind::TypeList)?;
                    retro = Some(l);
                    l
                }
            };
            self.a.add(l, r);
        }
        if let Some(l) = retro {
            self.a.reverse_children(l, 0);
        }
        let mut lists = SmallList::new();
        loop {
            let tl = self.a.node(Kind::TypeList)?;
            lists.push(tl);
            while let Some(t) = self.pop_kind(Kind::Type) {
                self.a.add(tl, t);
            }
            self.a.reverse_children(tl, 0);
            if self.pop_kind(Kind::EmptyList).is_some() {
                break;
            }
            self.pop_kind(Kind::FirstElementMarker)?;
            if lists.len() > 256 {
                return None;
            }
        }
        Some((lists, retro))
    }

    pub(super) fn bound_generic_type(&mut self) -> Option<NodeId> {
        let (lists, retro) = self.bound_generics()?;
        let nominal = self.pop_type_any_generic()?;
        let b = self.bound_generic_args(nominal, lists.as_slice(), 0, 0)?;
        if let Some(r) = retro {
            self.a.add(b, r);
        }
        let t = self.ty(b)?;
        self.add_sub(t);
        Some(t)
    }

    pub(super) fn bound_generic_args(
        &mut self,
        nominal: NodeId,
        lists: &[NodeId],
        mut idx: usize,
        depth: u32,
    ) -> Option<NodeId> {
        if depth > 64 || idx >= lists.len() {
            return None;
        }
        let nk = self.a.kind(nominal);
        if matches!(
            nk,
            Kind::TypeSymbolicReference | Kind::ProtocolSymbolicReference
        ) {
            return None;
        }
        let ctx = self.a.child(nominal, 0)?;
        let consumes = !matches!(
            nk,
            Kind::Variable
                | Kind::Subscript
                | Kind::ImplicitClosure
                | Kind::ExplicitClosure
                | Kind::DefaultArgumentInitializer
                | Kind::Initializer
                | Kind::PropertyWrapperBackingInitializer
                | Kind::PropertyWrapperInitFromProjectedValue
                | Kind::Static
        );
        let args = lists[idx];
        if consumes {
            idx += 1;
        }
        let mut nominal = nominal;
        if idx < lists.len() {
            let parent = if self.a.kind(ctx) == Kind::Extension {
                let inner = self.a.child(ctx, 1)?;
                let bp = self.bound_generic_args(inner, lists, idx, depth + 1)?;
                let m = self.a.child(ctx, 0)?;
                let e = self.with(Kind::Extension, &[m, bp])?;
                if let Some(s) = self.a.child(ctx, 2) {
                    self.a.add(e, s);
                }
                e
            } else {
                self.bound_generic_args(ctx, lists, idx, depth + 1)?
            };
            let nn = self.with(nk, &[parent])?;
            for i in 1..self.a.num_children(nominal) {
                let c = self.a.child(nominal, i)?;
                self.a.add(nn, c);
            }
            nominal = nn;
        }
        if !consumes || self.a.num_children(args) == 0 {
            return Some(nominal);
        }
        let k = match nk {
            Kind::Class => Kind::BoundGenericClass,
            Kind::Structure => Kind::BoundGenericStructure,
            Kind::Enum => Kind::BoundGenericEnum,
            Kind::Protocol => Kind::BoundGenericProtocol,
            Kind::OtherNominalType => Kind::BoundGenericOtherNominalType,
            Kind::TypeAlias => Kind::BoundGenericTypeAlias,
            Kind::Function | Kind::Constructor => {
                return self.with(Kind::BoundGenericFunction, &[nominal, args]);
            }
            _ => return None,
        };
        let t = self.ty(nominal)?;
        self.with(k, &[t, args])
    }

    pub(super) fn generic_param(&mut self, depth: u64, index: u64) -> Option<NodeId> {
        let p = self.a.node(Kind::DependentGenericParamType)?;
        let d = self.a.index_node(Kind::Index, depth)?;
        let i = self.a.index_node(Kind::Index, index)?;
        self.a.add(p, d);
        self.a.add(p, i);
        Some(p)
    }

    pub(super) fn generic_param_index(&mut self) -> Option<NodeId> {
        if self.next_if(b'd') {
            let depth = self.index()? + 1;
            let index = self.index()?;
            return self.generic_param(depth, index);
        }
        if self.next_if(b'z') {
            return self.generic_param(0, 0);
        }
        if self.next_if(b's') {
            let s = self.a.node(Kind::ConstrainedExistentialSelf)?;
            return Some(s);
        }
        let i = self.index()? + 1;
        self.generic_param(0, i)
    }

    pub(super) fn generic_signature(&mut self, has_counts: bool) -> Option<NodeId> {
        let sig = self.a.node(Kind::DependentGenericSignature)?;
        if has_counts {
            while !self.next_if(b'l') {
                let count = if self.next_if(b'z') {
                    0
                } else {
                    self.index()? + 1
                };
                let c = self.a.index_node(Kind::DependentGenericParamCount, count)?;
                self.a.add(sig, c);
                if self.a.num_children(sig) > 64 {
                    return None;
                }
            }
        } else {
            let c = self.a.index_node(Kind::DependentGenericParamCount, 1)?;
            self.a.add(sig, c);
        }
        let n = self.a.num_children(sig);
        while let Some(r) = self.pop_if(is_requirement) {
            self.a.add(sig, r);
        }
        self.a.reverse_children(sig, n);
        Some(sig)
    }

    pub(super) fn generic_requirement(&mut self) -> Option<NodeId> {
        #[derive(PartialEq)]
        enum T {
            Generic,
            Assoc,
            Compound,
            Subst,
        }
        #[derive(PartialEq)]
        enum C {
            Proto,
            Base,
            Same,
            Layout,
            Inverse,
            Pack,
            Value,
            SameShape,
        }
        let (c, t) = match self.next() {
            b'V' => (C::Value, T::Generic),
            b'v' => (C::Pack, T::Generic),
            b'h' => (C::SameShape, T::Generic),
            b'c' => (C::Base, T::Assoc),
            b'C' => (C::Base, T::Compound),
            b'b' => (C::Base, T::Generic),
            b'B' => (C::Base, T::Subst),
            b't' => (C::Same, T::Assoc),
            b'T' => (C::Same, T::Compound),
            b's' => (C::Same, T::Generic),
            b'S' => (C::Same, T::Subst),
            b'm' => (C::Layout, T::Assoc),
            b'M' => (C::Layout, T::Compound),
            b'l' => (C::Layout, T::Generic),
            b'L' => (C::Layout, T::Subst),
            b'p' => (C::Proto, T::Assoc),
            b'P' => (C::Proto, T::Compound),
            b'Q' => (C::Proto, T::Subst),
            b'i' => (C::Inverse, T::Generic),
            b'I' => (C::Inverse, T::Subst),
            b'j' => (C::Inverse, T::Assoc),
            b'J' => (C::Inverse, T::Compound),
            _ => {
                self.back();
                (C::Proto, T::Generic)
            }
        };
        let inverse_index = if c == C::Inverse {
            Some(self.index()?)
        } else {
            None
        };
        let constr = match t {
            T::Generic => {
                let p = self.generic_param_index()?;
                self.ty(p)?
            }
            T::Assoc => {
                let p = self.generic_param_index()?;
                let r = self.assoc_type_simple(Some(p))?;
                self.add_sub(r);
                r
            }
            T::Compound => {
                let p = self.generic_param_index()?;
                let r = self.assoc_type_compound(Some(p))?;
                self.add_sub(r);
                r
            }
            T::Subst => self.pop_kind(Kind::Type)?,
        };
        match c {
            C::Value => {
                let t = self.pop_kind(Kind::Type)?;
                self.with(Kind::DependentGenericParamValueMarker, &[constr, t])
            }
            C::Pack => self.with(Kind::DependentGenericParamPackMarker, &[constr]),
            C::SameShape => {
                let t = self.pop_kind(Kind::Type)?;
                self.with(Kind::DependentGenericSameShapeRequirement, &[constr, t])
            }
            C::Proto => {
                let p = self.pop_protocol()?;
                self.with(Kind::DependentGenericConformanceRequirement, &[constr, p])
            }
            C::Inverse => {
                let i = self.a.index_node(Kind::Index, inverse_index?)?;
                self.with(
                    Kind::DependentGenericInverseConformanceRequirement,
                    &[constr, i],
                )
            }
            C::Base => {
                let t = self.pop_kind(Kind::Type)?;
                self.with(Kind::DependentGenericConformanceRequirement, &[constr, t])
            }
            C::Same => {
                let t = self.pop_kind(Kind::Type)?;
                self.with(Kind::DependentGenericSameTypeRequirement, &[constr, t])
            }
            C::Layout => {
                let ch = self.next();
                let (size, align) = match ch {
                    b'U' | b'R' | b'N' | b'C' | b'D' | b'T' | b'B' => (None, None),
                    b'E' | b'M' => {
                        let s = self.index_node()?;
                        let a = self.index_node()?;
                        (Some(s), Some(a))
                    }
                    b'e' | b'm' | b'S' => (Some(self.index_node()?), None),
                    _ => return None,
                };
                let s = (ch as char).to_string();
                let name = self.a.text_node(Kind::Identifier, &s)?;
                let r = self.with(Kind::DependentGenericLayoutRequirement, &[constr, name])?;
                if let Some(s) = size {
                    self.a.add(r, s);
                }
                if let Some(al) = align {
                    self.a.add(r, al);
                }
                Some(r)
            }
        }
    }

    pub(super) fn generic_type(&mut self) -> Option<NodeId> {
        let sig = self.pop_kind(Kind::DependentGenericSignature)?;
        let t = self.pop_kind(Kind::Type)?;
        let d = self.with(Kind::DependentGenericType, &[sig, t])?;
        self.ty(d)
    }

    pub(super) fn pop_assoc_type_name(&mut self) -> Option<NodeId> {
        let mut proto = self.pop_kind(Kind::Type);
        if let Some(p) = proto {
            let c = self.a.child(p, 0)?;
            if !matches!(
                self.a.kind(c),
                Kind::Protocol | Kind::ProtocolSymbolicReference
            ) {
                return None;
            }
        }
        if proto.is_none() {
            proto = self.pop_kind(Kind::ProtocolSymbolicReference);
        }
        let id = self.pop_kind(Kind::Identifier)?;
        let r = self.with(Kind::DependentAssociatedTypeRef, &[id])?;
        if let Some(p) = proto {
            self.a.add(r, p);
        }
        Some(r)
    }

    pub(super) fn pop_assoc_type_path(&mut self) -> Option<NodeId> {
        let path = self.a.node(Kind::AssocTypePath)?;
        loop {
            let first = self.pop_kind(Kind::FirstElementMarker).is_some();
            let a = self.pop_assoc_type_name()?;
            self.a.add(path, a);
            if first {
                break;
            }
        }
        self.a.reverse_children(path, 0);
        Some(path)
    }

    pub(super) fn assoc_type_simple(&mut self, base: Option<NodeId>) -> Option<NodeId> {
        let name = self.pop_assoc_type_name()?;
        let base_ty = match base {
            Some(b) => self.ty(b)?,
            None => self.pop_kind(Kind::Type)?,
        };
        let d = self.with(Kind::DependentMemberType, &[base_ty, name])?;
        self.ty(d)
    }

    pub(super) fn assoc_type_compound(&mut self, base: Option<NodeId>) -> Option<NodeId> {
        let mut names = Vec::new();
        loop {
            let first = self.pop_kind(Kind::FirstElementMarker).is_some();
            names.push(self.pop_assoc_type_name()?);
            if first || names.len() > 256 {
                break;
            }
        }
        let mut base_ty = match base {
            Some(b) => self.ty(b)?,
            None => self.pop_kind(Kind::Type)?,
        };
        while let Some(n) = names.pop() {
            let d = self.with(Kind::DependentMemberType, &[base_ty, n])?;
            base_ty = self.ty(d)?;
        }
        Some(base_ty)
    }

    pub(super) fn archetype(&mut self) -> Option<NodeId> {
        match self.next() {
            b'a' => {
                let id = self.pop_kind(Kind::Identifier)?;
                let at = self.pop_type_child()?;
                let r = self.with(Kind::AssociatedTypeRef, &[at, id])?;
                let t = self.ty(r)?;
                self.add_sub(t);
                Some(t)
            }
            b'O' => {
                let ctx = self.pop_context()?;
                self.with(Kind::OpaqueReturnTypeOf, &[ctx])
            }
            b'o' => {
                let index = self.index()?;
                let (lists, retro) = self.bound_generics()?;
                let name = self.pop()?;
                let i = self.a.index_node(Kind::Index, index)?;
                let o = self.with(Kind::OpaqueType, &[name, i])?;
                let bg = self.a.node(Kind::TypeList)?;
                for &l in lists.as_slice().iter().rev() {
                    self.a.add(bg, l);
                }
                self.a.add(o, bg);
                if let Some(r) = retro {
                    self.a.add(o, r);
                }
                let t = self.ty(o)?;
                self.add_sub(t);
                Some(t)
            }
            b'r' => {
                let n = self.a.node(Kind::OpaqueReturnType)?;
                self.ty(n)
            }
            b'R' => {
                let i = self.index()?;
                let n = self.a.index_node(Kind::OpaqueReturnTypeIndexed, i)?;
                self.ty(n)
            }
            b'x' => {
                let t = self.assoc_type_simple(None)?;
                self.add_sub(t);
                Some(t)
            }
            b'X' => {
                let t = self.assoc_type_compound(None)?;
                self.add_sub(t);
                Some(t)
            }
            b'y' => {
                let p = self.generic_param_index()?;
                let t = self.assoc_type_simple(Some(p))?;
                self.add_sub(t);
                Some(t)
            }
            b'Y' => {
                let p = self.generic_param_index()?;
                let t = self.assoc_type_compound(Some(p))?;
                self.add_sub(t);
                Some(t)
            }
            b'z' => {
                let p = self.generic_param(0, 0)?;
                let t = self.assoc_type_simple(Some(p))?;
                self.add_sub(t);
                Some(t)
            }
            b'Z' => {
                let p = self.generic_param(0, 0)?;
                let t = self.assoc_type_compound(Some(p))?;
                self.add_sub(t);
                Some(t)
            }
            b'p' => {
                let count = self.pop_kind(Kind::Type)?;
                let pattern = self.pop_kind(Kind::Type)?;
                let n = self.with(Kind::PackExpansion, &[pattern, count])?;
                self.ty(n)
            }
            b'e' => {
                let level = self.index()?;
                let pack = self.pop_kind(Kind::Type)?;
                let l = self.a.index_node(Kind::PackElementLevel, level)?;
                let n = self.with(Kind::PackElement, &[pack, l])?;
                self.ty(n)
            }
            b'P' => {
                let list = self.pop_type_list()?;
                let n = self.a.node(Kind::Pack)?;
                let ch: Vec<NodeId> = self.a.children(list).to_vec();
                for c in ch {
                    self.a.add(n, c);
                }
                self.ty(n)
            }
            b'S' => {
                let k = match self.next() {
                    b'd' => Kind::SILPackDirect,
                    b'i' => Kind::SILPackIndirect,
                    _ => return None,
                };
                let list = self.pop_type_list()?;
                let n = self.a.node(k)?;
                let ch: Vec<NodeId> = self.a.children(list).to_vec();
                for c in ch {
                    self.a.add(n, c);
                }
                self.ty(n)
            }
            _ => None,
        }
    }
}

/// A short list of nodes that lives on the stack unless it grows long.
pub(super) struct SmallList {
    n: usize,
    inline: [NodeId; 8],
    heap: Vec<NodeId>,
}

impl SmallList {
    pub(super) fn new() -> Self {
        SmallList {
            n: 0,
            inline: [0; 8],
            heap: Vec::new(),
        }
    }

    pub(super) fn push(&mut self, x: NodeId) {
        if self.n < self.inline.len() {
            self.inline[self.n] = x;
        } else {
            if self.heap.is_empty() {
                self.heap.extend_from_slice(&self.inline);
            }
            self.heap.push(x);
        }
        self.n += 1;
    }

    pub(super) fn len(&self) -> usize {
        self.n
    }

    pub(super) fn as_slice(&self) -> &[NodeId] {
        if self.n <= self.inline.len() {
            &self.inline[..self.n]
        } else {
            &self.heap
        }
    }
}
