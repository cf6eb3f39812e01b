//! Entities: functions (`f…`), variables (`v`), subscripts (`i`),
//! accessors, macro expansions and value witnesses (`w…`).

use crate::node::{Kind, NodeId};

use super::kinds::is_decl_name;
use super::Parser;

impl Parser<'_> {
    pub(super) fn accessor(&mut self, child: NodeId) -> Option<NodeId> {
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

    pub(super) fn function_entity(&mut self) -> Option<NodeId> {
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

    pub(super) fn macro_expansion(&mut self) -> Option<NodeId> {
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

    pub(super) fn entity(&mut self, k: Kind) -> Option<NodeId> {
        let t = self.pop_kind(Kind::Type)?;
        let labels = self.pop_function_param_labels(Some(t));
        let name = self.pop_if(is_decl_name)?;
        let ctx = self.pop_context()?;
        match labels {
            Some(l) => self.with(k, &[ctx, name, l, t]),
            None => self.with(k, &[ctx, name, t]),
        }
    }

    pub(super) fn variable(&mut self) -> Option<NodeId> {
        let v = self.entity(Kind::Variable)?;
        self.accessor(v)
    }

    pub(super) fn subscript(&mut self) -> Option<NodeId> {
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

    pub(super) fn value_witness(&mut self) -> Option<NodeId> {
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
}
