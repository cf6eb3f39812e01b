//! Which node kinds may stand where: the predicates the parser uses to
//! pop a context, an entity, a requirement or a function attribute off the
//! node stack.

use crate::node::Kind;

pub(super) fn is_decl_name(k: Kind) -> bool {
    matches!(
        k,
        Kind::Identifier
            | Kind::LocalDeclName
            | Kind::PrivateDeclName
            | Kind::RelatedEntityDeclName
            | Kind::PrefixOperator
            | Kind::PostfixOperator
            | Kind::InfixOperator
            | Kind::TypeSymbolicReference
            | Kind::ProtocolSymbolicReference
    )
}

pub(crate) fn is_any_generic(k: Kind) -> bool {
    matches!(
        k,
        Kind::Structure
            | Kind::Class
            | Kind::Enum
            | Kind::Protocol
            | Kind::ProtocolSymbolicReference
            | Kind::OtherNominalType
            | Kind::TypeAlias
            | Kind::TypeSymbolicReference
            | Kind::BuiltinTypeName
    )
}

pub(crate) fn is_context(k: Kind) -> bool {
    use Kind::*;
    matches!(
        k,
        Allocator
            | AnonymousContext
            | Class
            | Constructor
            | Deallocator
            | IsolatedDeallocator
            | DefaultArgumentInitializer
            | Destructor
            | DidSet
            | Enum
            | ExplicitClosure
            | Extension
            | Function
            | Getter
            | GlobalGetter
            | IVarInitializer
            | IVarDestroyer
            | ImplicitClosure
            | Initializer
            | InitAccessor
            | MaterializeForSet
            | ModifyAccessor
            | Modify2Accessor
            | Module
            | NativeOwningAddressor
            | NativeOwningMutableAddressor
            | NativePinningAddressor
            | NativePinningMutableAddressor
            | OtherNominalType
            | OwningAddressor
            | OwningMutableAddressor
            | PropertyWrapperBackingInitializer
            | PropertyWrapperInitFromProjectedValue
            | Protocol
            | ProtocolSymbolicReference
            | ReadAccessor
            | Read2Accessor
            | Setter
            | Static
            | Structure
            | Subscript
            | TypeAlias
            | TypeSymbolicReference
            | UnsafeAddressor
            | UnsafeMutableAddressor
            | Variable
            | WillSet
            | GenericTypeParamDecl
            | FreestandingMacroExpansion
            | AccessorAttachedMacroExpansion
            | MemberAttributeAttachedMacroExpansion
            | MemberAttachedMacroExpansion
            | PeerAttachedMacroExpansion
            | ConformanceAttachedMacroExpansion
            | ExtensionAttachedMacroExpansion
            | BodyAttachedMacroExpansion
            | PreambleAttachedMacroExpansion
            | MacroExpansionUniqueName
            | DefaultOverride
            | OpaqueReturnTypeOf
            | AutoDiffFunction
    )
}

pub(super) fn is_entity(k: Kind) -> bool {
    k == Kind::Type || is_context(k)
}

pub(super) fn is_requirement(k: Kind) -> bool {
    matches!(
        k,
        Kind::DependentGenericSameTypeRequirement
            | Kind::DependentGenericSameShapeRequirement
            | Kind::DependentGenericLayoutRequirement
            | Kind::DependentGenericConformanceRequirement
            | Kind::DependentGenericInverseConformanceRequirement
            | Kind::DependentGenericParamPackMarker
            | Kind::DependentGenericParamValueMarker
    )
}

pub(crate) fn is_function_attr(k: Kind) -> bool {
    use Kind::*;
    matches!(
        k,
        FunctionSignatureSpecialization
            | GenericSpecialization
            | GenericSpecializationPrespecialized
            | InlinedGenericFunction
            | GenericSpecializationNotReAbstracted
            | GenericPartialSpecialization
            | GenericPartialSpecializationNotReAbstracted
            | GenericSpecializationInResilienceDomain
            | ObjCAttribute
            | NonObjCAttribute
            | DynamicAttribute
            | DirectMethodReferenceAttribute
            | VTableAttribute
            | PartialApplyForwarder
            | PartialApplyObjCForwarder
            | OutlinedVariable
            | OutlinedReadOnlyObject
            | OutlinedBridgedMethod
            | MergedFunction
            | DistributedThunk
            | DistributedAccessor
            | DynamicallyReplaceableFunctionImpl
            | DynamicallyReplaceableFunctionKey
            | DynamicallyReplaceableFunctionVar
            | AsyncFunctionPointer
            | AsyncAwaitResumePartialFunction
            | AsyncSuspendResumePartialFunction
            | AccessibleFunctionRecord
            | BackDeploymentThunk
            | BackDeploymentFallback
            | HasSymbolQuery
            | CoroFunctionPointer
            | DefaultOverride
    )
}
