//! The unwind tables against libgcc's own DWARF unwinder, on this very process: from inside a
//! comparator that glibc's `qsort` calls (glibc is built without frame pointers), the walk
//! over the tables compiled from each mapped object's `.eh_frame` gives the same return
//! addresses as `_Unwind_Backtrace`, up to the thread's outermost frame.
#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

use std::collections::HashMap;
use std::ffi::c_void;
use std::path::PathBuf;

use allocflame_backend_ebpf::unwind::{walk, Module, Regs, Stop, Table};
use object::{Object, ObjectSegment};

extern "C" {
    fn _Unwind_Backtrace(
        trace: extern "C" fn(*mut c_void, *mut c_void) -> i32,
        arg: *mut c_void,
    ) -> i32;
    fn _Unwind_GetIP(context: *mut c_void) -> usize;
    fn qsort(
        base: *mut c_void,
        n: usize,
        size: usize,
        compare: extern "C" fn(*const c_void, *const c_void) -> i32,
    );
    fn process_vm_readv(
        pid: i32,
        local: *const [usize; 2],
        liovcnt: u64,
        remote: *const [usize; 2],
        riovcnt: u64,
        flags: u64,
    ) -> isize;
    fn getpid() -> i32;
}

extern "C" fn collect(context: *mut c_void, arg: *mut c_void) -> i32 {
    // SAFETY: `arg` is the `Vec` that `capture` passed, alive for the whole backtrace.
    let frames = unsafe { &mut *(arg as *mut Vec<u64>) };
    // SAFETY: `context` is the context libgcc hands its callback.
    frames.push(unsafe { _Unwind_GetIP(context) } as u64);
    0
}

/// Reads 8 bytes of this process at `addr`, or `None` where nothing is mapped (a bad rule must
/// fail the walk, not crash the test).
fn read(addr: u64) -> Option<u64> {
    let mut word = 0u64;
    let local = [&mut word as *mut u64 as usize, 8];
    let remote = [addr as usize, 8];
    // SAFETY: one local buffer of 8 bytes, owned here; the kernel checks the remote range.
    let n = unsafe { process_vm_readv(getpid(), &local, 1, &remote, 1, 0) };
    (n == 8).then_some(word)
}

/// The executable mappings of this process with their objects' tables.
struct Mapped {
    tables: HashMap<PathBuf, Table>,
    maps: Vec<(u64, u64, u64, PathBuf)>,
}

impl Mapped {
    fn new() -> Mapped {
        let mut tables = HashMap::new();
        let mut maps = Vec::new();
        for line in std::fs::read_to_string("/proc/self/maps").unwrap().lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 6 || !f[1].contains('x') || !f[5].starts_with('/') {
                continue;
            }
            let (s, e) = f[0].split_once('-').unwrap();
            let (start, end) = (
                u64::from_str_radix(s, 16).unwrap(),
                u64::from_str_radix(e, 16).unwrap(),
            );
            let offset = u64::from_str_radix(f[2], 16).unwrap();
            let path = PathBuf::from(f[5]);
            let Ok(data) = std::fs::read(&path) else {
                continue;
            };
            let Ok(file) = object::File::parse(&*data) else {
                continue;
            };
            // The object's virtual address at this mapping's file offset: a mapping starts at
            // its segment's file offset rounded down to the page.
            let Some(vaddr) = file.segments().find_map(|seg| {
                let (off, _) = seg.file_range();
                (off & !0xfff == offset).then(|| seg.address() - (off - offset))
            }) else {
                continue;
            };
            if !tables.contains_key(&path) {
                tables.insert(path.clone(), Table::from_elf(&data).unwrap());
            }
            maps.push((start, end, start - vaddr, path));
        }
        Mapped { tables, maps }
    }

    fn modules(&self) -> Vec<Module<'_>> {
        self.maps
            .iter()
            .map(|(start, end, bias, path)| Module {
                start: *start,
                end: *end,
                bias: *bias,
                table: &self.tables[path],
            })
            .collect()
    }
}

struct Captured {
    ours: Vec<u64>,
    stop: Stop,
    libgcc: Vec<u64>,
}

thread_local! {
    static MAPPED: std::cell::OnceCell<Mapped> = const { std::cell::OnceCell::new() };
    static CAPTURED: std::cell::RefCell<Option<Captured>> = const { std::cell::RefCell::new(None) };
}

