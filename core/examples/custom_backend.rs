//! A custom allocflame backend in under 100 lines.
//!
//! Some allocators log their own allocations. This backend replays such a log, one JSON object
//! per line (`{"pid": 7, "comm": "app", "fn": "malloc", "size": 64, "stack": ["malloc", "parse", "main"]}`,
//! stack leaf first), through the same [`EventSource`] contract as the kernel backends, so the
//! core symbolizes, demangles, prettifies and renders it like any recording.
//!
//! Run it: `cargo run -p allocflame-core --example custom_backend -- LOG.jsonl out.svg`

use std::collections::HashMap;

use allocflame_core::pipeline::{self, PipelineOptions};
use allocflame_core::render::RenderOptions;
use allocflame_core::source::{
    Collector, EventSource, RawFrame, RawStack, RecordOptions, RecordReport, StackSink, Target,
};
use allocflame_core::{Error, Result, Weight};

/// Replays a JSON-lines allocation log.
pub struct LogReplay {
    /// The log's text.
    pub log: String,
}

#[derive(serde::Deserialize)]
struct Event {
    pid: u32,
    comm: String,
    #[serde(rename = "fn")]
    function: String,
    size: u64,
    stack: Vec<String>,
}

impl EventSource for LogReplay {
    fn name(&self) -> &'static str {
        "log-replay"
    }

    fn record(
        &mut self,
        _: &Target,
        options: &RecordOptions,
        sink: &mut dyn StackSink,
    ) -> Result<RecordReport> {
        let mut report = RecordReport::new(self.name(), options.probes.len());
        // Aggregate per (pid, comm, probe, stack) before handing over, as kernel backends do.
        let mut stacks: HashMap<(u32, String, usize, Vec<String>), Weight> = HashMap::new();
        for (i, line) in self
            .log
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let e: Event = serde_json::from_str(line).map_err(|err| Error::Parse {
                file: "log".into(),
                line: i + 1,
                message: err.to_string(),
            })?;
            let Some(probe) = options.probes.iter().position(|p| p.function == e.function) else {
                report.notes.push(format!(
                    "line {}: `{}` is not a probed function",
                    i + 1,
                    e.function
                ));
                continue;
            };
            let w = Weight::new(1, e.size);
            report.per_probe[probe] += w;
            *stacks.entry((e.pid, e.comm, probe, e.stack)).or_default() += w;
        }
        for ((pid, comm, probe, frames), weight) in stacks {
            let frames = frames.iter().map(|f| RawFrame::symbol(f)).collect();
            sink.add(RawStack {
                pid,
                comm,
                probe,
                frames,
                weight,
            });
        }
        Ok(report)
    }
}

/// Replays `log` through the core pipeline (symbolize, demangle, rules, filters; here the
/// defaults), returning the report, the profile and the SVG.
pub fn replay(log: &str) -> Result<(RecordReport, allocflame_core::Profile, Vec<u8>)> {
    let options = RecordOptions::default();
    let mut collector = Collector::new(&options.probes);
    let mut source = LogReplay {
        log: log.to_owned(),
    };
    let report = source.record(&Target::spawn(["app"]), &options, &mut collector)?;
    let output = pipeline::from_collector(collector, &PipelineOptions::default())?;
    let svg = output.svg(&RenderOptions::default())?;
    Ok((report, output.profile, svg))
}

#[allow(dead_code)]
fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, log, out] = args.as_slice() else {
        return Err("usage: custom_backend LOG.jsonl OUT.svg".into());
    };
    let (report, profile, svg) = replay(&std::fs::read_to_string(log)?)?;
    std::fs::write(out, svg)?;
    println!(
        "{} allocations in {} stacks ({} notes)",
        report.total().allocs,
        profile.len(),
        report.notes.len()
    );
    Ok(())
}
