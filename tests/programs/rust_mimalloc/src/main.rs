//! N boxes and N/4 zeroed vectors from known functions, all through mimalloc as the global
//! allocator. Usage: rust_mimalloc N
use mimalloc::MiMalloc;

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

#[inline(never)]
fn make_box(i: usize) -> Box<[u64; 4]> {
    Box::new([i as u64; 4])
}

#[inline(never)]
fn make_zeroed(i: usize) -> Vec<u8> {
    vec![0u8; 64 + (i & 7)]
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1000);
    for i in 0..n {
        std::hint::black_box(make_box(i));
    }
    for i in 0..n / 4 {
        std::hint::black_box(make_zeroed(i));
    }
}
