//! Specializations and automatic differentiation: generic and
//! function-signature specializations with their parameters and nested
//! symbols, derivative functions, their thunks and differentiability
//! witnesses.

use crate::node::{Kind, NodeId};

use super::{Printer, R};

impl<'a> Printer<'a> {
    /// Prints the kinds of this module; any other kind goes on to
    /// [`Self::print_thunk_kind`].
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(super) fn print_specialization_kind(
        &mut self,
        n: NodeId,
        k: Kind,
        depth: u32,
        as_prefix: bool,
    ) -> R {
        use Kind::*;
        match k {
            FunctionSignatureSpecialization => {
                self.print_spec_prefix(n, "function signature specialization", "", depth)
            }
            GenericPartialSpecialization => {
                self.print_spec_prefix(n, "generic partial specialization", "Signature = ", depth)
            }
            GenericPartialSpecializationNotReAbstracted => self.print_spec_prefix(
                n,
                "generic not-reabstracted partial specialization",
                "Signature = ",
                depth,
            ),
            GenericSpecialization | GenericSpecializationInResilienceDomain => {
                self.print_spec_prefix(n, "generic specialization", "", depth)
            }
            GenericSpecializationPrespecialized => {
                self.print_spec_prefix(n, "generic pre-specialization", "", depth)
            }
            GenericSpecializationNotReAbstracted => {
                self.print_spec_prefix(n, "generic not re-abstracted specialization", "", depth)
            }
            InlinedGenericFunction => {
                self.print_spec_prefix(n, "inlined generic function", "", depth)
            }
            IsSerialized => self.s("serialized"),
            GenericSpecializationParam => {
                self.pc(n, 0, depth);
                for i in 1..self.nch(n) {
                    self.s(if i == 1 { " with " } else { " and " });
                    self.pc(n, i, depth);
                }
            }
            FunctionSignatureSpecializationParam | FunctionSignatureSpecializationReturn => {
                self.print_func_sig_spec_params(n, depth);
            }
            FunctionSignatureSpecializationParamPayload => {
                let t = self.text(n);
                self.print_nested_symbol(t);
            }
            FunctionSignatureSpecializationParamKind => self.print_spec_param_kind(self.a.index(n)),
            AutoDiffFunction | AutoDiffDerivativeVTableThunk => {
                let ch: &'a [NodeId] = self.a.children(n);
                let Some(ki) = ch.iter().position(|&c| self.k(c) == AutoDiffFunctionKind) else {
                    self.invalid = true;
                    return None;
                };
                if k == AutoDiffDerivativeVTableThunk {
                    self.s("vtable thunk for ");
                }
                self.p(ch[ki], depth);
                self.s(" of ");
                let mut sig = None;
                for &c in &ch[..ki] {
                    if self.k(c) == DependentGenericSignature {
                        sig = Some(c);
                        continue;
                    }
                    self.p(c, depth);
                }
                self.s(" with respect to parameters ");
                if let Some(&p) = ch.get(ki + 1) {
                    self.print_index_subset(p);
                }
                self.s(" and results ");
                if let Some(&r) = ch.get(ki + 2) {
                    self.print_index_subset(r);
                }
                if let Some(g) = sig {
                    self.s(" with ");
                    self.p(g, depth);
                }
            }
            AutoDiffSubsetParametersThunk => {
                self.s("autodiff subset parameters thunk for ");
                let ch: &'a [NodeId] = self.a.children(n);
                let Some(ki) = ch.iter().position(|&c| self.k(c) == AutoDiffFunctionKind) else {
                    self.invalid = true;
                    return None;
                };
                self.p(ch[ki], depth);
                self.s(" from ");
                if let Some(&f) = ch.first() {
                    if f != ch[ki] {
                        self.p(f, depth);
                    }
                }
                self.s(" with respect to parameters ");
                if let Some(&p) = ch.get(ki + 1) {
                    self.print_index_subset(p);
                }
                self.s(" and results ");
                if let Some(&r) = ch.get(ki + 2) {
                    self.print_index_subset(r);
                }
                self.s(" to parameters ");
                if let Some(&t) = ch.get(ki + 3) {
                    self.print_index_subset(t);
                }
                if ki >= 2 {
                    self.s(" of type ");
                    for &c in &ch[1..ki] {
                        self.p(c, depth);
                    }
                }
            }
            AutoDiffSelfReorderingReabstractionThunk => {
                self.s("autodiff self-reordering reabstraction thunk ");
                let ch: &'a [NodeId] = self.a.children(n);
                let mut i = 0;
                if let Some(&g) = ch.first() {
                    if self.k(g) == DependentGenericSignature {
                        self.p(g, depth);
                        self.s(" ");
                        i = 1;
                    }
                }
                if ch.len() < i + 3 {
                    self.invalid = true;
                    return None;
                }
                self.s("for ");
                self.p(ch[i + 2], depth);
                self.s(" from ");
                self.p(ch[i], depth);
                self.s(" to ");
                self.p(ch[i + 1], depth);
            }
            AutoDiffFunctionKind => {
                self.s(match self.a.index(n) as u8 {
                    b'f' => "forward-mode derivative",
                    b'r' => "reverse-mode derivative",
                    b'd' => "differential",
                    b'p' => "pullback",
                    _ => "",
                });
            }
            DifferentiabilityWitness => {
                let ch: &'a [NodeId] = self.a.children(n);
                let Some(ki) = ch.iter().position(|&c| self.k(c) == Index) else {
                    self.invalid = true;
                    return None;
                };
                self.s(match self.a.index(ch[ki]) as u8 {
                    b'f' => "forward-mode",
                    b'r' => "reverse-mode",
                    b'd' => "normal",
                    b'l' => "linear",
                    _ => "",
                });
                self.s(" differentiability witness for ");
                let mut idx = 0;
                while idx < ki {
                    self.p(ch[idx], depth);
                    idx += 1;
                }
                self.s(" with respect to parameters ");
                if let Some(&p) = ch.get(ki + 1) {
                    self.print_index_subset(p);
                }
                self.s(" and results ");
                if let Some(&r) = ch.get(ki + 2) {
                    self.print_index_subset(r);
                }
                if let Some(&g) = ch.get(ki + 3) {
                    self.s(" with ");
                    self.p(g, depth);
                }
            }
            IndexSubset => self.print_index_subset(n),
            _ => return self.print_thunk_kind(n, k, depth, as_prefix),
        }
        None
    }

