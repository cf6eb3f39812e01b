//! The node tree both parsers build and the printer reads.
//!
//! Nodes live in an arena and refer to each other by index, so a tree is a
//! plain `Vec` that is freed at once, shared subtrees (substitutions) cost
//! nothing, and no reference cycle or deep `Drop` recursion can happen.

/// Index of a node in its [`Arena`].
pub(crate) type NodeId = u32;

macro_rules! kinds {
    ($($k:ident),* $(,)?) => {
        /// What a node stands for. A few kinds are only produced by manglings
        /// newer than the test corpus and may be unused for now.
        #[allow(dead_code, clippy::enum_variant_names)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub(crate) enum Kind { $($k),* }
    };
}

kinds! {
    Global, Suffix, Type, TypeMangling, Module, Identifier, LocalDeclName, PrivateDeclName,
    RelatedEntityDeclName, PrefixOperator, PostfixOperator, InfixOperator, Number, Index,
    UnknownIndex, Class, Structure, Enum, Protocol, TypeAlias, OtherNominalType, Extension,
    BoundGenericClass, BoundGenericStructure, BoundGenericEnum, BoundGenericProtocol,
    BoundGenericOtherNominalType, BoundGenericTypeAlias, BoundGenericFunction, TypeList,
    BuiltinTypeName, BuiltinFixedArray, Function, FunctionType, NoEscapeFunctionType,
    EscapingAutoClosureType, AutoClosureType, ThinFunctionType, UncurriedFunctionType,
    ObjCBlock, EscapingObjCBlock, CFunctionPointer, ArgumentTuple, ReturnType, Tuple,
    TupleElement, TupleElementName, VariadicMarker, EmptyList, FirstElementMarker, LabelList,
    ThrowsAnnotation, TypedThrowsAnnotation, AsyncAnnotation, ConcurrentFunctionType,
    GlobalActorFunctionType, IsolatedAnyFunctionType, NonIsolatedCallerFunctionType,
    SendingResultFunctionType, DifferentiableFunctionType, ClangType, Isolated, Sending,
    NoDerivative, CompileTimeConst, InOut, Shared, Owned, Weak, Unowned, Unmanaged, Metatype,
    ExistentialMetatype, MetatypeRepresentation, DynamicSelf, ProtocolList,
    ProtocolListWithClass, ProtocolListWithAnyObject, ConstrainedExistential,
    ConstrainedExistentialRequirementList, ConstrainedExistentialSelf, DependentGenericParamType,
    DependentGenericType, DependentGenericSignature, DependentPseudogenericSignature,
    DependentGenericParamCount, DependentGenericConformanceRequirement,
    DependentGenericSameTypeRequirement, DependentGenericLayoutRequirement,
    DependentGenericSameShapeRequirement, DependentGenericInverseConformanceRequirement,
    DependentGenericParamPackMarker, DependentGenericParamValueMarker, DependentMemberType,
    DependentAssociatedTypeRef, AssociatedTypeRef, AssocTypePath, OpaqueReturnType,
    OpaqueReturnTypeIndexed, OpaqueReturnTypeOf, OpaqueType, OpaqueReturnTypeParent,
    ErrorType, SugaredOptional, SugaredArray, SugaredDictionary, SugaredParen,
    SugaredInlineArray, SILBoxType, SILBoxTypeWithLayout, SILBoxLayout, SILBoxMutableField,
    SILBoxImmutableField, ImplFunctionType, ImplEscaping, ImplConvention,
    ImplFunctionConvention, ImplFunctionConventionName, ImplFunctionAttribute,
    ImplParameter, ImplResult, ImplYield, ImplErrorResult, ImplDifferentiabilityKind,
    ImplParameterResultDifferentiability, ImplParameterSending, ImplParameterIsolated,
    ImplParameterImplicitLeading, ImplSendingResult, ImplPatternSubstitutions,
    ImplInvocationSubstitutions, ImplCoroutineKind, ImplErasedIsolation, Pack, PackExpansion,
    PackElement, PackElementLevel, SILPackDirect, SILPackIndirect, Integer, NegativeInteger,
    Variable, Subscript, Getter, Setter, GlobalGetter, ReadAccessor, Read2Accessor,
    ModifyAccessor, Modify2Accessor, WillSet, DidSet, MaterializeForSet, InitAccessor,
    OwningAddressor, OwningMutableAddressor, NativeOwningAddressor,
    NativeOwningMutableAddressor, NativePinningAddressor, NativePinningMutableAddressor,
    UnsafeAddressor, UnsafeMutableAddressor, Allocator, Constructor, Destructor, Deallocator,
    IsolatedDeallocator, IVarInitializer, IVarDestroyer, Initializer, ExplicitClosure,
    ImplicitClosure, DefaultArgumentInitializer, PropertyWrapperBackingInitializer,
    PropertyWrapperInitFromProjectedValue, GenericTypeParamDecl, Static, MacroExpansion,
    FreestandingMacroExpansion, AccessorAttachedMacroExpansion, MemberAttributeAttachedMacroExpansion,
    MemberAttachedMacroExpansion, PeerAttachedMacroExpansion, ConformanceAttachedMacroExpansion,
    ExtensionAttachedMacroExpansion, BodyAttachedMacroExpansion, PreambleAttachedMacroExpansion,
    MacroExpansionUniqueName, MacroExpansionLoc, AnonymousContext, TypeMetadata,
    FullTypeMetadata, TypeMetadataAccessFunction, TypeMetadataLazyCache,
    TypeMetadataInstantiationCache, TypeMetadataInstantiationFunction,
    TypeMetadataSingletonInitializationCache, TypeMetadataCompletionFunction,
    TypeMetadataDemanglingCache, Metaclass, NominalTypeDescriptor, NominalTypeDescriptorRecord,
    ProtocolDescriptor, ProtocolDescriptorRecord, ProtocolConformanceDescriptor,
    ProtocolConformanceDescriptorRecord, ProtocolSelfConformanceDescriptor,
    OpaqueTypeDescriptor, OpaqueTypeDescriptorRecord, OpaqueTypeDescriptorAccessor,
    OpaqueTypeDescriptorAccessorImpl, OpaqueTypeDescriptorAccessorKey,
    OpaqueTypeDescriptorAccessorVar, AccessibleFunctionRecord, ClassMetadataBaseOffset,
    GenericTypeMetadataPattern, MethodLookupFunction, ObjCMetadataUpdateFunction,
    ObjCResilientClassStub, FullObjCResilientClassStub, PropertyDescriptor,
    ReflectionMetadataBuiltinDescriptor, ReflectionMetadataFieldDescriptor,
    ReflectionMetadataAssocTypeDescriptor, ReflectionMetadataSuperclassDescriptor,
    ModuleDescriptor, ExtensionDescriptor, AnonymousDescriptor,
    AssociatedTypeGenericParamRef, CanonicalSpecializedGenericMetaclass,
    CanonicalSpecializedGenericTypeMetadataAccessFunction,
    NoncanonicalSpecializedGenericTypeMetadata, NoncanonicalSpecializedGenericTypeMetadataCache,
    CanonicalPrespecializedGenericTypeCachingOnceToken, MetadataInstantiationCache,
    ProtocolConformance, ConcreteProtocolConformance, DependentProtocolConformanceRoot,
    DependentProtocolConformanceInherited, DependentProtocolConformanceAssociated,
    DependentAssociatedConformance, ProtocolConformanceRefInTypeModule,
    ProtocolConformanceRefInProtocolModule, ProtocolConformanceRefInOtherModule,
    AnyProtocolConformanceList, RetroactiveConformance, PackProtocolConformance,
    ProtocolWitnessTable, ProtocolWitnessTablePattern, GenericProtocolWitnessTable,
    GenericProtocolWitnessTableInstantiationFunction, ResilientProtocolWitnessTable,
    ProtocolWitnessTableAccessor, LazyProtocolWitnessTableAccessor,
    LazyProtocolWitnessTableCacheVariable, ProtocolSelfConformanceWitnessTable,
    AssociatedTypeMetadataAccessor, AssociatedTypeWitnessTableAccessor,
    BaseWitnessTableAccessor, AssociatedTypeDescriptor, AssociatedConformanceDescriptor,
    DefaultAssociatedConformanceAccessor, BaseConformanceDescriptor,
    ProtocolRequirementsBaseDescriptor, DefaultAssociatedTypeMetadataAccessor, ValueWitness,
    ValueWitnessTable, FieldOffset, Directness, EnumCase, MethodDescriptor, ProtocolWitness,
    ProtocolSelfConformanceWitness, VTableThunk, CurryThunk, DispatchThunk,
    ReabstractionThunk, ReabstractionThunkHelper, ReabstractionThunkHelperWithSelf,
    ReabstractionThunkHelperWithGlobalActor, KeyPathGetterThunkHelper,
    KeyPathSetterThunkHelper, KeyPathEqualsThunkHelper, KeyPathHashThunkHelper,
    KeyPathUnappliedMethodThunkHelper, KeyPathAppliedMethodThunkHelper, IsSerialized,
    MetatypeParamsRemoved,
    PartialApplyForwarder, PartialApplyObjCForwarder, ObjCAttribute, NonObjCAttribute,
    DynamicAttribute, DirectMethodReferenceAttribute, VTableAttribute, DistributedThunk,
    DistributedAccessor, MergedFunction, DynamicallyReplaceableFunctionVar,
    DynamicallyReplaceableFunctionKey, DynamicallyReplaceableFunctionImpl,
    AsyncFunctionPointer, CoroFunctionPointer, DefaultOverride, AsyncAwaitResumePartialFunction,
    AsyncSuspendResumePartialFunction, BackDeploymentThunk, BackDeploymentFallback,
    HasSymbolQuery, OutlinedVariable, OutlinedReadOnlyObject, OutlinedBridgedMethod,
    OutlinedCopy, OutlinedConsume, OutlinedRetain, OutlinedRelease,
    OutlinedInitializeWithTake, OutlinedInitializeWithCopy, OutlinedAssignWithTake,
    OutlinedAssignWithCopy, OutlinedDestroy, OutlinedEnumTagStore, OutlinedEnumProjectDataForLoad,
    OutlinedEnumGetTag, OutlinedInitializeWithTakeNoValueWitness,
    OutlinedInitializeWithCopyNoValueWitness, OutlinedAssignWithTakeNoValueWitness,
    OutlinedAssignWithCopyNoValueWitness, OutlinedDestroyNoValueWitness,
    GenericSpecialization, GenericSpecializationNotReAbstracted,
    GenericSpecializationInResilienceDomain, GenericSpecializationPrespecialized,
    InlinedGenericFunction, GenericPartialSpecialization,
    GenericPartialSpecializationNotReAbstracted, GenericSpecializationParam,
    FunctionSignatureSpecialization, FunctionSignatureSpecializationParam,
    FunctionSignatureSpecializationReturn, FunctionSignatureSpecializationParamKind,
    FunctionSignatureSpecializationParamPayload, SpecializationPassID, DroppedArgument,
    CoroutineContinuationPrototype, ObjCAsyncCompletionHandlerImpl,
    PredefinedObjCAsyncCompletionHandlerImpl, AutoDiffFunction, AutoDiffDerivativeVTableThunk,
    AutoDiffSubsetParametersThunk, AutoDiffSelfReorderingReabstractionThunk,
    AutoDiffFunctionKind, IndexSubset, DifferentiabilityWitness, GlobalVariableOnceFunction,
    GlobalVariableOnceToken, GlobalVariableOnceDeclList, AssociatedType, QualifiedArchetype,
    DeclContext, NonUniqueExtendedExistentialTypeShapeSymbolicReference,
    UniqueExtendedExistentialTypeShapeSymbolicReference, ExtendedExistentialTypeShape,
    SymbolicExtendedExistentialType, ObjectiveCProtocolSymbolicReference,
    TypeSymbolicReference, ProtocolSymbolicReference, ReflectionMetadataAssocTypeDescriptorX,
    ThrowsAnnotationDummy, DependentProtocolConformanceOpaque, CompileTimeLiteral, ConstValue, RepresentationChanged,
}

