//! Turns a node tree into text, in full or simplified form.
//!
//! The printer recurses over the tree; the tree depth is bounded by
//! [`MAX_DEPTH`] here, the output length by `max_output`, and the number of
//! visited nodes by a step budget, because substitutions make the tree a
//! DAG whose expansion can be exponential in the input length.

use crate::node::{Arena, Kind, NodeId};

pub(crate) const MAX_DEPTH: u32 = 192;

/// Function-signature specialization parameter kinds and flags.
pub(crate) mod spec_kind {
    pub const CONST_FUNCTION: u64 = 0;
    pub const CONST_GLOBAL: u64 = 1;
    pub const CONST_INTEGER: u64 = 2;
    pub const CONST_FLOAT: u64 = 3;
    pub const CONST_STRING: u64 = 4;
    pub const CLOSURE_PROP: u64 = 5;
    pub const BOX_TO_VALUE: u64 = 6;
    pub const BOX_TO_STACK: u64 = 7;
    pub const IN_OUT_TO_OUT: u64 = 8;
    pub const CONST_KEYPATH: u64 = 9;
    pub const DEAD: u64 = 1 << 6;
    pub const OWNED_TO_GUARANTEED: u64 = 1 << 7;
    pub const SROA: u64 = 1 << 8;
    pub const GUARANTEED_TO_OWNED: u64 = 1 << 9;
    pub const EXISTENTIAL_TO_GENERIC: u64 = 1 << 10;
}

/// Value witness codes and names, in index order.
pub(crate) const VALUE_WITNESSES: &[(&str, &str)] = &[
    ("al", "allocateBuffer"),
    ("ca", "assignWithCopy"),
    ("ta", "assignWithTake"),
    ("de", "deallocateBuffer"),
    ("xx", "destroy"),
    ("XX", "destroyBuffer"),
    ("Xx", "destroyArray"),
    ("CP", "initializeBufferWithCopyOfBuffer"),
    ("Cp", "initializeBufferWithCopy"),
    ("cp", "initializeWithCopy"),
    ("Tk", "initializeBufferWithTake"),
    ("tk", "initializeWithTake"),
    ("pr", "projectBuffer"),
    ("TK", "initializeBufferWithTakeOfBuffer"),
    ("Cc", "initializeArrayWithCopy"),
    ("Tt", "initializeArrayWithTakeFrontToBack"),
    ("tT", "initializeArrayWithTakeBackToFront"),
    ("xs", "storeExtraInhabitant"),
    ("xg", "getExtraInhabitantIndex"),
    ("ug", "getEnumTag"),
    ("up", "destructiveProjectEnumData"),
    ("ui", "destructiveInjectEnumTag"),
    ("et", "getEnumTagSinglePayload"),
    ("st", "storeEnumTagSinglePayload"),
];

/// What to print.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Style {
    pub sugar: bool,
    pub qualify: bool,
    pub extension_contexts: bool,
    pub unmangled_suffix: bool,
    pub module_names: bool,
    pub generic_specializations: bool,
    pub protocol_conformances: bool,
    pub where_clauses: bool,
    pub entity_types: bool,
    pub short_partial_apply: bool,
    pub short_thunk: bool,
    pub short_value_witness: bool,
    pub private_discriminators: bool,
    pub function_argument_types: bool,
    pub async_resume_partial: bool,
}

impl Style {
    pub fn full() -> Self {
        Style {
            sugar: true,
            qualify: true,
            extension_contexts: true,
            unmangled_suffix: true,
            module_names: true,
            generic_specializations: true,
            protocol_conformances: true,
            where_clauses: true,
            entity_types: true,
            short_partial_apply: false,
            short_thunk: false,
            short_value_witness: false,
            private_discriminators: true,
            function_argument_types: true,
            async_resume_partial: true,
        }
    }

