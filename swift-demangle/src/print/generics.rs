//! Generics and conformances: generic signatures and requirements,
//! generic parameters and dependent types, and protocol conformances
//! (concrete, dependent, pack and retroactive).

use crate::node::{Kind, NodeId};

use super::{Printer, R};

impl<'a> Printer<'a> {
    /// Prints the kinds of this module; any other kind goes on to
    /// [`Self::print_specialization_kind`].
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(super) fn print_generic_kind(
        &mut self,
        n: NodeId,
        k: Kind,
        depth: u32,
        as_prefix: bool,
    ) -> R {
        use Kind::*;
        match k {
            RetroactiveConformance => {
                if self.nch(n) == 2 {
                    self.s("retroactive @ ");
                    self.pc(n, 0, depth);
                    self.pc(n, 1, depth);
                }
            }
            ProtocolConformance => {
                let c0 = self.ch(n, 0)?;
                let c1 = self.ch(n, 1)?;
                let c2 = self.ch(n, 2)?;
                if self.nch(n) == 4 {
                    self.s("property behavior storage of ");
                    self.p(c2, depth);
                    self.s(" in ");
                    self.p(c0, depth);
                    self.s(" : ");
                    self.p(c1, depth);
                } else {
                    self.p(c0, depth);
                    if self.o.protocol_conformances {
                        self.s(" : ");
                        self.p(c1, depth);
                        self.s(" in ");
                        self.p(c2, depth);
                    }
                }
            }
            DependentPseudogenericSignature | DependentGenericSignature => {
                self.print_generic_signature(n, depth)
            }
            DependentGenericParamCount => {
                self.invalid = true;
            }
            DependentGenericConformanceRequirement => {
                self.pc(n, 0, depth);
                self.s(": ");
                self.pc(n, 1, depth);
            }
            DependentGenericInverseConformanceRequirement => {
                self.pc(n, 0, depth);
                self.s(": ~");
                let i = self.a.child(n, 1).map(|c| self.a.index(c)).unwrap_or(0);
                match i {
                    0 => self.s("Swift.Copyable"),
                    1 => self.s("Swift.Escapable"),
                    _ => {
                        self.s("Swift.<bit ");
                        self.num(i);
                        self.s(">");
                    }
                }
            }
            DependentGenericLayoutRequirement => {
                self.pc(n, 0, depth);
                self.s(": ");
                let layout = self.ch(n, 1)?;
                let name = match self.text(layout) {
                    "U" => "_UnknownLayout",
                    "R" => "_RefCountedObject",
                    "N" => "_NativeRefCountedObject",
                    "C" => "AnyObject",
                    "D" => "_NativeClass",
                    "T" => "_Trivial",
                    "E" | "e" => "_Trivial",
                    "M" | "m" => "_TrivialAtMost",
                    "S" => "_TrivialStride",
                    "B" => "_BridgeObject",
                    _ => "",
                };
                self.s(name);
                if self.nch(n) > 2 {
                    self.s("(");
                    self.pc(n, 2, depth);
                    if self.nch(n) > 3 {
                        self.s(", ");
                        self.pc(n, 3, depth);
                    }
                    self.s(")");
                }
            }
            DependentGenericSameTypeRequirement => {
                self.pc(n, 0, depth);
                self.s(" == ");
                self.pc(n, 1, depth);
            }
            DependentGenericSameShapeRequirement => {
                self.pc(n, 0, depth);
                self.s(".shape == ");
                self.pc(n, 1, depth);
                self.s(".shape");
            }
            DependentGenericParamPackMarker | DependentGenericParamValueMarker => {}
            DependentGenericParamType => {
                let d = self.a.child(n, 0).map(|c| self.a.index(c)).unwrap_or(0);
                let i = self.a.child(n, 1).map(|c| self.a.index(c)).unwrap_or(0);
                self.generic_param_name(d, i);
            }
            DependentGenericType => {
                let sig = self.ch(n, 0)?;
                let t = self.ch(n, 1)?;
                self.p(sig, depth);
                if self.need_space_before_type(t) {
                    self.s(" ");
                }
                self.p(t, depth);
            }
            DependentMemberType => {
                self.pc(n, 0, depth);
                self.s(".");
                self.pc(n, 1, depth);
            }
            DependentAssociatedTypeRef => {
                if let Some(p) = self.a.child(n, 1) {
                    self.p(p, depth);
                    self.s(".");
                }
                self.pc(n, 0, depth);
            }
            AssociatedTypeGenericParamRef => {
                self.s("generic parameter reference for associated type ");
                self.children(n, "", depth);
            }
            AnyProtocolConformanceList => {
                if self.nch(n) > 0 {
                    self.s("(");
                    self.children(n, ", ", depth);
                    self.s(")");
                }
            }
            ConcreteProtocolConformance => {
                self.s("concrete protocol conformance ");
                if let Some(i) = self.child_of_kind(n, Index) {
                    self.s("#");
                    self.num(self.a.index(i));
                    self.s(" ");
                }
                self.pc(n, 0, depth);
                self.s(" to ");
                self.pc(n, 1, depth);
                if let Some(l) = self.a.child(n, 2) {
                    if self.nch(l) > 0 {
                        self.s(" with conditional requirements: ");
                        self.p(l, depth);
                    }
                }
            }
            PackProtocolConformance => {
                self.s("pack protocol conformance ");
                self.children(n, "", depth);
            }
            DependentAssociatedConformance => {
                self.s("dependent associated conformance ");
                self.pc(n, 0, depth);
                self.s(" to ");
                self.pc(n, 1, depth);
            }
            DependentProtocolConformanceAssociated => {
                self.s("dependent associated protocol conformance ");
                self.print_opt_index(n, 2, depth);
                self.pc(n, 0, depth);
                self.s(" to ");
                self.pc(n, 1, depth);
            }
            DependentProtocolConformanceInherited => {
                self.s("dependent inherited protocol conformance ");
                self.print_opt_index(n, 2, depth);
                self.pc(n, 0, depth);
                self.s(" to ");
                self.pc(n, 1, depth);
            }
            DependentProtocolConformanceOpaque => {
                self.s("opaque result conformance ");
                self.pc(n, 0, depth);
                self.s(" of ");
                self.pc(n, 1, depth);
            }
            DependentProtocolConformanceRoot => {
                self.s("dependent root protocol conformance ");
                self.print_opt_index(n, 2, depth);
                self.pc(n, 0, depth);
                self.s(" to ");
                self.pc(n, 1, depth);
            }
            ProtocolConformanceRefInTypeModule => {
                self.s("protocol conformance ref (type's module) ");
                self.pc(n, 0, depth);
            }
            ProtocolConformanceRefInProtocolModule => {
                self.s("protocol conformance ref (protocol's module) ");
                self.pc(n, 0, depth);
            }
            ProtocolConformanceRefInOtherModule => {
                self.s("protocol conformance ref (retroactive) ");
                self.children(n, "", depth);
            }
            _ => return self.print_specialization_kind(n, k, depth, as_prefix),
        }
        None
    }

