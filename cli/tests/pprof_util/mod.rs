//! Shared by the pprof and push tests: running the binary, folded files, `go tool pprof -raw`
//! read back as stacks, pprof bytes decoded by allocflame's decoder.
// Each test binary uses a different part of these.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use allocflame_core::pprof;

/// Stacks (root first, `;`-joined) → count, summed.
pub type Stacks = BTreeMap<String, u64>;

/// Output bytes as text.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Reads a folded file.
pub fn read_folded(path: &Path) -> Stacks {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut out = Stacks::new();
    for line in text.lines() {
        let (stack, n) = line.rsplit_once(' ').expect("a folded line");
        *out.entry(stack.to_owned()).or_default() += n.parse::<u64>().expect("a count");
    }
    out
}

/// Whether `go tool pprof` can run here; else the test is skipped (a failure under CI=true).
pub fn go_available() -> bool {
    let runs = Command::new("go")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    runs || allocflame_tests::skip("go (Debian's golang-go: apt-get install golang-go)")
}

/// What `go tool pprof -raw` prints of `file`: the sample types, and for each of them the
/// stacks (root first) with their summed values; and the label lines it printed.
pub struct GoRaw {
    pub types: Vec<String>,
    pub by_type: Vec<Stacks>,
    pub labels: Vec<String>,
    pub text: String,
}

impl GoRaw {
    /// The stacks of the sample type named `type_name`.
    pub fn of(&self, type_name: &str) -> &Stacks {
        let i = self
            .types
            .iter()
            .position(|t| t == type_name)
            .unwrap_or_else(|| panic!("no sample type {type_name}: {}", self.text));
        &self.by_type[i]
    }
}

pub fn go_raw(file: &Path) -> GoRaw {
    let out = Command::new("go")
        .args(["tool", "pprof", "-raw", "-symbolize=none"])
        .arg(file)
        .output()
        .expect("run go tool pprof");
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "go tool pprof -raw {}: {}\n{stdout}",
        file.display(),
        text(&out.stderr)
    );
    #[derive(PartialEq)]
    enum Part {
        Head,
        Samples,
        Locations,
        Rest,
    }
    let mut part = Part::Head;
    let mut types = Vec::new();
    let mut samples: Vec<(Vec<u64>, Vec<u64>)> = Vec::new();
    // Each location's functions as printed, innermost (inlined) first.
    let mut names: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    let mut last_location = None;
    let mut labels = Vec::new();
    for line in stdout.lines() {
        match line.trim() {
            "Samples:" => {
                part = Part::Samples;
                continue;
            }
            "Locations" => {
                part = Part::Locations;
                continue;
            }
            "Mappings" => {
                part = Part::Rest;
                continue;
            }
            _ => {}
        }
        match part {
            Part::Head | Part::Rest => {}
            Part::Samples if types.is_empty() => {
                // `alloc_objects/count[dflt] alloc_space/bytes`
                types = line
                    .split_whitespace()
                    .map(|t| t.split('/').next().unwrap().to_owned())
                    .collect();
            }
            Part::Samples => {
                let Some((values, ids)) = line.split_once(':') else {
                    continue;
                };
                let values: Vec<u64> = match values
                    .split_whitespace()
                    .map(str::parse)
                    .collect::<Result<_, _>>()
                {
                    Ok(v) => v,
                    // `pid:[7]`, `probe:[malloc]`
                    Err(_) => {
                        labels.push(line.trim().to_owned());
                        continue;
                    }
                };
                let ids = ids
                    .split_whitespace()
                    .map(|i| i.parse().expect("a location id"))
                    .collect();
                samples.push((values, ids));
            }
            Part::Locations => {
                // `     1: 0x0 M=1 operator new(unsigned long) :0 s=0`, and for each function
                // inlined there a line `             main.work /x/main.go:19 s=0`.
                let name_of = |rest: &str| -> String {
                    let rest = rest.rsplit_once(" s=").map_or(rest, |(r, _)| r);
                    rest.rsplit_once(' ').map_or(rest, |(n, _)| n).to_owned()
                };
                let id = line
                    .split_once(':')
                    .and_then(|(id, rest)| Some((id.trim().parse::<u64>().ok()?, rest)));
                match id {
                    Some((id, rest)) => {
                        let rest = rest.trim_start();
                        let rest = rest.split_once(' ').map_or(rest, |(_, r)| r); // address
                        let rest = rest.split_once(' ').map_or(rest, |(_, r)| r); // M=1
                        names.insert(id, vec![name_of(rest)]);
                        last_location = Some(id);
                    }
                    None => {
                        if let Some(id) = last_location {
                            names.get_mut(&id).unwrap().push(name_of(line.trim_start()));
                        }
                    }
                }
            }
        }
    }
    let mut by_type = vec![Stacks::new(); types.len()];
    for (values, ids) in &samples {
        let stack: Vec<&str> = ids
            .iter()
            .rev()
            .flat_map(|id| names.get(id).expect("a known location").iter().rev())
            .map(String::as_str)
            .collect();
        for (i, v) in values.iter().enumerate() {
            if *v > 0 {
                *by_type[i].entry(stack.join(";")).or_default() += v;
            }
        }
    }
    GoRaw {
        types,
        by_type,
        labels,
        text: stdout,
    }
}

/// Runs `allocflame ARGS` in `dir`.
pub fn run(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_allocflame"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run allocflame")
}

/// Folded stacks of the allocations in a pprof body, decoded by allocflame's decoder.
pub fn pushed_stacks(body: &[u8], kind: allocflame_core::WeightKind) -> Stacks {
    let profile = pprof::decode(body).expect("a pprof body").to_profile();
    profile
        .folded_lines()
        .into_iter()
        .filter(|(_, w)| w.get(kind) > 0)
        .map(|(s, w)| (s, w.get(kind)))
        .collect()
}