/// A node's payload besides its children.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Payload {
    None,
    /// Byte range in the arena's text buffer.
    Text(u32, u32),
    Index(u64),
}

/// Child list with room for four children inline: most nodes have at most
/// four, and one allocation per node would dominate the run time.
#[derive(Clone, Debug, Default)]
pub(crate) struct Children {
    len: u32,
    inline: [NodeId; 4],
    heap: Vec<NodeId>,
}

impl Children {
    #[inline]
    pub fn new() -> Self {
        Children::default()
    }

    #[inline]
    pub fn as_slice(&self) -> &[NodeId] {
        if self.len as usize <= self.inline.len() {
            &self.inline[..self.len as usize]
        } else {
            &self.heap
        }
    }

    #[inline]
    pub fn as_mut_slice(&mut self) -> &mut [NodeId] {
        if self.len as usize <= self.inline.len() {
            &mut self.inline[..self.len as usize]
        } else {
            &mut self.heap
        }
    }

    #[inline]
    pub fn push(&mut self, c: NodeId) {
        let n = self.len as usize;
        if n < self.inline.len() {
            self.inline[n] = c;
        } else {
            if n == self.inline.len() {
                self.heap.extend_from_slice(&self.inline);
            }
            self.heap.push(c);
        }
        self.len += 1;
    }

