//! The `T…` operator: thunks (reabstraction, partial-apply, dispatch,
//! distributed, back-deployment…), generic specializations and
//! function-signature specializations with their parameter payloads.

use crate::node::{Kind, NodeId};

use super::kinds::is_entity;
use super::{is_digit, Parser};

impl Parser<'_> {
    pub(super) fn spec_attributes(&mut self, k: Kind) -> Option<NodeId> {
        // `m`: metatype parameters removed (Swift 5.10 and 6.0 emit it; the demangler of
        // Swift's main branch no longer reads it). Never printed.
        let metatypes_removed = self.next_if(b'm');
        let serialized = self.next_if(b'q');
        let c = self.next();
        if !c.is_ascii_digit() {
            return None;
        }
        let n = self.a.node(k)?;
        if metatypes_removed {
            let m = self.a.node(Kind::MetatypeParamsRemoved)?;
            self.a.add(n, m);
        }
        if serialized {
            let s = self.a.node(Kind::IsSerialized)?;
            self.a.add(n, s);
        }
        let p = self
            .a
            .index_node(Kind::SpecializationPassID, u64::from(c - b'0'))?;
        self.a.add(n, p);
        Some(n)
    }

    pub(super) fn generic_specialization(
        &mut self,
        k: Kind,
        dropped: Option<NodeId>,
    ) -> Option<NodeId> {
        let spec = self.spec_attributes(k)?;
        if let Some(d) = dropped {
            self.a.add(spec, d);
        }
        let list = self.pop_type_list()?;
        for i in 0..self.a.num_children(list) {
            let t = self.a.child(list, i)?;
            let p = self.with(Kind::GenericSpecializationParam, &[t])?;
            self.a.add(spec, p);
        }
        Some(spec)
    }

    pub(super) fn thunk_or_specialization(&mut self) -> Option<NodeId> {
        let c = self.next();
        match c {
            b'c' => {
                let e = self.pop_if(is_entity)?;
                self.with(Kind::CurryThunk, &[e])
            }
            b'j' => {
                let e = self.pop_if(is_entity)?;
                self.with(Kind::DispatchThunk, &[e])
            }
            b'q' => {
                let e = self.pop_if(is_entity)?;
                self.with(Kind::MethodDescriptor, &[e])
            }
            b'o' => self.a.node(Kind::ObjCAttribute),
            b'O' => self.a.node(Kind::NonObjCAttribute),
            b'D' => self.a.node(Kind::DynamicAttribute),
            b'd' => self.a.node(Kind::DirectMethodReferenceAttribute),
            b'E' => self.a.node(Kind::DistributedThunk),
            b'F' => self.a.node(Kind::DistributedAccessor),
            b'a' => self.a.node(Kind::PartialApplyObjCForwarder),
            b'A' => self.a.node(Kind::PartialApplyForwarder),
            b'm' => self.a.node(Kind::MergedFunction),
            b'X' => self.a.node(Kind::DynamicallyReplaceableFunctionVar),
            b'x' => self.a.node(Kind::DynamicallyReplaceableFunctionKey),
            b'I' => self.a.node(Kind::DynamicallyReplaceableFunctionImpl),
            b'Y' | b'Q' => {
                let d = self.index_node()?;
                let k = if c == b'Q' {
                    Kind::AsyncAwaitResumePartialFunction
                } else {
                    Kind::AsyncSuspendResumePartialFunction
                };
                self.with(k, &[d])
            }
            b'C' => {
                let t = self.pop_kind(Kind::Type)?;
                self.with(Kind::CoroutineContinuationPrototype, &[t])
            }
            b'z' | b'Z' => {
                let flag = self.index_node()?;
                let sig = self.pop_kind(Kind::DependentGenericSignature);
                let result = self.pop_kind(Kind::Type)?;
                let imp = self.pop_kind(Kind::Type)?;
                let k = if c == b'z' {
                    Kind::ObjCAsyncCompletionHandlerImpl
                } else {
                    Kind::PredefinedObjCAsyncCompletionHandlerImpl
                };
                let n = self.with(k, &[imp, result, flag])?;
                if let Some(s) = sig {
                    self.a.add(n, s);
                }
                Some(n)
            }
            b'V' => {
                let base = self.pop_if(is_entity)?;
                let derived = self.pop_if(is_entity)?;
                self.with(Kind::VTableThunk, &[derived, base])
            }
            b'W' => {
                let e = self.pop_if(is_entity)?;
                let conf = self.pop_protocol_conformance()?;
                self.with(Kind::ProtocolWitness, &[conf, e])
            }
            b'S' => {
                let e = self.pop_if(is_entity)?;
                self.with(Kind::ProtocolSelfConformanceWitness, &[e])
            }
            b'R' | b'r' | b'y' => {
                let k = match c {
                    b'R' => Kind::ReabstractionThunkHelper,
                    b'y' => Kind::ReabstractionThunkHelperWithSelf,
                    _ => Kind::ReabstractionThunk,
                };
                let th = self.a.node(k)?;
                if let Some(s) = self.pop_kind(Kind::DependentGenericSignature) {
                    self.a.add(th, s);
                }
                if k == Kind::ReabstractionThunkHelperWithSelf {
                    let t = self.pop_kind(Kind::Type)?;
                    self.a.add(th, t);
                }
                let t1 = self.pop_kind(Kind::Type)?;
                let t2 = self.pop_kind(Kind::Type)?;
                self.a.add(th, t1);
                self.a.add(th, t2);
                Some(th)
            }
            b'g' => self.generic_specialization(Kind::GenericSpecialization, None),
            b'G' => self.generic_specialization(Kind::GenericSpecializationNotReAbstracted, None),
            b'B' => {
                self.generic_specialization(Kind::GenericSpecializationInResilienceDomain, None)
            }
            b's' => self.generic_specialization(Kind::GenericSpecializationPrespecialized, None),
            b'i' => self.generic_specialization(Kind::InlinedGenericFunction, None),
            b't' => {
                // Specialization with dropped arguments: `Tt` then
                // `t<index>`… before the specialization kind.
                while matches!(self.peek(), b't' | b'_' | b'0'..=b'9') {
                    self.next();
                }
                if !self.next_if(b'g') {
                    return None;
                }
                self.generic_specialization(Kind::GenericSpecialization, None)
            }
            b'p' | b'P' => {
                let k = if c == b'p' {
                    Kind::GenericPartialSpecialization
                } else {
                    Kind::GenericPartialSpecializationNotReAbstracted
                };
                let spec = self.spec_attributes(k)?;
                let t = self.pop_kind(Kind::Type)?;
                let p = self.with(Kind::GenericSpecializationParam, &[t])?;
                self.a.add(spec, p);
                Some(spec)
            }
            b'f' => self.function_specialization(),
            b'K' | b'k' => {
                let k = if c == b'K' {
                    Kind::KeyPathGetterThunkHelper
                } else {
                    Kind::KeyPathSetterThunkHelper
                };
                let serialized = self.next_if(b'q');
                let mut types = Vec::new();
                let mut node = self.pop()?;
                if self.a.kind(node) != Kind::Type {
                    return None;
                }
                loop {
                    types.push(node);
                    match self.pop() {
                        Some(n) if self.a.kind(n) == Kind::Type => node = n,
                        Some(n) => {
                            node = n;
                            break;
                        }
                        None => return None,
                    }
                }
                let result = if self.a.kind(node) == Kind::DependentGenericSignature {
                    let decl = self.pop()?;
                    self.with(k, &[decl, node])?
                } else {
                    self.with(k, &[node])?
                };
                for &t in types.iter().rev() {
                    self.a.add(result, t);
                }
                if serialized {
                    let s = self.a.node(Kind::IsSerialized)?;
                    self.a.add(result, s);
                }
                Some(result)
            }
            b'l' => {
                let a = self.pop_assoc_type_name()?;
                self.with(Kind::AssociatedTypeDescriptor, &[a])
            }
            b'L' => {
                let p = self.pop_protocol()?;
                self.with(Kind::ProtocolRequirementsBaseDescriptor, &[p])
            }
            b'M' => {
                let a = self.pop_assoc_type_name()?;
                self.with(Kind::DefaultAssociatedTypeMetadataAccessor, &[a])
            }
            b'n' | b'N' => {
                let req = self.pop_protocol()?;
                let path = self.pop_assoc_type_path()?;
                let proto = self.pop_kind(Kind::Type)?;
                let k = if c == b'n' {
                    Kind::AssociatedConformanceDescriptor
                } else {
                    Kind::DefaultAssociatedConformanceAccessor
                };
                self.with(k, &[proto, path, req])
            }
            b'b' => {
                let req = self.pop_protocol()?;
                let proto = self.pop_kind(Kind::Type)?;
                self.with(Kind::BaseConformanceDescriptor, &[proto, req])
            }
            b'H' | b'h' => {
                let k = if c == b'H' {
                    Kind::KeyPathEqualsThunkHelper
                } else {
                    Kind::KeyPathHashThunkHelper
                };
                let serialized = self.next_if(b'q');
                let mut sig = None;
                let mut types = Vec::new();
                let n = self.pop()?;
                match self.a.kind(n) {
                    Kind::DependentGenericSignature => sig = Some(n),
                    Kind::Type => types.push(n),
                    _ => return None,
                }
                while let Some(n) = self.pop() {
                    if self.a.kind(n) != Kind::Type {
                        return None;
                    }
                    types.push(n);
                }
                let r = self.a.node(k)?;
                for &t in types.iter().rev() {
                    self.a.add(r, t);
                }
                if let Some(s) = sig {
                    self.a.add(r, s);
                }
                if serialized {
                    let s = self.a.node(Kind::IsSerialized)?;
                    self.a.add(r, s);
                }
                Some(r)
            }
            b'v' => {
                let i = self.index()?;
                if self.next_if(b'r') {
                    return self.a.index_node(Kind::OutlinedReadOnlyObject, i);
                }
                self.a.index_node(Kind::OutlinedVariable, i)
            }
            b'e' => {
                let s = self.bridged_method_params()?;
                self.a.text_node(Kind::OutlinedBridgedMethod, &s)
            }
            b'u' => self.a.node(Kind::AsyncFunctionPointer),
            b'U' => {
                let ga = self.pop_kind(Kind::Type)?;
                let re = self.pop()?;
                self.with(Kind::ReabstractionThunkHelperWithGlobalActor, &[re, ga])
            }
            b'J' => match self.peek() {
                b'S' => {
                    self.next();
                    self.autodiff_subset_parameters_thunk()
                }
                b'O' => {
                    self.next();
                    self.autodiff_self_reordering_thunk()
                }
                b'V' => {
                    self.next();
                    self.autodiff_function(Kind::AutoDiffDerivativeVTableThunk)
                }
                _ => self.autodiff_function(Kind::AutoDiffFunction),
            },
            b'w' => match self.next() {
                b'b' => self.a.node(Kind::BackDeploymentThunk),
                b'B' => self.a.node(Kind::BackDeploymentFallback),
                b'S' => self.a.node(Kind::HasSymbolQuery),
                b'c' => self.a.node(Kind::CoroFunctionPointer),
                b'd' => self.a.node(Kind::DefaultOverride),
                _ => None,
            },
            _ => None,
        }
    }

    pub(super) fn bridged_method_params(&mut self) -> Option<String> {
        if self.next_if(b'_') {
            return None;
        }
        let mut s = String::new();
        let k = self.next();
        if !matches!(k, b'p' | b'a' | b'm') {
            return None;
        }
        s.push(k as char);
        while !self.next_if(b'_') {
            let c = self.next();
            if !matches!(c, b'n' | b'b' | b'g') {
                return None;
            }
            s.push(c as char);
        }
        Some(s)
    }

    pub(super) fn function_specialization(&mut self) -> Option<NodeId> {
        let spec = self.spec_attributes(Kind::FunctionSignatureSpecialization)?;
        let mut param_no = 0u64;
        while !self.next_if(b'_') {
            let p = self.func_spec_param(Kind::FunctionSignatureSpecializationParam, param_no)?;
            self.a.add(spec, p);
            param_no += 1;
            if param_no > 256 {
                return None;
            }
        }
        if !self.next_if(b'n') {
            let p = self.func_spec_param(Kind::FunctionSignatureSpecializationReturn, 0)?;
            self.a.add(spec, p);
        }
        // Fill in the payloads of the parameters that consume operands.
        let n = self.a.num_children(spec);
        for i in (0..n).rev() {
            let param = self.a.child(spec, i)?;
            if self.a.kind(param) != Kind::FunctionSignatureSpecializationParam {
                continue;
            }
            let Some(kind_nd) = self.a.child(param, 0) else {
                continue;
            };
            let pk = self.a.index(kind_nd);
            use crate::print::spec_kind as sk;
            if matches!(
                pk,
                sk::CONST_FUNCTION
                    | sk::CONST_GLOBAL
                    | sk::CONST_STRING
                    | sk::CONST_KEYPATH
                    | sk::CLOSURE_PROP
            ) {
                let fixed = self.a.num_children(param);
                while let Some(t) = self.pop_kind(Kind::Type) {
                    if pk != sk::CLOSURE_PROP && pk != sk::CONST_KEYPATH {
                        return None;
                    }
                    self.a.add(param, t);
                }
                let name = self.pop_kind(Kind::Identifier)?;
                let mut text = self.a.text(name).to_string();
                if pk == sk::CONST_STRING && text.starts_with('_') {
                    text.remove(0);
                }
                let payload = self
                    .a
                    .text_node(Kind::FunctionSignatureSpecializationParamPayload, &text)?;
                self.a.add(param, payload);
                self.a.reverse_children(param, fixed);
            }
        }
        Some(spec)
    }

    pub(super) fn func_spec_param(&mut self, k: Kind, no: u64) -> Option<NodeId> {
        use crate::print::spec_kind as sk;
        let param = self.a.index_node(k, no)?;
        let add_kind = |p: &mut Self, v: u64| -> Option<NodeId> {
            let n =
                p.a.index_node(Kind::FunctionSignatureSpecializationParamKind, v)?;
            p.a.add(param, n);
            Some(param)
        };
        match self.next() {
            b'n' => Some(param),
            b'c' => add_kind(self, sk::CLOSURE_PROP),
            b'p' => match self.next() {
                b'f' => add_kind(self, sk::CONST_FUNCTION),
                b'g' => add_kind(self, sk::CONST_GLOBAL),
                b'i' => self.spec_param_number(param, sk::CONST_INTEGER),
                b'd' => self.spec_param_number(param, sk::CONST_FLOAT),
                b's' => {
                    let enc = match self.next() {
                        b'b' => "u8",
                        b'w' => "u16",
                        b'c' => "objc",
                        _ => return None,
                    };
                    add_kind(self, sk::CONST_STRING)?;
                    let e = self
                        .a
                        .text_node(Kind::FunctionSignatureSpecializationParamPayload, enc)?;
                    self.a.add(param, e);
                    Some(param)
                }
                b'k' => add_kind(self, sk::CONST_KEYPATH),
                _ => None,
            },
            b'e' => {
                let mut v = sk::EXISTENTIAL_TO_GENERIC;
                if self.next_if(b'D') {
                    v |= sk::DEAD;
                }
                if self.next_if(b'G') {
                    v |= sk::OWNED_TO_GUARANTEED;
                }
                if self.next_if(b'O') {
                    v |= sk::GUARANTEED_TO_OWNED;
                }
                if self.next_if(b'X') {
                    v |= sk::SROA;
                }
                add_kind(self, v)
            }
            b'd' => {
                let mut v = sk::DEAD;
                if self.next_if(b'G') {
                    v |= sk::OWNED_TO_GUARANTEED;
                }
                if self.next_if(b'O') {
                    v |= sk::GUARANTEED_TO_OWNED;
                }
                if self.next_if(b'X') {
                    v |= sk::SROA;
                }
                add_kind(self, v)
            }
            b'g' => {
                let mut v = sk::OWNED_TO_GUARANTEED;
                if self.next_if(b'X') {
                    v |= sk::SROA;
                }
                add_kind(self, v)
            }
            b'o' => {
                let mut v = sk::GUARANTEED_TO_OWNED;
                if self.next_if(b'X') {
                    v |= sk::SROA;
                }
                add_kind(self, v)
            }
            b'x' => add_kind(self, sk::SROA),
            b'i' => add_kind(self, sk::BOX_TO_VALUE),
            b's' => add_kind(self, sk::BOX_TO_STACK),
            b'r' => add_kind(self, sk::IN_OUT_TO_OUT),
            _ => None,
        }
    }

    pub(super) fn spec_param_number(&mut self, param: NodeId, kind: u64) -> Option<NodeId> {
        let n = self
            .a
            .index_node(Kind::FunctionSignatureSpecializationParamKind, kind)?;
        self.a.add(param, n);
        let start = self.pos;
        while is_digit(self.peek()) {
            self.next();
        }
        if start == self.pos {
            return None;
        }
        let s = std::str::from_utf8(&self.input[start..self.pos]).ok()?;
        let p = self
            .a
            .text_node(Kind::FunctionSignatureSpecializationParamPayload, s)?;
        self.a.add(param, p);
        Some(param)
    }
}
