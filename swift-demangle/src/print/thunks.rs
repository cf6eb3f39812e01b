//! Thunks and other code symbols: curry, dispatch, reabstraction,
//! partial-apply, key-path, protocol-witness, distributed and
//! back-deployment thunks, outlined value operations, merged and
//! dynamically replaceable functions, async and coroutine entry points, and
//! macro expansions.

use crate::node::{Kind, NodeId};

use super::{Printer, TypePr, R};

impl<'a> Printer<'a> {
    /// Prints the kinds of this module; any other kind goes on to
    /// [`Self::print_metadata_kind`].
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(super) fn print_thunk_kind(
        &mut self,
        n: NodeId,
        k: Kind,
        depth: u32,
        as_prefix: bool,
    ) -> R {
        use Kind::*;
        match k {
            CurryThunk => self.print_outlined(n, "curry thunk of ", depth),
            DispatchThunk => self.print_outlined(n, "dispatch thunk of ", depth),
            MethodDescriptor => self.print_outlined(n, "method descriptor for ", depth),
            MethodLookupFunction => self.print_outlined(n, "method lookup function for ", depth),
            ObjCMetadataUpdateFunction => {
                self.print_outlined(n, "ObjC metadata update function for ", depth)
            }
            ObjCResilientClassStub => {
                self.print_outlined(n, "ObjC resilient class stub for ", depth)
            }
            FullObjCResilientClassStub => {
                self.print_outlined(n, "full ObjC resilient class stub for ", depth)
            }
            OutlinedBridgedMethod => {
                self.s("outlined bridged method (");
                let t = self.text(n);
                self.s(t);
                self.s(") of ");
            }
            OutlinedCopy => self.print_outlined(n, "outlined copy of ", depth),
            OutlinedConsume => self.print_outlined(n, "outlined consume of ", depth),
            OutlinedRetain => self.print_outlined(n, "outlined retain of ", depth),
            OutlinedRelease => self.print_outlined(n, "outlined release of ", depth),
            OutlinedInitializeWithTake => {
                self.print_outlined(n, "outlined init with take of ", depth)
            }
            OutlinedInitializeWithCopy => {
                self.print_outlined(n, "outlined init with copy of ", depth)
            }
            OutlinedAssignWithTake => {
                self.print_outlined(n, "outlined assign with take of ", depth)
            }
            OutlinedAssignWithCopy => {
                self.print_outlined(n, "outlined assign with copy of ", depth)
            }
            OutlinedDestroy => self.print_outlined(n, "outlined destroy of ", depth),
            OutlinedInitializeWithTakeNoValueWitness => {
                self.print_outlined(n, "outlined init with take of ", depth)
            }
            OutlinedInitializeWithCopyNoValueWitness => {
                self.print_outlined(n, "outlined init with copy of ", depth)
            }
            OutlinedAssignWithTakeNoValueWitness => {
                self.print_outlined(n, "outlined assign with take of ", depth)
            }
            OutlinedAssignWithCopyNoValueWitness => {
                self.print_outlined(n, "outlined assign with copy of ", depth)
            }
            OutlinedDestroyNoValueWitness => self.print_outlined(n, "outlined destroy of ", depth),
            OutlinedEnumGetTag => self.print_outlined(n, "outlined enum get tag of ", depth),
            OutlinedEnumTagStore => {
                self.s("outlined enum tag store of ");
                self.pc(n, 0, depth);
            }
            OutlinedEnumProjectDataForLoad => {
                self.s("outlined enum project data for load of ");
                self.pc(n, 0, depth);
            }
            OutlinedVariable => {
                self.s("outlined variable #");
                self.num(self.a.index(n));
                self.s(" of ");
            }
            OutlinedReadOnlyObject => {
                self.s("outlined read-only object #");
                self.num(self.a.index(n));
                self.s(" of ");
            }
            Directness => {
                self.s(if self.a.index(n) == 0 {
                    "direct "
                } else {
                    "indirect "
                });
            }
            VTableThunk => {
                self.s("vtable thunk for ");
                self.pc(n, 1, depth);
                self.s(" dispatching to ");
                self.pc(n, 0, depth);
            }
            ProtocolSelfConformanceWitness => {
                self.print_outlined(n, "protocol self-conformance witness for ", depth)
            }
            ProtocolWitness => {
                self.s("protocol witness for ");
                self.pc(n, 1, depth);
                self.s(" in conformance ");
                self.pc(n, 0, depth);
            }
            PartialApplyForwarder | PartialApplyObjCForwarder => {
                if self.o.short_partial_apply {
                    self.s("partial apply");
                } else if k == PartialApplyForwarder {
                    self.s("partial apply forwarder");
                } else {
                    self.s("partial apply ObjC forwarder");
                }
                if self.nch(n) > 0 {
                    self.s(" for ");
                    self.children(n, "", depth);
                }
            }
            KeyPathGetterThunkHelper | KeyPathSetterThunkHelper => {
                self.s(if k == KeyPathGetterThunkHelper {
                    "key path getter for "
                } else {
                    "key path setter for "
                });
                self.pc(n, 0, depth);
                self.s(" : ");
                for i in 1..self.nch(n) {
                    let c = self.a.child(n, i)?;
                    if self.k(c) == IsSerialized {
                        self.s(", ");
                    }
                    self.p(c, depth);
                }
            }
            KeyPathEqualsThunkHelper | KeyPathHashThunkHelper => {
                self.s("key path index ");
                self.s(if k == KeyPathEqualsThunkHelper {
                    "equality"
                } else {
                    "hash"
                });
                self.s(" operator for ");
                let ch: &'a [NodeId] = self.a.children(n);
                let mut last = ch.len();
                if let Some(&l) = ch.last() {
                    if self.k(l) == IsSerialized {
                        last -= 1;
                    }
                }
                if last > 0 && self.k(ch[last - 1]) == DependentGenericSignature {
                    self.p(ch[last - 1], depth);
                    last -= 1;
                }
                self.s("(");
                for (i, &c) in ch[..last].iter().enumerate() {
                    if i > 0 {
                        self.s(", ");
                    }
                    self.p(c, depth);
                }
                self.s(")");
                if last < ch.len()
                    && ch
                        .last()
                        .map(|&l| self.k(l) == IsSerialized)
                        .unwrap_or(false)
                {
                    self.s(", serialized");
                }
            }
            ReabstractionThunk | ReabstractionThunkHelper => {
                let nc = self.nch(n);
                if nc < 2 {
                    self.invalid = true;
                    return None;
                }
                if self.o.short_thunk {
                    self.s("thunk for ");
                    self.pc(n, nc - 1, depth);
                    return None;
                }
                self.s("reabstraction thunk ");
                if k == ReabstractionThunkHelper {
                    self.s("helper ");
                }
                if let Some(g) = self.child_of_kind(n, DependentGenericSignature) {
                    self.p(g, depth);
                    self.s(" ");
                }
                self.s("from ");
                self.pc(n, nc - 1, depth);
                self.s(" to ");
                self.pc(n, nc - 2, depth);
            }
            ReabstractionThunkHelperWithSelf => {
                let nc = self.nch(n);
                if nc < 3 {
                    self.invalid = true;
                    return None;
                }
                self.s("reabstraction thunk ");
                if let Some(g) = self.child_of_kind(n, DependentGenericSignature) {
                    self.p(g, depth);
                    self.s(" ");
                }
                self.s("from ");
                self.pc(n, nc - 1, depth);
                self.s(" to ");
                self.pc(n, nc - 2, depth);
                self.s(" self ");
                self.pc(n, nc - 3, depth);
            }
            ReabstractionThunkHelperWithGlobalActor => {
                self.pc(n, 0, depth);
                self.s(" with global actor constraint ");
                self.pc(n, 1, depth);
            }
            MergedFunction
            | DynamicallyReplaceableFunctionKey
            | DynamicallyReplaceableFunctionImpl
            | DynamicallyReplaceableFunctionVar
            | DistributedThunk
            | DistributedAccessor
            | BackDeploymentThunk
            | BackDeploymentFallback => {
                if !self.o.short_thunk {
                    self.s(entity_prefix(k));
                }
            }
            HasSymbolQuery => self.s("#_hasSymbol query for "),
            AsyncFunctionPointer => self.s("async function pointer to "),
            CoroFunctionPointer => self.s("coro function pointer to "),
            DefaultOverride => self.s("default override of "),
            AsyncAwaitResumePartialFunction | AsyncSuspendResumePartialFunction => {
                if self.o.async_resume_partial {
                    self.s("(");
                    self.pc(n, 0, depth);
                    self.s(")");
                    self.s(if k == AsyncAwaitResumePartialFunction {
                        " await resume partial function for "
                    } else {
                        " suspend resume partial function for "
                    });
                }
            }
            CoroutineContinuationPrototype => {
                self.print_outlined(n, "coroutine continuation prototype for ", depth)
            }
            GlobalVariableOnceFunction | GlobalVariableOnceToken => {
                self.s(if k == GlobalVariableOnceFunction {
                    "one-time initialization function for "
                } else {
                    "one-time initialization token for "
                });
                if let Some(l) = self.a.child(n, 1) {
                    self.children(l, "", depth);
                }
            }
            GlobalVariableOnceDeclList => self.children(n, "", depth),
            PredefinedObjCAsyncCompletionHandlerImpl | ObjCAsyncCompletionHandlerImpl => {
                if k == PredefinedObjCAsyncCompletionHandlerImpl {
                    self.s("predefined ");
                }
                self.s("@objc completion handler block implementation for ");
                if self.nch(n) >= 4 {
                    self.pc(n, 3, depth);
                }
                self.pc(n, 0, depth);
                self.s(" with result type ");
                self.pc(n, 1, depth);
                match self.a.child(n, 2).map(|c| self.a.index(c)) {
                    Some(0) => {}
                    Some(1) => self.s(" nonzero on error"),
                    Some(2) => self.s(" zero on error"),
                    _ => self.s(" <invalid error flag>"),
                }
            }
            MacroExpansion => {
                return self.print_entity(
                    n,
                    as_prefix,
                    TypePr::FunctionStyle,
                    true,
                    "",
                    -1,
                    "",
                    depth,
                );
            }
            FreestandingMacroExpansion => {
                let idx = self
                    .a
                    .child(n, 2)
                    .map(|c| self.a.index(c) as i64 + 1)
                    .unwrap_or(0);
                return self.print_macro(
                    n,
                    as_prefix,
                    "freestanding macro expansion #",
                    idx,
                    1,
                    depth,
                );
            }
            MacroExpansionUniqueName => {
                let idx = self
                    .a
                    .child(n, 2)
                    .map(|c| self.a.index(c) as i64 + 1)
                    .unwrap_or(0);
                return self.print_macro(n, as_prefix, "unique name #", idx, 1, depth);
            }
            AccessorAttachedMacroExpansion
            | MemberAttributeAttachedMacroExpansion
            | MemberAttachedMacroExpansion
            | PeerAttachedMacroExpansion
            | ConformanceAttachedMacroExpansion
            | ExtensionAttachedMacroExpansion
            | BodyAttachedMacroExpansion
            | PreambleAttachedMacroExpansion => {
                let what = match k {
                    AccessorAttachedMacroExpansion => "accessor",
                    MemberAttributeAttachedMacroExpansion => "member attribute",
                    MemberAttachedMacroExpansion => "member",
                    PeerAttachedMacroExpansion => "peer",
                    ConformanceAttachedMacroExpansion => "conformance",
                    ExtensionAttachedMacroExpansion => "extension",
                    BodyAttachedMacroExpansion => "body",
                    _ => "preamble",
                };
                let macro_name = self.ch(n, 2)?;
                let idx = self
                    .a
                    .child(n, 3)
                    .map(|c| self.a.index(c) as i64 + 1)
                    .unwrap_or(0);
                let mname = self.text(macro_name);
                let extra = format!("{what} macro @{mname} expansion #");
                let r = self.print_entity(n, as_prefix, TypePr::No, true, &extra, idx, "", depth);
                return r;
            }
            MacroExpansionLoc => {
                if let Some(m) = self.a.child(n, 0) {
                    self.s("module ");
                    self.p(m, depth);
                }
                if let Some(f) = self.a.child(n, 1) {
                    self.s(" file ");
                    let t = self.text(f);
                    self.s(t);
                }
                if let Some(l) = self.a.child(n, 2) {
                    self.s(" line ");
                    self.p(l, depth);
                }
                if let Some(c) = self.a.child(n, 3) {
                    self.s(" column ");
                    self.p(c, depth);
                }
            }
            _ => return self.print_metadata_kind(n, k, depth, as_prefix),
        }
        None
    }