/// Walks from its own registers over the tables, and asks libgcc, while every frame above is
/// alive.
#[inline(never)]
fn capture() {
    let (ip, sp, bp): (u64, u64, u64);
    // SAFETY: reads three registers, writes nothing else.
    unsafe {
        std::arch::asm!(
            "lea {ip}, [rip]",
            "mov {sp}, rsp",
            "mov {bp}, rbp",
            ip = out(reg) ip,
            sp = out(reg) sp,
            bp = out(reg) bp,
        );
    }
    let (ours, stop) = MAPPED.with(|m| {
        let m = m.get().expect("mapped before the sort");
        walk(&m.modules(), Regs { ip, sp, bp }, read, 256)
    });
    let mut libgcc: Vec<u64> = Vec::new();
    // SAFETY: `collect` only pushes to the `Vec` passed, which outlives the call.
    unsafe { _Unwind_Backtrace(collect, &mut libgcc as *mut Vec<u64> as *mut c_void) };
    CAPTURED.with(|c| *c.borrow_mut() = Some(Captured { ours, stop, libgcc }));
}

extern "C" fn compare(a: *const c_void, b: *const c_void) -> i32 {
    // SAFETY: qsort passes pointers to elements of the `u32` array being sorted.
    let (a, b) = unsafe { (*(a as *const u32), *(b as *const u32)) };
    if CAPTURED.with(|c| c.borrow().is_none()) {
        capture();
    }
    a.cmp(&b) as i32
}

#[inline(never)]
fn sort_through_glibc() {
    let mut v: Vec<u32> = (0..64).rev().collect();
    // SAFETY: a valid array of 64 u32 and a comparator of u32.
    unsafe { qsort(v.as_mut_ptr().cast(), v.len(), 4, compare) };
    assert_eq!(v, (0..64).collect::<Vec<u32>>());
}

#[test]
fn the_tables_unwind_as_libgcc_does_through_glibc_without_frame_pointers() {
    MAPPED.with(|m| {
        let _ = m.set(Mapped::new());
    });
    sort_through_glibc();
    let Captured {
        ours,
        stop,
        mut libgcc,
    } = CAPTURED.with(|c| c.borrow_mut().take()).unwrap();
    // libgcc reports the end of the stack as one more frame at address 0.
    while libgcc.last() == Some(&0) {
        libgcc.pop();
    }
    // libgcc's first frames are its own and `capture`'s; from the first return address on,
    // both walks must agree to the end.
    let first = ours[1];
    let k = libgcc
        .iter()
        .position(|&a| a == first)
        .unwrap_or_else(|| panic!("libgcc has no {first:#x}: ours {ours:x?}, libgcc {libgcc:x?}"));
    assert_eq!(
        &ours[1..],
        &libgcc[k..],
        "ours {ours:x?}\nlibgcc {libgcc:x?}"
    );
    assert_eq!(stop, Stop::Outermost, "{ours:x?}");
    // capture ← compare ← glibc's qsort (one frame or more) ← sort_through_glibc ← the test.
    assert!(ours.len() >= 6, "{ours:x?}");
}

/// The tables of the objects the BPF unwinder will need most, for the record: rows and bytes
/// (16 per row in a map).
#[test]
fn tables_of_the_system_s_libraries_compile() {
    for path in [
        "/usr/lib/x86_64-linux-gnu/libc.so.6",
        "/usr/lib/x86_64-linux-gnu/libstdc++.so.6",
        "/usr/bin/perl",
        "/usr/bin/python3",
        // The Swift runtime of the toolchain root the Swift tests make (.ci/swift-root).
        "/var/cache/allocflame/swift/usr/libexec/swift/lib/swift/linux/libswiftCore.so",
    ] {
        // libc is on every machine; the others are reported where they are.
        let Ok(data) = std::fs::read(path) else {
            assert!(!path.contains("libc.so"), "{path} is missing");
            continue;
        };
        let t = Table::from_elf(&data).unwrap();
        eprintln!(
            "{path}: {} rows ({} KiB as 16-byte rows), {} FDEs skipped",
            t.len(),
            t.len() * 16 / 1024,
            t.skipped
        );
        assert!(t.len() > 1000, "{path}");
    }
}
