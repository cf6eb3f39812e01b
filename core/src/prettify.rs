//! Prettify rules.