    pub fn extend_from_slice(&mut self, cs: &[NodeId]) {
        for &c in cs {
            self.push(c);
        }
    }

    pub fn remove(&mut self, i: usize) {
        let mut v: Vec<NodeId> = self.as_slice().to_vec();
        if i < v.len() {
            v.remove(i);
        }
        self.clear();
        self.extend_from_slice(&v);
    }

    pub fn clear(&mut self) {
        self.len = 0;
        self.heap.clear();
    }
}

#[derive(Clone, Debug)]
pub(crate) struct NodeData {
    pub kind: Kind,
    pub payload: Payload,
    pub children: Children,
}

/// Most bytes of names one demangling may hold.
pub(crate) const MAX_TEXT: usize = 1 << 20;

/// All nodes of one demangling, plus the text their names point into.
#[derive(Default)]
pub(crate) struct Arena {
    pub nodes: Vec<NodeData>,
    pub text: String,
    pub max_nodes: usize,
    /// Scratch vectors the parsers borrow, kept to reuse their capacity.
    pub scratch_stack: Vec<NodeId>,
    pub scratch_subs: Vec<NodeId>,
}

impl Arena {
    pub fn new(max_nodes: usize) -> Self {
        Arena {
            nodes: Vec::new(),
            text: String::new(),
            max_nodes,
            scratch_stack: Vec::new(),
            scratch_subs: Vec::new(),
        }
    }

