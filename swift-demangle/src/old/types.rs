//! Old-mangling types: the type grammar, function types, bound generic
//! arguments, archetypes and SIL implementation function types.

use crate::node::{Kind, NodeId};

use super::Old;

impl Old<'_> {
    pub(super) fn ty(&mut self) -> Option<NodeId> {
        self.enter()?;
        let r = self.ty_inner();
        self.leave();
        r
    }

    pub(super) fn function_type(&mut self, k: Kind) -> Option<NodeId> {
        let f = self.a.node(k)?;
        if self.next_if(b'z') {
            let t = self.a.node(Kind::ThrowsAnnotation)?;
            self.a.add(f, t);
        }
        let args = self.ty()?;
        let a = self.a.with(Kind::ArgumentTuple, &[args])?;
        let ret = self.ty()?;
        let r = self.a.with(Kind::ReturnType, &[ret])?;
        self.a.add(f, a);
        self.a.add(f, r);
        self.ty_node(f)
    }

    pub(super) fn ty_inner(&mut self) -> Option<NodeId> {
        let c = self.peek();
        match c {
            b'B' => {
                self.next();
                let name: String = match self.next() {
                    b'b' => "Builtin.BridgeObject".into(),
                    b'B' => "Builtin.UnsafeValueBuffer".into(),
                    b'f' => {
                        let n = self.natural()?;
                        if !self.next_if(b'_') || n == 0 || n > 4096 {
                            return None;
                        }
                        format!("Builtin.FPIEEE{n}")
                    }
                    b'i' => {
                        let n = self.natural()?;
                        if !self.next_if(b'_') || n == 0 || n > 4096 {
                            return None;
                        }
                        format!("Builtin.Int{n}")
                    }
                    b'v' => {
                        let n = self.natural()?;
                        if n == 0 || n > 4096 {
                            return None;
                        }
                        let elt = self.ty()?;
                        let e = self.a.skip_type(elt);
                        if self.a.kind(e) != Kind::BuiltinTypeName {
                            return None;
                        }
                        let t = self.a.text(e).strip_prefix("Builtin.")?.to_string();
                        format!("Builtin.Vec{n}x{t}")
                    }
                    b'O' => "Builtin.UnknownObject".into(),
                    b'o' => "Builtin.NativeObject".into(),
                    b'p' => "Builtin.RawPointer".into(),
                    b't' => "Builtin.SILToken".into(),
                    b'w' => "Builtin.Word".into(),
                    _ => return None,
                };
                let n = self.a.text_node(Kind::BuiltinTypeName, &name)?;
                self.ty_node(n)
            }
            b'a' => {
                self.next();
                let ctx = self.context()?;
                let name = self.decl_name()?;
                let n = self.a.with(Kind::TypeAlias, &[ctx, name])?;
                let t = self.ty_node(n)?;
                self.add_sub(t);
                Some(t)
            }
            b'b' => {
                self.next();
                self.function_type(Kind::ObjCBlock)
            }
            b'c' => {
                self.next();
                self.function_type(Kind::CFunctionPointer)
            }
            b'D' => {
                self.next();
                let t = self.ty()?;
                let n = self.a.with(Kind::DynamicSelf, &[t])?;
                self.ty_node(n)
            }
            b'E' => {
                self.next();
                if !self.next_if_str(b"RR") {
                    return None;
                }
                let n = self.a.node(Kind::ErrorType)?;
                self.ty_node(n)
            }
            b'F' | b'f' | b'K' => {
                self.next();
                let k = match c {
                    b'F' => Kind::FunctionType,
                    b'f' => Kind::UncurriedFunctionType,
                    _ => Kind::AutoClosureType,
                };
                self.function_type(k)
            }
            b'G' => {
                self.next();
                let base = self.ty()?;
                let nominal = self.a.skip_type(base);
                let b = self.bound_generic_args(nominal, 0)?;
                self.ty_node(b)
            }
            b'M' => {
                self.next();
                let t = self.ty()?;
                let n = self.a.with(Kind::Metatype, &[t])?;
                self.ty_node(n)
            }
            b'P' => {
                self.next();
                if self.next_if(b'M') {
                    let t = self.ty()?;
                    let n = self.a.with(Kind::ExistentialMetatype, &[t])?;
                    return self.ty_node(n);
                }
                let list = self.a.node(Kind::TypeList)?;
                while !self.next_if(b'_') {
                    let p = self.protocol_name()?;
                    let t = self.ty_node(p)?;
                    self.a.add(list, t);
                    if self.pos >= self.s.len() || self.a.num_children(list) > 256 {
                        return None;
                    }
                }
                let n = self.a.with(Kind::ProtocolList, &[list])?;
                self.ty_node(n)
            }
            b'Q' => {
                self.next();
                // Archetypes: `Q<index>` → A, B, …; `Qd<d><i>`.
                let t = self.generic_param_type_q()?;
                Some(t)
            }
            b'q' => {
                self.next();
                self.generic_param_type()
            }
            b'x' => {
                self.next();
                let p = self.a.node(Kind::DependentGenericParamType)?;
                let d = self.a.index_node(Kind::Index, 0)?;
                let i = self.a.index_node(Kind::Index, 0)?;
                self.a.add(p, d);
                self.a.add(p, i);
                self.ty_node(p)
            }
            b'w' => {
                self.next();
                self.assoc_simple()
            }
            b'W' => {
                self.next();
                self.assoc_compound()
            }
            b'R' => {
                self.next();
                let t = self.ty()?;
                let n = self.a.with(Kind::InOut, &[t])?;
                self.ty_node(n)
            }
            b'k' => {
                self.next();
                let t = self.ty()?;
                let n = self.a.with(Kind::NoDerivative, &[t])?;
                self.ty_node(n)
            }
            b'S' => {
                let s = self.substitution()?;
                if self.a.kind(s) == Kind::Module {
                    // A module starts a nominal type's context only after C/V/O.
                    return None;
                }
                if self.a.kind(s) == Kind::Type {
                    Some(s)
                } else {
                    self.ty_node(s)
                }
            }
            b'T' | b't' => {
                self.next();
                let tuple = self.a.node(Kind::Tuple)?;
                while !self.next_if(b'_') {
                    let elt = self.a.node(Kind::TupleElement)?;
                    if self.peek().is_ascii_digit()
                        || (self.peek() == b'X' && self.peek_at(1).is_ascii_digit())
                    {
                        let id = self.identifier()?;
                        let s = self.a.text(id).to_string();
                        let n = self.a.text_node(Kind::TupleElementName, &s)?;
                        self.a.add(elt, n);
                    }
                    let t = self.ty()?;
                    self.a.add(elt, t);
                    self.a.add(tuple, elt);
                    if self.pos >= self.s.len() || self.a.num_children(tuple) > 256 {
                        return None;
                    }
                }
                if c == b't' {
                    if let Some(&last) = self.a.children(tuple).last() {
                        let v = self.a.node(Kind::VariadicMarker)?;
                        self.a.add(last, v);
                    }
                }
                self.ty_node(tuple)
            }
            b'u' => {
                self.next();
                let sig = self.generic_signature()?;
                let t = self.ty()?;
                let n = self.a.with(Kind::DependentGenericType, &[sig, t])?;
                self.ty_node(n)
            }
            b'X' => {
                self.next();
                match self.next() {
                    b'o' | b'u' | b'w' => {
                        let k = match self.s[self.pos - 1] {
                            b'o' => Kind::Unowned,
                            b'u' => Kind::Unmanaged,
                            _ => Kind::Weak,
                        };
                        let t = self.ty()?;
                        let n = self.a.with(k, &[t])?;
                        self.ty_node(n)
                    }
                    b'b' => {
                        let t = self.ty()?;
                        let n = self.a.with(Kind::SILBoxType, &[t])?;
                        self.ty_node(n)
                    }
                    b'M' => {
                        let r = match self.next() {
                            b't' => "@thin",
                            b'T' => "@thick",
                            b'o' => "@objc_metatype",
                            _ => return None,
                        };
                        let rn = self.a.text_node(Kind::MetatypeRepresentation, r)?;
                        let t = self.ty()?;
                        let n = self.a.with(Kind::Metatype, &[rn, t])?;
                        self.ty_node(n)
                    }
                    b'F' => self.impl_function_type(),
                    _ => None,
                }
            }
            b'C' | b'V' | b'O' => self.nominal_type(),
            _ => None,
        }
    }

    /// Generic arguments, outermost type first, one `_`-terminated list per
    /// nesting level.
    pub(super) fn bound_generic_args(&mut self, nominal: NodeId, depth: u32) -> Option<NodeId> {
        if depth > 32 {
            return None;
        }
        let k = self.a.kind(nominal);
        let bound_kind = match k {
            Kind::Class => Kind::BoundGenericClass,
            Kind::Structure => Kind::BoundGenericStructure,
            Kind::Enum => Kind::BoundGenericEnum,
            _ => return None,
        };
        let mut nominal = nominal;
        let parent = self.a.child(nominal, 0)?;
        if matches!(
            self.a.kind(parent),
            Kind::Class | Kind::Structure | Kind::Enum
        ) {
            let bp = self.bound_generic_args(parent, depth + 1)?;
            let nn = self.a.with(k, &[bp])?;
            for i in 1..self.a.num_children(nominal) {
                let c = self.a.child(nominal, i)?;
                self.a.add(nn, c);
            }
            nominal = nn;
        }
        let list = self.a.node(Kind::TypeList)?;
        while !self.next_if(b'_') {
            let t = self.ty()?;
            self.a.add(list, t);
            if self.pos >= self.s.len() || self.a.num_children(list) > 256 {
                return None;
            }
        }
        if self.a.num_children(list) == 0 {
            return Some(nominal);
        }
        let t = self.ty_node(nominal)?;
        self.a.with(bound_kind, &[t, list])
    }

    pub(super) fn generic_param_type_q(&mut self) -> Option<NodeId> {
        if self.next_if(b'u') {
            let n = self.a.node(Kind::OpaqueReturnType)?;
            return self.ty_node(n);
        }
        let (depth, index) = if self.next_if(b'd') {
            let d = self.index()? + 1;
            let i = self.index()?;
            (d, i)
        } else {
            (0, self.index()?)
        };
        let p = self.a.node(Kind::DependentGenericParamType)?;
        let d = self.a.index_node(Kind::Index, depth)?;
        let i = self.a.index_node(Kind::Index, index)?;
        self.a.add(p, d);
        self.a.add(p, i);
        self.ty_node(p)
    }

    pub(super) fn impl_function_type(&mut self) -> Option<NodeId> {
        let f = self.a.node(Kind::ImplFunctionType)?;
        let cc = match self.next() {
            b'e' => {
                let e = self.a.node(Kind::ImplEscaping)?;
                self.a.add(f, e);
                self.next()
            }
            c => c,
        };
        let callee = match cc {
            b't' => "@convention(thin)",
            b'o' => "@callee_owned",
            b'g' => "@callee_guaranteed",
            b'd' => "@callee_unowned",
            _ => return None,
        };
        let n = self.a.text_node(Kind::ImplConvention, callee)?;
        self.a.add(f, n);
        // Function attributes: `Cb` block, `Cc` c, `Cm` method, `CO` objc method, `Cw` witness.
        if self.next_if(b'C') {
            let conv = match self.next() {
                b'b' => "block",
                b'c' => "c",
                b'm' => "method",
                b'O' => "objc_method",
                b'w' => "witness_method",
                _ => return None,
            };
            let fc = self.a.node(Kind::ImplFunctionConvention)?;
            let name = self.a.text_node(Kind::ImplFunctionConventionName, conv)?;
            self.a.add(fc, name);
            self.a.add(f, fc);
        }
        if self.next_if(b'G') {
            let sig = self.generic_signature()?;
            self.a.add(f, sig);
        }
        if !self.next_if(b'_') {
            return None;
        }
        // Parameters, then `_`, then results, then `_`.
        while !self.next_if(b'_') {
            let p = self.impl_param(Kind::ImplParameter, false)?;
            self.a.add(f, p);
            if self.pos >= self.s.len() {
                return None;
            }
        }
        while !self.next_if(b'_') {
            let r = self.impl_param(Kind::ImplResult, true)?;
            self.a.add(f, r);
            if self.pos >= self.s.len() {
                return None;
            }
        }
        self.ty_node(f)
    }

    pub(super) fn impl_param(&mut self, k: Kind, result: bool) -> Option<NodeId> {
        let mut kind = k;
        let conv = if result && self.next_if_str(b"zo") {
            kind = Kind::ImplErrorResult;
            "@owned"
        } else {
            match self.next() {
                b'i' => {
                    if result {
                        "@out"
                    } else {
                        "@in"
                    }
                }
                b'l' => "@inout",
                b'L' => "@inout_aliasable",
                b'G' => "@in_guaranteed",
                b'e' => "@in_constant",
                b'o' => "@owned",
                b'g' => "@guaranteed",
                b'd' => "@unowned",
                b'D' => "@unowned_inner_pointer",
                b'a' => "@autoreleased",
                b'r' => "@out",
                _ => return None,
            }
        };
        let c = self.a.text_node(Kind::ImplConvention, conv)?;
        let t = self.ty()?;
        self.a.with(kind, &[c, t])
    }
}
