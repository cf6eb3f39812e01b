// A Rust program whose `fill_vectors` allocates N boxes through the global allocator (malloc).
// Usage: rust_alloc N
#[inline(never)]
fn fill_vectors(n: usize) -> usize {
    let mut total = 0;
    for i in 0..n {
        let b = std::hint::black_box(Box::new([i as u64; 4]));
        total += b[0] as usize;
    }
    total
}

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1000);
    println!("{}", fill_vectors(n));
}
