//! Function types: Swift function types with their attributes, parameters
//! and effects, and SIL implementation function types with their
//! conventions.

use crate::node::{Kind, NodeId};

use super::{Printer, R};

impl<'a> Printer<'a> {
    /// Prints the kinds of this module; any other kind goes on to
    /// [`Self::print_generic_kind`].
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(super) fn print_function_kind(
        &mut self,
        n: NodeId,
        k: Kind,
        depth: u32,
        as_prefix: bool,
    ) -> R {
        use Kind::*;
        match k {
            NoEscapeFunctionType
            | AutoClosureType
            | EscapingAutoClosureType
            | ThinFunctionType
            | FunctionType
            | UncurriedFunctionType
            | CFunctionPointer
            | ObjCBlock
            | EscapingObjCBlock => self.print_function_type(None, n, depth),
            ClangType => {
                let t = self.text(n);
                self.s(t);
            }
            ReturnType => {
                self.s(" -> ");
                self.children(n, "", depth);
            }
            ImplParameterIsolated | ImplParameterImplicitLeading => {}
            MetatypeRepresentation
            | ImplConvention
            | ImplFunctionAttribute
            | ImplFunctionConventionName
            | ImplParameterResultDifferentiability
            | ImplParameterSending => {
                let t = self.text(n);
                self.s(t);
            }
            ImplEscaping => self.s("@escaping"),
            ImplErasedIsolation => self.s("@isolated(any)"),
            ImplCoroutineKind => {
                self.s("@");
                let t = self.text(n);
                self.s(t);
            }
            ImplDifferentiabilityKind => {
                self.s(match self.a.index(n) as u8 {
                    b'd' => "@differentiable",
                    b'l' => "@differentiable(_linear)",
                    b'f' => "@differentiable(_forward)",
                    b'r' => "@differentiable(reverse)",
                    _ => "",
                });
            }
            ImplFunctionConvention => {
                self.s("@convention(");
                let name = self.ch(n, 0)?;
                let t = self.text(name);
                self.s(t);
                if let Some(c) = self.a.child(n, 1) {
                    self.s(", mangledCType: \"");
                    let t = self.text(c);
                    self.s(t);
                    self.s("\"");
                }
                self.s(")");
            }
            ImplErrorResult | ImplParameter | ImplResult | ImplYield => {
                if k == ImplErrorResult {
                    self.s("@error ");
                }
                if k == ImplYield {
                    self.s("@yields ");
                }
                let ch: &'a [NodeId] = self.a.children(n);
                let mut first = true;
                for &c in ch {
                    if matches!(
                        self.k(c),
                        ImplParameterIsolated | ImplParameterImplicitLeading
                    ) {
                        continue;
                    }
                    if !first {
                        self.s(" ");
                    }
                    first = false;
                    self.p(c, depth);
                }
            }
            ImplSendingResult => self.s("sending"),
            ImplFunctionType => self.print_impl_function_type(n, depth),
            ImplPatternSubstitutions | ImplInvocationSubstitutions => {}
            ConcurrentFunctionType => self.s("@Sendable "),
            DifferentiableFunctionType => {}
            GlobalActorFunctionType => {
                if self.nch(n) > 0 {
                    self.s("@");
                    self.pc(n, 0, depth);
                    self.s(" ");
                }
            }
            IsolatedAnyFunctionType => self.s("@isolated(any) "),
            NonIsolatedCallerFunctionType => self.s("nonisolated(nonsending) "),
            SendingResultFunctionType => {}
            AsyncAnnotation => self.s(" async"),
            ThrowsAnnotation => self.s(" throws"),
            TypedThrowsAnnotation => {
                self.s(" throws(");
                self.pc(n, 0, depth);
                self.s(")");
            }
            _ => return self.print_generic_kind(n, k, depth, as_prefix),
        }
        None
    }

    pub(super) fn print_function_parameters(
        &mut self,
        labels: Option<NodeId>,
        param_ty: NodeId,
        show_types: bool,
        depth: u32,
    ) {
        if self.k(param_ty) != Kind::ArgumentTuple {
            self.invalid = true;
            return;
        }
        let Some(t) = self.ch(param_ty, 0) else {
            return;
        };
        let params = self.a.skip_type(t);
        if self.k(params) != Kind::Tuple {
            if show_types {
                self.s("(");
                self.p(params, depth);
                self.s(")");
            } else {
                self.s("(_:)");
            }
            return;
        }
        let has_labels = labels.map(|l| self.nch(l) > 0).unwrap_or(false);
        self.s("(");
        let ps: &'a [NodeId] = self.a.children(params);
        for (i, &param) in ps.iter().enumerate() {
            if i > 0 && show_types {
                self.s(", ");
            }
            if has_labels {
                let l = labels.and_then(|l| self.a.child(l, i));
                match l {
                    Some(l) if self.k(l) == Kind::Identifier => {
                        let t = self.text(l);
                        self.s(t);
                    }
                    Some(_) => self.s("_"),
                    None => {
                        self.invalid = true;
                        return;
                    }
                }
                self.s(":");
                if show_types {
                    self.s(" ");
                }
            } else if !show_types {
                if let Some(l) = self.child_of_kind(param, Kind::TupleElementName) {
                    let t = self.text(l);
                    self.s(t);
                    self.s(":");
                } else {
                    self.s("_:");
                }
            }
            if show_types {
                self.p(param, depth);
            }
        }
        self.s(")");
    }

