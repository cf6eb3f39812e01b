//! Metadata (`M…`): type metadata and its caches, descriptors and private
//! context descriptors (`MX…`); witness tables and other witness symbols
//! (`W…`).

use crate::node::{Kind, NodeId};

use super::kinds::{is_any_generic, is_decl_name, is_entity};
use super::Parser;

impl Parser<'_> {
    pub(super) fn metatype(&mut self) -> Option<NodeId> {
        let c = self.next();
        let popped_type = |k: Kind| Some(k);
        let k = match c {
            b'a' => popped_type(Kind::TypeMetadataAccessFunction),
            b'b' => popped_type(Kind::CanonicalSpecializedGenericTypeMetadataAccessFunction),
            b'B' => popped_type(Kind::ReflectionMetadataBuiltinDescriptor),
            b'D' => popped_type(Kind::TypeMetadataDemanglingCache),
            b'f' => popped_type(Kind::FullTypeMetadata),
            b'F' => popped_type(Kind::ReflectionMetadataFieldDescriptor),
            b'i' => popped_type(Kind::TypeMetadataInstantiationFunction),
            b'I' => popped_type(Kind::TypeMetadataInstantiationCache),
            b'l' => popped_type(Kind::TypeMetadataSingletonInitializationCache),
            b'L' => popped_type(Kind::TypeMetadataLazyCache),
            b'm' => popped_type(Kind::Metaclass),
            b'M' => popped_type(Kind::CanonicalSpecializedGenericMetaclass),
            b'n' => popped_type(Kind::NominalTypeDescriptor),
            b'N' => popped_type(Kind::NoncanonicalSpecializedGenericTypeMetadata),
            b'o' => popped_type(Kind::ClassMetadataBaseOffset),
            b'P' => popped_type(Kind::GenericTypeMetadataPattern),
            b'r' => popped_type(Kind::TypeMetadataCompletionFunction),
            b's' => popped_type(Kind::ObjCResilientClassStub),
            b't' => popped_type(Kind::FullObjCResilientClassStub),
            b'u' => popped_type(Kind::MethodLookupFunction),
            b'U' => popped_type(Kind::ObjCMetadataUpdateFunction),
            b'z' => popped_type(Kind::CanonicalPrespecializedGenericTypeCachingOnceToken),
            _ => None,
        };
        if let Some(k) = k {
            let t = self.pop_kind(Kind::Type)?;
            return self.with(k, &[t]);
        }
        match c {
            b'A' => {
                let c = self.pop_protocol_conformance()?;
                self.with(Kind::ReflectionMetadataAssocTypeDescriptor, &[c])
            }
            b'c' => {
                let c = self.pop_protocol_conformance()?;
                self.with(Kind::ProtocolConformanceDescriptor, &[c])
            }
            b'C' => {
                let t = self.pop_kind(Kind::Type)?;
                let c = self.a.child(t, 0)?;
                if !is_any_generic(self.a.kind(c)) {
                    return None;
                }
                self.with(Kind::ReflectionMetadataSuperclassDescriptor, &[c])
            }
            b'g' | b'h' | b'j' | b'k' | b'J' | b'K' | b'Q' => {
                let k = match c {
                    b'g' => Kind::OpaqueTypeDescriptorAccessor,
                    b'h' => Kind::OpaqueTypeDescriptorAccessorImpl,
                    b'j' => Kind::OpaqueTypeDescriptorAccessorKey,
                    b'k' => Kind::OpaqueTypeDescriptorAccessorVar,
                    b'J' => Kind::NoncanonicalSpecializedGenericTypeMetadataCache,
                    b'K' => Kind::MetadataInstantiationCache,
                    _ => Kind::OpaqueTypeDescriptor,
                };
                let n = self.pop()?;
                self.with(k, &[n])
            }
            b'p' => {
                let p = self.pop_protocol()?;
                self.with(Kind::ProtocolDescriptor, &[p])
            }
            b'S' => {
                let p = self.pop_protocol()?;
                self.with(Kind::ProtocolSelfConformanceDescriptor, &[p])
            }
            b'V' => {
                let e = self.pop_if(is_entity)?;
                self.with(Kind::PropertyDescriptor, &[e])
            }
            b'X' => self.private_context_descriptor(),
            _ => None,
        }
    }

    pub(super) fn private_context_descriptor(&mut self) -> Option<NodeId> {
        match self.next() {
            b'E' => {
                let e = self.pop_context()?;
                self.with(Kind::ExtensionDescriptor, &[e])
            }
            b'M' => {
                let m = self.pop_module()?;
                self.with(Kind::ModuleDescriptor, &[m])
            }
            b'Y' => {
                let d = self.pop()?;
                let c = self.pop_context()?;
                self.with(Kind::AnonymousDescriptor, &[c, d])
            }
            b'X' => {
                let c = self.pop_context()?;
                self.with(Kind::AnonymousDescriptor, &[c])
            }
            b'A' => {
                let path = self.pop_assoc_type_path()?;
                let base = self.pop_kind(Kind::Type)?;
                self.with(Kind::AssociatedTypeGenericParamRef, &[base, path])
            }
            _ => None,
        }
    }

    pub(super) fn witness(&mut self) -> Option<NodeId> {
        let c = self.next();
        match c {
            b'C' => {
                let e = self.pop_if(is_entity)?;
                self.with(Kind::EnumCase, &[e])
            }
            b'V' => {
                let t = self.pop_kind(Kind::Type)?;
                self.with(Kind::ValueWitnessTable, &[t])
            }
            b'v' => {
                let d = match self.next() {
                    b'd' => 0,
                    b'i' => 1,
                    _ => return None,
                };
                let dn = self.a.index_node(Kind::Directness, d)?;
                let e = self.pop_if(is_entity)?;
                self.with(Kind::FieldOffset, &[dn, e])
            }
            b'S' => {
                let p = self.pop_protocol()?;
                self.with(Kind::ProtocolSelfConformanceWitnessTable, &[p])
            }
            b'P' | b'p' | b'G' | b'I' | b'r' | b'a' => {
                let k = match c {
                    b'P' => Kind::ProtocolWitnessTable,
                    b'p' => Kind::ProtocolWitnessTablePattern,
                    b'G' => Kind::GenericProtocolWitnessTable,
                    b'I' => Kind::GenericProtocolWitnessTableInstantiationFunction,
                    b'r' => Kind::ResilientProtocolWitnessTable,
                    _ => Kind::ProtocolWitnessTableAccessor,
                };
                let conf = self.pop_protocol_conformance()?;
                self.with(k, &[conf])
            }
            b'l' | b'L' => {
                let conf = self.pop_protocol_conformance()?;
                let t = self.pop_kind(Kind::Type)?;
                let k = if c == b'l' {
                    Kind::LazyProtocolWitnessTableAccessor
                } else {
                    Kind::LazyProtocolWitnessTableCacheVariable
                };
                self.with(k, &[t, conf])
            }
            b't' => {
                let name = self.pop_if(is_decl_name)?;
                let conf = self.pop_protocol_conformance()?;
                self.with(Kind::AssociatedTypeMetadataAccessor, &[conf, name])
            }
            b'T' => {
                let proto = self.pop_kind(Kind::Type)?;
                let path = self.pop_assoc_type_path()?;
                let conf = self.pop_protocol_conformance()?;
                self.with(
                    Kind::AssociatedTypeWitnessTableAccessor,
                    &[conf, path, proto],
                )
            }
            b'b' => {
                let proto = self.pop_kind(Kind::Type)?;
                let conf = self.pop_protocol_conformance()?;
                self.with(Kind::BaseWitnessTableAccessor, &[conf, proto])
            }
            b'O' => {
                let k = match self.next() {
                    b'y' => Kind::OutlinedCopy,
                    b'e' => Kind::OutlinedConsume,
                    b'r' => Kind::OutlinedRetain,
                    b's' => Kind::OutlinedRelease,
                    b'b' => Kind::OutlinedInitializeWithTake,
                    b'c' => Kind::OutlinedInitializeWithCopy,
                    b'd' => Kind::OutlinedAssignWithTake,
                    b'f' => Kind::OutlinedAssignWithCopy,
                    b'h' => Kind::OutlinedDestroy,
                    b'i' => Kind::OutlinedEnumTagStore,
                    b'j' => Kind::OutlinedEnumProjectDataForLoad,
                    b'g' => Kind::OutlinedEnumGetTag,
                    b'B' => Kind::OutlinedInitializeWithTakeNoValueWitness,
                    b'C' => Kind::OutlinedInitializeWithCopyNoValueWitness,
                    b'D' => Kind::OutlinedAssignWithTakeNoValueWitness,
                    b'F' => Kind::OutlinedAssignWithCopyNoValueWitness,
                    b'H' => Kind::OutlinedDestroyNoValueWitness,
                    _ => return None,
                };
                let enum_case = if matches!(
                    k,
                    Kind::OutlinedEnumTagStore | Kind::OutlinedEnumProjectDataForLoad
                ) {
                    Some(self.index_node()?)
                } else {
                    None
                };
                let sig = self.pop_kind(Kind::DependentGenericSignature);
                let t = self.pop_kind(Kind::Type)?;
                let n = self.with(k, &[t])?;
                if let Some(s) = sig {
                    self.a.add(n, s);
                }
                if let Some(e) = enum_case {
                    self.a.add(n, e);
                }
                Some(n)
            }
            b'Z' | b'z' => {
                let list = self.a.node(Kind::GlobalVariableOnceDeclList)?;
                let mut vars = Vec::new();
                while self.pop_kind(Kind::FirstElementMarker).is_some() {
                    vars.push(self.pop_if(is_decl_name)?);
                }
                for &v in vars.iter().rev() {
                    self.a.add(list, v);
                }
                let ctx = self.pop_context()?;
                let k = if c == b'Z' {
                    Kind::GlobalVariableOnceFunction
                } else {
                    Kind::GlobalVariableOnceToken
                };
                self.with(k, &[ctx, list])
            }
            b'J' => self.differentiability_witness(),
            _ => None,
        }
    }
}
