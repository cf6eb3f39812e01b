//! `cargo run --example demangle -- [--simplified] SYMBOL…`
fn main() {
    let mut opts = swift_demangle::Options::default();
    for a in std::env::args().skip(1) {
        if a == "--simplified" {
            opts.simplified = true;
            continue;
        }
        println!("{}", swift_demangle::demangle(&a, &opts).unwrap_or(a));
    }
}