    pub fn simplified() -> Self {
        Style {
            sugar: true,
            qualify: true,
            extension_contexts: false,
            unmangled_suffix: false,
            module_names: false,
            generic_specializations: false,
            protocol_conformances: false,
            where_clauses: false,
            entity_types: false,
            short_partial_apply: true,
            short_thunk: true,
            short_value_witness: true,
            private_discriminators: false,
            function_argument_types: false,
            async_resume_partial: false,
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum TypePr {
    No,
    Colon,
    FunctionStyle,
}

pub(crate) struct Printer<'a> {
    a: &'a Arena,
    o: Style,
    pub out: String,
    max_output: usize,
    steps: u32,
    pub invalid: bool,
    spec_prefix_printed: bool,
    /// Nested demangling of specialization payloads.
    pub nesting: u32,
    /// Stack position when demangling started (see `STACK_BUDGET`).
    pub stack_base: usize,
}

type R = Option<NodeId>;

impl<'a> Printer<'a> {
    pub fn new(a: &'a Arena, o: Style, max_output: usize) -> Self {
        Printer {
            a,
            o,
            out: String::with_capacity(256),
            max_output,
            steps: 0,
            invalid: false,
            spec_prefix_printed: false,
            nesting: 0,
            stack_base: crate::stack_position(),
        }
    }

    fn s(&mut self, t: &str) {
        if self.out.len() + t.len() > self.max_output {
            self.invalid = true;
            return;
        }
        self.out.push_str(t);
    }

    fn c(&mut self, ch: char) {
        if self.out.len() + 4 > self.max_output {
            self.invalid = true;
            return;
        }
        self.out.push(ch);
    }

    fn num(&mut self, n: u64) {
        // Decimal without a heap allocation.
        let mut buf = [0u8; 20];
        let mut i = buf.len();
        let mut v = n;
        loop {
            i -= 1;
            buf[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        if let Ok(t) = std::str::from_utf8(&buf[i..]) {
            self.s(t);
        }
    }

    fn k(&self, n: NodeId) -> Kind {
        self.a.kind(n)
    }

    fn ch(&mut self, n: NodeId, i: usize) -> Option<NodeId> {
        let c = self.a.child(n, i);
        if c.is_none() {
            self.invalid = true;
        }
        c
    }

    fn nch(&self, n: NodeId) -> usize {
        self.a.num_children(n)
    }

    fn text(&self, n: NodeId) -> &'a str {
        self.a.text(n)
    }

    fn child_of_kind(&self, n: NodeId, k: Kind) -> Option<NodeId> {
        self.a
            .children(n)
            .iter()
            .copied()
            .find(|&c| self.a.kind(c) == k)
    }

    fn children(&mut self, n: NodeId, sep: &str, depth: u32) {
        let ch = self.a.children(n);
        for (i, &c) in ch.iter().enumerate() {
            if i > 0 {
                self.s(sep);
            }
            self.p(c, depth);
        }
    }

    fn pc(&mut self, n: NodeId, i: usize, depth: u32) {
        if let Some(c) = self.ch(n, i) {
            self.p(c, depth);
        }
    }

    pub fn p(&mut self, n: NodeId, depth: u32) {
        self.print(n, depth, false);
    }

    fn is_swift_module(&self, n: NodeId) -> bool {
        self.k(n) == Kind::Module && self.text(n) == "Swift"
    }

    fn is_ident(&self, n: NodeId, s: &str) -> bool {
        self.k(n) == Kind::Identifier && self.text(n) == s
    }

    fn is_simple_type(&self, n: NodeId) -> bool {
        use Kind::*;
        match self.k(n) {
            AssociatedType
            | AssociatedTypeRef
            | BoundGenericClass
            | BoundGenericEnum
            | BoundGenericStructure
            | BoundGenericProtocol
            | BoundGenericOtherNominalType
            | BoundGenericTypeAlias
            | BoundGenericFunction
            | BuiltinTypeName
            | BuiltinFixedArray
            | Class
            | DependentGenericType
            | DependentMemberType
            | DependentGenericParamType
            | DynamicSelf
            | Enum
            | ErrorType
            | ExistentialMetatype
            | Integer
            | NegativeInteger
            | Metatype
            | MetatypeRepresentation
            | Module
            | Tuple
            | Pack
            | SILPackDirect
            | SILPackIndirect
            | ConstrainedExistentialRequirementList
            | ConstrainedExistentialSelf
            | Protocol
            | ProtocolSymbolicReference
            | OpaqueReturnType
            | OpaqueReturnTypeIndexed
            | OpaqueReturnTypeParent
            | OpaqueType
            | QualifiedArchetype
            | ReturnType
            | SILBoxType
            | SILBoxTypeWithLayout
            | Structure
            | SugaredOptional
            | SugaredArray
            | SugaredDictionary
            | SugaredParen
            | SugaredInlineArray
            | TupleElementName
            | Type
            | TypeAlias
            | TypeList
            | LabelList
            | TypeSymbolicReference
            | SymbolicExtendedExistentialType => true,
            ProtocolList => self.a.child(n, 0).map(|c| self.nch(c) <= 1).unwrap_or(true),
            ProtocolListWithAnyObject => self
                .a
                .child(n, 0)
                .and_then(|c| self.a.child(c, 0))
                .map(|c| self.nch(c) == 0)
                .unwrap_or(true),
            _ => false,
        }
    }

    fn print_bound_generic_no_sugar(&mut self, n: NodeId, depth: u32) {
        if self.nch(n) < 2 {
            return;
        }
        self.pc(n, 0, depth);
        self.s("<");
        if let Some(tl) = self.ch(n, 1) {
            self.children(tl, ", ", depth);
        }
        self.s(">");
    }

    fn print_bound_generic(&mut self, n: NodeId, depth: u32) {
        if self.nch(n) < 2 {
            return;
        }
        if self.nch(n) != 2 || !self.o.sugar || self.k(n) == Kind::BoundGenericClass {
            self.print_bound_generic_no_sugar(n, depth);
            return;
        }
        let unbound = self.a.skip_type(self.a.child(n, 0).unwrap_or(n));
        let args = self.a.child(n, 1).unwrap_or(n);
        let nargs = self.nch(args);
        let (m, name) = match (self.a.child(unbound, 0), self.a.child(unbound, 1)) {
            (Some(m), Some(name)) => (m, name),
            _ => {
                self.print_bound_generic_no_sugar(n, depth);
                return;
            }
        };
        let swift = self.is_swift_module(m);
        let kind = self.k(n);
        if swift && kind == Kind::BoundGenericEnum && nargs == 1 && self.is_ident(name, "Optional")
        {
            let t = self.a.child(args, 0).unwrap_or(args);
            let inner = self.a.skip_type(t);
            let parens = !self.is_simple_type(inner);
            if parens {
                self.s("(");
            }
            self.p(t, depth);
            if parens {
                self.s(")");
            }
            self.s("?");
        } else if swift
            && kind == Kind::BoundGenericEnum
            && nargs == 1
            && self.is_ident(name, "ImplicitlyUnwrappedOptional")
        {
            let t = self.a.child(args, 0).unwrap_or(args);
            let inner = self.a.skip_type(t);
            let parens = !self.is_simple_type(inner);
            if parens {
                self.s("(");
            }
            self.p(t, depth);
            if parens {
                self.s(")");
            }
            self.s("!");
        } else if swift
            && kind == Kind::BoundGenericStructure
            && nargs == 1
            && self.is_ident(name, "Array")
        {
            self.s("[");
            self.pc(args, 0, depth);
            self.s("]");
        } else if swift
            && kind == Kind::BoundGenericStructure
            && nargs == 2
            && self.is_ident(name, "Dictionary")
        {
            self.s("[");
            self.pc(args, 0, depth);
            self.s(" : ");
            self.pc(args, 1, depth);
            self.s("]");
        } else {
            self.print_bound_generic_no_sugar(n, depth);
        }
    }

    fn print_function_parameters(
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

    fn print_function_type(&mut self, labels: Option<NodeId>, n: NodeId, depth: u32) {
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

    fn print_impl_function_type(&mut self, f: NodeId, depth: u32) {
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

    fn print_spec_prefix(&mut self, n: NodeId, desc: &str, param_prefix: &str, depth: u32) {
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
                Kind::SpecializationPassID | Kind::DroppedArgument => {}
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

    fn print_func_sig_spec_params(&mut self, n: NodeId, depth: u32) {
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
            use spec_kind as sk;
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
    fn print_nested_symbol(&mut self, text: &str) {
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

    fn print_context(&self, ctx: NodeId) -> bool {
        if !self.o.qualify {
            return false;
        }
        if self.k(ctx) == Kind::Module && self.text(ctx).starts_with("__lldb_expr_") {
            return false;
        }
        true
    }

    #[allow(clippy::too_many_arguments)]
    fn print_entity(
        &mut self,
        e: NodeId,
        as_prefix: bool,
        mut type_pr: TypePr,
        has_name: bool,
        extra_name: &str,
        extra_index: i64,
        overwrite_name: &str,
        depth: u32,
    ) -> R {
        let mut extra_name = extra_name;
        let mut multi_word = extra_name.contains(' ');
        if has_name {
            if let Some(name) = self.a.child(e, 1) {
                if self.k(name) == Kind::LocalDeclName {
                    multi_word = true;
                }
            }
        }
        if as_prefix && (type_pr != TypePr::No || multi_word) {
            return Some(e);
        }
        let mut postfix: R = None;
        let ctx = self.ch(e, 0)?;
        if self.print_context(ctx) {
            if multi_word {
                postfix = Some(ctx);
            } else {
                let before = self.out.len();
                postfix = self.print(ctx, depth, true);
                if self.out.len() != before {
                    self.s(".");
                }
            }
        }
        if has_name || !overwrite_name.is_empty() {
            if !extra_name.is_empty() && multi_word {
                self.s(extra_name);
                if extra_index >= 0 {
                    self.num(extra_index as u64);
                }
                self.s(" of ");
                extra_name = "";
            }
            let before = self.out.len();
            if !overwrite_name.is_empty() {
                self.s(overwrite_name);
            } else {
                let name = self.ch(e, 1)?;
                if self.k(name) != Kind::PrivateDeclName {
                    self.p(name, depth);
                }
                if let Some(pn) = self.child_of_kind(e, Kind::PrivateDeclName) {
                    self.p(pn, depth);
                }
            }
            if self.out.len() != before && !extra_name.is_empty() {
                self.s(".");
            }
        }
        if !extra_name.is_empty() {
            self.s(extra_name);
            if extra_index >= 0 {
                self.num(extra_index as u64);
            }
        }
        if type_pr != TypePr::No {
            let Some(t) = self.child_of_kind(e, Kind::Type) else {
                self.invalid = true;
                return None;
            };
            let mut ty = self.ch(t, 0)?;
            if type_pr == TypePr::FunctionStyle {
                let mut x = ty;
                let mut guard = 0;
                while self.k(x) == Kind::DependentGenericType && guard < 64 {
                    x = self
                        .a
                        .child(x, 1)
                        .and_then(|c| self.a.child(c, 0))
                        .unwrap_or(x);
                    guard += 1;
                }
                if !matches!(
                    self.k(x),
                    Kind::FunctionType
                        | Kind::NoEscapeFunctionType
                        | Kind::UncurriedFunctionType
                        | Kind::CFunctionPointer
                        | Kind::ThinFunctionType
                ) {
                    type_pr = TypePr::Colon;
                }
            }
            let labels = self.child_of_kind(e, Kind::LabelList);
            let print_type = |p: &mut Self, ty: &mut NodeId| {
                if let Some(l) = labels {
                    if p.k(*ty) == Kind::DependentGenericType {
                        p.pc(*ty, 0, depth);
                        let Some(dt) = p.a.child(*ty, 1) else { return };
                        if p.need_space_before_type(dt) {
                            p.s(" ");
                        }
                        *ty = p.a.child(dt, 0).unwrap_or(dt);
                    }
                    p.print_function_type(Some(l), *ty, depth);
                } else {
                    p.p(*ty, depth);
                }
            };
            if type_pr == TypePr::Colon {
                if self.o.entity_types {
                    self.s(" : ");
                    print_type(self, &mut ty);
                }
            } else {
                if multi_word || self.need_space_before_type(ty) {
                    self.s(" ");
                }
                print_type(self, &mut ty);
            }
        }
        if !as_prefix {
            if let Some(pc) = postfix {
                if matches!(
                    self.k(e),
                    Kind::DefaultArgumentInitializer
                        | Kind::Initializer
                        | Kind::PropertyWrapperBackingInitializer
                        | Kind::PropertyWrapperInitFromProjectedValue
                ) {
                    self.s(" of ");
                } else {
                    self.s(" in ");
                }
                self.p(pc, depth);
                postfix = None;
            }
        }
        postfix
    }

    fn need_space_before_type(&self, t: NodeId) -> bool {
        match self.k(t) {
            Kind::Type => self
                .a
                .child(t, 0)
                .map(|c| self.need_space_before_type(c))
                .unwrap_or(true),
            Kind::FunctionType
            | Kind::NoEscapeFunctionType
            | Kind::UncurriedFunctionType
            | Kind::DependentGenericType => false,
            _ => true,
        }
    }

    fn abstract_storage(&mut self, n: NodeId, as_prefix: bool, extra: &str, depth: u32) -> R {
        match self.k(n) {
            Kind::Variable => {
                self.print_entity(n, as_prefix, TypePr::Colon, true, extra, -1, "", depth)
            }
            Kind::Subscript => self.print_entity(
                n,
                as_prefix,
                TypePr::Colon,
                false,
                extra,
                -1,
                "subscript",
                depth,
            ),
            _ => {
                self.invalid = true;
                None
            }
        }
    }

    /// `A`, `B`, …, `Z`, `AB`, …, with the depth appended when not 0.
    fn generic_param_name(&mut self, depth: u64, index: u64) {
        let mut i = index;
        loop {
            self.c((b'A' + (i % 26) as u8) as char);
            i /= 26;
            if i == 0 {
                break;
            }
        }
        if depth != 0 {
            self.num(depth);
        }
    }

    fn print_generic_signature(&mut self, n: NodeId, depth: u32) {
        self.s("<");
        let nc = self.nch(n);
        let mut d = 0;
        let ch: &'a [NodeId] = self.a.children(n);
        // Pack and value markers change how parameters are printed.
        let mut packs: Vec<(u64, u64)> = Vec::new();
        let mut values: Vec<((u64, u64), NodeId)> = Vec::new();
        for &c in ch {
            if matches!(
                self.k(c),
                Kind::DependentGenericParamPackMarker | Kind::DependentGenericParamValueMarker
            ) {
                if let Some(p) = self.a.child(c, 0).map(|t| self.a.skip_type(t)) {
                    if self.k(p) == Kind::DependentGenericParamType {
                        let dd = self.a.child(p, 0).map(|x| self.a.index(x)).unwrap_or(0);
                        let ii = self.a.child(p, 1).map(|x| self.a.index(x)).unwrap_or(0);
                        if self.k(c) == Kind::DependentGenericParamPackMarker {
                            packs.push((dd, ii));
                        } else if let Some(t) = self.a.child(c, 1) {
                            values.push(((dd, ii), t));
                        }
                    }
                }
            }
        }
        while d < nc && self.k(ch[d]) == Kind::DependentGenericParamCount {
            if d != 0 {
                self.s("><");
            }
            let count = self.a.index(ch[d]);
            for i in 0..count {
                if i != 0 {
                    self.s(", ");
                }
                if i >= 128 {
                    self.s("...");
                    break;
                }
                if packs.contains(&(d as u64, i)) {
                    self.s("each ");
                }
                let value = values
                    .iter()
                    .find(|(k, _)| *k == (d as u64, i))
                    .map(|(_, t)| *t);
                if value.is_some() {
                    self.s("let ");
                }
                self.generic_param_name(d as u64, i);
                if let Some(t) = value {
                    self.s(": ");
                    self.p(t, depth);
                }
            }
            d += 1;
        }
        let reqs: Vec<NodeId> = ch[d..]
            .iter()
            .copied()
            .filter(|&c| {
                !matches!(
                    self.k(c),
                    Kind::DependentGenericParamPackMarker | Kind::DependentGenericParamValueMarker
                )
            })
            .collect();
        if !reqs.is_empty() && self.o.where_clauses {
            self.s(" where ");
            for (i, &r) in reqs.iter().enumerate() {
                if i > 0 {
                    self.s(", ");
                }
                self.p(r, depth);
            }
        }
        self.s(">");
    }

    fn print_outlined(&mut self, n: NodeId, what: &str, depth: u32) {
        self.s(what);
        self.pc(n, 0, depth);
    }

    /// The big switch. Returns a context still to be printed in postfix form.
    pub fn print(&mut self, n: NodeId, depth: u32, as_prefix: bool) -> R {
        self.steps += 1;
        if depth > MAX_DEPTH
            || self.steps > 200_000
            || self.invalid
            || self.stack_base.abs_diff(crate::stack_position()) > crate::STACK_BUDGET
        {
            self.invalid = true;
            return None;
        }
        let depth = depth + 1;
        use Kind::*;
        let k = self.k(n);
        match k {
            Static => {
                self.s("static ");
                self.pc(n, 0, depth);
            }
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
            AnonymousContext => {
                if self.o.qualify && self.o.extension_contexts {
                    self.pc(n, 1, depth);
                    self.s(".(unknown context at ");
                    let t = self.a.child(n, 0).map(|c| self.text(c)).unwrap_or("");
                    self.s(t);
                    self.s(")");
                    if let Some(tl) = self.a.child(n, 2) {
                        if self.nch(tl) > 0 {
                            self.s("<");
                            self.children(tl, ", ", depth);
                            self.s(">");
                        }
                    }
                }
            }
            Extension => {
                if self.o.qualify && self.o.extension_contexts {
                    self.s("(extension in ");
                    if let Some(m) = self.ch(n, 0) {
                        self.print(m, depth, true);
                    }
                    self.s("):");
                }
                self.pc(n, 1, depth);
                if self.nch(n) == 3 {
                    // Only print the where clause, not the parameters.
                    if let Some(sig) = self.a.child(n, 2) {
                        self.print_generic_signature(sig, depth);
                    }
                }
            }
            Variable => {
                return self.print_entity(n, as_prefix, TypePr::Colon, true, "", -1, "", depth)
            }
            Function => {
                return self.print_entity(
                    n,
                    as_prefix,
                    TypePr::FunctionStyle,
                    true,
                    "",
                    -1,
                    "",
                    depth,
                )
            }
            BoundGenericFunction => {
                let f = self.ch(n, 0)?;
                let ctx = self.ch(f, 0)?;
                if as_prefix {
                    return Some(n);
                }
                if self.print_context(ctx) {
                    let before = self.out.len();
                    self.print(ctx, depth, true);
                    if self.out.len() != before {
                        self.s(".");
                    }
                }
                if self.k(f) == Function {
                    self.pc(f, 1, depth);
                }
                self.s("<");
                if let Some(tl) = self.a.child(n, 1) {
                    self.children(tl, ", ", depth);
                }
                self.s(">");
                if let Some(t) = self.child_of_kind(f, Type) {
                    let mut ty = self.ch(t, 0)?;
                    if self.k(ty) == DependentGenericType {
                        let inner = self.ch(ty, 1)?;
                        ty = self.a.skip_type(inner);
                    }
                    match self.child_of_kind(f, LabelList) {
                        Some(l) => self.print_function_type(Some(l), ty, depth),
                        None => self.p(ty, depth),
                    }
                }
            }
            Subscript => {
                return self.print_entity(
                    n,
                    as_prefix,
                    TypePr::FunctionStyle,
                    false,
                    "",
                    -1,
                    "subscript",
                    depth,
                )
            }
            GenericTypeParamDecl => {
                return self.print_entity(n, as_prefix, TypePr::No, true, "", -1, "", depth)
            }
            ExplicitClosure | ImplicitClosure => {
                let idx = self
                    .a
                    .child(n, 1)
                    .map(|c| self.a.index(c) as i64 + 1)
                    .unwrap_or(0);
                let tp = if self.o.function_argument_types {
                    TypePr::FunctionStyle
                } else {
                    TypePr::No
                };
                let name = if k == ExplicitClosure {
                    "closure #"
                } else {
                    "implicit closure #"
                };
                return self.print_entity(n, as_prefix, tp, false, name, idx, "", depth);
            }
            Global => {
                let ch: &'a [NodeId] = self.a.children(n);
                for &c in ch {
                    self.p(c, depth);
                }
            }
            Suffix => {
                if self.o.unmangled_suffix {
                    self.s(" with unmangled suffix ");
                    let t = self.text(n);
                    self.print_quoted(t);
                }
            }
            Initializer => {
                return self.print_entity(
                    n,
                    as_prefix,
                    TypePr::No,
                    false,
                    "variable initialization expression",
                    -1,
                    "",
                    depth,
                )
            }
            PropertyWrapperBackingInitializer => {
                return self.print_entity(
                    n,
                    as_prefix,
                    TypePr::No,
                    false,
                    "property wrapper backing initializer",
                    -1,
                    "",
                    depth,
                )
            }
            PropertyWrapperInitFromProjectedValue => {
                return self.print_entity(
                    n,
                    as_prefix,
                    TypePr::No,
                    false,
                    "property wrapper init from projected value",
                    -1,
                    "",
                    depth,
                )
            }
            DefaultArgumentInitializer => {
                let idx = self
                    .a
                    .child(n, 1)
                    .map(|c| self.a.index(c) as i64)
                    .unwrap_or(0);
                return self.print_entity(
                    n,
                    as_prefix,
                    TypePr::No,
                    false,
                    "default argument ",
                    idx,
                    "",
                    depth,
                );
            }
            DeclContext | Type => self.pc(n, 0, depth),
            TypeMangling => {
                let c0 = self.ch(n, 0)?;
                if self.k(c0) == LabelList {
                    let t = self.ch(n, 1)?;
                    let f = self.a.skip_type(t);
                    self.print_function_type(Some(c0), f, depth);
                } else {
                    self.p(c0, depth);
                }
            }
            Class | Structure | Enum | Protocol | TypeAlias | OtherNominalType => {
                return self.print_entity(n, as_prefix, TypePr::No, true, "", -1, "", depth)
            }
            LocalDeclName => {
                self.pc(n, 1, depth);
                self.s(" #");
                let i = self.a.child(n, 0).map(|c| self.a.index(c)).unwrap_or(0);
                self.num(i + 1);
            }
            PrivateDeclName => {
                if self.nch(n) > 1 {
                    if self.o.private_discriminators {
                        self.s("(");
                    }
                    self.pc(n, 1, depth);
                    if self.o.private_discriminators {
                        self.s(" in ");
                        let t = self.a.child(n, 0).map(|c| self.text(c)).unwrap_or("");
                        self.s(t);
                        self.s(")");
                    }
                } else if self.o.private_discriminators {
                    self.s("(in ");
                    let t = self.a.child(n, 0).map(|c| self.text(c)).unwrap_or("");
                    self.s(t);
                    self.s(")");
                }
            }
            RelatedEntityDeclName => {
                self.s("related decl '");
                let t = self.text(n);
                self.s(t);
                self.s("' for ");
                self.pc(n, 0, depth);
            }
            Module => {
                if self.o.module_names {
                    let t = self.text(n);
                    self.s(t);
                }
            }
            Identifier => {
                let t = self.text(n);
                self.print_identifier(t);
            }
            Index | Number | SpecializationPassID => self.num(self.a.index(n)),
            UnknownIndex => self.s("unknown index"),
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
            ArgumentTuple => {
                self.print_function_parameters(None, n, self.o.function_argument_types, depth)
            }
            Tuple => {
                self.s("(");
                self.children(n, ", ", depth);
                self.s(")");
            }
            TupleElement => {
                if let Some(l) = self.child_of_kind(n, TupleElementName) {
                    self.p(l, depth);
                }
                let t = self.child_of_kind(n, Type)?;
                self.p(t, depth);
                if self.child_of_kind(n, VariadicMarker).is_some() {
                    self.s("...");
                }
            }
            TupleElementName => {
                let t = self.text(n);
                self.s(t);
                self.s(": ");
            }
            ReturnType => {
                self.s(" -> ");
                self.children(n, "", depth);
            }
            RetroactiveConformance => {
                if self.nch(n) == 2 {
                    self.s("retroactive @ ");
                    self.pc(n, 0, depth);
                    self.pc(n, 1, depth);
                }
            }
            Weak => self.print_outlined(n, "weak ", depth),
            Unowned => self.print_outlined(n, "unowned ", depth),
            Unmanaged => self.print_outlined(n, "unowned(unsafe) ", depth),
            InOut => self.print_outlined(n, "inout ", depth),
            Isolated => self.print_outlined(n, "isolated ", depth),
            Sending => self.print_outlined(n, "sending ", depth),
            CompileTimeConst => self.print_outlined(n, "_const ", depth),
            Shared => self.print_outlined(n, "__shared ", depth),
            Owned => self.print_outlined(n, "__owned ", depth),
            NoDerivative => self.print_outlined(n, "@noDerivative ", depth),
            NonObjCAttribute => self.s("@nonobjc "),
            ObjCAttribute => self.s("@objc "),
            DirectMethodReferenceAttribute => self.s("super "),
            DynamicAttribute => self.s("dynamic "),
            VTableAttribute => self.s("override "),
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
            BuiltinTypeName => {
                let t = self.text(n);
                self.s(t);
            }
            BuiltinFixedArray => {
                self.s("Builtin.FixedArray<");
                self.pc(n, 0, depth);
                self.s(", ");
                self.pc(n, 1, depth);
                self.s(">");
            }
            Integer => self.num(self.a.index(n)),
            NegativeInteger => {
                self.s("-");
                self.num(self.a.index(n));
            }
            InfixOperator | PrefixOperator | PostfixOperator => {
                let t = self.text(n);
                self.s(t);
                self.s(match k {
                    InfixOperator => " infix",
                    PrefixOperator => " prefix",
                    _ => " postfix",
                });
            }
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
            MergedFunction => {
                if !self.o.short_thunk {
                    self.s("merged ");
                }
            }
            TypeSymbolicReference | ProtocolSymbolicReference => {
                self.s("symbolic reference");
            }
            DynamicallyReplaceableFunctionKey => {
                if !self.o.short_thunk {
                    self.s("dynamically replaceable key for ");
                }
            }
            DynamicallyReplaceableFunctionImpl => {
                if !self.o.short_thunk {
                    self.s("dynamically replaceable thunk for ");
                }
            }
            DynamicallyReplaceableFunctionVar => {
                if !self.o.short_thunk {
                    self.s("dynamically replaceable variable for ");
                }
            }
            DistributedThunk => {
                if !self.o.short_thunk {
                    self.s("distributed thunk ");
                }
            }
            DistributedAccessor => {
                if !self.o.short_thunk {
                    self.s("distributed accessor for ");
                }
            }
            AccessibleFunctionRecord => {
                if !self.o.short_thunk {
                    self.s("accessible function runtime record for ");
                }
            }
            BackDeploymentThunk => {
                if !self.o.short_thunk {
                    self.s("back deployment thunk for ");
                }
            }
            BackDeploymentFallback => {
                if !self.o.short_thunk {
                    self.s("back deployment fallback for ");
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
            CoroutineContinuationPrototype => {
                self.print_outlined(n, "coroutine continuation prototype for ", depth)
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
            BoundGenericProtocol => {
                let args = self.ch(n, 1)?;
                self.pc(args, 0, depth);
                self.s(" as ");
                self.pc(n, 0, depth);
            }
            BoundGenericClass
            | BoundGenericStructure
            | BoundGenericEnum
            | BoundGenericOtherNominalType
            | BoundGenericTypeAlias => self.print_bound_generic(n, depth),
            DynamicSelf => self.s("Self"),
            SILBoxType => self.print_outlined(n, "@box ", depth),
            Metatype => {
                let mut idx = 0;
                if self.nch(n) == 2 {
                    self.pc(n, 0, depth);
                    self.s(" ");
                    idx = 1;
                }
                let t = self.ch(n, idx)?;
                let inner = self.a.skip_type(t);
                let parens = !self.is_simple_type(inner);
                if parens {
                    self.s("(");
                }
                self.p(inner, depth);
                if parens {
                    self.s(")");
                }
                let ex = matches!(
                    self.k(inner),
                    ExistentialMetatype
                        | ProtocolList
                        | ProtocolListWithClass
                        | ProtocolListWithAnyObject
                );
                self.s(if ex { ".Protocol" } else { ".Type" });
            }
            ExistentialMetatype => {
                let mut idx = 0;
                if self.nch(n) == 2 {
                    self.pc(n, 0, depth);
                    self.s(" ");
                    idx = 1;
                }
                self.pc(n, idx, depth);
                self.s(".Type");
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
            AssociatedTypeRef => {
                self.pc(n, 0, depth);
                self.s(".");
                let t = self.a.child(n, 1).map(|c| self.text(c)).unwrap_or("");
                self.s(t);
            }
            ProtocolList => {
                let tl = self.ch(n, 0)?;
                if self.nch(tl) == 0 {
                    self.s("Any");
                } else {
                    self.children(tl, " & ", depth);
                }
            }
            ProtocolListWithClass => {
                if self.nch(n) < 2 {
                    return None;
                }
                self.pc(n, 1, depth);
                self.s(" & ");
                let pl = self.ch(n, 0)?;
                let tl = self.ch(pl, 0)?;
                self.children(tl, " & ", depth);
            }
            ProtocolListWithAnyObject => {
                let pl = self.ch(n, 0)?;
                let tl = self.ch(pl, 0)?;
                if self.nch(tl) > 0 {
                    self.children(tl, " & ", depth);
                    self.s(" & ");
                }
                if self.o.qualify && self.o.module_names {
                    self.s("Swift.");
                }
                self.s("AnyObject");
            }
            ConstrainedExistential => {
                self.s("any ");
                self.pc(n, 0, depth);
                self.s("<");
                if let Some(r) = self.a.child(n, 1) {
                    self.children(r, ", ", depth);
                }
                self.s(">");
            }
            ConstrainedExistentialRequirementList => self.children(n, ", ", depth),
            ConstrainedExistentialSelf => self.s("Self"),
            AssociatedType => {}
            OwningAddressor => return self.storage_child(n, as_prefix, "owningAddressor", depth),
            OwningMutableAddressor => {
                return self.storage_child(n, as_prefix, "owningMutableAddressor", depth)
            }
            NativeOwningAddressor => {
                return self.storage_child(n, as_prefix, "nativeOwningAddressor", depth)
            }
            NativeOwningMutableAddressor => {
                return self.storage_child(n, as_prefix, "nativeOwningMutableAddressor", depth)
            }
            NativePinningAddressor => {
                return self.storage_child(n, as_prefix, "nativePinningAddressor", depth)
            }
            NativePinningMutableAddressor => {
                return self.storage_child(n, as_prefix, "nativePinningMutableAddressor", depth)
            }
            UnsafeAddressor => return self.storage_child(n, as_prefix, "unsafeAddressor", depth),
            UnsafeMutableAddressor => {
                return self.storage_child(n, as_prefix, "unsafeMutableAddressor", depth)
            }
            GlobalGetter | Getter => return self.storage_child(n, as_prefix, "getter", depth),
            Setter => return self.storage_child(n, as_prefix, "setter", depth),
            MaterializeForSet => {
                return self.storage_child(n, as_prefix, "materializeForSet", depth)
            }
            WillSet => return self.storage_child(n, as_prefix, "willset", depth),
            DidSet => return self.storage_child(n, as_prefix, "didset", depth),
            ReadAccessor => return self.storage_child(n, as_prefix, "read", depth),
            Read2Accessor => return self.storage_child(n, as_prefix, "read2", depth),
            ModifyAccessor => return self.storage_child(n, as_prefix, "modify", depth),
            Modify2Accessor => return self.storage_child(n, as_prefix, "modify2", depth),
            InitAccessor => return self.storage_child(n, as_prefix, "init", depth),
            Allocator => {
                let is_class = self
                    .a
                    .child(n, 0)
                    .map(|c| self.k(c) == Class)
                    .unwrap_or(false);
                let name = if is_class {
                    "__allocating_init"
                } else {
                    "init"
                };
                return self.print_entity(
                    n,
                    as_prefix,
                    TypePr::FunctionStyle,
                    false,
                    name,
                    -1,
                    "",
                    depth,
                );
            }
            Constructor => {
                let has_name = self.nch(n) > 2;
                return self.print_entity(
                    n,
                    as_prefix,
                    TypePr::FunctionStyle,
                    has_name,
                    "init",
                    -1,
                    "",
                    depth,
                );
            }
            Destructor => {
                return self.print_entity(n, as_prefix, TypePr::No, false, "deinit", -1, "", depth)
            }
            Deallocator | IsolatedDeallocator => {
                let is_class = self
                    .a
                    .child(n, 0)
                    .map(|c| self.k(c) == Class)
                    .unwrap_or(false);
                let name = match (k, is_class) {
                    (IsolatedDeallocator, true) => "__isolated_deallocating_deinit",
                    (_, true) => "__deallocating_deinit",
                    _ => "deinit",
                };
                return self.print_entity(n, as_prefix, TypePr::No, false, name, -1, "", depth);
            }
            IVarInitializer => {
                return self.print_entity(
                    n,
                    as_prefix,
                    TypePr::No,
                    false,
                    "__ivar_initializer",
                    -1,
                    "",
                    depth,
                )
            }
            IVarDestroyer => {
                return self.print_entity(
                    n,
                    as_prefix,
                    TypePr::No,
                    false,
                    "__ivar_destroyer",
                    -1,
                    "",
                    depth,
                )
            }
            ProtocolConformance => {
                let c0 = self.ch(n, 0)?;
                let c1 = self.ch(n, 1)?;
                let c2 = self.ch(n, 2)?;
                if self.nch(n) == 4 {
                    self.s("property behavior storage of ");
                    self.p(c2, depth);
                    self.s(" in ");
                    self.p(c0, depth);
                    self.s(" : ");
                    self.p(c1, depth);
                } else {
                    self.p(c0, depth);
                    if self.o.protocol_conformances {
                        self.s(" : ");
                        self.p(c1, depth);
                        self.s(" in ");
                        self.p(c2, depth);
                    }
                }
            }
            TypeList => self.children(n, "", depth),
            LabelList => {}
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
            ErrorType => self.s("<ERROR TYPE>"),
            DependentPseudogenericSignature | DependentGenericSignature => {
                self.print_generic_signature(n, depth)
            }
            DependentGenericParamCount => {
                self.invalid = true;
            }
            DependentGenericConformanceRequirement => {
                self.pc(n, 0, depth);
                self.s(": ");
                self.pc(n, 1, depth);
            }
            DependentGenericInverseConformanceRequirement => {
                self.pc(n, 0, depth);
                self.s(": ~");
                let i = self.a.child(n, 1).map(|c| self.a.index(c)).unwrap_or(0);
                match i {
                    0 => self.s("Swift.Copyable"),
                    1 => self.s("Swift.Escapable"),
                    _ => {
                        self.s("Swift.<bit ");
                        self.num(i);
                        self.s(">");
                    }
                }
            }
            DependentGenericLayoutRequirement => {
                self.pc(n, 0, depth);
                self.s(": ");
                let layout = self.ch(n, 1)?;
                let name = match self.text(layout) {
                    "U" => "_UnknownLayout",
                    "R" => "_RefCountedObject",
                    "N" => "_NativeRefCountedObject",
                    "C" => "AnyObject",
                    "D" => "_NativeClass",
                    "T" => "_Trivial",
                    "E" | "e" => "_Trivial",
                    "M" | "m" => "_TrivialAtMost",
                    "S" => "_TrivialStride",
                    "B" => "_BridgeObject",
                    _ => "",
                };
                self.s(name);
                if self.nch(n) > 2 {
                    self.s("(");
                    self.pc(n, 2, depth);
                    if self.nch(n) > 3 {
                        self.s(", ");
                        self.pc(n, 3, depth);
                    }
                    self.s(")");
                }
            }
            DependentGenericSameTypeRequirement => {
                self.pc(n, 0, depth);
                self.s(" == ");
                self.pc(n, 1, depth);
            }
            DependentGenericSameShapeRequirement => {
                self.pc(n, 0, depth);
                self.s(".shape == ");
                self.pc(n, 1, depth);
                self.s(".shape");
            }
            DependentGenericParamPackMarker | DependentGenericParamValueMarker => {}
            DependentGenericParamType => {
                let d = self.a.child(n, 0).map(|c| self.a.index(c)).unwrap_or(0);
                let i = self.a.child(n, 1).map(|c| self.a.index(c)).unwrap_or(0);
                self.generic_param_name(d, i);
            }
            DependentGenericType => {
                let sig = self.ch(n, 0)?;
                let t = self.ch(n, 1)?;
                self.p(sig, depth);
                if self.need_space_before_type(t) {
                    self.s(" ");
                }
                self.p(t, depth);
            }
            DependentMemberType => {
                self.pc(n, 0, depth);
                self.s(".");
                self.pc(n, 1, depth);
            }
            DependentAssociatedTypeRef => {
                if let Some(p) = self.a.child(n, 1) {
                    self.p(p, depth);
                    self.s(".");
                }
                self.pc(n, 0, depth);
            }
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
            EmptyList => self.s(" empty-list "),
            FirstElementMarker => self.s(" first-element-marker "),
            VariadicMarker => self.s(" variadic-marker "),
            SILBoxTypeWithLayout => {
                let layout = self.ch(n, 0)?;
                let mut args = None;
                if self.nch(n) == 3 {
                    self.pc(n, 1, depth);
                    self.s(" ");
                    args = self.a.child(n, 2);
                }
                self.p(layout, depth);
                if let Some(a) = args {
                    self.s(" <");
                    self.children(a, ", ", depth);
                    self.s(">");
                }
            }
            SILBoxLayout => {
                self.s("{");
                let ch: &'a [NodeId] = self.a.children(n);
                for (i, &c) in ch.iter().enumerate() {
                    if i > 0 {
                        self.s(",");
                    }
                    self.s(" ");
                    self.p(c, depth);
                }
                self.s(" }");
            }
            SILBoxImmutableField | SILBoxMutableField => {
                self.s(if k == SILBoxImmutableField {
                    "let "
                } else {
                    "var "
                });
                self.pc(n, 0, depth);
            }
            AssocTypePath => self.children(n, ".", depth),
            ModuleDescriptor => self.print_outlined(n, "module descriptor ", depth),
            AnonymousDescriptor => {
                self.s("anonymous descriptor ");
                self.pc(n, 0, depth);
            }
            ExtensionDescriptor => self.print_outlined(n, "extension descriptor ", depth),
            AssociatedTypeGenericParamRef => {
                self.s("generic parameter reference for associated type ");
                self.children(n, "", depth);
            }
            AnyProtocolConformanceList => {
                if self.nch(n) > 0 {
                    self.s("(");
                    self.children(n, ", ", depth);
                    self.s(")");
                }
            }
            ConcreteProtocolConformance => {
                self.s("concrete protocol conformance ");
                if let Some(i) = self.child_of_kind(n, Index) {
                    self.s("#");
                    self.num(self.a.index(i));
                    self.s(" ");
                }
                self.pc(n, 0, depth);
                self.s(" to ");
                self.pc(n, 1, depth);
                if let Some(l) = self.a.child(n, 2) {
                    if self.nch(l) > 0 {
                        self.s(" with conditional requirements: ");
                        self.p(l, depth);
                    }
                }
            }
            PackProtocolConformance => {
                self.s("pack protocol conformance ");
                self.children(n, "", depth);
            }
            DependentAssociatedConformance => {
                self.s("dependent associated conformance ");
                self.pc(n, 0, depth);
                self.s(" to ");
                self.pc(n, 1, depth);
            }
            DependentProtocolConformanceAssociated => {
                self.s("dependent associated protocol conformance ");
                self.print_opt_index(n, 2, depth);
                self.pc(n, 0, depth);
                self.s(" to ");
                self.pc(n, 1, depth);
            }
            DependentProtocolConformanceInherited => {
                self.s("dependent inherited protocol conformance ");
                self.print_opt_index(n, 2, depth);
                self.pc(n, 0, depth);
                self.s(" to ");
                self.pc(n, 1, depth);
            }
            DependentProtocolConformanceOpaque => {
                self.s("opaque result conformance ");
                self.pc(n, 0, depth);
                self.s(" of ");
                self.pc(n, 1, depth);
            }
            DependentProtocolConformanceRoot => {
                self.s("dependent root protocol conformance ");
                self.print_opt_index(n, 2, depth);
                self.pc(n, 0, depth);
                self.s(" to ");
                self.pc(n, 1, depth);
            }
            ProtocolConformanceRefInTypeModule => {
                self.s("protocol conformance ref (type's module) ");
                self.pc(n, 0, depth);
            }
            ProtocolConformanceRefInProtocolModule => {
                self.s("protocol conformance ref (protocol's module) ");
                self.pc(n, 0, depth);
            }
            ProtocolConformanceRefInOtherModule => {
                self.s("protocol conformance ref (retroactive) ");
                self.children(n, "", depth);
            }
            SugaredOptional => {
                let t = self.ch(n, 0)?;
                let inner = self.a.skip_type(t);
                let parens = !self.is_simple_type(inner);
                if parens {
                    self.s("(");
                }
                self.p(t, depth);
                if parens {
                    self.s(")");
                }
                self.s("?");
            }
            SugaredArray => {
                self.s("[");
                self.pc(n, 0, depth);
                self.s("]");
            }
            SugaredInlineArray => {
                self.s("[");
                self.pc(n, 0, depth);
                self.s(" of ");
                self.pc(n, 1, depth);
                self.s("]");
            }
            SugaredDictionary => {
                self.s("[");
                self.pc(n, 0, depth);
                self.s(" : ");
                self.pc(n, 1, depth);
                self.s("]");
            }
            SugaredParen => {
                self.s("(");
                self.pc(n, 0, depth);
                self.s(")");
            }
            OpaqueReturnType => self.s("some"),
            OpaqueReturnTypeIndexed => {
                self.s("some");
            }
            OpaqueReturnTypeOf => {
                self.s("<<opaque return type of ");
                self.children(n, "", depth);
                self.s(">>");
            }
            OpaqueType => {
                self.pc(n, 0, depth);
                self.s(".");
                self.pc(n, 1, depth);
            }
            OpaqueReturnTypeParent => {}
            Pack => {
                self.s("Pack{");
                self.children(n, ", ", depth);
                self.s("}");
            }
            SILPackDirect | SILPackIndirect => {
                self.s(if k == SILPackDirect {
                    "@direct Pack{"
                } else {
                    "@indirect Pack{"
                });
                self.children(n, ", ", depth);
                self.s("}");
            }
            PackExpansion => {
                self.s("repeat ");
                self.pc(n, 0, depth);
            }
            PackElement => {
                self.s("/* level: ");
                let l = self.a.child(n, 1).map(|c| self.a.index(c)).unwrap_or(0);
                self.num(l);
                self.s(" */ each ");
                self.pc(n, 0, depth);
            }
            PackElementLevel => self.num(self.a.index(n)),
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
            _ => {
                self.invalid = true;
            }
        }
        None
    }

    fn print_opt_index(&mut self, n: NodeId, i: usize, depth: u32) {
        if let Some(c) = self.a.child(n, i) {
            if self.k(c) == Kind::Index {
                self.s("#");
                self.p(c, depth);
                self.s(" ");
            } else if self.k(c) == Kind::UnknownIndex {
                self.s("unknown index ");
            }
        }
    }

    fn print_macro(
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

    fn storage_child(&mut self, n: NodeId, as_prefix: bool, extra: &str, depth: u32) -> R {
        let c = self.ch(n, 0)?;
        self.abstract_storage(c, as_prefix, extra, depth)
    }

    fn print_index_subset(&mut self, n: NodeId) {
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

    fn print_spec_param_kind(&mut self, raw: u64) {
        use spec_kind as sk;
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

    fn print_quoted(&mut self, t: &str) {
        self.s("\"");
        for ch in t.chars() {
            match ch {
                '\\' => self.s("\\\\"),
                '\t' => self.s("\\t"),
                '\n' => self.s("\\n"),
                '\r' => self.s("\\r"),
                '"' => self.s("\\\""),
                '\0' => self.s("\\0"),
                c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                    let s = format!("\\x{:02X}", c as u32);
                    self.s(&s);
                }
                c => self.c(c),
            }
        }
        self.s("\"");
    }

    /// Identifiers print as they are (raw identifiers carry their own
    /// backquotes in the mangled text).
    fn print_identifier(&mut self, t: &str) {
        self.s(t);
    }
}
