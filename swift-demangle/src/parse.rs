//! Parser for the Swift 4+ mangling (`$s`, `$S`, `_T0`, `$e`, …).
//!
//! The mangling is postfix: operands come first and an operator character
//! combines what is on a node stack. The parser therefore runs a loop over
//! the input pushing and popping nodes; the only recursion is bounded by
//! the tree depth limit. Every operator that can fail returns `None`, and
//! the whole symbol then stays undemangled.

use crate::node::{Arena, Kind, NodeId};
use crate::punycode;

const MAX_WORDS: usize = 26;
const MAX_REPEAT: u64 = 2048;
const MAX_STACK: usize = 4096;
/// Longest identifier built from word substitutions.
const MAX_IDENT: usize = 4096;

pub(crate) struct Parser<'a> {
    pub a: &'a mut Arena,
    input: &'a [u8],
    pos: usize,
    stack: Vec<NodeId>,
    subs: Vec<NodeId>,
    words: Vec<(usize, usize)>,
    old_function_types: bool,
    pub nesting: u32,
    input_base: Option<usize>,
}

fn is_digit(c: u8) -> bool {
    c.is_ascii_digit()
}

fn is_decl_name(k: Kind) -> bool {
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

fn is_entity(k: Kind) -> bool {
    k == Kind::Type || is_context(k)
}

fn is_requirement(k: Kind) -> bool {
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

impl<'a> Parser<'a> {
    pub fn new(a: &'a mut Arena, input_str: &'a str, old_function_types: bool) -> Self {
        let input = input_str.as_bytes();
        // A copy of the input in the arena's text lets plain identifiers
        // point into it instead of being copied one by one.
        let input_base = if a.text.len() + input_str.len() <= crate::node::MAX_TEXT {
            let b = a.text.len();
            a.text.push_str(input_str);
            Some(b)
        } else {
            None
        };
        let mut stack = std::mem::take(&mut a.scratch_stack);
        stack.clear();
        let mut subs = std::mem::take(&mut a.scratch_subs);
        subs.clear();
        Parser {
            a,
            input,
            pos: 0,
            stack,
            subs,
            words: Vec::new(),
            old_function_types,
            nesting: 0,
            input_base,
        }
    }

    // ----- input -----

    fn peek(&self) -> u8 {
        self.input.get(self.pos).copied().unwrap_or(0)
    }

    fn next(&mut self) -> u8 {
        match self.input.get(self.pos) {
            Some(&c) => {
                self.pos += 1;
                c
            }
            None => 0,
        }
    }

    fn next_if(&mut self, c: u8) -> bool {
        if self.peek() == c && self.pos < self.input.len() {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn next_if_str(&mut self, s: &[u8]) -> bool {
        if self.input[self.pos..].starts_with(s) {
            self.pos += s.len();
            true
        } else {
            false
        }
    }

    fn back(&mut self) {
        if self.pos > 0 {
            self.pos -= 1;
        }
    }

    fn natural(&mut self) -> Option<u64> {
        if !is_digit(self.peek()) {
            return None;
        }
        let mut n: u64 = 0;
        while is_digit(self.peek()) {
            n = n
                .checked_mul(10)?
                .checked_add(u64::from(self.next() - b'0'))?;
            if n > u64::from(u32::MAX) {
                return None;
            }
        }
        Some(n)
    }

    /// `_` → 0, `<n>_` → n + 1.
    fn index(&mut self) -> Option<u64> {
        if self.next_if(b'_') {
            return Some(0);
        }
        let n = self.natural()?;
        if self.next_if(b'_') {
            Some(n + 1)
        } else {
            None
        }
    }

    fn index_node(&mut self) -> Option<NodeId> {
        let i = self.index()?;
        self.a.index_node(Kind::Number, i)
    }

    // ----- stack -----

    fn push(&mut self, n: NodeId) -> Option<()> {
        if self.stack.len() >= MAX_STACK {
            return None;
        }
        self.stack.push(n);
        Some(())
    }

    fn pop(&mut self) -> Option<NodeId> {
        self.stack.pop()
    }

    fn pop_kind(&mut self, k: Kind) -> Option<NodeId> {
        let &top = self.stack.last()?;
        if self.a.kind(top) == k {
            self.stack.pop()
        } else {
            None
        }
    }

    fn pop_if(&mut self, f: impl Fn(Kind) -> bool) -> Option<NodeId> {
        let &top = self.stack.last()?;
        if f(self.a.kind(top)) {
            self.stack.pop()
        } else {
            None
        }
    }

    fn top_kind(&self) -> Option<Kind> {
        self.stack.last().map(|&n| self.a.kind(n))
    }

    fn add_sub(&mut self, n: NodeId) {
        if self.subs.len() < 4096 {
            self.subs.push(n);
        }
    }

    fn with(&mut self, k: Kind, ch: &[NodeId]) -> Option<NodeId> {
        self.a.with(k, ch)
    }

    fn ty(&mut self, c: NodeId) -> Option<NodeId> {
        self.a.ty(c)
    }

    fn swift_type(&mut self, k: Kind, name: &str) -> Option<NodeId> {
        let m = self.a.text_node(Kind::Module, "Swift")?;
        let i = self.a.text_node(Kind::Identifier, name)?;
        let n = self.with(k, &[m, i])?;
        self.ty(n)
    }

    // ----- entry points -----

    /// Parses a whole symbol (after its prefix) into a `Global` node.
    pub fn parse_symbol(&mut self) -> Option<NodeId> {
        let r = self.parse_symbol_inner();
        self.a.scratch_stack = std::mem::take(&mut self.stack);
        self.a.scratch_subs = std::mem::take(&mut self.subs);
        r
    }

    fn parse_symbol_inner(&mut self) -> Option<NodeId> {
        self.parse_all()?;
        let top = self.a.node(Kind::Global)?;
        let suffix = self.pop_kind(Kind::Suffix);
        let mut parent = top;
        while let Some(attr) = self.pop_if(is_function_attr) {
            self.a.add(parent, attr);
            let k = self.a.kind(attr);
            if k == Kind::PartialApplyForwarder || k == Kind::PartialApplyObjCForwarder {
                parent = attr;
            }
        }
        let rest = std::mem::take(&mut self.stack);
        for &n in &rest {
            if self.a.kind(n) == Kind::Type {
                let c = self.a.child(n, 0)?;
                self.a.add(parent, c);
            } else {
                self.a.add(parent, n);
            }
        }
        self.stack = rest;
        self.stack.clear();
        if self.a.num_children(top) == 0 {
            return None;
        }
        if let Some(s) = suffix {
            self.a.add(top, s);
        }
        Some(top)
    }

    fn parse_all(&mut self) -> Option<()> {
        while self.pos < self.input.len() {
            let n = self.operator()?;
            self.push(n)?;
        }
        Some(())
    }

    fn operator(&mut self) -> Option<NodeId> {
        self.operator_inner()
    }

    fn operator_inner(&mut self) -> Option<NodeId> {
        let c = self.next();
        match c {
            b'A' => self.multi_substitutions(),
            b'B' => self.builtin_type(),
            b'C' => self.any_generic_type(Kind::Class),
            b'D' => self.type_mangling(),
            b'E' => self.extension_context(),
            b'F' => self.plain_function(),
            b'G' => self.bound_generic_type(),
            b'H' => self.h_operator(),
            b'I' => self.impl_function_type(),
            b'K' => self.a.node(Kind::ThrowsAnnotation),
            b'L' => self.local_identifier(),
            b'M' => self.metatype(),
            b'N' => {
                let t = self.pop_kind(Kind::Type)?;
                self.with(Kind::TypeMetadata, &[t])
            }
            b'O' => self.any_generic_type(Kind::Enum),
            b'P' => self.any_generic_type(Kind::Protocol),
            b'Q' => self.archetype(),
            b'R' => self.generic_requirement(),
            b'S' => self.standard_substitution(),
            b'T' => self.thunk_or_specialization(),
            b'V' => self.any_generic_type(Kind::Structure),
            b'W' => self.witness(),
            b'X' => self.special_type(),
            b'Y' => self.type_annotation(),
            b'Z' => {
                let e = self.pop_if(is_entity)?;
                self.with(Kind::Static, &[e])
            }
            b'a' => self.any_generic_type(Kind::TypeAlias),
            b'c' => self.pop_function_type(Kind::FunctionType, false),
            b'd' => self.a.node(Kind::VariadicMarker),
            b'f' => self.function_entity(),
            b'g' => self.retroactive_conformance(),
            b'h' => {
                let t = self.pop_type_child()?;
                let n = self.with(Kind::Shared, &[t])?;
                self.ty(n)
            }
            b'i' => self.subscript(),
            b'l' => self.generic_signature(false),
            b'm' => {
                let t = self.pop_kind(Kind::Type)?;
                let n = self.with(Kind::Metatype, &[t])?;
                self.ty(n)
            }
            b'n' => {
                let t = self.pop_type_child()?;
                let n = self.with(Kind::Owned, &[t])?;
                self.ty(n)
            }
            b'o' => self.operator_identifier(),
            b'p' => {
                let l = self.protocol_list()?;
                self.ty(l)
            }
            b'q' => {
                let p = self.generic_param_index()?;
                self.ty(p)
            }
            b'r' => self.generic_signature(true),
            b's' => self.a.text_node(Kind::Module, "Swift"),
            b't' => self.pop_tuple(),
            b'u' => self.generic_type(),
            b'v' => self.variable(),
            b'w' => self.value_witness(),
            b'x' => {
                let p = self.generic_param(0, 0)?;
                self.ty(p)
            }
            b'y' => self.a.node(Kind::EmptyList),
            b'z' => {
                let t = self.pop_type_child()?;
                let n = self.with(Kind::InOut, &[t])?;
                self.ty(n)
            }
            b'_' => self.a.node(Kind::FirstElementMarker),
            b'.' => {
                self.back();
                let s = std::str::from_utf8(&self.input[self.pos..]).ok()?;
                self.pos = self.input.len();
                self.a.text_node(Kind::Suffix, s)
            }
            b'$' => self.integer_or_value(),
            _ => {
                self.back();
                self.identifier()
            }
        }
    }

    fn h_operator(&mut self) -> Option<NodeId> {
        match self.next() {
            b'A' => self.dependent_conformance_associated(),
            b'C' => self.concrete_conformance(),
            b'D' => self.dependent_conformance_root(),
            b'O' => {
                let t = self.pop_kind(Kind::Type)?;
                let c = self.pop_dependent_conformance()?;
                self.with(Kind::DependentProtocolConformanceOpaque, &[c, t])
            }
            b'I' => self.dependent_conformance_inherited(),
            b'P' => {
                let p = self.pop_protocol()?;
                self.with(Kind::ProtocolConformanceRefInTypeModule, &[p])
            }
            b'p' => {
                let p = self.pop_protocol()?;
                self.with(Kind::ProtocolConformanceRefInProtocolModule, &[p])
            }
            b'X' => self.pack_conformance(),
            b'c' => {
                let c = self.pop_protocol_conformance()?;
                self.with(Kind::ProtocolConformanceDescriptorRecord, &[c])
            }
            b'n' => {
                let t = self.pop_kind(Kind::Type)?;
                self.with(Kind::NominalTypeDescriptorRecord, &[t])
            }
            b'o' => {
                let n = self.pop()?;
                self.with(Kind::OpaqueTypeDescriptorRecord, &[n])
            }
            b'r' => {
                let p = self.pop_protocol()?;
                self.with(Kind::ProtocolDescriptorRecord, &[p])
            }
            b'F' => self.a.node(Kind::AccessibleFunctionRecord),
            _ => {
                self.back();
                self.back();
                self.identifier()
            }
        }
    }

    fn integer_or_value(&mut self) -> Option<NodeId> {
        if self.next_if(b'n') {
            let v = self.index()?;
            let n = self.a.index_node(Kind::NegativeInteger, v)?;
            return self.ty(n);
        }
        let v = self.index()?;
        let n = self.a.index_node(Kind::Integer, v)?;
        self.ty(n)
    }

    // ----- identifiers -----

    fn identifier(&mut self) -> Option<NodeId> {
        let mut word_substs = false;
        let mut puny = false;
        if !is_digit(self.peek()) {
            return None;
        }
        if self.peek() == b'0' {
            self.next();
            if self.peek() == b'0' {
                self.next();
                puny = true;
            } else {
                word_substs = true;
            }
        }
        if !word_substs && !puny {
            // Plain `<len><chars>`: no intermediate string.
            let n = self.natural()? as usize;
            let end = self.pos.checked_add(n)?;
            if n == 0 || end > self.input.len() {
                return None;
            }
            let id = match self.input_base {
                Some(b)
                    if self.a.text.is_char_boundary(b + self.pos)
                        && self.a.text.is_char_boundary(b + end) =>
                {
                    let (s, e) = ((b + self.pos) as u32, (b + end) as u32);
                    self.a
                        .push(Kind::Identifier, crate::node::Payload::Text(s, e))?
                }
                _ => {
                    let s = std::str::from_utf8(&self.input[self.pos..end]).ok()?;
                    self.a.text_node(Kind::Identifier, s)?
                }
            };
            self.record_words(self.pos, end);
            self.pos = end;
            self.add_sub(id);
            return Some(id);
        }
        let mut ident = String::new();
        loop {
            while word_substs && self.peek().is_ascii_alphabetic() {
                let c = self.next();
                let idx = if c.is_ascii_lowercase() {
                    (c - b'a') as usize
                } else {
                    word_substs = false;
                    (c - b'A') as usize
                };
                let &(s, e) = self.words.get(idx)?;
                ident.push_str(std::str::from_utf8(&self.input[s..e]).ok()?);
                // Word substitutions can repeat long words: cap the name.
                if ident.len() > MAX_IDENT {
                    return None;
                }
            }
            if self.next_if(b'0') {
                break;
            }
            let n = self.natural()? as usize;
            if n == 0 {
                return None;
            }
            if puny {
                self.next_if(b'_');
            }
            let end = self.pos.checked_add(n)?;
            if end > self.input.len() {
                return None;
            }
            let slice = &self.input[self.pos..end];
            if puny {
                let s = std::str::from_utf8(slice).ok()?;
                ident.push_str(&punycode::decode(s)?);
            } else {
                ident.push_str(std::str::from_utf8(slice).ok()?);
                self.record_words(self.pos, end);
            }
            self.pos = end;
            if !word_substs {
                break;
            }
        }
        if ident.is_empty() {
            return None;
        }
        let id = self.a.text_node(Kind::Identifier, &ident)?;
        self.add_sub(id);
        Some(id)
    }

    fn record_words(&mut self, start: usize, end: usize) {
        let is_start = |c: u8| c != b'_' && !c.is_ascii_digit() && c != 0;
        let is_end = |c: u8, prev: u8| {
            c == b'_' || c == 0 || (!prev.is_ascii_uppercase() && c.is_ascii_uppercase())
        };
        let mut word_start: Option<usize> = None;
        let mut i = start;
        while i <= end {
            let c = if i < end { self.input[i] } else { 0 };
            if let Some(ws) = word_start {
                if is_end(c, self.input[i - 1]) {
                    if i - ws >= 2 && self.words.len() < MAX_WORDS {
                        self.words.push((ws, i));
                    }
                    word_start = None;
                }
            }
            if word_start.is_none() && is_start(c) {
                word_start = Some(i);
            }
            i += 1;
        }
    }

    fn operator_identifier(&mut self) -> Option<NodeId> {
        let ident = self.pop_kind(Kind::Identifier)?;
        const TABLE: &[u8; 26] = b"& @/= >    <*!|+?%-~   ^ .";
        let mut op = String::new();
        for ch in self.a.text(ident).chars() {
            if !ch.is_ascii() {
                op.push(ch);
                continue;
            }
            let c = ch as u8;
            if !c.is_ascii_lowercase() {
                return None;
            }
            let o = TABLE[(c - b'a') as usize];
            if o == b' ' {
                return None;
            }
            op.push(o as char);
        }
        let k = match self.next() {
            b'i' => Kind::InfixOperator,
            b'p' => Kind::PrefixOperator,
            b'P' => Kind::PostfixOperator,
            _ => return None,
        };
        self.a.text_node(k, &op)
    }

    fn local_identifier(&mut self) -> Option<NodeId> {
        if self.next_if(b'L') {
            let d = self.pop_kind(Kind::Identifier)?;
            let name = self.pop_if(is_decl_name)?;
            return self.with(Kind::PrivateDeclName, &[d, name]);
        }
        if self.next_if(b'l') {
            let d = self.pop_kind(Kind::Identifier)?;
            return self.with(Kind::PrivateDeclName, &[d]);
        }
        let c = self.peek();
        if (b'a'..=b'j').contains(&c) || (b'A'..=b'J').contains(&c) {
            self.next();
            let name = self.pop()?;
            let s = (c as char).to_string();
            let r = self.a.text_node(Kind::RelatedEntityDeclName, &s)?;
            self.a.add(r, name);
            return Some(r);
        }
        let d = self.index_node()?;
        let name = self.pop_if(is_decl_name)?;
        self.with(Kind::LocalDeclName, &[d, name])
    }

    // ----- contexts and nominal types -----

    fn pop_module(&mut self) -> Option<NodeId> {
        if let Some(id) = self.pop_kind(Kind::Identifier) {
            return self.a.change_kind(id, Kind::Module);
        }
        self.pop_kind(Kind::Module)
    }

    fn pop_context(&mut self) -> Option<NodeId> {
        if let Some(m) = self.pop_module() {
            return Some(m);
        }
        if let Some(t) = self.pop_kind(Kind::Type) {
            if self.a.num_children(t) != 1 {
                return None;
            }
            let c = self.a.child(t, 0)?;
            if !is_context(self.a.kind(c)) {
                return None;
            }
            return Some(c);
        }
        self.pop_if(is_context)
    }

    fn pop_type_child(&mut self) -> Option<NodeId> {
        let t = self.pop_kind(Kind::Type)?;
        if self.a.num_children(t) != 1 {
            return None;
        }
        self.a.child(t, 0)
    }

    fn pop_type_any_generic(&mut self) -> Option<NodeId> {
        let c = self.pop_type_child()?;
        if is_any_generic(self.a.kind(c)) {
            Some(c)
        } else {
            None
        }
    }

    fn any_generic_type(&mut self, k: Kind) -> Option<NodeId> {
        let name = self.pop_if(is_decl_name)?;
        let ctx = self.pop_context()?;
        let n = self.with(k, &[ctx, name])?;
        let t = self.ty(n)?;
        self.add_sub(t);
        Some(t)
    }

    fn extension_context(&mut self) -> Option<NodeId> {
        let sig = self.pop_kind(Kind::DependentGenericSignature);
        let module = self.pop_module()?;
        let ty = self.pop_type_any_generic()?;
        let e = self.with(Kind::Extension, &[module, ty])?;
        if let Some(s) = sig {
            self.a.add(e, s);
        }
        Some(e)
    }

    fn builtin_type(&mut self) -> Option<NodeId> {
        const MAX: u64 = 4096;
        let name: String = match self.next() {
            b'b' => "Builtin.BridgeObject".into(),
            b'B' => "Builtin.UnsafeValueBuffer".into(),
            b'e' => "Builtin.Executor".into(),
            b'd' => "Builtin.NonDefaultDistributedActorStorage".into(),
            b'A' => "Builtin.ImplicitActor".into(),
            b'f' => {
                let s = self.index()?.checked_sub(1)?;
                if s == 0 || s > MAX {
                    return None;
                }
                format!("Builtin.FPIEEE{s}")
            }
            b'i' => {
                let s = self.index()?.checked_sub(1)?;
                if s == 0 || s > MAX {
                    return None;
                }
                format!("Builtin.Int{s}")
            }
            b'I' => "Builtin.IntLiteral".into(),
            b'v' => {
                let n = self.index()?.checked_sub(1)?;
                if n == 0 || n > MAX {
                    return None;
                }
                let elt = self.pop_type_child()?;
                if self.a.kind(elt) != Kind::BuiltinTypeName {
                    return None;
                }
                let t = self.a.text(elt).strip_prefix("Builtin.")?.to_string();
                format!("Builtin.Vec{n}x{t}")
            }
            b'V' => {
                let elt = self.pop_kind(Kind::Type)?;
                let size = self.pop_kind(Kind::Type)?;
                let n = self.with(Kind::BuiltinFixedArray, &[size, elt])?;
                return self.ty(n);
            }
            b'O' => "Builtin.UnknownObject".into(),
            b'o' => "Builtin.NativeObject".into(),
            b'p' => "Builtin.RawPointer".into(),
            b'j' => "Builtin.Job".into(),
            b'D' => "Builtin.DefaultActorStorage".into(),
            b'c' => "Builtin.RawUnsafeContinuation".into(),
            b't' => "Builtin.SILToken".into(),
            b'w' => "Builtin.Word".into(),
            b'P' => "Builtin.PackIndex".into(),
            _ => return None,
        };
        let n = self.a.text_node(Kind::BuiltinTypeName, &name)?;
        self.ty(n)
    }

    fn standard_substitution(&mut self) -> Option<NodeId> {
        match self.next() {
            b'o' => self.a.text_node(Kind::Module, "__C"),
            b'C' => self.a.text_node(Kind::Module, "__C_Synthesized"),
            b'g' => {
                let t = self.pop_kind(Kind::Type)?;
                let opt = self.swift_type(Kind::Enum, "Optional")?;
                let tl = self.with(Kind::TypeList, &[t])?;
                let b = self.with(Kind::BoundGenericEnum, &[opt, tl])?;
                let r = self.ty(b)?;
                self.add_sub(r);
                Some(r)
            }
            _ => {
                self.back();
                let repeat = if is_digit(self.peek()) {
                    self.natural()?
                } else {
                    0
                };
                if repeat > MAX_REPEAT {
                    return None;
                }
                let second = self.next_if(b'c');
                let c = self.next();
                let (k, name) = standard_type(c, second)?;
                let n = self.swift_type(k, name)?;
                let mut r = repeat;
                while r > 1 {
                    self.push(n)?;
                    r -= 1;
                }
                Some(n)
            }
        }
    }

    fn multi_substitutions(&mut self) -> Option<NodeId> {
        let mut repeat: Option<u64> = None;
        loop {
            let c = self.next();
            if c == 0 {
                return None;
            }
            if c.is_ascii_lowercase() {
                let n = self.push_multi(repeat, (c - b'a') as usize)?;
                self.push(n)?;
                repeat = None;
                continue;
            }
            if c.is_ascii_uppercase() {
                return self.push_multi(repeat, (c - b'A') as usize);
            }
            if c == b'_' {
                let idx = repeat?.checked_add(27)? as usize;
                return self.subs.get(idx).copied();
            }
            self.back();
            repeat = Some(self.natural()?);
        }
    }

    fn push_multi(&mut self, repeat: Option<u64>, idx: usize) -> Option<NodeId> {
        let n = *self.subs.get(idx)?;
        let r = repeat.unwrap_or(0);
        if r > MAX_REPEAT {
            return None;
        }
        let mut k = r;
        while k > 1 {
            self.push(n)?;
            k -= 1;
        }
        Some(n)
    }

    // ----- functions and tuples -----

    fn type_mangling(&mut self) -> Option<NodeId> {
        let t = self.pop_kind(Kind::Type)?;
        let labels = self.pop_function_param_labels(Some(t));
        let tm = self.a.node(Kind::TypeMangling)?;
        if let Some(l) = labels {
            self.a.add(tm, l);
        }
        self.a.add(tm, t);
        Some(tm)
    }

    fn plain_function(&mut self) -> Option<NodeId> {
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

    fn pop_function_type(&mut self, k: Kind, clang: bool) -> Option<NodeId> {
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

    fn pop_function_params(&mut self, k: Kind) -> Option<NodeId> {
        let t = if self.pop_kind(Kind::EmptyList).is_some() {
            let tu = self.a.node(Kind::Tuple)?;
            self.ty(tu)?
        } else {
            self.pop_kind(Kind::Type)?
        };
        self.with(k, &[t])
    }

    fn pop_function_param_labels(&mut self, ty: Option<NodeId>) -> Option<NodeId> {
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

    fn pop_tuple(&mut self) -> Option<NodeId> {
        let root = self.a.node(Kind::Tuple)?;
        if self.pop_kind(Kind::EmptyList).is_none() {
            loop {
                let first = self.pop_kind(Kind::FirstElementMarker).is_some();
                let elt = self.a.node(Kind::TupleElement)?;
                if let Some(v) = self.pop_kind(Kind::VariadicMarker) {
                    self.a.add(elt, v);
                }
                if let Some(id) = self.pop_kind(Kind::Identifier) {
                    let n = self.a.change_kind(id, Kind::TupleElementName)?;
                    self.a.add(elt, n);
                }
                let t = self.pop_kind(Kind::Type)?;
                self.a.add(elt, t);
                self.a.add(root, elt);
                if first {
                    break;
                }
            }
            self.a.reverse_children(root, 0);
        }
        self.ty(root)
    }

    fn pop_type_list(&mut self) -> Option<NodeId> {
        let root = self.a.node(Kind::TypeList)?;
        if self.pop_kind(Kind::EmptyList).is_none() {
            loop {
                let first = self.pop_kind(Kind::FirstElementMarker).is_some();
                let t = self.pop_kind(Kind::Type)?;
                self.a.add(root, t);
                if first {
                    break;
                }
            }
            self.a.reverse_children(root, 0);
        }
        Some(root)
    }

    fn pop_protocol(&mut self) -> Option<NodeId> {
        if let Some(t) = self.pop_kind(Kind::Type) {
            let c = self.a.child(t, 0)?;
            if !matches!(
                self.a.kind(c),
                Kind::Protocol | Kind::ProtocolSymbolicReference
            ) {
                return None;
            }
            return Some(t);
        }
        if let Some(s) = self.pop_kind(Kind::ProtocolSymbolicReference) {
            return Some(s);
        }
        let name = self.pop_if(is_decl_name)?;
        let ctx = self.pop_context()?;
        let p = self.with(Kind::Protocol, &[ctx, name])?;
        self.ty(p)
    }

    // ----- conformances -----

    fn pop_any_conformance(&mut self) -> Option<NodeId> {
        self.pop_if(|k| {
            matches!(
                k,
                Kind::ConcreteProtocolConformance
                    | Kind::PackProtocolConformance
                    | Kind::DependentProtocolConformanceOpaque
                    | Kind::DependentProtocolConformanceRoot
                    | Kind::DependentProtocolConformanceInherited
                    | Kind::DependentProtocolConformanceAssociated
            )
        })
    }

    fn pop_any_conformance_list(&mut self) -> Option<NodeId> {
        let list = self.a.node(Kind::AnyProtocolConformanceList)?;
        if self.pop_kind(Kind::EmptyList).is_none() {
            loop {
                let first = self.pop_kind(Kind::FirstElementMarker).is_some();
                let c = self.pop_any_conformance()?;
                self.a.add(list, c);
                if first {
                    break;
                }
            }
            self.a.reverse_children(list, 0);
        }
        Some(list)
    }

    fn concrete_conformance(&mut self) -> Option<NodeId> {
        let cond = self.pop_any_conformance_list()?;
        let r = match self.pop_kind(Kind::ProtocolConformanceRefInTypeModule) {
            Some(r) => r,
            None => match self.pop_kind(Kind::ProtocolConformanceRefInProtocolModule) {
                Some(r) => r,
                None => {
                    let m = self.pop_module()?;
                    let p = self.pop_protocol()?;
                    self.with(Kind::ProtocolConformanceRefInOtherModule, &[p, m])?
                }
            },
        };
        let t = self.pop_kind(Kind::Type)?;
        self.with(Kind::ConcreteProtocolConformance, &[t, r, cond])
    }

    fn pack_conformance(&mut self) -> Option<NodeId> {
        let list = self.pop_any_conformance_list()?;
        self.with(Kind::PackProtocolConformance, &[list])
    }

    fn pop_dependent_conformance(&mut self) -> Option<NodeId> {
        self.pop_if(|k| {
            matches!(
                k,
                Kind::DependentProtocolConformanceRoot
                    | Kind::DependentProtocolConformanceInherited
                    | Kind::DependentProtocolConformanceAssociated
                    | Kind::DependentProtocolConformanceOpaque
            )
        })
    }

    fn dependent_conformance_index(&mut self) -> Option<NodeId> {
        let i = self.index()?;
        if i == 0 {
            return None;
        }
        if i == 1 {
            return self.a.node(Kind::UnknownIndex);
        }
        self.a.index_node(Kind::Index, i - 2)
    }

    fn dependent_conformance_root(&mut self) -> Option<NodeId> {
        let idx = self.dependent_conformance_index()?;
        let p = self.pop_protocol()?;
        let t = self.pop_kind(Kind::Type)?;
        self.with(Kind::DependentProtocolConformanceRoot, &[t, p, idx])
    }

    fn dependent_conformance_inherited(&mut self) -> Option<NodeId> {
        let idx = self.dependent_conformance_index()?;
        let p = self.pop_protocol()?;
        let nested = self.pop_dependent_conformance()?;
        self.with(
            Kind::DependentProtocolConformanceInherited,
            &[nested, p, idx],
        )
    }

    fn dependent_conformance_associated(&mut self) -> Option<NodeId> {
        let idx = self.dependent_conformance_index()?;
        let p = self.pop_protocol()?;
        let t = self.pop_kind(Kind::Type)?;
        let assoc = self.with(Kind::DependentAssociatedConformance, &[t, p])?;
        let nested = self.pop_dependent_conformance()?;
        self.with(
            Kind::DependentProtocolConformanceAssociated,
            &[nested, assoc, idx],
        )
    }

    fn retroactive_conformance(&mut self) -> Option<NodeId> {
        let idx = self.index_node()?;
        let c = self.pop_any_conformance()?;
        self.with(Kind::RetroactiveConformance, &[idx, c])
    }

    fn pop_protocol_conformance(&mut self) -> Option<NodeId> {
        let sig = self.pop_kind(Kind::DependentGenericSignature);
        let module = self.pop_module()?;
        let proto = self.pop_protocol()?;
        let mut ty = self.pop_kind(Kind::Type);
        let mut ident = None;
        if ty.is_none() {
            ident = self.pop_kind(Kind::Identifier);
            ty = self.pop_kind(Kind::Type);
        }
        let mut ty = ty?;
        if let Some(s) = sig {
            let d = self.with(Kind::DependentGenericType, &[s, ty])?;
            ty = self.ty(d)?;
        }
        let c = self.with(Kind::ProtocolConformance, &[ty, proto, module])?;
        if let Some(i) = ident {
            self.a.add(c, i);
        }
        Some(c)
    }

    // ----- generics -----

    fn bound_generics(&mut self) -> Option<(SmallList, Option<NodeId>)> {
        let mut retro: Option<NodeId> = None;
        while let Some(r) = self.pop_kind(Kind::RetroactiveConformance) {
            let l = match retro {
                Some(l) => l,
                None => {
                    let l = self.a.node(Kind::TypeList)?;
                    retro = Some(l);
                    l
                }
            };
            self.a.add(l, r);
        }
        if let Some(l) = retro {
            self.a.reverse_children(l, 0);
        }
        let mut lists = SmallList::new();
        loop {
            let tl = self.a.node(Kind::TypeList)?;
            lists.push(tl);
            while let Some(t) = self.pop_kind(Kind::Type) {
                self.a.add(tl, t);
            }
            self.a.reverse_children(tl, 0);
            if self.pop_kind(Kind::EmptyList).is_some() {
                break;
            }
            self.pop_kind(Kind::FirstElementMarker)?;
            if lists.len() > 256 {
                return None;
            }
        }
        Some((lists, retro))
    }

    fn bound_generic_type(&mut self) -> Option<NodeId> {
        let (lists, retro) = self.bound_generics()?;
        let nominal = self.pop_type_any_generic()?;
        let b = self.bound_generic_args(nominal, lists.as_slice(), 0, 0)?;
        if let Some(r) = retro {
            self.a.add(b, r);
        }
        let t = self.ty(b)?;
        self.add_sub(t);
        Some(t)
    }

    fn bound_generic_args(
        &mut self,
        nominal: NodeId,
        lists: &[NodeId],
        mut idx: usize,
        depth: u32,
    ) -> Option<NodeId> {
        if depth > 64 || idx >= lists.len() {
            return None;
        }
        let nk = self.a.kind(nominal);
        if matches!(
            nk,
            Kind::TypeSymbolicReference | Kind::ProtocolSymbolicReference
        ) {
            return None;
        }
        let ctx = self.a.child(nominal, 0)?;
        let consumes = !matches!(
            nk,
            Kind::Variable
                | Kind::Subscript
                | Kind::ImplicitClosure
                | Kind::ExplicitClosure
                | Kind::DefaultArgumentInitializer
                | Kind::Initializer
                | Kind::PropertyWrapperBackingInitializer
                | Kind::PropertyWrapperInitFromProjectedValue
                | Kind::Static
        );
        let args = lists[idx];
        if consumes {
            idx += 1;
        }
        let mut nominal = nominal;
        if idx < lists.len() {
            let parent = if self.a.kind(ctx) == Kind::Extension {
                let inner = self.a.child(ctx, 1)?;
                let bp = self.bound_generic_args(inner, lists, idx, depth + 1)?;
                let m = self.a.child(ctx, 0)?;
                let e = self.with(Kind::Extension, &[m, bp])?;
                if let Some(s) = self.a.child(ctx, 2) {
                    self.a.add(e, s);
                }
                e
            } else {
                self.bound_generic_args(ctx, lists, idx, depth + 1)?
            };
            let nn = self.with(nk, &[parent])?;
            for i in 1..self.a.num_children(nominal) {
                let c = self.a.child(nominal, i)?;
                self.a.add(nn, c);
            }
            nominal = nn;
        }
        if !consumes || self.a.num_children(args) == 0 {
            return Some(nominal);
        }
        let k = match nk {
            Kind::Class => Kind::BoundGenericClass,
            Kind::Structure => Kind::BoundGenericStructure,
            Kind::Enum => Kind::BoundGenericEnum,
            Kind::Protocol => Kind::BoundGenericProtocol,
            Kind::OtherNominalType => Kind::BoundGenericOtherNominalType,
            Kind::TypeAlias => Kind::BoundGenericTypeAlias,
            Kind::Function | Kind::Constructor => {
                return self.with(Kind::BoundGenericFunction, &[nominal, args]);
            }
            _ => return None,
        };
        let t = self.ty(nominal)?;
        self.with(k, &[t, args])
    }

    fn generic_param(&mut self, depth: u64, index: u64) -> Option<NodeId> {
        let p = self.a.node(Kind::DependentGenericParamType)?;
        let d = self.a.index_node(Kind::Index, depth)?;
        let i = self.a.index_node(Kind::Index, index)?;
        self.a.add(p, d);
        self.a.add(p, i);
        Some(p)
    }

    fn generic_param_index(&mut self) -> Option<NodeId> {
        if self.next_if(b'd') {
            let depth = self.index()? + 1;
            let index = self.index()?;
            return self.generic_param(depth, index);
        }
        if self.next_if(b'z') {
            return self.generic_param(0, 0);
        }
        if self.next_if(b's') {
            let s = self.a.node(Kind::ConstrainedExistentialSelf)?;
            return Some(s);
        }
        let i = self.index()? + 1;
        self.generic_param(0, i)
    }

    fn generic_signature(&mut self, has_counts: bool) -> Option<NodeId> {
        let sig = self.a.node(Kind::DependentGenericSignature)?;
        if has_counts {
            while !self.next_if(b'l') {
                let count = if self.next_if(b'z') {
                    0
                } else {
                    self.index()? + 1
                };
                let c = self.a.index_node(Kind::DependentGenericParamCount, count)?;
                self.a.add(sig, c);
                if self.a.num_children(sig) > 64 {
                    return None;
                }
            }
        } else {
            let c = self.a.index_node(Kind::DependentGenericParamCount, 1)?;
            self.a.add(sig, c);
        }
        let n = self.a.num_children(sig);
        while let Some(r) = self.pop_if(is_requirement) {
            self.a.add(sig, r);
        }
        self.a.reverse_children(sig, n);
        Some(sig)
    }

    fn generic_requirement(&mut self) -> Option<NodeId> {
        #[derive(PartialEq)]
        enum T {
            Generic,
            Assoc,
            Compound,
            Subst,
        }
        #[derive(PartialEq)]
        enum C {
            Proto,
            Base,
            Same,
            Layout,
            Inverse,
            Pack,
            Value,
            SameShape,
        }
        let (c, t) = match self.next() {
            b'V' => (C::Value, T::Generic),
            b'v' => (C::Pack, T::Generic),
            b'h' => (C::SameShape, T::Generic),
            b'c' => (C::Base, T::Assoc),
            b'C' => (C::Base, T::Compound),
            b'b' => (C::Base, T::Generic),
            b'B' => (C::Base, T::Subst),
            b't' => (C::Same, T::Assoc),
            b'T' => (C::Same, T::Compound),
            b's' => (C::Same, T::Generic),
            b'S' => (C::Same, T::Subst),
            b'm' => (C::Layout, T::Assoc),
            b'M' => (C::Layout, T::Compound),
            b'l' => (C::Layout, T::Generic),
            b'L' => (C::Layout, T::Subst),
            b'p' => (C::Proto, T::Assoc),
            b'P' => (C::Proto, T::Compound),
            b'Q' => (C::Proto, T::Subst),
            b'i' => (C::Inverse, T::Generic),
            b'I' => (C::Inverse, T::Subst),
            b'j' => (C::Inverse, T::Assoc),
            b'J' => (C::Inverse, T::Compound),
            _ => {
                self.back();
                (C::Proto, T::Generic)
            }
        };
        let inverse_index = if c == C::Inverse {
            Some(self.index()?)
        } else {
            None
        };
        let constr = match t {
            T::Generic => {
                let p = self.generic_param_index()?;
                self.ty(p)?
            }
            T::Assoc => {
                let p = self.generic_param_index()?;
                let r = self.assoc_type_simple(Some(p))?;
                self.add_sub(r);
                r
            }
            T::Compound => {
                let p = self.generic_param_index()?;
                let r = self.assoc_type_compound(Some(p))?;
                self.add_sub(r);
                r
            }
            T::Subst => self.pop_kind(Kind::Type)?,
        };
        match c {
            C::Value => {
                let t = self.pop_kind(Kind::Type)?;
                self.with(Kind::DependentGenericParamValueMarker, &[constr, t])
            }
            C::Pack => self.with(Kind::DependentGenericParamPackMarker, &[constr]),
            C::SameShape => {
                let t = self.pop_kind(Kind::Type)?;
                self.with(Kind::DependentGenericSameShapeRequirement, &[constr, t])
            }
            C::Proto => {
                let p = self.pop_protocol()?;
                self.with(Kind::DependentGenericConformanceRequirement, &[constr, p])
            }
            C::Inverse => {
                let i = self.a.index_node(Kind::Index, inverse_index?)?;
                self.with(
                    Kind::DependentGenericInverseConformanceRequirement,
                    &[constr, i],
                )
            }
            C::Base => {
                let t = self.pop_kind(Kind::Type)?;
                self.with(Kind::DependentGenericConformanceRequirement, &[constr, t])
            }
            C::Same => {
                let t = self.pop_kind(Kind::Type)?;
                self.with(Kind::DependentGenericSameTypeRequirement, &[constr, t])
            }
            C::Layout => {
                let ch = self.next();
                let (size, align) = match ch {
                    b'U' | b'R' | b'N' | b'C' | b'D' | b'T' | b'B' => (None, None),
                    b'E' | b'M' => {
                        let s = self.index_node()?;
                        let a = self.index_node()?;
                        (Some(s), Some(a))
                    }
                    b'e' | b'm' | b'S' => (Some(self.index_node()?), None),
                    _ => return None,
                };
                let s = (ch as char).to_string();
                let name = self.a.text_node(Kind::Identifier, &s)?;
                let r = self.with(Kind::DependentGenericLayoutRequirement, &[constr, name])?;
                if let Some(s) = size {
                    self.a.add(r, s);
                }
                if let Some(al) = align {
                    self.a.add(r, al);
                }
                Some(r)
            }
        }
    }

    fn generic_type(&mut self) -> Option<NodeId> {
        let sig = self.pop_kind(Kind::DependentGenericSignature)?;
        let t = self.pop_kind(Kind::Type)?;
        let d = self.with(Kind::DependentGenericType, &[sig, t])?;
        self.ty(d)
    }

    fn pop_assoc_type_name(&mut self) -> Option<NodeId> {
        let mut proto = self.pop_kind(Kind::Type);
        if let Some(p) = proto {
            let c = self.a.child(p, 0)?;
            if !matches!(
                self.a.kind(c),
                Kind::Protocol | Kind::ProtocolSymbolicReference
            ) {
                return None;
            }
        }
        if proto.is_none() {
            proto = self.pop_kind(Kind::ProtocolSymbolicReference);
        }
        let id = self.pop_kind(Kind::Identifier)?;
        let r = self.with(Kind::DependentAssociatedTypeRef, &[id])?;
        if let Some(p) = proto {
            self.a.add(r, p);
        }
        Some(r)
    }

    fn pop_assoc_type_path(&mut self) -> Option<NodeId> {
        let path = self.a.node(Kind::AssocTypePath)?;
        loop {
            let first = self.pop_kind(Kind::FirstElementMarker).is_some();
            let a = self.pop_assoc_type_name()?;
            self.a.add(path, a);
            if first {
                break;
            }
        }
        self.a.reverse_children(path, 0);
        Some(path)
    }

    fn assoc_type_simple(&mut self, base: Option<NodeId>) -> Option<NodeId> {
        let name = self.pop_assoc_type_name()?;
        let base_ty = match base {
            Some(b) => self.ty(b)?,
            None => self.pop_kind(Kind::Type)?,
        };
        let d = self.with(Kind::DependentMemberType, &[base_ty, name])?;
        self.ty(d)
    }

    fn assoc_type_compound(&mut self, base: Option<NodeId>) -> Option<NodeId> {
        let mut names = Vec::new();
        loop {
            let first = self.pop_kind(Kind::FirstElementMarker).is_some();
            names.push(self.pop_assoc_type_name()?);
            if first || names.len() > 256 {
                break;
            }
        }
        let mut base_ty = match base {
            Some(b) => self.ty(b)?,
            None => self.pop_kind(Kind::Type)?,
        };
        while let Some(n) = names.pop() {
            let d = self.with(Kind::DependentMemberType, &[base_ty, n])?;
            base_ty = self.ty(d)?;
        }
        Some(base_ty)
    }

    fn archetype(&mut self) -> Option<NodeId> {
        match self.next() {
            b'a' => {
                let id = self.pop_kind(Kind::Identifier)?;
                let at = self.pop_type_child()?;
                let r = self.with(Kind::AssociatedTypeRef, &[at, id])?;
                let t = self.ty(r)?;
                self.add_sub(t);
                Some(t)
            }
            b'O' => {
                let ctx = self.pop_context()?;
                self.with(Kind::OpaqueReturnTypeOf, &[ctx])
            }
            b'o' => {
                let index = self.index()?;
                let (lists, retro) = self.bound_generics()?;
                let name = self.pop()?;
                let i = self.a.index_node(Kind::Index, index)?;
                let o = self.with(Kind::OpaqueType, &[name, i])?;
                let bg = self.a.node(Kind::TypeList)?;
                for &l in lists.as_slice().iter().rev() {
                    self.a.add(bg, l);
                }
                self.a.add(o, bg);
                if let Some(r) = retro {
                    self.a.add(o, r);
                }
                let t = self.ty(o)?;
                self.add_sub(t);
                Some(t)
            }
            b'r' => {
                let n = self.a.node(Kind::OpaqueReturnType)?;
                self.ty(n)
            }
            b'R' => {
                let i = self.index()?;
                let n = self.a.index_node(Kind::OpaqueReturnTypeIndexed, i)?;
                self.ty(n)
            }
            b'x' => {
                let t = self.assoc_type_simple(None)?;
                self.add_sub(t);
                Some(t)
            }
            b'X' => {
                let t = self.assoc_type_compound(None)?;
                self.add_sub(t);
                Some(t)
            }
            b'y' => {
                let p = self.generic_param_index()?;
                let t = self.assoc_type_simple(Some(p))?;
                self.add_sub(t);
                Some(t)
            }
            b'Y' => {
                let p = self.generic_param_index()?;
                let t = self.assoc_type_compound(Some(p))?;
                self.add_sub(t);
                Some(t)
            }
            b'z' => {
                let p = self.generic_param(0, 0)?;
                let t = self.assoc_type_simple(Some(p))?;
                self.add_sub(t);
                Some(t)
            }
            b'Z' => {
                let p = self.generic_param(0, 0)?;
                let t = self.assoc_type_compound(Some(p))?;
                self.add_sub(t);
                Some(t)
            }
            b'p' => {
                let count = self.pop_kind(Kind::Type)?;
                let pattern = self.pop_kind(Kind::Type)?;
                let n = self.with(Kind::PackExpansion, &[pattern, count])?;
                self.ty(n)
            }
            b'e' => {
                let level = self.index()?;
                let pack = self.pop_kind(Kind::Type)?;
                let l = self.a.index_node(Kind::PackElementLevel, level)?;
                let n = self.with(Kind::PackElement, &[pack, l])?;
                self.ty(n)
            }
            b'P' => {
                let list = self.pop_type_list()?;
                let n = self.a.node(Kind::Pack)?;
                let ch: Vec<NodeId> = self.a.children(list).to_vec();
                for c in ch {
                    self.a.add(n, c);
                }
                self.ty(n)
            }
            b'S' => {
                let k = match self.next() {
                    b'd' => Kind::SILPackDirect,
                    b'i' => Kind::SILPackIndirect,
                    _ => return None,
                };
                let list = self.pop_type_list()?;
                let n = self.a.node(k)?;
                let ch: Vec<NodeId> = self.a.children(list).to_vec();
                for c in ch {
                    self.a.add(n, c);
                }
                self.ty(n)
            }
            _ => None,
        }
    }

    // ----- impl function types -----

    fn impl_param_convention(&mut self, k: Kind) -> Option<NodeId> {
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

    fn impl_result_convention(&mut self, k: Kind) -> Option<NodeId> {
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

    fn clang_type(&mut self) -> Option<NodeId> {
        let n = self.natural()? as usize;
        let end = self.pos.checked_add(n)?;
        if n == 0 || end > self.input.len() {
            return None;
        }
        let s = std::str::from_utf8(&self.input[self.pos..end]).ok()?;
        self.pos = end;
        self.a.text_node(Kind::ClangType, s)
    }

    fn impl_function_type(&mut self) -> Option<NodeId> {
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

    // ----- metadata, witnesses, thunks -----

    fn metatype(&mut self) -> Option<NodeId> {
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

    fn private_context_descriptor(&mut self) -> Option<NodeId> {
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

    fn spec_attributes(&mut self, k: Kind) -> Option<NodeId> {
        let serialized = self.next_if(b'q');
        let c = self.next();
        if !c.is_ascii_digit() {
            return None;
        }
        let n = self.a.node(k)?;
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

    fn generic_specialization(&mut self, k: Kind, dropped: Option<NodeId>) -> Option<NodeId> {
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

    fn thunk_or_specialization(&mut self) -> Option<NodeId> {
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

    fn bridged_method_params(&mut self) -> Option<String> {
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

    fn autodiff_kind(&mut self) -> Option<NodeId> {
        let c = self.next();
        if !matches!(c, b'f' | b'r' | b'd' | b'p') {
            return None;
        }
        self.a.index_node(Kind::AutoDiffFunctionKind, u64::from(c))
    }

    fn index_subset(&mut self) -> Option<NodeId> {
        let start = self.pos;
        while matches!(self.peek(), b'S' | b'U') {
            self.next();
        }
        if self.pos == start {
            return None;
        }
        let s = std::str::from_utf8(&self.input[start..self.pos]).ok()?;
        self.a.text_node(Kind::IndexSubset, s)
    }

    fn pop_all_reversed(&mut self, into: NodeId) {
        let start = self.a.num_children(into);
        while let Some(n) = self.pop() {
            self.a.add(into, n);
        }
        self.a.reverse_children(into, start);
    }

    fn autodiff_function(&mut self, k: Kind) -> Option<NodeId> {
        let r = self.a.node(k)?;
        self.pop_all_reversed(r);
        let kind = self.autodiff_kind()?;
        self.a.add(r, kind);
        let p = self.index_subset()?;
        self.a.add(r, p);
        if !self.next_if(b'p') {
            return None;
        }
        let res = self.index_subset()?;
        self.a.add(r, res);
        if !self.next_if(b'r') {
            return None;
        }
        Some(r)
    }

    fn autodiff_subset_parameters_thunk(&mut self) -> Option<NodeId> {
        let r = self.a.node(Kind::AutoDiffSubsetParametersThunk)?;
        self.pop_all_reversed(r);
        let kind = self.autodiff_kind()?;
        self.a.add(r, kind);
        let p = self.index_subset()?;
        self.a.add(r, p);
        if !self.next_if(b'p') {
            return None;
        }
        let res = self.index_subset()?;
        self.a.add(r, res);
        if !self.next_if(b'r') {
            return None;
        }
        let to = self.index_subset()?;
        self.a.add(r, to);
        if !self.next_if(b'P') {
            return None;
        }
        Some(r)
    }

    fn autodiff_self_reordering_thunk(&mut self) -> Option<NodeId> {
        let r = self
            .a
            .node(Kind::AutoDiffSelfReorderingReabstractionThunk)?;
        if let Some(s) = self.pop_kind(Kind::DependentGenericSignature) {
            self.a.add(r, s);
        }
        let t1 = self.pop_kind(Kind::Type)?;
        let t2 = self.pop_kind(Kind::Type)?;
        self.a.add(r, t1);
        self.a.add(r, t2);
        self.a.reverse_children(r, 0);
        let k = self.autodiff_kind()?;
        self.a.add(r, k);
        Some(r)
    }

    fn differentiability_witness(&mut self) -> Option<NodeId> {
        let r = self.a.node(Kind::DifferentiabilityWitness)?;
        let sig = self.pop_kind(Kind::DependentGenericSignature);
        self.pop_all_reversed(r);
        let c = self.next();
        if !matches!(c, b'f' | b'r' | b'd' | b'l') {
            return None;
        }
        let k = self.a.index_node(Kind::Index, u64::from(c))?;
        self.a.add(r, k);
        let p = self.index_subset()?;
        self.a.add(r, p);
        if !self.next_if(b'p') {
            return None;
        }
        let res = self.index_subset()?;
        self.a.add(r, res);
        if !self.next_if(b'r') {
            return None;
        }
        if let Some(s) = sig {
            self.a.add(r, s);
        }
        Some(r)
    }

    fn function_specialization(&mut self) -> Option<NodeId> {
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

    fn func_spec_param(&mut self, k: Kind, no: u64) -> Option<NodeId> {
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

    fn spec_param_number(&mut self, param: NodeId, kind: u64) -> Option<NodeId> {
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

    fn witness(&mut self) -> Option<NodeId> {
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

    fn special_type(&mut self) -> Option<NodeId> {
        let c = self.next();
        match c {
            b'E' => self.pop_function_type(Kind::NoEscapeFunctionType, false),
            b'A' => self.pop_function_type(Kind::EscapingAutoClosureType, false),
            b'f' => self.pop_function_type(Kind::ThinFunctionType, false),
            b'K' => self.pop_function_type(Kind::AutoClosureType, false),
            b'U' => self.pop_function_type(Kind::UncurriedFunctionType, false),
            b'L' => self.pop_function_type(Kind::EscapingObjCBlock, false),
            b'B' => self.pop_function_type(Kind::ObjCBlock, false),
            b'C' => self.pop_function_type(Kind::CFunctionPointer, false),
            b'z' => match self.next() {
                b'B' => self.pop_function_type(Kind::ObjCBlock, true),
                b'C' => self.pop_function_type(Kind::CFunctionPointer, true),
                _ => None,
            },
            b'F' => {
                // Constrained existential: `any P<…>`.
                let reqs = self.a.node(Kind::ConstrainedExistentialRequirementList)?;
                let n0 = self.a.num_children(reqs);
                while let Some(r) = self.pop_if(is_requirement) {
                    self.a.add(reqs, r);
                }
                self.a.reverse_children(reqs, n0);
                let base = self.pop_kind(Kind::Type)?;
                let n = self.with(Kind::ConstrainedExistential, &[base, reqs])?;
                self.ty(n)
            }
            b'P' => {
                let reqs = self.a.node(Kind::ConstrainedExistentialRequirementList)?;
                loop {
                    let first = self.pop_kind(Kind::FirstElementMarker).is_some();
                    let r = self.pop_if(is_requirement)?;
                    self.a.add(reqs, r);
                    if first || self.a.num_children(reqs) > 256 {
                        break;
                    }
                }
                self.a.reverse_children(reqs, 0);
                let base = self.pop_kind(Kind::Type)?;
                let n = self.with(Kind::ConstrainedExistential, &[base, reqs])?;
                self.ty(n)
            }
            b'o' | b'u' | b'w' | b'b' | b'D' => {
                let k = match c {
                    b'o' => Kind::Unowned,
                    b'u' => Kind::Unmanaged,
                    b'w' => Kind::Weak,
                    b'b' => Kind::SILBoxType,
                    _ => Kind::DynamicSelf,
                };
                let t = self.pop_kind(Kind::Type)?;
                let n = self.with(k, &[t])?;
                self.ty(n)
            }
            b'M' | b'm' => {
                let r = self.metatype_repr()?;
                let t = self.pop_kind(Kind::Type)?;
                let k = if c == b'M' {
                    Kind::Metatype
                } else {
                    Kind::ExistentialMetatype
                };
                let n = self.with(k, &[r, t])?;
                self.ty(n)
            }
            b'p' => {
                let t = self.pop_kind(Kind::Type)?;
                let n = self.with(Kind::ExistentialMetatype, &[t])?;
                self.ty(n)
            }
            b'c' => {
                let sup = self.pop_kind(Kind::Type)?;
                let protos = self.protocol_list()?;
                let n = self.with(Kind::ProtocolListWithClass, &[protos, sup])?;
                self.ty(n)
            }
            b'l' => {
                let protos = self.protocol_list()?;
                let n = self.with(Kind::ProtocolListWithAnyObject, &[protos])?;
                self.ty(n)
            }
            b'X' | b'x' => {
                let mut sig = None;
                let mut args = None;
                if c == b'X' {
                    sig = Some(self.pop_kind(Kind::DependentGenericSignature)?);
                    args = Some(self.pop_type_list()?);
                }
                let fields = self.pop_type_list()?;
                let layout = self.a.node(Kind::SILBoxLayout)?;
                let ft: Vec<NodeId> = self.a.children(fields).to_vec();
                for f in ft {
                    let inner = self.a.child(f, 0)?;
                    let (k, t) = if self.a.kind(inner) == Kind::InOut {
                        let x = self.a.child(inner, 0)?;
                        (Kind::SILBoxMutableField, self.ty(x)?)
                    } else {
                        (Kind::SILBoxImmutableField, f)
                    };
                    let field = self.with(k, &[t])?;
                    self.a.add(layout, field);
                }
                let b = self.with(Kind::SILBoxTypeWithLayout, &[layout])?;
                if let (Some(s), Some(a)) = (sig, args) {
                    self.a.add(b, s);
                    self.a.add(b, a);
                }
                self.ty(b)
            }
            b'Y' => self.any_generic_type(Kind::OtherNominalType),
            b'Z' => {
                let types = self.pop_type_list()?;
                let name = self.pop_kind(Kind::Identifier)?;
                let parent = self.pop_context()?;
                self.with(Kind::AnonymousContext, &[name, parent, types])
            }
            b'e' => {
                let n = self.a.node(Kind::ErrorType)?;
                self.ty(n)
            }
            b'S' => match self.next() {
                b'q' => {
                    let t = self.pop_kind(Kind::Type)?;
                    let n = self.with(Kind::SugaredOptional, &[t])?;
                    self.ty(n)
                }
                b'a' => {
                    let t = self.pop_kind(Kind::Type)?;
                    let n = self.with(Kind::SugaredArray, &[t])?;
                    self.ty(n)
                }
                b'D' => {
                    let v = self.pop_kind(Kind::Type)?;
                    let k = self.pop_kind(Kind::Type)?;
                    let n = self.with(Kind::SugaredDictionary, &[k, v])?;
                    self.ty(n)
                }
                b'p' => {
                    let t = self.pop_kind(Kind::Type)?;
                    let n = self.with(Kind::SugaredParen, &[t])?;
                    self.ty(n)
                }
                _ => None,
            },
            _ => None,
        }
    }

    fn metatype_repr(&mut self) -> Option<NodeId> {
        let s = match self.next() {
            b't' => "@thin",
            b'T' => "@thick",
            b'o' => "@objc_metatype",
            _ => return None,
        };
        self.a.text_node(Kind::MetatypeRepresentation, s)
    }

    fn protocol_list(&mut self) -> Option<NodeId> {
        let tl = self.a.node(Kind::TypeList)?;
        let pl = self.with(Kind::ProtocolList, &[tl])?;
        if self.pop_kind(Kind::EmptyList).is_none() {
            loop {
                let first = self.pop_kind(Kind::FirstElementMarker).is_some();
                let p = self.pop_protocol()?;
                self.a.add(tl, p);
                if first {
                    break;
                }
            }
            self.a.reverse_children(tl, 0);
        }
        Some(pl)
    }

    fn type_annotation(&mut self) -> Option<NodeId> {
        match self.next() {
            b'a' => self.a.node(Kind::AsyncAnnotation),
            b'A' => self.a.node(Kind::IsolatedAnyFunctionType),
            b'b' => self.a.node(Kind::ConcurrentFunctionType),
            b'c' => {
                let t = self.pop_type_child()?;
                self.with(Kind::GlobalActorFunctionType, &[t])
            }
            b'C' => self.a.node(Kind::NonIsolatedCallerFunctionType),
            b'i' => {
                let t = self.pop_type_child()?;
                let n = self.with(Kind::Isolated, &[t])?;
                self.ty(n)
            }
            b'j' => {
                let k = match self.next() {
                    c @ (b'f' | b'r' | b'd' | b'l') => c,
                    _ => return None,
                };
                self.a
                    .index_node(Kind::DifferentiableFunctionType, u64::from(k))
            }
            b'k' => {
                let t = self.pop_type_child()?;
                let n = self.with(Kind::NoDerivative, &[t])?;
                self.ty(n)
            }
            b'K' => {
                let t = self.pop_kind(Kind::Type)?;
                self.with(Kind::TypedThrowsAnnotation, &[t])
            }
            b't' => {
                let t = self.pop_type_child()?;
                let n = self.with(Kind::CompileTimeConst, &[t])?;
                self.ty(n)
            }
            b'T' => self.a.node(Kind::SendingResultFunctionType),
            b'u' => {
                let t = self.pop_type_child()?;
                let n = self.with(Kind::Sending, &[t])?;
                self.ty(n)
            }
            _ => None,
        }
    }

    // ----- entities -----

    fn accessor(&mut self, child: NodeId) -> Option<NodeId> {
        let k = match self.next() {
            b'm' => Kind::MaterializeForSet,
            b's' => Kind::Setter,
            b'g' => Kind::Getter,
            b'G' => Kind::GlobalGetter,
            b'w' => Kind::WillSet,
            b'W' => Kind::DidSet,
            b'r' => Kind::ReadAccessor,
            b'y' => Kind::Read2Accessor,
            b'M' => Kind::ModifyAccessor,
            b'x' => Kind::Modify2Accessor,
            b'i' => Kind::InitAccessor,
            b'a' => match self.next() {
                b'O' => Kind::OwningMutableAddressor,
                b'o' => Kind::NativeOwningMutableAddressor,
                b'P' => Kind::NativePinningMutableAddressor,
                b'u' => Kind::UnsafeMutableAddressor,
                _ => return None,
            },
            b'l' => match self.next() {
                b'O' => Kind::OwningAddressor,
                b'o' => Kind::NativeOwningAddressor,
                b'p' => Kind::NativePinningAddressor,
                b'u' => Kind::UnsafeAddressor,
                _ => return None,
            },
            b'p' => return Some(child),
            _ => return None,
        };
        self.with(k, &[child])
    }

    fn function_entity(&mut self) -> Option<NodeId> {
        enum Args {
            None,
            TypeAndMaybePrivateName,
            TypeAndIndex,
            Index,
            ContextArg,
        }
        let c = self.next();
        let (args, k) = match c {
            b'D' => (Args::None, Kind::Deallocator),
            b'd' => (Args::None, Kind::Destructor),
            b'Z' => (Args::None, Kind::IsolatedDeallocator),
            b'E' => (Args::None, Kind::IVarDestroyer),
            b'e' => (Args::None, Kind::IVarInitializer),
            b'i' => (Args::None, Kind::Initializer),
            b'C' => (Args::TypeAndMaybePrivateName, Kind::Allocator),
            b'c' => (Args::TypeAndMaybePrivateName, Kind::Constructor),
            b'U' => (Args::TypeAndIndex, Kind::ExplicitClosure),
            b'u' => (Args::TypeAndIndex, Kind::ImplicitClosure),
            b'A' => (Args::Index, Kind::DefaultArgumentInitializer),
            b'm' => return self.entity(Kind::MacroExpansion),
            b'M' => return self.macro_expansion(),
            b'p' => return self.entity(Kind::GenericTypeParamDecl),
            b'P' => (Args::None, Kind::PropertyWrapperBackingInitializer),
            b'W' => (Args::None, Kind::PropertyWrapperInitFromProjectedValue),
            b'F' => (Args::ContextArg, Kind::DefaultOverride),
            _ => return None,
        };
        let _ = Args::ContextArg;
        let mut name_or_index = None;
        let mut param_type = None;
        let mut labels = None;
        match args {
            Args::None | Args::ContextArg => {}
            Args::TypeAndMaybePrivateName => {
                name_or_index = self.pop_kind(Kind::PrivateDeclName);
                param_type = Some(self.pop_kind(Kind::Type)?);
                labels = self.pop_function_param_labels(param_type);
            }
            Args::TypeAndIndex => {
                name_or_index = Some(self.index_node()?);
                param_type = Some(self.pop_kind(Kind::Type)?);
            }
            Args::Index => {
                name_or_index = Some(self.index_node()?);
            }
        }
        let ctx = self.pop_context()?;
        let e = self.with(k, &[ctx])?;
        match args {
            Args::None | Args::ContextArg => {}
            Args::Index => self.a.add(e, name_or_index?),
            Args::TypeAndMaybePrivateName => {
                if let Some(l) = labels {
                    self.a.add(e, l);
                }
                self.a.add(e, param_type?);
                if let Some(n) = name_or_index {
                    self.a.add(e, n);
                }
            }
            Args::TypeAndIndex => {
                self.a.add(e, name_or_index?);
                self.a.add(e, param_type?);
            }
        }
        Some(e)
    }

    fn macro_expansion(&mut self) -> Option<NodeId> {
        let c = self.next();
        let (k, is_attached, is_freestanding) = match c {
            b'a' => (Kind::AccessorAttachedMacroExpansion, true, false),
            b'r' => (Kind::MemberAttributeAttachedMacroExpansion, true, false),
            b'm' => (Kind::MemberAttachedMacroExpansion, true, false),
            b'p' => (Kind::PeerAttachedMacroExpansion, true, false),
            b'c' => (Kind::ConformanceAttachedMacroExpansion, true, false),
            b'e' => (Kind::ExtensionAttachedMacroExpansion, true, false),
            b'b' => (Kind::BodyAttachedMacroExpansion, true, false),
            b'q' => (Kind::PreambleAttachedMacroExpansion, true, false),
            b'f' => (Kind::FreestandingMacroExpansion, false, true),
            b'u' => (Kind::MacroExpansionUniqueName, false, false),
            b'X' => {
                let line = self.index()?;
                let col = self.index()?;
                let file = self.pop_kind(Kind::Identifier)?;
                let module = self.pop_kind(Kind::Identifier)?;
                let m = self.a.change_kind(module, Kind::Module)?;
                let l = self.a.index_node(Kind::Index, line)?;
                let co = self.a.index_node(Kind::Index, col)?;
                return self.with(Kind::MacroExpansionLoc, &[m, file, l, co]);
            }
            _ => return None,
        };
        let macro_name = self.pop_kind(Kind::Identifier)?;
        let private_disc = if is_freestanding {
            self.pop_kind(Kind::PrivateDeclName)
        } else {
            None
        };
        let attached_name = if is_attached {
            Some(self.pop_if(is_decl_name)?)
        } else {
            None
        };
        let ctx = match self.pop_kind(Kind::MacroExpansionLoc) {
            Some(loc) => loc,
            None => self.pop_context()?,
        };
        let disc = self.index_node()?;
        let n = match attached_name {
            Some(an) => self.with(k, &[ctx, an, macro_name, disc])?,
            None => self.with(k, &[ctx, macro_name, disc])?,
        };
        if let Some(p) = private_disc {
            self.a.add(n, p);
        }
        Some(n)
    }

    fn entity(&mut self, k: Kind) -> Option<NodeId> {
        let t = self.pop_kind(Kind::Type)?;
        let labels = self.pop_function_param_labels(Some(t));
        let name = self.pop_if(is_decl_name)?;
        let ctx = self.pop_context()?;
        match labels {
            Some(l) => self.with(k, &[ctx, name, l, t]),
            None => self.with(k, &[ctx, name, t]),
        }
    }

    fn variable(&mut self) -> Option<NodeId> {
        let v = self.entity(Kind::Variable)?;
        self.accessor(v)
    }

    fn subscript(&mut self) -> Option<NodeId> {
        let private = self.pop_kind(Kind::PrivateDeclName);
        let t = self.pop_kind(Kind::Type)?;
        let labels = self.pop_function_param_labels(Some(t));
        let ctx = self.pop_context()?;
        let s = self.with(Kind::Subscript, &[ctx])?;
        if let Some(l) = labels {
            self.a.add(s, l);
        }
        self.a.add(s, t);
        if let Some(p) = private {
            self.a.add(s, p);
        }
        self.accessor(s)
    }

    fn value_witness(&mut self) -> Option<NodeId> {
        let c1 = self.next();
        let c2 = self.next();
        let idx = crate::print::VALUE_WITNESSES
            .iter()
            .position(|(code, _)| code.as_bytes() == [c1, c2])?;
        let vw = self.a.index_node(Kind::ValueWitness, idx as u64)?;
        let t = self.pop_kind(Kind::Type)?;
        self.a.add(vw, t);
        Some(vw)
    }

    /// Unused by the loop but kept for symmetry with the old parser.
    #[allow(dead_code)]
    fn top_is(&self, k: Kind) -> bool {
        self.top_kind() == Some(k)
    }

    #[allow(dead_code)]
    fn rest(&self) -> &[u8] {
        &self.input[self.pos..]
    }

    #[allow(dead_code)]
    fn consume_prefix(&mut self, s: &[u8]) -> bool {
        self.next_if_str(s)
    }
}

/// A short list of nodes that lives on the stack unless it grows long.
struct SmallList {
    n: usize,
    inline: [NodeId; 8],
    heap: Vec<NodeId>,
}

impl SmallList {
    fn new() -> Self {
        SmallList {
            n: 0,
            inline: [0; 8],
            heap: Vec::new(),
        }
    }

    fn push(&mut self, x: NodeId) {
        if self.n < self.inline.len() {
            self.inline[self.n] = x;
        } else {
            if self.heap.is_empty() {
                self.heap.extend_from_slice(&self.inline);
            }
            self.heap.push(x);
        }
        self.n += 1;
    }

    fn len(&self) -> usize {
        self.n
    }

    fn as_slice(&self) -> &[NodeId] {
        if self.n <= self.inline.len() {
            &self.inline[..self.n]
        } else {
            &self.heap
        }
    }
}

/// The one-letter standard substitutions (`Si` = `Swift.Int`, …).
fn standard_type(c: u8, second_level: bool) -> Option<(Kind, &'static str)> {
    use Kind::*;
    if second_level {
        return Some(match c {
            b'A' => (Protocol, "Actor"),
            b'C' => (Structure, "CheckedContinuation"),
            b'c' => (Structure, "UnsafeContinuation"),
            b'E' => (Structure, "CancellationError"),
            b'e' => (Structure, "UnownedSerialExecutor"),
            b'F' => (Protocol, "Executor"),
            b'f' => (Protocol, "SerialExecutor"),
            b'G' => (Structure, "TaskGroup"),
            b'g' => (Structure, "ThrowingTaskGroup"),
            b'h' => (Protocol, "TaskExecutor"),
            b'I' => (Protocol, "AsyncIteratorProtocol"),
            b'i' => (Protocol, "AsyncSequence"),
            b'J' => (Structure, "UnownedJob"),
            b'M' => (Class, "MainActor"),
            b'P' => (Structure, "TaskPriority"),
            b'S' => (Structure, "AsyncStream"),
            b's' => (Structure, "AsyncThrowingStream"),
            b'T' => (Structure, "Task"),
            b't' => (Structure, "UnsafeCurrentTask"),
            _ => return None,
        });
    }
    Some(match c {
        b'A' => (Structure, "AutoreleasingUnsafeMutablePointer"),
        b'a' => (Structure, "Array"),
        b'B' => (Protocol, "BinaryFloatingPoint"),
        b'b' => (Structure, "Bool"),
        b'c' => (Structure, "UnicodeScalar"),
        b'D' => (Structure, "Dictionary"),
        b'd' => (Structure, "Double"),
        b'E' => (Protocol, "Encodable"),
        b'e' => (Protocol, "Decodable"),
        b'F' => (Protocol, "FloatingPoint"),
        b'f' => (Structure, "Float"),
        b'G' => (Protocol, "RandomNumberGenerator"),
        b'H' => (Protocol, "Hashable"),
        b'h' => (Structure, "Set"),
        b'I' => (Structure, "DefaultIndices"),
        b'i' => (Structure, "Int"),
        b'J' => (Structure, "Character"),
        b'j' => (Protocol, "Numeric"),
        b'K' => (Protocol, "BidirectionalCollection"),
        b'k' => (Protocol, "RandomAccessCollection"),
        b'L' => (Protocol, "Comparable"),
        b'l' => (Protocol, "Collection"),
        b'M' => (Protocol, "MutableCollection"),
        b'm' => (Protocol, "RangeReplaceableCollection"),
        b'N' => (Structure, "ClosedRange"),
        b'n' => (Structure, "Range"),
        b'O' => (Structure, "ObjectIdentifier"),
        b'P' => (Structure, "UnsafePointer"),
        b'p' => (Structure, "UnsafeMutablePointer"),
        b'Q' => (Protocol, "Equatable"),
        b'q' => (Enum, "Optional"),
        b'R' => (Structure, "UnsafeBufferPointer"),
        b'r' => (Structure, "UnsafeMutableBufferPointer"),
        b'S' => (Structure, "String"),
        b's' => (Structure, "Substring"),
        b'T' => (Protocol, "Sequence"),
        b't' => (Protocol, "IteratorProtocol"),
        b'U' => (Protocol, "UnsignedInteger"),
        b'u' => (Structure, "UInt"),
        b'V' => (Structure, "UnsafeRawPointer"),
        b'v' => (Structure, "UnsafeMutableRawPointer"),
        b'W' => (Structure, "UnsafeRawBufferPointer"),
        b'w' => (Structure, "UnsafeMutableRawBufferPointer"),
        b'X' => (Protocol, "RangeExpression"),
        b'x' => (Protocol, "Strideable"),
        b'Y' => (Protocol, "RawRepresentable"),
        b'y' => (Protocol, "StringProtocol"),
        b'Z' => (Protocol, "SignedInteger"),
        b'z' => (Protocol, "BinaryInteger"),
        _ => return None,
    })
}
