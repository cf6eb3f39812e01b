//! Contexts and nominal types (`C`, `V`, `O`, `E`, builtins `B…`), tuples
//! and type lists, type manglings (`D`), the special types (`X…`: function
//! type flavours, boxes, existentials, packs…), protocol lists (`p`) and
//! type annotations (`Y…`).

use crate::node::{Kind, NodeId};

use super::kinds::{is_any_generic, is_context, is_decl_name, is_requirement};
use super::Parser;

impl Parser<'_> {
    pub(super) fn pop_module(&mut self) -> Option<NodeId> {
        if let Some(id) = self.pop_kind(Kind::Identifier) {
            return self.a.change_kind(id, Kind::Module);
        }
        self.pop_kind(Kind::Module)
    }

    pub(super) fn pop_context(&mut self) -> Option<NodeId> {
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

    pub(super) fn pop_type_child(&mut self) -> Option<NodeId> {
        let t = self.pop_kind(Kind::Type)?;
        if self.a.num_children(t) != 1 {
            return None;
        }
        self.a.child(t, 0)
    }

    pub(super) fn pop_type_any_generic(&mut self) -> Option<NodeId> {
        let c = self.pop_type_child()?;
        if is_any_generic(self.a.kind(c)) {
            Some(c)
        } else {
            None
        }
    }

    pub(super) fn any_generic_type(&mut self, k: Kind) -> Option<NodeId> {
        let name = self.pop_if(is_decl_name)?;
        let ctx = self.pop_context()?;
        let n = self.with(k, &[ctx, name])?;
        let t = self.ty(n)?;
        self.add_sub(t);
        Some(t)
    }

    pub(super) fn extension_context(&mut self) -> Option<NodeId> {
        let sig = self.pop_kind(Kind::DependentGenericSignature);
        let module = self.pop_module()?;
        let ty = self.pop_type_any_generic()?;
        let e = self.with(Kind::Extension, &[module, ty])?;
        if let Some(s) = sig {
            self.a.add(e, s);
        }
        Some(e)
    }

    pub(super) fn builtin_type(&mut self) -> Option<NodeId> {
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

    pub(super) fn type_mangling(&mut self) -> Option<NodeId> {
        let t = self.pop_kind(Kind::Type)?;
        let labels = self.pop_function_param_labels(Some(t));
        let tm = self.a.node(Kind::TypeMangling)?;
        if let Some(l) = labels {
            self.a.add(tm, l);
        }
        self.a.add(tm, t);
        Some(tm)
    }

    pub(super) fn pop_tuple(&mut self) -> Option<NodeId> {
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

    pub(super) fn pop_type_list(&mut self) -> Option<NodeId> {
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

    pub(super) fn special_type(&mut self) -> Option<NodeId> {
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

    pub(super) fn metatype_repr(&mut self) -> Option<NodeId> {
        let s = match self.next() {
            b't' => "@thin",
            b'T' => "@thick",
            b'o' => "@objc_metatype",
            _ => return None,
        };
        self.a.text_node(Kind::MetatypeRepresentation, s)
    }

    pub(super) fn protocol_list(&mut self) -> Option<NodeId> {
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

    pub(super) fn type_annotation(&mut self) -> Option<NodeId> {
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
}