    pub(super) fn print_spec_prefix(
        &mut self,
        n: NodeId,
        desc: &str,
        param_prefix: &str,
        depth: u32,
    ) {
        if !self.o.generic_specializations {
            if !self.spec_prefix_printed {
                self.s("specialized ");
                self.spec_prefix_printed = true;
            }
            return;
        }
        self.s(desc);
        self.s(" <");
        let mut sep = "";
        let ch: &'a [NodeId] = self.a.children(n);
        for &c in ch {
            match self.k(c) {
                Kind::SpecializationPassID
                | Kind::DroppedArgument
                | Kind::MetatypeParamsRemoved => {}
                Kind::IsSerialized => {
                    self.s(sep);
                    sep = ", ";
                    self.p(c, depth);
                }
                _ => {
                    if self.nch(c) > 0 {
                        self.s(sep);
                        self.s(param_prefix);
                        sep = ", ";
                        match self.k(c) {
                            Kind::FunctionSignatureSpecializationParam => {
                                self.s("Arg[");
                                self.num(self.a.index(c));
                                self.s("] = ");
                                self.print_func_sig_spec_params(c, depth);
                            }
                            Kind::FunctionSignatureSpecializationReturn => {
                                self.s("Return = ");
                                self.print_func_sig_spec_params(c, depth);
                            }
                            _ => self.p(c, depth),
                        }
                    }
                }
            }
        }
        self.s("> of ");
    }

