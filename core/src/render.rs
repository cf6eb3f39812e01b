//! Rendering through inferno: flame graphs, flame charts and differential flame graphs.

use std::io::Write;

use crate::error::{Error, Result};
use crate::profile::{Profile, WeightKind};

/// How a flame graph is drawn. Construct with `Default` and set what differs.
#[derive(Clone, Debug, Default)]
pub struct RenderOptions {
    /// The title at the top. Default is "Allocation flame graph".
    pub title: Option<String>,
    /// A line under the title. Default is none.
    pub subtitle: Option<String>,
    /// What the widths stand for; also names the count in tooltips. Default is allocations.
    pub weight: WeightKind,
    /// Draw a flame chart: stacks left to right in order of first appearance, not merged by
    /// name. Default is `false`.
    pub flamechart: bool,
    /// Width of the image in pixels. Default is `None`: inferno's fluid width, laid out at
    /// 1200 pixels and stretched to the window's width when opened in a browser.
    pub width: Option<usize>,
    /// Draw an icicle with the roots at the top. [`crate::pipeline::Output::svg`] also cuts
    /// each stack at its allocation site and turns it over, so that the sites are the roots and
    /// their callers hang below. Default is `false`.
    pub inverted: bool,
}

impl RenderOptions {
    fn inferno(&self) -> inferno::flamegraph::Options<'static> {
        let mut o = inferno::flamegraph::Options::default();
        o.title = self
            .title
            .clone()
            .unwrap_or_else(|| "Allocation flame graph".to_owned());
        o.subtitle = self.subtitle.clone();
        o.count_name = self.weight.count_name().to_owned();
        o.flame_chart = self.flamechart;
        o.image_width = self.width;
        if self.inverted {
            o.direction = inferno::flamegraph::Direction::Inverted;
        }
        // Allocation graphs are about memory: use inferno's memory palette.
        o.colors = inferno::flamegraph::color::Palette::Basic(
            inferno::flamegraph::color::BasicPalette::Mem,
        );
        o
    }
}

/// Draws `profile` as an SVG flame graph (or flame chart) into `out`.
///
/// A profile without any weight of the chosen kind is an [`Error::Empty`]: an empty SVG would
/// look as if all were well.
pub fn flamegraph(profile: &Profile, options: &RenderOptions, out: impl Write) -> Result<()> {
    let kind = options.weight;
    let lines: Vec<String> = if options.flamechart {
        profile.folded_lines_in_order()
    } else {
        profile.folded_lines()
    }
    .into_iter()
    .filter(|(_, w)| w.get(kind) > 0)
    .map(|(l, w)| format!("{l} {}", w.get(kind)))
    .collect();
    if lines.is_empty() {
        return Err(Error::Empty {
            hint: format!("the profile has no {} to draw", kind.count_name()),
        });
    }
    let mut o = options.inferno();
    inferno::flamegraph::from_lines(&mut o, lines.iter().map(String::as_str), out)
        .map_err(Error::Render)
}

/// Draws a differential flame graph: the shape of `after`, coloured by how each frame changed
/// since `before` (red grew, blue shrank), into `out`.
pub fn differential(
    before: &Profile,
    after: &Profile,
    options: &RenderOptions,
    out: impl Write,
) -> Result<()> {
    let kind = options.weight;
    let mut a = Vec::new();
    let mut b = Vec::new();
    before
        .write_folded(&mut a, kind)
        .and_then(|_| after.write_folded(&mut b, kind))
        .map_err(Error::Render)?;
    if a.is_empty() && b.is_empty() {
        return Err(Error::Empty {
            hint: "both profiles are empty".into(),
        });
    }
    let mut diff = Vec::new();
    inferno::differential::from_readers(
        inferno::differential::Options::default(),
        &a[..],
        &b[..],
        &mut diff,
    )
    .map_err(Error::Render)?;
    // inferno writes back the folded text it was given, which is UTF-8.
    let text = String::from_utf8(diff)
        .map_err(|e| Error::Render(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
    let mut o = options.inferno();
    o.colors = inferno::flamegraph::color::Palette::default();
    inferno::flamegraph::from_lines(&mut o, text.lines(), out).map_err(Error::Render)
}
