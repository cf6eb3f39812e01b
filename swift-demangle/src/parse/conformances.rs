//! Protocols and protocol conformances: concrete, dependent, pack and
//! retroactive conformances (`H…`, `g`).

use crate::node::{Kind, NodeId};

use super::kinds::is_decl_name;
use super::Parser;

impl Parser<'_> {
    pub(super) fn pop_protocol(&mut self) -> Option<NodeId> {
        if let Some(t) = self.pop_kind(Kind::Type) {
            let c = self.a.child(t, 0)?;
            if !matches!(
                self.a.kind(c),
                Kind::Protocol | Kind::ProtocolSymbolicReference
            ) {
                return None;
            }
            return Some(t);
        }
        if let Some(s) = self.pop_kind(Kind::ProtocolSymbolicReference) {
            return Some(s);
        }
        let name = self.pop_if(is_decl_name)?;
        let ctx = self.pop_context()?;
        let p = self.with(Kind::Protocol, &[ctx, name])?;
        self.ty(p)
    }

    pub(super) fn pop_any_conformance(&mut self) -> Option<NodeId> {
        self.pop_if(|k| {
            matches!(
                k,
                Kind::ConcreteProtocolConformance
                    | Kind::PackProtocolConformance
                    | Kind::DependentProtocolConformanceOpaque
                    | Kind::DependentProtocolConformanceRoot
                    | Kind::DependentProtocolConformanceInherited
                    | Kind::DependentProtocolConformanceAssociated
            )
        })
    }

    pub(super) fn pop_any_conformance_list(&mut self) -> Option<NodeId> {
        let list = self.a.node(Kind::AnyProtocolConformanceList)?;
        if self.pop_kind(Kind::EmptyList).is_none() {
            loop {
                let first = self.pop_kind(Kind::FirstElementMarker).is_some();
                let c = self.pop_any_conformance()?;
                self.a.add(list, c);
                if first {
                    break;
                }
            }
            self.a.reverse_children(list, 0);
        }
        Some(list)
    }

    pub(super) fn concrete_conformance(&mut self) -> Option<NodeId> {
        let cond = self.pop_any_conformance_list()?;
        let r = match self.pop_kind(Kind::ProtocolConformanceRefInTypeModule) {
            Some(r) => r,
            None => match self.pop_kind(Kind::ProtocolConformanceRefInProtocolModule) {
                Some(r) => r,
                None => {
                    let m = self.pop_module()?;
                    let p = self.pop_protocol()?;
                    self.with(Kind::ProtocolConformanceRefInOtherModule, &[p, m])?
                }
            },
        };
        let t = self.pop_kind(Kind::Type)?;
        self.with(Kind::ConcreteProtocolConformance, &[t, r, cond])
    }

    pub(super) fn pack_conformance(&mut self) -> Option<NodeId> {
        let list = self.pop_any_conformance_list()?;
        self.with(Kind::PackProtocolConformance, &[list])
    }

    pub(super) fn pop_dependent_conformance(&mut self) -> Option<NodeId> {
        self.pop_if(|k| {
            matches!(
                k,
                Kind::DependentProtocolConformanceRoot
                    | Kind::DependentProtocolConformanceInherited
                    | Kind::DependentProtocolConformanceAssociated
                    | Kind::DependentProtocolConformanceOpaque
            )
        })
    }

    pub(super) fn dependent_conformance_index(&mut self) -> Option<NodeId> {
        let i = self.index()?;
        if i == 0 {
            return None;
        }
        if i == 1 {
            return self.a.node(Kind::UnknownIndex);
        }
        self.a.index_node(Kind::Index, i - 2)
    }

    pub(super) fn dependent_conformance_root(&mut self) -> Option<NodeId> {
        let idx = self.dependent_conformance_index()?;
        let p = self.pop_protocol()?;
        let t = self.pop_kind(Kind::Type)?;
        self.with(Kind::DependentProtocolConformanceRoot, &[t, p, idx])
    }

    pub(super) fn dependent_conformance_inherited(&mut self) -> Option<NodeId> {
        let idx = self.dependent_conformance_index()?;
        let p = self.pop_protocol()?;
        let nested = self.pop_dependent_conformance()?;
        self.with(
            Kind::DependentProtocolConformanceInherited,
            &[nested, p, idx],
        )
    }

    pub(super) fn dependent_conformance_associated(&mut self) -> Option<NodeId> {
        let idx = self.dependent_conformance_index()?;
        let p = self.pop_protocol()?;
        let t = self.pop_kind(Kind::Type)?;
        let assoc = self.with(Kind::DependentAssociatedConformance, &[t, p])?;
        let nested = self.pop_dependent_conformance()?;
        self.with(
            Kind::DependentProtocolConformanceAssociated,
            &[nested, assoc, idx],
        )
    }

    pub(super) fn retroactive_conformance(&mut self) -> Option<NodeId> {
        let idx = self.index_node()?;
        let c = self.pop_any_conformance()?;
        self.with(Kind::RetroactiveConformance, &[idx, c])
    }

    pub(super) fn pop_protocol_conformance(&mut self) -> Option<NodeId> {
        let sig = self.pop_kind(Kind::DependentGenericSignature);
        let module = self.pop_module()?;
        let proto = self.pop_protocol()?;
        let mut ty = self.pop_kind(Kind::Type);
        let mut ident = None;
        if ty.is_none() {
            ident = self.pop_kind(Kind::Identifier);
            ty = self.pop_kind(Kind::Type);
        }
        let mut ty = ty?;
        if let Some(s) = sig {
            let d = self.with(Kind::DependentGenericType, &[s, ty])?;
            ty = self.ty(d)?;
        }
        let c = self.with(Kind::ProtocolConformance, &[ty, proto, module])?;
        if let Some(i) = ident {
            self.a.add(c, i);
        }
        Some(c)
    }
}
