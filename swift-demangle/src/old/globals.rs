//! What an old-mangled symbol is: the global operators (thunks, metadata,
//! witness tables and other `_TW…`/`_TM…` symbols) and protocol
//! conformances.

use crate::node::{Kind, NodeId};

use super::Old;

impl Old<'_> {
    pub(super) fn global(&mut self, top: NodeId) -> Option<()> {
        self.enter()?;
        let r = self.global_inner(top);
        self.leave();
        r
    }

    pub(super) fn global_inner(&mut self, top: NodeId) -> Option<()> {
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

    pub(super) fn attr(&mut self, top: NodeId, k: Kind) -> Option<()> {
        let n = self.a.node(k)?;
        self.a.add(top, n);
        self.global(top)
    }

    pub(super) fn metadata(&mut self) -> Option<NodeId> {
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

    pub(super) fn witness(&mut self) -> Option<NodeId> {
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

    pub(super) fn protocol_conformance(&mut self) -> Option<NodeId> {
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
}
