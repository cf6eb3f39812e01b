//! Entities and their contexts: modules, nominal types, extensions,
//! functions, variables, subscripts, closures, initializers, accessors,
//! constructors and destructors, and the names they carry.

use crate::node::{Kind, NodeId};

use super::{Printer, TypePr, R};

impl<'a> Printer<'a> {
    /// Prints the kinds of this module; any other kind goes on to
    /// [`Self::print_type_kind`].
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(super) fn print_entity_kind(
        &mut self,
        n: NodeId,
        k: Kind,
        depth: u32,
        as_prefix: bool,
    ) -> R {
        use Kind::*;
        match k {
            Static => {
                self.s("static ");
                self.pc(n, 0, depth);
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
            NonObjCAttribute => self.s("@nonobjc "),
            ObjCAttribute => self.s("@objc "),
            DirectMethodReferenceAttribute => self.s("super "),
            DynamicAttribute => self.s("dynamic "),
            VTableAttribute => self.s("override "),
            InfixOperator | PrefixOperator | PostfixOperator => {
                let t = self.text(n);
                self.s(t);
                self.s(match k {
                    InfixOperator => " infix",
                    PrefixOperator => " prefix",
                    _ => " postfix",
                });
            }
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
            _ => return self.print_type_kind(n, k, depth, as_prefix),
        }
        None
    }

    pub(super) fn print_context(&self, ctx: NodeId) -> bool {
        if !self.o.qualify {
            return false;
        }
        if self.k(ctx) == Kind::Module && self.text(ctx).starts_with("__lldb_expr_") {
            return false;
        }
        true
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn print_entity(
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

    pub(super) fn need_space_before_type(&self, t: NodeId) -> bool {
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

    pub(super) fn abstract_storage(
        &mut self,
        n: NodeId,
        as_prefix: bool,
        extra: &str,
        depth: u32,
    ) -> R {
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

    pub(super) fn print_opt_index(&mut self, n: NodeId, i: usize, depth: u32) {
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

    pub(super) fn storage_child(
        &mut self,
        n: NodeId,
        as_prefix: bool,
        extra: &str,
        depth: u32,
    ) -> R {
        let c = self.ch(n, 0)?;
        self.abstract_storage(c, as_prefix, extra, depth)
    }
}