    pub(super) fn print_macro(
        &mut self,
        n: NodeId,
        as_prefix: bool,
        extra: &str,
        idx: i64,
        name_child: usize,
        depth: u32,
    ) -> R {
        // `<extra><idx> of <macro name> in <context>`
        if as_prefix {
            return Some(n);
        }
        let ctx = self.ch(n, 0)?;
        self.s(extra);
        self.num(idx as u64);
        self.s(" of ");
        let name = self.ch(n, name_child)?;
        self.p(name, depth);
        if let Some(pd) = self.child_of_kind(n, Kind::PrivateDeclName) {
            if self.o.private_discriminators {
                self.p(pd, depth);
            }
        }
        if self.print_context(ctx) {
            self.s(" in ");
            self.p(ctx, depth);
        }
        None
    }
}

/// The words printed before a function entity of kind `k` (dropped in short-thunk style).
fn entity_prefix(k: Kind) -> &'static str {
    use Kind::*;
    match k {
        MergedFunction => "merged ",
        DynamicallyReplaceableFunctionKey => "dynamically replaceable key for ",
        DynamicallyReplaceableFunctionImpl => "dynamically replaceable thunk for ",
        DynamicallyReplaceableFunctionVar => "dynamically replaceable variable for ",
        DistributedThunk => "distributed thunk ",
        DistributedAccessor => "distributed accessor for ",
        BackDeploymentThunk => "back deployment thunk for ",
        BackDeploymentFallback => "back deployment fallback for ",
        _ => "",
    }
}
