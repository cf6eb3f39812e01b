//! Rendering errors keep what went wrong underneath: a failing writer's I/O error is the source
//! of `Error::Render`, so a caller can tell a closed pipe from a full disk.

use std::io::{self, Write};

use allocflame_core::render::{self, RenderOptions};
use allocflame_core::{Error, Profile, Weight};

/// A writer that fails as a closed pipe does.
struct ClosedPipe;

impl Write for ClosedPipe {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::ErrorKind::BrokenPipe.into())
    }
    fn flush(&mut self) -> io::Result<()> {
        Err(io::ErrorKind::BrokenPipe.into())
    }
}

fn profile() -> Profile {
    let mut p = Profile::new();
    p.add(["prog", "main", "malloc"], Weight::new(3, 48));
    p
}

#[test]
fn a_failing_writer_is_a_render_error_with_its_io_error() {
    let err = render::flamegraph(&profile(), &RenderOptions::default(), ClosedPipe).unwrap_err();
    assert!(matches!(err, Error::Render(_)), "{err:?}");
    assert_eq!(
        err.io_error().map(io::Error::kind),
        Some(io::ErrorKind::BrokenPipe),
        "{err:?}"
    );
    let err = render::differential(
        &profile(),
        &profile(),
        &RenderOptions::default(),
        ClosedPipe,
    )
    .unwrap_err();
    assert_eq!(
        err.io_error().map(io::Error::kind),
        Some(io::ErrorKind::BrokenPipe),
        "{err:?}"
    );
}
