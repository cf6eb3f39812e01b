//! Function types: plain function signatures (`F`, `c`), their parameter
//! labels, and SIL implementation function types (`I…`) with their
//! conventions.

use crate::node::{Kind, NodeId};

use super::kinds::is_decl_name;
use super::Parser;

impl Parser<'_> {
    pub(super) fn plain_function(&mut self) -> Option<NodeId> {
        let sig = self.pop_kind(Kind::DependentGenericSignature);
        let mut ty = self.pop_function_type(Kind::FunctionType, false)?;
        let labels = self.pop_function_param_labels(Some(ty));
        if let Some(s) = sig {
            let d = self.with(Kind::DependentGenericType, &[s, ty])?;
            ty = self.ty(d)?;
        }
        let name = self.pop_if(is_decl_name)?;
        let ctx = self.pop_context()?;
        match labels {
            Some(l) => self.with(Kind::Function, &[ctx, name, l, ty]),
            None => self.with(Kind::Function, &[ctx, name, ty]),
        }
    }

    pub(super) fn pop_function_type(&mut self, k: Kind, clang: bool) -> Option<NodeId> {
        let f = self.a.node(k)?;
        if clang {
            let c = self.clang_type()?;
            self.a.add(f, c);
        }
        for kind in [
            Kind::SendingResultFunctionType,
            Kind::GlobalActorFunctionType,
            Kind::IsolatedAnyFunctionType,
            Kind::NonIsolatedCallerFunctionType,
            Kind::DifferentiableFunctionType,
            Kind::ThrowsAnnotation,
            Kind::TypedThrowsAnnotation,
            Kind::ConcurrentFunctionType,
            Kind::AsyncAnnotation,
        ] {
            if let Some(n) = self.pop_kind(kind) {
                self.a.add(f, n);
            }
        }
        let params = self.pop_function_params(Kind::ArgumentTuple)?;
        self.a.add(f, params);
        let ret = self.pop_function_params(Kind::ReturnType)?;
        self.a.add(f, ret);
        self.ty(f)
    }

    pub(super) fn pop_function_params(&mut self, k: Kind) -> Option<NodeId> {
        let t = if self.pop_kind(Kind::EmptyList).is_some() {
            let tu = self.a.node(Kind::Tuple)?;
            self.ty(tu)?
        } else {
            self.pop_kind(Kind::Type)?
        };
        self.with(k, &[t])
    }

    pub(super) fn pop_function_param_labels(&mut self, ty: Option<NodeId>) -> Option<NodeId> {
        if !self.old_function_types && self.pop_kind(Kind::EmptyList).is_some() {
            return self.a.node(Kind::LabelList);
        }
        let ty = ty?;
        if self.a.kind(ty) != Kind::Type {
            return None;
        }
        let mut f = self.a.child(ty, 0)?;
        if self.a.kind(f) == Kind::DependentGenericType {
            f = self.a.child(self.a.child(f, 1)?, 0)?;
        }
        if !matches!(
            self.a.kind(f),
            Kind::FunctionType | Kind::NoEscapeFunctionType
        ) {
            return None;
        }
        let args = self
            .a
            .children(f)
            .iter()
            .copied()
            .find(|&c| self.a.kind(c) == Kind::ArgumentTuple)?;
        let params = self.a.child(self.a.child(args, 0)?, 0)?;
        let is_tuple = self.a.kind(params) == Kind::Tuple;
        let num = if is_tuple {
            self.a.num_children(params)
        } else {
            1
        };
        if num == 0 {
            return None;
        }
        let list = self.a.node(Kind::LabelList)?;
        if self.old_function_types && !is_tuple {
            return Some(list);
        }
        let mut has_labels = false;
        for i in 0..num {
            let label = if self.old_function_types {
                let p = self.a.child(params, i)?;
                let pos = self
                    .a
                    .children(p)
                    .iter()
                    .position(|&c| self.a.kind(c) == Kind::TupleElementName);
                match pos {
                    Some(pi) => {
                        let name = self.a.child(p, pi)?;
                        self.a.nodes[p as usize].children.remove(pi);
                        let s = self.a.text(name).to_string();
                        self.a.text_node(Kind::Identifier, &s)?
                    }
                    None => self.a.node(Kind::FirstElementMarker)?,
                }
            } else {
                self.pop()?
            };
            let lk = self.a.kind(label);
            if lk != Kind::Identifier && lk != Kind::FirstElementMarker {
                return None;
            }
            self.a.add(list, label);
            has_labels |= lk != Kind::FirstElementMarker;
        }
        if !has_labels {
            return self.a.node(Kind::LabelList);
        }
        if !self.old_function_types {
            self.a.reverse_children(list, 0);
        }
        Some(list)
    }

    pub(super) fn impl_param_convention(&mut self, k: Kind) -> Option<NodeId> {
        let attr = match self.next() {
            b'i' => "@in",
            b'c' => "@in_constant",
            b'l' => "@inout",
            b'b' => "@inout_aliasable",
            b'n' => "@in_guaranteed",
            b'X' => "@in_cxx",
            b'x' => "@owned",
            b'g' => "@guaranteed",
            b'e' => "@deallocating",
            b'y' => "@unowned",
            b'v' => "@pack_owned",
            b'p' => "@pack_guaranteed",
            b'm' => "@pack_inout",
            _ => {
                self.back();
                return None;
            }
        };
        let c = self.a.text_node(Kind::ImplConvention, attr)?;
        self.with(k, &[c])
    }

    pub(super) fn impl_result_convention(&mut self, k: Kind) -> Option<NodeId> {
        let attr = match self.next() {
            b'r' => "@out",
            b'o' => "@owned",
            b'd' => "@unowned",
            b'u' => "@unowned_inner_pointer",
            b'a' => "@autoreleased",
            b'k' => "@pack_out",
            b'g' => "@guaranteed",
            b'l' => "@inout",
            _ => {
                self.back();
                return None;
            }
        };
        let c = self.a.text_node(Kind::ImplConvention, attr)?;
        self.with(k, &[c])
    }

    pub(super) fn clang_type(&mut self) -> Option<NodeId> {
        let n = self.natural()? as usize;
        let end = self.pos.checked_add(n)?;
        if n == 0 || end > self.input.len() {
            return None;
        }
        let s = std::str::from_utf8(&self.input[self.pos..end]).ok()?;
        self.pos = end;
        self.a.text_node(Kind::ClangType, s)
    }

    pub(super) fn impl_function_type(&mut self) -> Option<NodeId> {
        let ty = self.a.node(Kind::ImplFunctionType)?;
        if self.next_if(b's') {
            let (lists, retro) = self.bound_generics()?;
            let sig = self.pop_kind(Kind::DependentGenericSignature)?;
            let subs = self.with(
                Kind::ImplPatternSubstitutions,
                &[sig, *lists.as_slice().first()?],
            )?;
            if let Some(r) = retro {
                self.a.add(subs, r);
            }
            self.a.add(ty, subs);
        }
        if self.next_if(b'I') {
            let (lists, retro) = self.bound_generics()?;
            let subs = self.with(
                Kind::ImplInvocationSubstitutions,
                &[*lists.as_slice().first()?],
            )?;
            if let Some(r) = retro {
                self.a.add(subs, r);
            }
            self.a.add(ty, subs);
        }
        let mut sig = self.pop_kind(Kind::DependentGenericSignature);
        if let Some(s) = sig {
            if self.next_if(b'P') {
                sig = Some(
                    self.a
                        .change_kind(s, Kind::DependentPseudogenericSignature)?,
                );
            }
        }
        if self.next_if(b'e') {
            let e = self.a.node(Kind::ImplEscaping)?;
            self.a.add(ty, e);
        }
        if self.next_if(b'A') {
            let e = self.a.node(Kind::ImplErasedIsolation)?;
            self.a.add(ty, e);
        }
        if matches!(self.peek(), b'd' | b'l' | b'f' | b'r') {
            let c = self.next();
            let d = self
                .a
                .index_node(Kind::ImplDifferentiabilityKind, u64::from(c))?;
            self.a.add(ty, d);
        }
        let cattr = match self.next() {
            b'y' => "@callee_unowned",
            b'g' => "@callee_guaranteed",
            b'x' => "@callee_owned",
            b't' => "@convention(thin)",
            _ => return None,
        };
        let c = self.a.text_node(Kind::ImplConvention, cattr)?;
        self.a.add(ty, c);
        let mut fconv: Option<&str> = None;
        let mut clang = false;
        match self.next() {
            b'B' => fconv = Some("block"),
            b'C' => fconv = Some("c"),
            b'z' => match self.next() {
                b'B' => {
                    clang = true;
                    fconv = Some("block");
                }
                b'C' => {
                    clang = true;
                    fconv = Some("c");
                }
                _ => {
                    self.back();
                    self.back();
                }
            },
            b'M' => fconv = Some("method"),
            b'O' => fconv = Some("objc_method"),
            b'K' => fconv = Some("closure"),
            b'W' => fconv = Some("witness_method"),
            _ => self.back(),
        }
        if let Some(fc) = fconv {
            let f = self.a.node(Kind::ImplFunctionConvention)?;
            let name = self.a.text_node(Kind::ImplFunctionConventionName, fc)?;
            self.a.add(f, name);
            if clang {
                let c = self.clang_type()?;
                self.a.add(f, c);
            }
            self.a.add(ty, f);
        }
        let coro = if self.next_if(b'A') {
            Some("yield_once")
        } else if self.next_if(b'I') {
            Some("yield_once_2")
        } else if self.next_if(b'G') {
            Some("yield_many")
        } else {
            None
        };
        if let Some(c) = coro {
            let n = self.a.text_node(Kind::ImplCoroutineKind, c)?;
            self.a.add(ty, n);
        }
        if self.next_if(b'h') {
            let n = self.a.text_node(Kind::ImplFunctionAttribute, "@Sendable")?;
            self.a.add(ty, n);
        }
        if self.next_if(b'H') {
            let n = self.a.text_node(Kind::ImplFunctionAttribute, "@async")?;
            self.a.add(ty, n);
        }
        if self.next_if(b'T') {
            let n = self.a.node(Kind::ImplSendingResult)?;
            self.a.add(ty, n);
        }
        if let Some(s) = sig {
            self.a.add(ty, s);
        }
        let mut num_types = 0usize;
        while let Some(p) = self.impl_param_convention(Kind::ImplParameter) {
            self.a.add(ty, p);
            if self.next_if(b'w') {
                let d = self
                    .a
                    .text_node(Kind::ImplParameterResultDifferentiability, "@noDerivative")?;
                self.a.add(p, d);
            }
            if self.next_if(b'T') {
                let d = self.a.text_node(Kind::ImplParameterSending, "sending")?;
                self.a.add(p, d);
            }
            if self.next_if(b'I') {
                let d = self.a.text_node(Kind::ImplParameterIsolated, "isolated")?;
                self.a.add(p, d);
            }
            if self.next_if(b'L') {
                let d = self.a.text_node(
                    Kind::ImplParameterImplicitLeading,
                    "sil_implicit_leading_param",
                )?;
                self.a.add(p, d);
            }
            num_types += 1;
        }
        while let Some(r) = self.impl_result_convention(Kind::ImplResult) {
            self.a.add(ty, r);
            if self.next_if(b'w') {
                let d = self
                    .a
                    .text_node(Kind::ImplParameterResultDifferentiability, "@noDerivative")?;
                self.a.add(r, d);
            }
            num_types += 1;
        }
        while self.next_if(b'Y') {
            let y = self.impl_param_convention(Kind::ImplYield)?;
            self.a.add(ty, y);
            num_types += 1;
        }
        if self.next_if(b'z') {
            let e = self.impl_result_convention(Kind::ImplErrorResult)?;
            self.a.add(ty, e);
            num_types += 1;
        }
        if !self.next_if(b'_') {
            return None;
        }
        let n = self.a.num_children(ty);
        if num_types > n {
            return None;
        }
        for i in 0..num_types {
            let t = self.pop_kind(Kind::Type)?;
            let target = self.a.child(ty, n - i - 1)?;
            // The type goes last, after the convention and any marks.
            self.a.add(target, t);
        }
        self.ty(ty)
    }
}