    pub(super) fn print_func_sig_spec_params(&mut self, n: NodeId, depth: u32) {
        let mut idx = 0;
        let e = self.nch(n);
        while idx < e {
            if idx > 0 {
                self.s(" and ");
            }
            let Some(first) = self.a.child(n, idx) else {
                return;
            };
            let v = self.a.index(first);
            use super::spec_kind as sk;
            match v {
                sk::BOX_TO_VALUE | sk::BOX_TO_STACK | sk::IN_OUT_TO_OUT => {
                    self.p(first, depth);
                    idx += 1;
                }
                sk::CONST_FUNCTION | sk::CONST_GLOBAL => {
                    if idx + 2 > e {
                        return;
                    }
                    self.s("[");
                    self.p(first, depth);
                    self.s(" : ");
                    let Some(t) = self.a.child(n, idx + 1) else {
                        return;
                    };
                    let text = self.text(t);
                    self.print_nested_symbol(text);
                    self.s("]");
                    idx += 2;
                }
                sk::CONST_INTEGER | sk::CONST_FLOAT => {
                    if idx + 2 > e {
                        return;
                    }
                    self.s("[");
                    self.p(first, depth);
                    self.s(" : ");
                    self.pc(n, idx + 1, depth);
                    self.s("]");
                    idx += 2;
                }
                sk::CONST_STRING => {
                    if idx + 3 > e {
                        return;
                    }
                    self.s("[");
                    self.p(first, depth);
                    self.s(" : ");
                    let enc = self.a.child(n, idx + 1).map(|c| self.text(c)).unwrap_or("");
                    self.s(enc);
                    self.s("'");
                    let v = self.a.child(n, idx + 2).map(|c| self.text(c)).unwrap_or("");
                    self.s(v);
                    self.s("'");
                    self.s("]");
                    idx += 3;
                }
                sk::CONST_KEYPATH => {
                    if idx + 4 > e {
                        return;
                    }
                    self.s("[");
                    self.p(first, depth);
                    self.s(" : ");
                    let t = self.a.child(n, idx + 1).map(|c| self.text(c)).unwrap_or("");
                    self.s(t);
                    self.s("<");
                    self.pc(n, idx + 2, depth);
                    self.s(",");
                    self.pc(n, idx + 3, depth);
                    self.s(">]");
                    idx += 4;
                }
                sk::CLOSURE_PROP => {
                    if idx + 2 > e {
                        return;
                    }
                    self.s("[");
                    self.p(first, depth);
                    self.s(" : ");
                    let t = self.a.child(n, idx + 1).map(|c| self.text(c)).unwrap_or("");
                    self.print_nested_symbol(t);
                    self.s(", Argument Types : [");
                    idx += 2;
                    while idx < e {
                        let Some(c) = self.a.child(n, idx) else { break };
                        if self.k(c) != Kind::Type {
                            break;
                        }
                        self.p(c, depth);
                        idx += 1;
                        if idx < e
                            && self
                                .a
                                .child(n, idx)
                                .map(|x| self.a.has_text(x))
                                .unwrap_or(false)
                        {
                            self.s(", ");
                        }
                    }
                    self.s("]");
                }
                _ => {
                    self.p(first, depth);
                    idx += 1;
                }
            }
        }
    }

    /// Prints a symbol embedded in a specialization (demangled if possible).
    pub(super) fn print_nested_symbol(&mut self, text: &str) {
        if self.nesting < 2 {
            let opts = crate::Options {
                simplified: false,
                ..crate::Options::default()
            };
            if let Some(d) = crate::demangle_nested(text, &opts, self.o, self.nesting + 1) {
                self.s(&d);
                return;
            }
        }
        self.s(text);
    }

    pub(super) fn print_index_subset(&mut self, n: NodeId) {
        self.s("{");
        let t = self.text(n);
        let mut first = true;
        for (i, c) in t.bytes().enumerate() {
            if c == b'S' {
                if !first {
                    self.s(", ");
                }
                first = false;
                self.num(i as u64);
            }
        }
        self.s("}");
    }

    pub(super) fn print_spec_param_kind(&mut self, raw: u64) {
        use super::spec_kind as sk;
        let mut printed = false;
        let mut part = |p: &mut Self, s: &str| {
            if printed {
                p.s(" and ");
            }
            printed = true;
            p.s(s);
        };
        if raw & sk::EXISTENTIAL_TO_GENERIC != 0 {
            part(self, "Existential To Protocol Constrained Generic");
        }
        if raw & sk::DEAD != 0 {
            part(self, "Dead");
        }
        if raw & sk::OWNED_TO_GUARANTEED != 0 {
            part(self, "Owned To Guaranteed");
        }
        if raw & sk::GUARANTEED_TO_OWNED != 0 {
            part(self, "Guaranteed To Owned");
        }
        if raw & sk::SROA != 0 {
            part(self, "Exploded");
            return;
        }
        if printed {
            return;
        }
        self.s(match raw {
            sk::BOX_TO_VALUE => "Value Promoted from Box",
            sk::BOX_TO_STACK => "Stack Promoted from Box",
            sk::CONST_FUNCTION => "Constant Propagated Function",
            sk::CONST_GLOBAL => "Constant Propagated Global",
            sk::CONST_INTEGER => "Constant Propagated Integer",
            sk::CONST_FLOAT => "Constant Propagated Float",
            sk::CONST_STRING => "Constant Propagated String",
            sk::CONST_KEYPATH => "Constant Propagated KeyPath",
            sk::CLOSURE_PROP => "Closure Propagated",
            sk::IN_OUT_TO_OUT => "InOut Converted to Out",
            _ => "",
        });
    }
}
