//! `--push URL`: after every file is written, the profile goes as pprof to a
//! Pyroscope-compatible server (`allocflame_core::push` does the sending). A push that fails
//! never costs what was saved: the error names the URL and the files, and saves the pprof
//! bytes too when no file holds them, with the command that pushes them again.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use allocflame_core::pipeline::Output;
use allocflame_core::pprof;
use allocflame_core::push::{self, IngestQuery, PushOptions};
use allocflame_core::WeightKind;

use crate::output::{pprof_comments, pprof_options, write_atomically, Emitted, Span};

/// The status allocflame exits with when the push failed and the program (if any) succeeded:
/// `EX_TEMPFAIL` of sysexits.h, "try again later": the files are saved.
pub const PUSH_FAILED: u8 = 75;

/// Options of `--push`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct PushArgs {
    /// After writing the files, send the profile as pprof to the Pyroscope-compatible server
    /// at URL (`POST URL/ingest?name=…&format=pprof&from=…&until=…`; http:// only, https is
    /// not supported yet: use a local agent such as Grafana Alloy). 3 attempts, 0.5 s and 1 s
    /// apart, Ctrl-C gives up; when the push fails, the files stay, the pprof is saved too,
    /// and allocflame exits with status 75 (or the program's own status when that is not 0).
    #[arg(long, value_name = "URL")]
    pub push: Option<String>,
    /// The application name sent with --push, with optional labels (`myapp.alloc{env=ci}`)
    /// [default: allocflame.alloc{program=PROGRAM}].
    #[arg(long, value_name = "NAME", requires = "push")]
    pub push_name: Option<String>,
}

impl PushArgs {
    /// Checks the URL before anything is recorded: a typo or an https URL costs no recording.
    pub fn check(&self) -> anyhow::Result<()> {
        if let Some(url) = &self.push {
            let q = IngestQuery {
                name: String::new(),
                from: 0,
                until: 0,
            };
            push::ingest_target(url, &q)?;
        }
        Ok(())
    }

    /// The application name for `program`.
    fn name(&self, program: &str) -> String {
        match &self.push_name {
            Some(n) => n.clone(),
            None => format!(
                "allocflame.alloc{{program={}}}",
                push::sanitize_name(program)
            ),
        }
    }
}

/// Pushes `output` (recorded over `span`, about `program`) where `args` says, after `emitted`
/// wrote the files. `None` when there was nothing to push or it worked; else the exit status
/// to end with (`program_status` when that is not 0, else [`PUSH_FAILED`]), the error said.
/// `stop` (set by Ctrl-C) gives up the push at once.
#[allow(clippy::too_many_arguments)]
pub fn after_saving(
    args: &PushArgs,
    output: &Output,
    weight: WeightKind,
    program: &str,
    span: &Span,
    emitted: &Emitted,
    program_status: u8,
    stop: Option<Arc<AtomicBool>>,
) -> Option<ExitCode> {
    let url = args.push.as_deref()?;
    let (from, until) = span.unix_seconds();
    let query = IngestQuery {
        name: args.name(program),
        from,
        until,
    };
    let encoded;
    let bytes: &[u8] = match &emitted.pprof {
        Some((_, b)) => b,
        None => match pprof::encode(&output.profile, &{
            let mut options = pprof_options(&output.profile, weight, Some(span));
            options.comments = pprof_comments(program, &emitted.summary.run, emitted.summary.lost);
            options
        }) {
            Ok(b) => {
                encoded = b;
                &encoded
            }
            Err(e) => {
                say!("allocflame: error: cannot push the profile to {url}: {e}");
                return Some(ExitCode::from(failed(program_status)));
            }
        },
    };
    let options = PushOptions {
        stop,
        ..PushOptions::default()
    };
    match push::push(url, &query, bytes, &options) {
        Ok(receipt) => {
            say!(
                "allocflame: pushed the profile to {url} as {} (HTTP {}{})",
                query.name,
                receipt.status,
                if receipt.attempts > 1 {
                    format!(", attempt {}", receipt.attempts)
                } else {
                    String::new()
                }
            );
            None
        }
        Err(e) => {
            say!("allocflame: error: {e}");
            let mut files = emitted.files.clone();
            // The pprof bytes are what a later push needs: keep them in a file.
            let pprof_file = match &emitted.pprof {
                Some((path, _)) => Some(path.clone()),
                None => {
                    let saved = save_beside(&emitted.files, bytes);
                    files.extend(saved.clone());
                    saved
                }
            };
            let list: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
            say!(
                "allocflame: nothing is lost: the profile is saved in {}",
                if list.is_empty() {
                    "no file (none was asked for)".to_owned()
                } else {
                    list.join(", ")
                }
            );
            if let Some(p) = pprof_file {
                let target = push::ingest_target(url, &query).ok();
                if let Some(t) = target {
                    say!(
                        // curl's default type would make a server read the body as a form.
                        "allocflame: push it again with: curl -H 'Content-Type: application/octet-stream' --data-binary @{} 'http://{}{}'",
                        p.display(),
                        t.host_header,
                        t.path_and_query
                    );
                }
            }
            Some(ExitCode::from(failed(program_status)))
        }
    }
}

fn failed(program_status: u8) -> u8 {
    if program_status != 0 {
        program_status
    } else {
        PUSH_FAILED
    }
}

/// Saves `bytes` as `<first file's stem>.pb.gz` beside the first regular file written (or in
/// the current directory), never over an existing file; its path, or `None` (said) if it
/// could not be saved.
fn save_beside(files: &[PathBuf], bytes: &[u8]) -> Option<PathBuf> {
    let base = files
        .iter()
        .find(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file()))
        .cloned()
        .unwrap_or_else(|| PathBuf::from("allocflame"));
    // A relative name stays relative (`a.pb.gz`, not `./a.pb.gz`).
    let dir = base.parent().unwrap_or(Path::new(""));
    let name = base
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = name
        .split('.')
        .next()
        .filter(|s| !s.is_empty())
        .unwrap_or("allocflame");
    let mut path = dir.join(format!("{stem}.pb.gz"));
    let mut n = 1;
    while path.exists() {
        path = dir.join(format!("{stem}.{n}.pb.gz"));
        n += 1;
    }
    match write_atomically(&path, |w| std::io::Write::write_all(w, bytes)) {
        Ok(()) => Some(path),
        Err(e) => {
            say!("allocflame: error: cannot save the pprof profile: {e:#}");
            None
        }
    }
}
