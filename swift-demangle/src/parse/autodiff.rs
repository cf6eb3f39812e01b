//! Automatic differentiation: derivative functions and their thunks
//! (`TJ…`, `TJS`, `TJO`, `TJV`), differentiability witnesses (`WJ`) and
//! the index subsets they carry.

use crate::node::{Kind, NodeId};

use super::Parser;

impl Parser<'_> {
    pub(super) fn autodiff_kind(&mut self) -> Option<NodeId> {
        let c = self.next();
        if !matches!(c, b'f' | b'r' | b'd' | b'p') {
            return None;
        }
        self.a.index_node(Kind::AutoDiffFunctionKind, u64::from(c))
    }

    pub(super) fn index_subset(&mut self) -> Option<NodeId> {
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

    pub(super) fn pop_all_reversed(&mut self, into: NodeId) {
        let start = self.a.num_children(into);
        while let Some(n) = self.pop() {
            self.a.add(into, n);
        }
        self.a.reverse_children(into, start);
    }

    pub(super) fn autodiff_function(&mut self, k: Kind) -> Option<NodeId> {
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

    pub(super) fn autodiff_subset_parameters_thunk(&mut self) -> Option<NodeId> {
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

    pub(super) fn autodiff_self_reordering_thunk(&mut self) -> Option<NodeId> {
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

    pub(super) fn differentiability_witness(&mut self) -> Option<NodeId> {
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
}