    pub(super) fn print_function_type(&mut self, labels: Option<NodeId>, n: NodeId, depth: u32) {
        let nc = self.nch(n);
        if nc < 2 {
            self.invalid = true;
            return;
        }
        let first = self.a.child(n, 0);
        let clang = first.filter(|&f| self.k(f) == Kind::ClangType);
        let conv = |p: &mut Self, name: &str| {
            p.s("@convention(");
            p.s(name);
            if let Some(c) = clang {
                p.s(", mangledCType: \"");
                let t = p.text(c);
                p.s(t);
                p.s("\"");
            }
            p.s(") ");
        };
        match self.k(n) {
            Kind::AutoClosureType | Kind::EscapingAutoClosureType => self.s("@autoclosure "),
            Kind::ThinFunctionType => self.s("@convention(thin) "),
            Kind::CFunctionPointer => conv(self, "c"),
            Kind::EscapingObjCBlock => {
                self.s("@escaping ");
                conv(self, "block");
            }
            Kind::ObjCBlock => conv(self, "block"),
            _ => {}
        }
        let arg_index = nc - 2;
        let attrs: &'a [NodeId] = &self.a.children(n)[..arg_index];
        let find = |p: &Self, k: Kind| attrs.iter().copied().find(|&c| p.k(c) == k);
        let sending_result = find(self, Kind::SendingResultFunctionType).is_some();
        if let Some(x) = find(self, Kind::IsolatedAnyFunctionType) {
            self.p(x, depth);
        }
        let nonisolated = find(self, Kind::NonIsolatedCallerFunctionType);
        if let Some(g) = find(self, Kind::GlobalActorFunctionType) {
            self.p(g, depth);
        }
        let diff = find(self, Kind::DifferentiableFunctionType).map(|d| self.a.index(d));
        let throws =
            find(self, Kind::ThrowsAnnotation).or_else(|| find(self, Kind::TypedThrowsAnnotation));
        let sendable = find(self, Kind::ConcurrentFunctionType).is_some();
        let is_async = find(self, Kind::AsyncAnnotation).is_some();
        match diff.map(|d| d as u8) {
            Some(b'f') => self.s("@differentiable(_forward) "),
            Some(b'r') => self.s("@differentiable(reverse) "),
            Some(b'l') => self.s("@differentiable(_linear) "),
            Some(b'd') => self.s("@differentiable "),
            _ => {}
        }
        if let Some(x) = nonisolated {
            self.p(x, depth);
        }
        if sendable {
            self.s("@Sendable ");
        }
        let Some(args) = self.ch(n, arg_index) else {
            return;
        };
        self.print_function_parameters(labels, args, self.o.function_argument_types, depth);
        if !self.o.function_argument_types {
            return;
        }
        if is_async {
            self.s(" async");
        }
        if let Some(t) = throws {
            self.p(t, depth);
        }
        if sending_result {
            self.s(" -> sending ");
            if let Some(r) = self.ch(n, arg_index + 1) {
                self.children(r, "", depth);
            }
        } else {
            self.pc(n, arg_index + 1, depth);
        }
    }

    pub(super) fn print_impl_function_type(&mut self, f: NodeId, depth: u32) {
        #[derive(PartialEq, PartialOrd, Clone, Copy)]
        enum St {
            Attrs,
            Inputs,
            Results,
        }
        let mut st = St::Attrs;
        let ch: &'a [NodeId] = self.a.children(f);
        let patterns = self.child_of_kind(f, Kind::ImplPatternSubstitutions);
        let invocation = self.child_of_kind(f, Kind::ImplInvocationSubstitutions);
        let sending_result = self.child_of_kind(f, Kind::ImplSendingResult).is_some();
        let transition = |p: &mut Self, st: &mut St, to: St, sending: bool| {
            while *st < to {
                match *st {
                    St::Attrs => {
                        if let Some(pt) = patterns {
                            p.s("@substituted ");
                            p.pc(pt, 0, depth);
                            p.s(" ");
                        }
                        p.s("(");
                    }
                    St::Inputs => {
                        p.s(") -> ");
                        if sending {
                            p.s("sending ");
                        }
                        p.s("(");
                    }
                    St::Results => {}
                }
                *st = match *st {
                    St::Attrs => St::Inputs,
                    _ => St::Results,
                };
            }
        };
        for &c in ch {
            match self.k(c) {
                Kind::ImplParameter => {
                    if st == St::Inputs {
                        self.s(", ");
                    }
                    transition(self, &mut st, St::Inputs, sending_result);
                    self.p(c, depth);
                }
                Kind::ImplResult | Kind::ImplYield | Kind::ImplErrorResult => {
                    if st == St::Results {
                        self.s(", ");
                    }
                    transition(self, &mut st, St::Results, sending_result);
                    self.p(c, depth);
                }
                Kind::ImplPatternSubstitutions
                | Kind::ImplInvocationSubstitutions
                | Kind::ImplSendingResult => {}
                _ => {
                    self.p(c, depth);
                    self.s(" ");
                }
            }
        }
        transition(self, &mut st, St::Results, sending_result);
        self.s(")");
        if let Some(pt) = patterns {
            self.s(" for <");
            if let Some(l) = self.ch(pt, 1) {
                self.children(l, "", depth);
            }
            self.s(">");
        }
        if let Some(inv) = invocation {
            self.s(" for <");
            if let Some(l) = self.ch(inv, 0) {
                self.children(l, ", ", depth);
            }
            self.s(">");
        }
    }
}
