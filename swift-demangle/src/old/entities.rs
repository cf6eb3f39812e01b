//! Old-mangling entities and names: functions, variables, accessors and
//! other entities, declaration names, identifiers (with punycode),
//! modules, contexts, nominal types, protocols and substitutions.

use crate::node::{Kind, NodeId};
use crate::punycode;

use super::Old;

impl Old<'_> {
    pub(super) fn entity(&mut self) -> Option<NodeId> {
        self.enter()?;
        let r = self.entity_inner();
        self.leave();
        r
    }

    pub(super) fn entity_inner(&mut self) -> Option<NodeId> {
        let is_static = self.next_if(b'Z');
        let e = match self.peek() {
            b'F' | b'v' | b'I' | b'i' => {
                let kind_c = self.next();
                let ctx = self.context()?;
                self.entity_name(kind_c, ctx)?
            }
            _ => {
                let t = self.nominal_type()?;
                self.a.skip_type(t)
            }
        };
        if is_static {
            self.a.with(Kind::Static, &[e])
        } else {
            Some(e)
        }
    }

    pub(super) fn entity_name(&mut self, kind_c: u8, ctx: NodeId) -> Option<NodeId> {
        let plain = |p: &mut Self, k: Kind| -> Option<NodeId> {
            let name = p.decl_name()?;
            let t = p.ty()?;
            p.a.with(k, &[ctx, name, t])
        };
        if kind_c == b'i' {
            // Subscript entity itself (its decl name is always `subscript`).
            let _name = self.decl_name()?;
            let t = self.ty()?;
            return self.a.with(Kind::Subscript, &[ctx, t]);
        }
        if kind_c == b'v' {
            return plain(self, Kind::Variable);
        }
        if kind_c == b'I' {
            // Initializer entities: `Iv…i` variable initializer, `IF…A_` default argument.
            let name = self.entity_name_inner(ctx)?;
            return Some(name);
        }
        self.entity_name_inner(ctx)
    }

    pub(super) fn accessor(&mut self, ctx: NodeId, k: Kind) -> Option<NodeId> {
        // Accessors of subscripts use the `i` decl name.
        let name_or_sub = if self.next_if(b'i') {
            let t = self.ty()?;
            let s = self.a.with(Kind::Subscript, &[ctx, t])?;
            return self.a.with(k, &[s]);
        } else {
            self.decl_name()?
        };
        let t = self.ty()?;
        let v = self.a.with(Kind::Variable, &[ctx, name_or_sub, t])?;
        self.a.with(k, &[v])
    }

    pub(super) fn entity_name_inner(&mut self, ctx: NodeId) -> Option<NodeId> {
        let c = self.peek();
        match c {
            b'D' | b'd' | b'E' | b'e' | b'i' | b'Z' => {
                self.next();
                let k = match c {
                    b'Z' => Kind::IsolatedDeallocator,
                    b'D' => Kind::Deallocator,
                    b'd' => Kind::Destructor,
                    b'E' => Kind::IVarDestroyer,
                    b'e' => Kind::IVarInitializer,
                    _ => Kind::Initializer,
                };
                self.a.with(k, &[ctx])
            }
            b'C' | b'c' => {
                self.next();
                let t = self.ty()?;
                let k = if c == b'C' {
                    Kind::Allocator
                } else {
                    Kind::Constructor
                };
                self.a.with(k, &[ctx, t])
            }
            b'A' => {
                self.next();
                let i = self.index()?;
                let n = self.a.index_node(Kind::Number, i)?;
                self.a.with(Kind::DefaultArgumentInitializer, &[ctx, n])
            }
            b'U' | b'u' => {
                self.next();
                let i = self.index()?;
                let n = self.a.index_node(Kind::Number, i)?;
                let t = self.ty()?;
                let k = if c == b'U' {
                    Kind::ExplicitClosure
                } else {
                    Kind::ImplicitClosure
                };
                self.a.with(k, &[ctx, n, t])
            }
            b'g' | b's' | b'm' | b'w' | b'W' | b'G' => {
                self.next();
                let k = match c {
                    b'g' => Kind::Getter,
                    b's' => Kind::Setter,
                    b'm' => Kind::MaterializeForSet,
                    b'w' => Kind::WillSet,
                    b'W' => Kind::DidSet,
                    _ => Kind::GlobalGetter,
                };
                self.accessor(ctx, k)
            }
            b'a' | b'l' => {
                self.next();
                let k = match (c, self.next()) {
                    (b'a', b'O') => Kind::OwningMutableAddressor,
                    (b'a', b'o') => Kind::NativeOwningMutableAddressor,
                    (b'a', b'p') => Kind::NativePinningMutableAddressor,
                    (b'a', b'u') => Kind::UnsafeMutableAddressor,
                    (b'l', b'O') => Kind::OwningAddressor,
                    (b'l', b'o') => Kind::NativeOwningAddressor,
                    (b'l', b'p') => Kind::NativePinningAddressor,
                    (b'l', b'u') => Kind::UnsafeAddressor,
                    _ => return None,
                };
                self.accessor(ctx, k)
            }
            _ => {
                let name = self.decl_name()?;
                let t = self.ty()?;
                self.a.with(Kind::Function, &[ctx, name, t])
            }
        }
    }

    pub(super) fn decl_name(&mut self) -> Option<NodeId> {
        if self.next_if(b'L') {
            let i = self.index()?;
            let n = self.a.index_node(Kind::Number, i)?;
            let id = self.identifier()?;
            return self.a.with(Kind::LocalDeclName, &[n, id]);
        }
        if self.next_if(b'P') {
            let d = self.identifier()?;
            let id = self.identifier()?;
            return self.a.with(Kind::PrivateDeclName, &[d, id]);
        }
        self.identifier()
    }

    pub(super) fn identifier(&mut self) -> Option<NodeId> {
        let mut puny = false;
        let mut op_kind: Option<Kind> = None;
        if self.next_if(b'X') {
            puny = true;
        }
        if self.next_if(b'o') {
            op_kind = Some(match self.next() {
                b'p' => Kind::PrefixOperator,
                b'P' => Kind::PostfixOperator,
                b'i' => Kind::InfixOperator,
                _ => return None,
            });
        }
        let n = self.natural()? as usize;
        if n == 0 {
            return None;
        }
        let end = self.pos.checked_add(n)?;
        if end > self.s.len() {
            return None;
        }
        let raw = std::str::from_utf8(&self.s[self.pos..end]).ok()?;
        self.pos = end;
        let text = if puny {
            punycode::decode(raw)?
        } else {
            raw.to_string()
        };
        let node = match op_kind {
            Some(k) => {
                let mut op = String::new();
                for ch in text.chars() {
                    if !ch.is_ascii() {
                        op.push(ch);
                        continue;
                    }
                    const TABLE: &[u8; 26] = b"& @/= >    <*!|+?%-~   ^ .";
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
                self.a.text_node(k, &op)?
            }
            None => self.a.text_node(Kind::Identifier, &text)?,
        };
        Some(node)
    }

    pub(super) fn module(&mut self) -> Option<NodeId> {
        if self.next_if(b's') {
            return self.a.text_node(Kind::Module, "Swift");
        }
        if self.peek() == b'S' {
            let s = self.substitution()?;
            let k = self.a.kind(s);
            if k != Kind::Module {
                return None;
            }
            return Some(s);
        }
        let id = self.identifier()?;
        let m = self.a.change_kind(id, Kind::Module)?;
        self.add_sub(m);
        Some(m)
    }

    pub(super) fn context(&mut self) -> Option<NodeId> {
        self.enter()?;
        let r = self.context_inner();
        self.leave();
        r
    }

    pub(super) fn context_inner(&mut self) -> Option<NodeId> {
        match self.peek() {
            b'E' => {
                self.next();
                let m = self.module()?;
                let t = self.context()?;
                self.a.with(Kind::Extension, &[m, t])
            }
            b'e' => {
                self.next();
                let m = self.module()?;
                let sig = self.generic_signature()?;
                let t = self.context()?;
                self.a.with(Kind::Extension, &[m, t, sig])
            }
            b'S' => {
                let s = self.substitution()?;
                Some(self.a.skip_type(s))
            }
            b'F' | b'I' | b'v' | b'Z' => self.entity(),
            b'C' | b'V' | b'O' | b'P' => {
                let t = self.nominal_type()?;
                Some(self.a.skip_type(t))
            }
            _ => self.module(),
        }
    }

    pub(super) fn nominal_type(&mut self) -> Option<NodeId> {
        if self.peek() == b'S' {
            return self.substitution();
        }
        let k = match self.next() {
            b'C' => Kind::Class,
            b'V' => Kind::Structure,
            b'O' => Kind::Enum,
            b'P' => Kind::Protocol,
            b'a' => Kind::TypeAlias,
            _ => return None,
        };
        let ctx = self.context()?;
        let name = self.decl_name()?;
        let n = self.a.with(k, &[ctx, name])?;
        let t = self.ty_node(n)?;
        self.add_sub(t);
        Some(t)
    }

    pub(super) fn protocol_name(&mut self) -> Option<NodeId> {
        // Protocols appear without their `P` in lists and conformances.
        if self.peek() == b'S' {
            let s = self.substitution()?;
            let inner = self.a.skip_type(s);
            if self.a.kind(inner) == Kind::Protocol {
                return Some(inner);
            }
            // A module substitution starts the protocol's context.
            if self.a.kind(inner) != Kind::Module {
                return None;
            }
            let name = self.decl_name()?;
            let p = self.a.with(Kind::Protocol, &[inner, name])?;
            let t = self.ty_node(p)?;
            self.add_sub(t);
            return Some(p);
        }
        let ctx = self.context()?;
        let name = self.decl_name()?;
        let p = self.a.with(Kind::Protocol, &[ctx, name])?;
        let t = self.ty_node(p)?;
        self.add_sub(t);
        Some(p)
    }

    pub(super) fn substitution(&mut self) -> Option<NodeId> {
        if !self.next_if(b'S') {
            return None;
        }
        let swift_type = |p: &mut Self, k: Kind, name: &str| -> Option<NodeId> {
            let m = p.a.text_node(Kind::Module, "Swift")?;
            let i = p.a.text_node(Kind::Identifier, name)?;
            let n = p.a.with(k, &[m, i])?;
            p.ty_node(n)
        };
        let c = self.next();
        let r = match c {
            b'o' => self.a.text_node(Kind::Module, "__C")?,
            b'C' => self.a.text_node(Kind::Module, "__C_Synthesized")?,
            b's' => self.a.text_node(Kind::Module, "Swift")?,
            b'a' => swift_type(self, Kind::Structure, "Array")?,
            b'b' => swift_type(self, Kind::Structure, "Bool")?,
            b'c' => swift_type(self, Kind::Structure, "UnicodeScalar")?,
            b'd' => swift_type(self, Kind::Structure, "Double")?,
            b'f' => swift_type(self, Kind::Structure, "Float")?,
            b'i' => swift_type(self, Kind::Structure, "Int")?,
            b'V' => swift_type(self, Kind::Structure, "UnsafeRawPointer")?,
            b'v' => swift_type(self, Kind::Structure, "UnsafeMutableRawPointer")?,
            b'P' => swift_type(self, Kind::Structure, "UnsafePointer")?,
            b'p' => swift_type(self, Kind::Structure, "UnsafeMutablePointer")?,
            b'Q' => swift_type(self, Kind::Enum, "ImplicitlyUnwrappedOptional")?,
            b'q' => swift_type(self, Kind::Enum, "Optional")?,
            b'R' => swift_type(self, Kind::Structure, "UnsafeBufferPointer")?,
            b'r' => swift_type(self, Kind::Structure, "UnsafeMutableBufferPointer")?,
            b'S' => swift_type(self, Kind::Structure, "String")?,
            b'u' => swift_type(self, Kind::Structure, "UInt")?,
            _ => {
                self.pos -= 1;
                let i = self.index()? as usize;
                return self.subs.get(i).copied();
            }
        };
        Some(r)
    }
}
