//! Metadata symbols: witness tables and their accessors, type metadata and
//! its caches, nominal, protocol, conformance, opaque-type and other
//! descriptors, value witnesses, reflection records and field offsets.

use crate::node::{Kind, NodeId};

use super::{Printer, R, VALUE_WITNESSES};

impl<'a> Printer<'a> {
    /// Prints the kinds of this module; any other kind goes on to
    /// [`Self::print_unknown_kind`].
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(super) fn print_metadata_kind(
        &mut self,
        n: NodeId,
        k: Kind,
        depth: u32,
        as_prefix: bool,
    ) -> R {
        use Kind::*;
        match k {
            LazyProtocolWitnessTableAccessor | LazyProtocolWitnessTableCacheVariable => {
                self.s(if k == LazyProtocolWitnessTableAccessor {
                    "lazy protocol witness table accessor for type "
                } else {
                    "lazy protocol witness table cache variable for type "
                });
                self.pc(n, 0, depth);
                self.s(" and conformance ");
                self.pc(n, 1, depth);
            }
            ProtocolSelfConformanceWitnessTable => {
                self.print_outlined(n, "protocol self-conformance witness table for ", depth)
            }
            ProtocolWitnessTableAccessor => {
                self.print_outlined(n, "protocol witness table accessor for ", depth)
            }
            ProtocolWitnessTable => self.print_outlined(n, "protocol witness table for ", depth),
            ProtocolWitnessTablePattern => {
                self.print_outlined(n, "protocol witness table pattern for ", depth)
            }
            GenericProtocolWitnessTable => {
                self.print_outlined(n, "generic protocol witness table for ", depth)
            }
            GenericProtocolWitnessTableInstantiationFunction => self.print_outlined(
                n,
                "instantiation function for generic protocol witness table for ",
                depth,
            ),
            ResilientProtocolWitnessTable => {
                self.print_outlined(n, "resilient protocol witness table for ", depth)
            }
            FieldOffset => {
                self.pc(n, 0, depth);
                self.s("field offset for ");
                if let Some(e) = self.ch(n, 1) {
                    self.print(e, depth, false);
                }
            }
            EnumCase => {
                self.s("enum case for ");
                if let Some(e) = self.ch(n, 0) {
                    self.print(e, depth, false);
                }
            }
            TypeSymbolicReference | ProtocolSymbolicReference => {
                self.s("symbolic reference");
            }
            AccessibleFunctionRecord => {
                if !self.o.short_thunk {
                    self.s("accessible function runtime record for ");
                }
            }
            GenericTypeMetadataPattern => {
                self.print_outlined(n, "generic type metadata pattern for ", depth)
            }
            Metaclass => self.print_outlined(n, "metaclass for ", depth),
            ProtocolSelfConformanceDescriptor => {
                self.print_outlined(n, "protocol self-conformance descriptor for ", depth)
            }
            ProtocolConformanceDescriptor => {
                self.print_outlined(n, "protocol conformance descriptor for ", depth)
            }
            ProtocolConformanceDescriptorRecord => self.print_outlined(
                n,
                "protocol conformance descriptor runtime record for ",
                depth,
            ),
            ProtocolDescriptor => self.print_outlined(n, "protocol descriptor for ", depth),
            ProtocolDescriptorRecord => {
                self.print_outlined(n, "protocol descriptor runtime record for ", depth)
            }
            ProtocolRequirementsBaseDescriptor => {
                self.print_outlined(n, "protocol requirements base descriptor for ", depth)
            }
            FullTypeMetadata => self.print_outlined(n, "full type metadata for ", depth),
            TypeMetadata => self.print_outlined(n, "type metadata for ", depth),
            TypeMetadataAccessFunction => {
                self.print_outlined(n, "type metadata accessor for ", depth)
            }
            TypeMetadataInstantiationCache => {
                self.print_outlined(n, "type metadata instantiation cache for ", depth)
            }
            TypeMetadataInstantiationFunction => {
                self.print_outlined(n, "type metadata instantiation function for ", depth)
            }
            TypeMetadataSingletonInitializationCache => self.print_outlined(
                n,
                "type metadata singleton initialization cache for ",
                depth,
            ),
            TypeMetadataCompletionFunction => {
                self.print_outlined(n, "type metadata completion function for ", depth)
            }
            TypeMetadataDemanglingCache => {
                self.print_outlined(n, "demangling cache variable for type metadata for ", depth)
            }
            TypeMetadataLazyCache => {
                self.print_outlined(n, "lazy cache variable for type metadata for ", depth)
            }
            AssociatedConformanceDescriptor | DefaultAssociatedConformanceAccessor => {
                self.s(if k == AssociatedConformanceDescriptor {
                    "associated conformance descriptor for "
                } else {
                    "default associated conformance accessor for "
                });
                self.pc(n, 0, depth);
                self.s(".");
                self.pc(n, 1, depth);
                self.s(": ");
                self.pc(n, 2, depth);
            }
            AssociatedTypeDescriptor => {
                self.print_outlined(n, "associated type descriptor for ", depth)
            }
            AssociatedTypeMetadataAccessor => {
                self.s("associated type metadata accessor for ");
                self.pc(n, 1, depth);
                self.s(" in ");
                self.pc(n, 0, depth);
            }
            BaseConformanceDescriptor => {
                self.s("base conformance descriptor for ");
                self.pc(n, 0, depth);
                self.s(": ");
                self.pc(n, 1, depth);
            }
            DefaultAssociatedTypeMetadataAccessor => {
                self.print_outlined(n, "default associated type metadata accessor for ", depth)
            }
            AssociatedTypeWitnessTableAccessor => {
                self.s("associated type witness table accessor for ");
                self.pc(n, 1, depth);
                self.s(" : ");
                self.pc(n, 2, depth);
                self.s(" in ");
                self.pc(n, 0, depth);
            }
            BaseWitnessTableAccessor => {
                self.s("base witness table accessor for ");
                self.pc(n, 1, depth);
                self.s(" in ");
                self.pc(n, 0, depth);
            }
            ClassMetadataBaseOffset => {
                self.print_outlined(n, "class metadata base offset for ", depth)
            }
            PropertyDescriptor => self.print_outlined(n, "property descriptor for ", depth),
            NominalTypeDescriptor => self.print_outlined(n, "nominal type descriptor for ", depth),
            NominalTypeDescriptorRecord => {
                self.print_outlined(n, "nominal type descriptor runtime record for ", depth)
            }
            OpaqueTypeDescriptor => self.print_outlined(n, "opaque type descriptor for ", depth),
            OpaqueTypeDescriptorRecord => {
                self.print_outlined(n, "opaque type descriptor runtime record for ", depth)
            }
            OpaqueTypeDescriptorAccessor => {
                self.print_outlined(n, "opaque type descriptor accessor for ", depth)
            }
            OpaqueTypeDescriptorAccessorImpl => {
                self.print_outlined(n, "opaque type descriptor accessor impl for ", depth)
            }
            OpaqueTypeDescriptorAccessorKey => {
                self.print_outlined(n, "opaque type descriptor accessor key for ", depth)
            }
            OpaqueTypeDescriptorAccessorVar => {
                self.print_outlined(n, "opaque type descriptor accessor var for ", depth)
            }
            ValueWitness => {
                let i = self.a.index(n) as usize;
                let name = VALUE_WITNESSES.get(i).map(|v| v.1).unwrap_or("");
                self.s(name);
                self.s(if self.o.short_value_witness {
                    " for "
                } else {
                    " value witness for "
                });
                self.pc(n, 0, depth);
            }
            ValueWitnessTable => self.print_outlined(n, "value witness table for ", depth),
            ReflectionMetadataBuiltinDescriptor => {
                self.print_outlined(n, "reflection metadata builtin descriptor ", depth)
            }
            ReflectionMetadataFieldDescriptor => {
                self.print_outlined(n, "reflection metadata field descriptor ", depth)
            }
            ReflectionMetadataAssocTypeDescriptor => {
                self.print_outlined(n, "reflection metadata associated type descriptor ", depth)
            }
            ReflectionMetadataSuperclassDescriptor => {
                self.print_outlined(n, "reflection metadata superclass descriptor ", depth)
            }
            ModuleDescriptor => self.print_outlined(n, "module descriptor ", depth),
            AnonymousDescriptor => {
                self.s("anonymous descriptor ");
                self.pc(n, 0, depth);
            }
            ExtensionDescriptor => self.print_outlined(n, "extension descriptor ", depth),
            CanonicalSpecializedGenericMetaclass => {
                self.print_outlined(n, "specialized generic metaclass for ", depth)
            }
            CanonicalSpecializedGenericTypeMetadataAccessFunction => self.print_outlined(
                n,
                "canonical specialized generic type metadata accessor for ",
                depth,
            ),
            NoncanonicalSpecializedGenericTypeMetadata => self.print_outlined(
                n,
                "noncanonical specialized generic type metadata for ",
                depth,
            ),
            NoncanonicalSpecializedGenericTypeMetadataCache => self.print_outlined(
                n,
                "cache variable for noncanonical specialized generic type metadata for ",
                depth,
            ),
            CanonicalPrespecializedGenericTypeCachingOnceToken => self.print_outlined(
                n,
                "flag for loading of canonical specialized generic type metadata for ",
                depth,
            ),
            MetadataInstantiationCache => {
                self.print_outlined(n, "metadata instantiation cache for ", depth)
            }
            _ => return self.print_unknown_kind(n, k, depth, as_prefix),
        }
        None
    }
}
