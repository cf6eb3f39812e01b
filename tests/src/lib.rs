//! Helpers for the end-to-end tests: building test programs, running them, reading results.
