//! The macOS library's function numbering (generated from `lib/functions_macos.h`, the one
//! definition C and Rust share) and its mapping to the options' probes by name. No cfg: the
//! mapping is tested on every host.

use allocflame_core::probes::{Platform, Probe};

include!(concat!(env!("OUT_DIR"), "/functions_macos.rs"));

/// For each library function number, the index of its probe in `probes` (`None`: not asked
/// for, so its stacks are left out).
pub fn probe_index(probes: &[Probe]) -> Vec<Option<usize>> {
    crate::shm::probe_index(&FUNCTIONS, probes)
}

/// The first of `probes` the library does not interpose (a user probe, another library).
pub fn foreign_probe(probes: &[Probe]) -> Option<&Probe> {
    crate::shm::foreign_probe(&FUNCTIONS, Platform::MacOs, probes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use allocflame_core::probes::catalog;

    #[test]
    fn the_numbering_holds_the_macos_catalog_exactly() {
        let catalog = catalog(Platform::MacOs);
        let mut ours: Vec<&str> = FUNCTIONS.to_vec();
        let mut theirs: Vec<&str> = catalog.iter().map(|p| p.function.as_str()).collect();
        ours.sort_unstable();
        theirs.sort_unstable();
        assert_eq!(ours, theirs);
        assert!(foreign_probe(&catalog).is_none());
    }

    #[test]
    fn numbers_map_to_the_probes_by_name() {
        let catalog = catalog(Platform::MacOs);
        // Reversed, so that the two orders differ.
        let probes: Vec<Probe> = catalog.iter().rev().cloned().collect();
        let index = probe_index(&probes);
        for (n, f) in FUNCTIONS.iter().enumerate() {
            assert_eq!(probes[index[n].unwrap()].function, *f);
        }
        let only_malloc = vec![catalog[0].clone()];
        let index = probe_index(&only_malloc);
        assert_eq!(index[0], Some(0));
        assert!(index[1..].iter().all(Option::is_none));
        let user: Probe = "libswiftCore.dylib:swift_allocObject:1".parse().unwrap();
        assert_eq!(foreign_probe(std::slice::from_ref(&user)), Some(&user));
    }
}
