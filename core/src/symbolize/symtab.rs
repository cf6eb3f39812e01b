//! Nearest-symbol lookup in Mach-O and ELF files on disk with `object`: the symbolizer where
//! blazesym does not apply (macOS). A file offset becomes an address through the segment holding
//! it, and the address the name of the symbol at or below it. Universal (fat) files are read in
//! the slice whose UUID the backend recorded. No cfg: tested on every host.
//!
//! Images in the dyld shared cache have no file of their own; their frames stay
//! `library+offset` (offsets from the image's start, as `atos -l` takes them), and a note says
//! so.

use std::io::Read as _;
use std::sync::Arc;

use object::read::macho::{FatArch as _, MachOFatFile32, MachOFatFile64};
use object::{Object as _, ObjectSegment as _, ObjectSymbol as _};
use rustc_hash::FxHashMap;

use super::{hex, Symbols};
use crate::source::ObjectFile;

/// Symbolizes the offsets of every object from its file's symbol table.
pub fn symbolize_objects(objects: FxHashMap<Arc<ObjectFile>, Vec<u64>>) -> Symbols {
    let mut out = Symbols::default();
    let mut not_files = Vec::new();
    for (object, mut offsets) in objects {
        offsets.sort_unstable();
        offsets.dedup();
        let data = match &object.file {
            Some(f) => {
                let mut b = Vec::new();
                (&*f).read_to_end(&mut b).map(|_| b)
            }
            None => std::fs::read(&object.path),
        };
        let Ok(data) = data else {
            if !object.path.exists() {
                not_files.push(object.path.display().to_string());
            }
            continue;
        };
        match names(&data, object.build_id.as_deref(), &offsets) {
            Ok(found) => {
                for (offset, name) in offsets.iter().zip(found) {
                    if let Some(name) = name {
                        out.names.insert(
                            (object.clone(), *offset),
                            vec![crate::profile::Frame {
                                name,
                                location: None,
                            }],
                        );
                    }
                }
            }
            Err(Mismatch(have)) => out.notes.push(format!(
                "{} is not the file that was recorded (build-id {}, now {}): its {} addresses are left as file+offset",
                object.path.display(),
                object.build_id.as_deref().map_or_else(|| "none".into(), hex),
                have.map_or_else(|| "none".into(), |h| hex(&h)),
                offsets.len()
            )),
        }
    }
    if !not_files.is_empty() {
        not_files.sort();
        let shown: Vec<&str> = not_files.iter().take(4).map(String::as_str).collect();
        out.notes.push(format!(
            "{} libraries have no file of their own (the dyld shared cache: {}{}): their frames are left as library+offset",
            not_files.len(),
            shown.join(", "),
            if not_files.len() > shown.len() { ", …" } else { "" }
        ));
    }
    out
}

/// The recorded build-id differs from the file's (which is given, if it has one).
#[derive(Debug)]
pub struct Mismatch(pub Option<Vec<u8>>);

/// The names of the symbols covering `offsets` (file offsets) in the object file `data`, in
/// order; `build_id`: the recorded ELF build-id or Mach-O UUID, which the file must have.
/// Leading underscores of Mach-O names are taken off, so that names are those of the language
/// (`main`, `$s4main…`, `_ZN…`). A file `object` cannot read gives no names.
pub fn names(
    data: &[u8],
    build_id: Option<&[u8]>,
    offsets: &[u64],
) -> Result<Vec<Option<String>>, Mismatch> {
    let none = || vec![None; offsets.len()];
    let Some(file) = slice(data, build_id) else {
        return Ok(none());
    };
    let have = file
        .mach_uuid()
        .ok()
        .flatten()
        .map(|u| u.to_vec())
        .or_else(|| file.build_id().ok().flatten().map(<[u8]>::to_vec));
    if let Some(want) = build_id {
        if have.as_deref() != Some(want) {
            return Err(Mismatch(have));
        }
    }
    let macho = matches!(file.format(), object::BinaryFormat::MachO);
    let segments: Vec<(u64, u64, u64)> = file
        .segments()
        .map(|s| {
            let (off, size) = s.file_range();
            (off, size, s.address())
        })
        .collect();
    // Named code and data symbols, by address; assembler-local labels (`ltmp0`) left out.
    let mut symbols: Vec<(u64, &str)> = file
        .symbols()
        .filter(|s| s.is_definition())
        .filter_map(|s| Some((s.address(), s.name().ok()?)))
        .filter(|(_, n)| !n.is_empty() && !(macho && (n.starts_with('l') || n.starts_with('L'))))
        .collect();
    symbols.sort_by_key(|&(a, _)| a);
    Ok(offsets
        .iter()
        .map(|&off| {
            let &(start, _, addr) = segments
                .iter()
                .find(|&&(s, size, _)| off >= s && off - s < size)?;
            let at = addr + (off - start);
            let i = symbols.partition_point(|&(a, _)| a <= at).checked_sub(1)?;
            let name = symbols[i].1;
            let name = if macho {
                name.strip_prefix('_').unwrap_or(name)
            } else {
                name
            };
            Some(name.to_owned())
        })
        .collect())
}