    /// `A`, `B`, …, `Z`, `AB`, …, with the depth appended when not 0.
    pub(super) fn generic_param_name(&mut self, depth: u64, index: u64) {
        let mut i = index;
        loop {
            self.c((b'A' + (i % 26) as u8) as char);
            i /= 26;
            if i == 0 {
                break;
            }
        }
        if depth != 0 {
            self.num(depth);
        }
    }

    pub(super) fn print_generic_signature(&mut self, n: NodeId, depth: u32) {
        self.s("<");
        let nc = self.nch(n);
        let mut d = 0;
        let ch: &'a [NodeId] = self.a.children(n);
        // Pack and value markers change how parameters are printed.
        let mut packs: Vec<(u64, u64)> = Vec::new();
        let mut values: Vec<((u64, u64), NodeId)> = Vec::new();
        for &c in ch {
            if matches!(
                self.k(c),
                Kind::DependentGenericParamPackMarker | Kind::DependentGenericParamValueMarker
            ) {
                if let Some(p) = self.a.child(c, 0).map(|t| self.a.skip_type(t)) {
                    if self.k(p) == Kind::DependentGenericParamType {
                        let dd = self.a.child(p, 0).map(|x| self.a.index(x)).unwrap_or(0);
                        let ii = self.a.child(p, 1).map(|x| self.a.index(x)).unwrap_or(0);
                        if self.k(c) == Kind::DependentGenericParamPackMarker {
                            packs.push((dd, ii));
                        } else if let Some(t) = self.a.child(c, 1) {
                            values.push(((dd, ii), t));
                        }
                    }
                }
            }
        }
        while d < nc && self.k(ch[d]) == Kind::DependentGenericParamCount {
            if d != 0 {
                self.s("><");
            }
            let count = self.a.index(ch[d]);
            for i in 0..count {
                if i != 0 {
                    self.s(", ");
                }
                if i >= 128 {
                    self.s("...");
                    break;
                }
                if packs.contains(&(d as u64, i)) {
                    self.s("each ");
                }
                let value = values
                    .iter()
                    .find(|(k, _)| *k == (d as u64, i))
                    .map(|(_, t)| *t);
                if value.is_some() {
                    self.s("let ");
                }
                self.generic_param_name(d as u64, i);
                if let Some(t) = value {
                    self.s(": ");
                    self.p(t, depth);
                }
            }
            d += 1;
        }
        let reqs: Vec<NodeId> = ch[d..]
            .iter()
            .copied()
            .filter(|&c| {
                !matches!(
                    self.k(c),
                    Kind::DependentGenericParamPackMarker | Kind::DependentGenericParamValueMarker
                )
            })
            .collect();
        if !reqs.is_empty() && self.o.where_clauses {
            self.s(" where ");
            for (i, &r) in reqs.iter().enumerate() {
                if i > 0 {
                    self.s(", ");
                }
                self.p(r, depth);
            }
        }
        self.s(">");
    }
}
