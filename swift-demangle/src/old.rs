//! Parser for the pre-Swift-4 mangling (`_T…`, `_Tt…`).

use crate::node::{Arena, NodeId};

pub(crate) fn parse_symbol(_a: &mut Arena, _input: &[u8]) -> Option<NodeId> {
    None
}

pub(crate) fn parse_type_symbol(_a: &mut Arena, _input: &[u8]) -> Option<NodeId> {
    None
}