    pub fn clear(&mut self) {
        self.nodes.clear();
        self.text.clear();
    }

    #[inline]
    pub fn push(&mut self, kind: Kind, payload: Payload) -> Option<NodeId> {
        if self.nodes.len() >= self.max_nodes {
            return None;
        }
        let id = self.nodes.len() as NodeId;
        self.nodes.push(NodeData {
            kind,
            payload,
            children: Children::new(),
        });
        Some(id)
    }

    #[inline]
    pub fn node(&mut self, kind: Kind) -> Option<NodeId> {
        self.push(kind, Payload::None)
    }

    pub fn index_node(&mut self, kind: Kind, index: u64) -> Option<NodeId> {
        self.push(kind, Payload::Index(index))
    }

    pub fn text_node(&mut self, kind: Kind, text: &str) -> Option<NodeId> {
        let start = self.text.len();
        // Identifiers are capped where they are built; this caps their sum.
        if start + text.len() > MAX_TEXT {
            return None;
        }
        self.text.push_str(text);
        self.push(kind, Payload::Text(start as u32, self.text.len() as u32))
    }

    #[inline]
    pub fn kind(&self, id: NodeId) -> Kind {
        self.nodes[id as usize].kind
    }

    #[inline]
    pub fn children(&self, id: NodeId) -> &[NodeId] {
        self.nodes[id as usize].children.as_slice()
    }

    #[inline]
    pub fn child(&self, id: NodeId, i: usize) -> Option<NodeId> {
        self.nodes[id as usize].children.as_slice().get(i).copied()
    }

    #[inline]
    pub fn num_children(&self, id: NodeId) -> usize {
        self.nodes[id as usize].children.as_slice().len()
    }

    #[inline]
    pub fn text(&self, id: NodeId) -> &str {
        match self.nodes[id as usize].payload {
            Payload::Text(s, e) => &self.text[s as usize..e as usize],
            _ => "",
        }
    }

    pub fn has_text(&self, id: NodeId) -> bool {
        matches!(self.nodes[id as usize].payload, Payload::Text(..))
    }

    #[inline]
    pub fn index(&self, id: NodeId) -> u64 {
        match self.nodes[id as usize].payload {
            Payload::Index(i) => i,
            _ => 0,
        }
    }

    #[inline]
    pub fn add(&mut self, parent: NodeId, child: NodeId) {
        self.nodes[parent as usize].children.push(child);
    }

    #[inline]
    pub fn with(&mut self, kind: Kind, children: &[NodeId]) -> Option<NodeId> {
        let id = self.node(kind)?;
        self.nodes[id as usize].children.extend_from_slice(children);
        Some(id)
    }

    #[inline]
    pub fn ty(&mut self, child: NodeId) -> Option<NodeId> {
        self.with(Kind::Type, &[child])
    }

    pub fn reverse_children(&mut self, id: NodeId, from: usize) {
        let c = self.nodes[id as usize].children.as_mut_slice();
        if from < c.len() {
            c[from..].reverse();
        }
    }

    /// A copy of `id` with another kind (same payload and children).
    pub fn change_kind(&mut self, id: NodeId, kind: Kind) -> Option<NodeId> {
        let payload = self.nodes[id as usize].payload;
        let new = self.push(kind, payload)?;
        let ch = self.nodes[id as usize].children.clone();
        self.nodes[new as usize].children = ch;
        Some(new)
    }

    /// The only child of a `Type` node, or the node itself.
    pub fn skip_type(&self, id: NodeId) -> NodeId {
        if self.kind(id) == Kind::Type {
            if let Some(c) = self.child(id, 0) {
                return c;
            }
        }
        id
    }
}
