//! The `allocflame` command.
fn main() {}