/// The file in `data`: itself, or of a universal file the slice with the UUID `build_id`
/// (else the one of this host's architecture, else the first).
fn slice<'d>(data: &'d [u8], build_id: Option<&[u8]>) -> Option<object::File<'d>> {
    let slices: Vec<&[u8]> = if let Ok(fat) = MachOFatFile32::parse(data) {
        fat.arches()
            .iter()
            .filter_map(|a| a.data(data).ok())
            .collect()
    } else if let Ok(fat) = MachOFatFile64::parse(data) {
        fat.arches()
            .iter()
            .filter_map(|a| a.data(data).ok())
            .collect()
    } else {
        return object::File::parse(data).ok();
    };
    let files: Vec<object::File> = slices
        .into_iter()
        .filter_map(|s| object::File::parse(s).ok())
        .collect();
    let host = match std::env::consts::ARCH {
        "aarch64" => object::Architecture::Aarch64,
        _ => object::Architecture::X86_64,
    };
    let by_uuid = files.iter().position(|f| {
        build_id.is_some() && f.mach_uuid().ok().flatten().as_ref().map(|u| &u[..]) == build_id
    });
    let i = by_uuid
        .or_else(|| files.iter().position(|f| f.architecture() == host))
        .unwrap_or(0);
    files.into_iter().nth(i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn fixture() -> Vec<u8> {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/macho/levels.o");
        std::fs::read(path).expect("the committed fixture")
    }

    #[test]
    fn macho_offsets_name_their_functions() {
        let data = fixture();
        // Its segment starts at file offset 312; level1 at 0x0, level2 at 0x14 (README.md).
        let got = names(&data, None, &[312 + 4, 312 + 0x14 + 4, 10, 312 + 0x1000]).unwrap();
        assert_eq!(
            got,
            vec![Some("level1".into()), Some("level2".into()), None, None]
        );
    }

    #[test]
    fn a_recorded_uuid_the_file_lacks_is_a_mismatch() {
        let data = fixture();
        let Err(Mismatch(have)) = names(&data, Some(&[1; 16]), &[316]) else {
            panic!("a file without a UUID cannot be the one recorded with one");
        };
        assert_eq!(have, None);
        // Damaged input gives no names, never a panic.
        for cut in (0..data.len()).step_by(7) {
            let _ = names(&data[..cut], None, &[316]);
        }
    }

    #[test]
    fn files_not_on_disk_are_named_in_a_note() {
        let mut objects = FxHashMap::default();
        objects.insert(
            Arc::new(ObjectFile::at("/usr/lib/system/libsystem_nowhere.dylib")),
            vec![0x10],
        );
        let s = symbolize_objects(objects);
        assert!(s.names.is_empty());
        assert!(
            s.notes[0].contains("libsystem_nowhere.dylib"),
            "{:?}",
            s.notes
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    // The test looks for its own symbol: inlined into libtest's closure (which a change
    // elsewhere in the crate made the optimizer do in release builds), it has none.
    #[inline(never)]
    fn elf_offsets_name_their_functions_too() {
        // This test binary's own `main`-side symbol: the offset of this very function.
        let exe = std::fs::read("/proc/self/exe").unwrap();
        let file = object::File::parse(&exe[..]).unwrap();
        let sym = file
            .symbols()
            .find(|s| {
                s.name()
                    .is_ok_and(|n| n.contains("elf_offsets_name_their_functions_too"))
            })
            .unwrap();
        let seg = file
            .segments()
            .find(|s| sym.address() >= s.address() && sym.address() < s.address() + s.size())
            .unwrap();
        let offset = sym.address() - seg.address() + seg.file_range().0 + 1;
        let got = names(&exe, None, &[offset]).unwrap();
        assert!(
            got[0]
                .as_deref()
                .is_some_and(|n| n.contains("elf_offsets_name_their_functions_too")),
            "{got:?}"
        );
    }
}
