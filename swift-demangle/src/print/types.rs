//! Types: tuples, builtins, ownership and reference-storage wrappers, bound
//! generic types with their sugar, metatypes, existentials and protocol
//! lists, opaque types, packs and SIL boxes.

use crate::node::{Kind, NodeId};

use super::{Printer, R};

impl<'a> Printer<'a> {
    /// Prints the kinds of this module; any other kind goes on to
    /// [`Self::print_function_kind`].
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(super) fn print_type_kind(&mut self, n: NodeId, k: Kind, depth: u32, as_prefix: bool) -> R {
        use Kind::*;
        match k {
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
            TypeList => self.children(n, "", depth),
            LabelList => {}
            ErrorType => self.s("<ERROR TYPE>"),
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
            _ => return self.print_function_kind(n, k, depth, as_prefix),
        }
        None
    }

    pub(super) fn is_simple_type(&self, n: NodeId) -> bool {
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

    pub(super) fn print_bound_generic_no_sugar(&mut self, n: NodeId, depth: u32) {
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

    pub(super) fn print_bound_generic(&mut self, n: NodeId, depth: u32) {
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
}
