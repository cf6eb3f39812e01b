//! A memory-safe Swift demangler (work in progress).
