//! `perf script` text → [`Profile`].
//!
//! Reads the default text output of `perf script` (and the `-F comm,pid,tid,…` variants):
//! an event header line, then one stack line per frame, leaf first, then a blank line.
//!
//! ```text
//! allocs  6903/6903  [001]   482.267002: probe_libc:malloc: (7fad08569930) size=100
//!            98930 malloc+0x0 (/usr/lib/x86_64-linux-gnu/libc.so.6)
//!             11bd level1+0x1b (/tmp/afcap/allocs)
//!             1211 main+0xd (/tmp/afcap/allocs)
//! ```
//!
//! Rules, chosen so that the folded output equals inferno's `collapse-perf` (and so
//! FlameGraph's `stackcollapse-perf.pl`) where that makes sense for allocations:
//! - the process name (`comm`, spaces turned into `_`) is the root frame, optionally with
//!   `-PID` or `-PID/TID`;
//! - frame names are tidied like inferno's defaults: `+0x…` offsets dropped, argument lists
//!   removed (Go method names and C++ `(anonymous namespace)` kept), `;` → `:`, partially
//!   demangled Rust names fixed, Java `L` prefixes dropped in `java*` processes, `->` inline
//!   chains split into frames marked `_[i]`, unknown frames named after their module;
//! - **every event counts**, whatever its name (inferno keeps only the first event type it
//!   sees, which drops every `calloc` event of a `malloc`+`calloc` recording); set
//!   [`PerfOptions::event_filter`] or [`PerfOptions::first_event_only`] to narrow;
//! - events whose name ends in `__return` (what `perf probe 'malloc%return'` creates) are
//!   function *exits*, not allocations: they are not counted (and not reported as skipped);
//! - the leaf frame of an entry probe event (trace data `(ADDRESS)`: `probe_libc:calloc`,
//!   `uprobes:malloc`, any group but USDT's `sdt_*`) is named after the probed function, as
//!   `allocflame record` names it, whichever of the function's aliases perf printed
//!   (`__libc_calloc`, `__GI___libc_malloc`, `__posix_memalign`): when perf printed the leaf at
//!   offset `+0x0`, or without an offset under an alias of that name; a probe inside a
//!   function (`malloc+16`) keeps perf's name;
//! - an event's weight is its sample period when perf printed one, else 1;
//! - a `size=N` field in the event's trace data (a probe defined as
//!   `perf probe -x libc.so.6 'malloc size=%di:u64'`; decimal or `0x` hex) gives its bytes,
//!   times `nmemb=N` when that is there too (calloc). [`Profile::bytes_known`] is set only
//!   when every counted event carried a size;
//! - an event without stack lines (recorded without `-g`) counts at the process-name root;
//! - glibc's allocation functions tail-call each other (`reallocarray` → `realloc` →
//!   `malloc`): with [`PerfOptions::outermost_only`] such a chain counts once;
//! - frame-pointer stacks (`-g`) taken at a function's entry lack its immediate caller: perf
//!   never recorded it, so it is not invented here (`--call-graph dwarf` has it);
//! - counts (and bytes) that add up to more than a `u64` holds are an
//!   [`crate::Error::Parse`] naming the event's line, never a saturated total;
//! - an event whose header or a stack line cannot be read is not counted but added to
//!   [`Profile::skipped`]; if more than 1% of the events are skipped, parsing fails with an
//!   [`crate::Error::Parse`] naming the first bad line.

use std::hash::Hasher;

use rustc_hash::{FxHashMap, FxHasher};

use crate::error::Result;
use crate::profile::{shorten, FrameId, Labels, Profile, Weight};

/// Options of the perf importer. The names and meanings follow inferno's
/// `collapse::perf::Options` (and `stackcollapse-perf.pl`'s flags).
#[derive(Clone, Debug, Default)]
pub struct PerfOptions {
    /// Root frame `comm-PID` instead of `comm`. Default is `false`.
    pub include_pid: bool,
    /// Root frame `comm-PID/TID` (implies `include_pid`). Default is `false`.
    pub include_tid: bool,
    /// Name unsymbolized frames `[module <0xaddr>]` (or `[unknown <addr>]`). Default is `false`.
    pub include_addrs: bool,
    /// Mark kernel frames with a `_[k]` suffix. Default is `false`.
    pub annotate_kernel: bool,
    /// Mark JIT frames (`/tmp/perf-PID.map`, `jitted-*.so`) with `_[j]`. Default is `false`.
    pub annotate_jit: bool,
    /// Only count events with this name (for example `probe_libc:malloc`). Default is `None`:
    /// every event counts.
    pub event_filter: Option<String>,
    /// Only count events with the name of the first event, as inferno does when it is given
    /// no event filter. Default is `false`.
    pub first_event_only: bool,
    /// Count an allocation once, at the outermost probed call, when glibc's allocation
    /// functions call each other (`reallocarray` → `realloc` → `malloc`, `realloc(NULL, n)` →
    /// `malloc`, `memalign`-family → `malloc` for small alignments). Those are tail calls, so
    /// the outer function is not on the inner event's stack, even with DWARF unwinding: the
    /// inner event is recognised as the uprobe event that directly follows the outer one on
    /// the same thread, with a leaf the outer one calls and the same stack below the leaf,
    /// return addresses included. Reliable with `--call-graph dwarf`; with frame-pointer
    /// stacks the caller's frame is missing, so `p = realloc(q, n); r = malloc(m);` in one
    /// function would look nested.
    ///
    /// Calls that are not tail calls (`swift_allocObject` → `swift_slowAlloc` → `malloc`,
    /// with both ends probed) are found on the stack: an entry event with a probed function
    /// (the leaf of some entry event) among its callers is not counted. Default is `false`:
    /// every event counts.
    pub outermost_only: bool,
}

/// Whether `line` looks like the header line of a `perf script` event: a process name, a
/// pid (or `pid/tid`), and an event name ending in `:`.
pub fn looks_like_event_header(line: &str) -> bool {
    match parse_header(line.trim_end()) {
        Some(h) => !h.comm.is_empty() && h.event.is_some(),
        None => false,
    }
}

/// Parses `perf script` output. `file` names the input in errors.
///
/// ```
/// use allocflame_core::import::perf::{parse, PerfOptions};
/// use allocflame_core::Weight;
/// let text = "\
/// app 4242/4242 [001] 10.000001: probe_libc:malloc: (7f00) size=32
/// \t    98930 malloc+0x0 (/usr/lib/libc.so.6)
/// \t     1211 main+0xd (/usr/bin/app)
///
/// app 4242/4242 [001] 10.000002: probe_libc:calloc: (7f10) nmemb=2 size=8
/// \t    996e0 __libc_calloc+0x0 (/usr/lib/libc.so.6)
/// \t     1216 main+0x12 (/usr/bin/app)
/// ";
/// let profile = parse(text, "perf.txt", &PerfOptions::default()).unwrap();
/// assert_eq!(profile.total(), Weight::new(2, 48));
/// // The leaf is named after the probe, as `allocflame record` names it, not after the alias
/// // perf picked.
/// assert_eq!(profile.folded_lines()[0].0, "app;main;calloc");
/// ```
pub fn parse(text: &str, file: &str, options: &PerfOptions) -> Result<Profile> {
    let mut parser = Parser::new(file, options);
    let mut lineno = 0usize;
    for raw in text.split('\n') {
        lineno += 1;
        parser.line(raw, lineno);
    }
    parser.finish()
}

/// What the header line of one event says.
struct Header<'a> {
    comm: &'a str,
    pid: &'a str,
    tid: &'a str,
    period: Option<u64>,
    event: Option<&'a str>,
    /// Text after the event name: trace data, or a one-frame stack.
    rest: &'a str,
}

/// Finds the first all-digit word (`PID` or `PID/TID`) followed by a space, the way
/// FlameGraph does: everything before it is the process name, which may contain spaces and
/// digits (`V8 WorkerThread 25607 …`).
fn split_pid(line: &str) -> Option<(&str, &str, &str, usize)> {
    let bytes = line.as_bytes();
    let mut word_start = 0;
    let mut all_digits = false;
    let mut last_was_space = false;
    let mut slash = None;
    for (i, &c) in bytes.iter().enumerate() {
        if c == b' ' {
            if all_digits && !last_was_space {
                let (pid, tid) = match slash {
                    Some(s) => (&line[word_start..s], &line[s + 1..i]),
                    None => ("?", &line[word_start..i]),
                };
                let comm = line[..word_start.saturating_sub(1)].trim();
                return Some((comm, pid, tid, i + 1));
            }
            word_start = i + 1;
            all_digits = true;
        } else if c == b'/' {
            if all_digits {
                slash = Some(i);
            }
        } else if !c.is_ascii_digit() {
            all_digits = false;
            slash = None;
        }
        last_was_space = c == b' ';
    }
    None
}

fn parse_header(line: &str) -> Option<Header<'_>> {
    let (comm, pid, tid, end) = split_pid(line)?;
    let mut rest = &line[end..];
    let mut period = None;
    let mut event = None;
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            break;
        }
        let tok_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let tok = &rest[..tok_end];
        if tok.len() >= 2 && tok.starts_with('[') && tok.ends_with(']') {
            // [CPU]
        } else if let Some(t) = tok.strip_suffix(':') {
            if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
                // timestamp
            } else {
                event = Some(t);
                rest = &rest[tok_end..];
                break;
            }
        } else if tok.bytes().all(|b| b.is_ascii_digit()) {
            period = tok.parse().ok();
        } else {
            break;
        }
        rest = &rest[tok_end..];
    }
    Some(Header {
        comm,
        pid,
        tid,
        period,
        event,
        rest: rest.trim(),
    })
}

/// Splits a stack line `PC SYMBOL+OFF (MODULE)` into its parts; `None` if it is not one.
/// The symbol is `" "` when perf printed none, as FlameGraph has it.
fn stack_line_parts(line: &str) -> Option<(&str, &str, &str)> {
    let line = line.trim_start();
    let (pc, rest) = line.split_once(' ')?;
    // The module is the parenthesised group at the end; it may hold spaces or parentheses
    // (`(/tmp/my dir/a.out)`, `(/tmp/a.out (deleted))`), so match the brackets.
    let inner = rest.strip_suffix(')')?;
    let mut depth = 0usize;
    let mut open = None;
    for (i, c) in inner.char_indices().rev() {
        match c {
            ')' => depth += 1,
            '(' if depth == 0 => {
                open = Some(i);
                break;
            }
            '(' => depth -= 1,
            _ => {}
        }
    }
    let open = open?;
    let (func, module) = (&rest[..open], &inner[open + 1..]);
    if !func.is_empty() && !func.ends_with(' ') {
        // `main(int)` is a symbol with its arguments, not a symbol and a module.
        return None;
    }
    let func = match func.trim() {
        "" => " ",
        s => s,
    };
    Some((pc.trim_end(), func, module))
}

fn is_vmlinux(module: &str) -> bool {
    match module.rfind("vmlinux") {
        Some(i) => module[i..]
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_')),
        None => false,
    }
}

fn is_kernel(module: &str) -> bool {
    (module.starts_with('[') || module.ends_with(".ko") || is_vmlinux(module))
        && module != "[unknown]"
}

fn is_jit(module: &str) -> bool {
    (module.starts_with("/tmp/perf-") && module.ends_with(".map"))
        || (module.contains("/jitted-") && module.ends_with(".so"))
}

/// `func` with its top-level argument list removed and `;` made `:`, keeping Go method
/// names (`pkg.(*T).M`) and C++ `(anonymous namespace)`.
fn tidy_generic(func: &str, out: &mut String) {
    let mut depth: i64 = 0;
    let mut after_dot = usize::MAX;
    let mut cut = func.len();
    for (i, c) in func.char_indices() {
        match c {
            '<' | '{' | '[' => depth += 1,
            '>' | '}' | ']' | ')' => depth -= 1,
            '(' => {
                if depth == 0 && after_dot != i && !func[i..].starts_with("(anonymous namespace)") {
                    cut = i;
                    break;
                }
                depth += 1;
            }
            '.' => after_dot = i + 1,
            _ => {}
        }
    }
    for c in func[..cut].chars() {
        out.push(if c == ';' { ':' } else { c });
    }
}

/// A pid or probe label that is not known (perf prints `?` for an unknown pid).
const NO_LABEL: u32 = u32::MAX;

struct Parser<'t, 'o> {
    file: &'t str,
    opt: &'o PerfOptions,
    profile: Profile,
    /// Frame lines (key without the pc unless addresses are wanted, java?) → ids in `cached`.
    frame_cache: FxHashMap<(&'t str, bool), (u32, u32)>,
    cached: Vec<FrameId>,
    /// Stacks, root first, then the pid and probe label (see `end_event`), aggregated here so
    /// a repeated stack costs no allocation.
    stack_index: FxHashMap<Box<[FrameId]>, usize>,
    /// The probe labels (`malloc` of event `probe_libc:malloc`), indexed by the stack keys.
    probe_names: Vec<std::sync::Arc<str>>,
    probe_index: FxHashMap<&'t str, u32>,
    /// The current event's pid and probe label (`NO_LABEL` when unknown).
    pid: u32,
    probe: u32,
    weights: Vec<Weight>,
    /// Per stack: whether uprobe entry events were counted on it.
    entry_stack: Vec<bool>,
    filter: Option<String>,
    // Per event state.
    in_event: bool,
    skipping: bool,
    event_ok: bool,
    root: FrameId,
    java: bool,
    weight: Weight,
    has_size: bool,
    frames: Vec<FrameId>,
    /// The current event's header line.
    header_line: usize,
    /// The frame that names the current event's leaf: its probe's function, for an entry
    /// probe (`probe_libc:calloc` names the leaf `calloc`, whichever glibc alias perf
    /// printed), until its first stack line is read.
    probe_leaf: Option<FrameId>,
    /// The running total of the counted events, checked for overflow.
    total: Weight,
    /// The first error that ends the parse (a count that overflows).
    error: Option<crate::Error>,
    // Nested calls (outermost_only): per thread, the last uprobe entry event's leaf and the
    // hash of its stack below the leaf.
    last_entry: FxHashMap<&'t str, (FrameId, u64)>,
    tid: &'t str,
    uprobe_entry: bool,
    stack_lines: u32,
    below_hash: u64,
    nested: u64,
    // Accounting.
    events: u64,
    counted: u64,
    sized: u64,
    first_bad: Option<(usize, String)>,
    // Scratch.
    name_buf: String,
    key_buf: Vec<FrameId>,
}

impl<'t, 'o> Parser<'t, 'o> {
    fn new(file: &'t str, opt: &'o PerfOptions) -> Self {
        Parser {
            file,
            opt,
            profile: Profile::new(),
            frame_cache: FxHashMap::default(),
            cached: Vec::new(),
            stack_index: FxHashMap::default(),
            probe_names: Vec::new(),
            probe_index: FxHashMap::default(),
            pid: NO_LABEL,
            probe: NO_LABEL,
            weights: Vec::new(),
            entry_stack: Vec::new(),
            filter: opt.event_filter.clone(),
            in_event: false,
            skipping: false,
            event_ok: false,
            root: 0,
            java: false,
            weight: Weight::default(),
            has_size: false,
            frames: Vec::new(),
            header_line: 0,
            probe_leaf: None,
            total: Weight::default(),
            error: None,
            last_entry: FxHashMap::default(),
            tid: "",
            uprobe_entry: false,
            stack_lines: 0,
            below_hash: 0,
            nested: 0,
            events: 0,
            counted: 0,
            sized: 0,
            first_bad: None,
            name_buf: String::new(),
            key_buf: Vec::new(),
        }
    }

    fn bad(&mut self, lineno: usize, message: String) {
        self.profile.skipped += 1;
        if self.first_bad.is_none() {
            self.first_bad = Some((lineno, message));
        }
    }

    fn line(&mut self, raw: &'t str, lineno: usize) {
        if raw.starts_with('#') || self.error.is_some() {
            return;
        }
        let line = raw.trim_end();
        if line.is_empty() {
            self.end_event();
            return;
        }
        if self.skipping {
            return;
        }
        if self.in_event {
            if self.event_ok {
                self.stack_line(line, lineno);
            }
        } else {
            self.header(line, lineno);
        }
    }

    fn header(&mut self, line: &'t str, lineno: usize) {
        self.events += 1;
        let Some(h) = parse_header(line) else {
            self.bad(
                lineno,
                format!(
                    "expected a `perf script` event line (`COMM PID[/TID] [CPU] TIME: EVENT:`), found `{}`",
                    shorten(line.trim(), 80)
                ),
            );
            self.skipping = true;
            return;
        };
        self.in_event = true;
        self.event_ok = true;
        self.header_line = lineno;
        self.probe_leaf = None;
        self.frames.clear();
        self.tid = h.tid;
        self.stack_lines = 0;
        self.below_hash = 0;
        self.uprobe_entry = is_uprobe_entry(h.rest);
        self.pid = h.pid.parse().unwrap_or(NO_LABEL);
        self.probe = match h.event {
            Some(event) => self.probe_label(event),
            None => NO_LABEL,
        };
        if let Some(event) = h.event {
            let wanted = match &self.filter {
                Some(f) => f == event,
                None => {
                    if self.opt.first_event_only {
                        self.filter = Some(event.to_owned());
                    }
                    true
                }
            };
            if !wanted || event.ends_with("__return") {
                if self.opt.outermost_only {
                    // The call returned (or another probe fired): no nesting across it.
                    self.last_entry.remove(h.tid);
                }
                self.event_ok = false;
                return;
            }
        }
        self.root = self.root_frame(&h);
        self.java = h.comm.starts_with("java");
        let period = h.period.unwrap_or(1);
        let (size, nmemb) = trace_sizes(h.rest);
        self.has_size = size.is_some();
        let Some(bytes) = size
            .unwrap_or(0)
            .checked_mul(nmemb.unwrap_or(1))
            .and_then(|b| b.checked_mul(period))
        else {
            self.error = Some(crate::Error::Parse {
                file: self.file.to_owned(),
                line: lineno,
                message: format!(
                    "the event's bytes ({} × {} × period {period}) are more than {}, the most allocflame can count",
                    size.unwrap_or(0),
                    nmemb.unwrap_or(1),
                    u64::MAX
                ),
            });
            return;
        };
        self.weight = Weight::new(period, bytes);
        // The function of an entry probe (`probe_libc:calloc`, `uprobes:malloc`, any group
        // `perf probe` was given); a USDT probe (`sdt_*`) marks a place inside a function.
        if let Some((group, function)) = h.event.and_then(|e| e.rsplit_once(':')) {
            if self.uprobe_entry && !function.is_empty() && !group.starts_with("sdt_") {
                self.probe_leaf = Some(self.profile.intern(function));
            }
        }
        // A one-frame stack may sit on the header line itself.
        if !h.rest.is_empty() {
            if let Some((pc, _, _)) = stack_line_parts(h.rest) {
                if !pc.is_empty() && pc.bytes().all(|b| b.is_ascii_hexdigit()) {
                    self.stack_line(h.rest, lineno);
                    self.end_event();
                }
            }
        }
    }

    /// The label of `event`'s probe: the function of a `perf probe` event
    /// (`probe_libc:malloc` → `malloc`, also groups `uprobes*` and `sdt_*`); none for other
    /// events (`cycles`, `cycles:u`), whose stacks the probe filter judges by their leaf.
    fn probe_label(&mut self, event: &'t str) -> u32 {
        if let Some(&i) = self.probe_index.get(event) {
            return i;
        }
        let i = match event.rsplit_once(':') {
            Some((group, f))
                if !f.is_empty()
                    && ["probe", "uprobe", "sdt_"]
                        .iter()
                        .any(|g| group.starts_with(g)) =>
            {
                self.probe_names.push(f.into());
                (self.probe_names.len() - 1) as u32
            }
            _ => NO_LABEL,
        };
        self.probe_index.insert(event, i);
        i
    }

    fn root_frame(&mut self, h: &Header<'_>) -> FrameId {
        let include_pid = self.opt.include_pid || self.opt.include_tid;
        if !include_pid && !h.comm.contains(' ') {
            return self.profile.intern(h.comm);
        }
        let mut name = std::mem::take(&mut self.name_buf);
        name.clear();
        name.extend(h.comm.chars().map(|c| if c == ' ' { '_' } else { c }));
        if self.opt.include_tid {
            name.push('-');
            name.push_str(h.pid);
            name.push('/');
            name.push_str(h.tid);
        } else if include_pid {
            name.push('-');
            name.push_str(h.pid);
        }
        let id = self.profile.intern(&name);
        self.name_buf = name;
        id
    }

    fn stack_line(&mut self, line: &'t str, lineno: usize) {
        let trimmed = line.trim_start();
        if self.opt.outermost_only {
            if self.stack_lines > 0 {
                let mut h = FxHasher::default();
                h.write(trimmed.as_bytes());
                self.below_hash = self.below_hash.rotate_left(7) ^ h.finish();
            }
            self.stack_lines += 1;
        }
        let key = if self.opt.include_addrs {
            trimmed
        } else {
            trimmed.split_once(' ').map_or(trimmed, |(_, rest)| rest)
        };
        let (start, len) = match self.frame_cache.get(&(key, self.java)) {
            Some(&v) => v,
            None => {
                let Some((pc, func, module)) = stack_line_parts(trimmed) else {
                    self.bad(
                        lineno,
                        format!(
                            "expected a stack line (`ADDRESS SYMBOL (MODULE)`), found `{}`",
                            shorten(trimmed, 80)
                        ),
                    );
                    self.event_ok = false;
                    return;
                };
                let start = self.cached.len() as u32;
                self.tidy_frame(pc, func, module);
                let v = (start, self.cached.len() as u32 - start);
                self.frame_cache.insert((key, self.java), v);
                v
            }
        };
        // Within one line the frames are root first; lines come leaf first.
        let ids = &self.cached[start as usize..(start + len) as usize];
        let mut ids = ids.iter().rev();
        if let Some(probe) = self.probe_leaf.take() {
            if let Some(&leaf) = ids.next() {
                let named =
                    if probed_leaf(trimmed, self.profile.name(leaf), self.profile.name(probe)) {
                        probe
                    } else {
                        leaf
                    };
                self.frames.push(named);
            }
        }
        self.frames.extend(ids);
    }

    /// Tidies one stack line into frames (root first) appended to `self.cached`.
    fn tidy_frame(&mut self, pc: &str, func: &str, module: &str) {
        let mut func = func;
        if let Some(i) = func.rfind("+0x") {
            if func[i + 3..].bytes().all(|b| b.is_ascii_hexdigit()) {
                func = &func[..i];
            }
        }
        if func.starts_with('(') {
            // FlameGraph skips these (process names in some perf versions).
            return;
        }
        let fixed = super::fix_rust_symbol(func);
        let mut name = String::new();
        for (n, part) in fixed.split("->").enumerate() {
            name.clear();
            let mut unknown = String::new();
            let part = if part == "[unknown]" {
                match (module, self.opt.include_addrs) {
                    ("[unknown]", false) => part,
                    (m, addrs) => {
                        let base = if m == "[unknown]" {
                            "unknown"
                        } else {
                            &m[m.rfind('/').map_or(0, |i| i + 1)..]
                        };
                        unknown.push('[');
                        unknown.push_str(base);
                        if addrs {
                            unknown.push_str(" <");
                            unknown.push_str(pc);
                            unknown.push('>');
                        }
                        unknown.push(']');
                        &unknown
                    }
                }
            } else {
                part
            };
            tidy_generic(part, &mut name);
            if self.java && name.starts_with('L') && name.contains('/') {
                name.remove(0);
            }
            if n > 0 {
                if !name.contains("_[i]") {
                    name.push_str("_[i]");
                }
            } else if self.opt.annotate_kernel && is_kernel(module) {
                name.push_str("_[k]");
            } else if self.opt.annotate_jit && is_jit(module) && !name.contains("_[j]") {
                name.push_str("_[j]");
            }
            let id = self.profile.intern(&name);
            self.cached.push(id);
        }
    }

    /// Whether the event that just ended is a call nested in the thread's previous one (see
    /// [`PerfOptions::outermost_only`]); remembers it as the thread's last entry event.
    fn is_nested(&mut self) -> bool {
        let leaf = match self.frames.first() {
            Some(&leaf) if self.uprobe_entry && self.stack_lines >= 2 => leaf,
            _ => {
                self.last_entry.remove(self.tid);
                return false;
            }
        };
        let nested = match self.last_entry.get(self.tid) {
            Some(&(outer, hash)) => {
                hash == self.below_hash
                    && crate::once::relays(self.profile.name(outer), self.profile.name(leaf))
                        .next()
                        .is_some()
            }
            None => false,
        };
        self.last_entry.insert(self.tid, (leaf, self.below_hash));
        nested
    }

    fn end_event(&mut self) {
        if self.in_event && self.event_ok && self.opt.outermost_only && self.is_nested() {
            self.nested += 1;
            self.event_ok = false;
        }
        if self.in_event && self.event_ok {
            if let Err(e) =
                super::add_to_total(&mut self.total, self.weight, self.file, self.header_line)
            {
                self.error = Some(e);
                self.event_ok = false;
            }
        }
        if self.in_event && self.event_ok {
            self.key_buf.clear();
            self.key_buf.push(self.root);
            self.key_buf.extend(self.frames.iter().rev());
            let entry = self.uprobe_entry && self.key_buf.len() >= 2;
            // The labels ride at the end of the key, so that the lookup stays one slice.
            self.key_buf.push(self.pid);
            self.key_buf.push(self.probe);
            match self.stack_index.get(self.key_buf.as_slice()) {
                Some(&i) => {
                    self.weights[i] += self.weight;
                    self.entry_stack[i] |= entry;
                }
                None => {
                    self.stack_index
                        .insert(self.key_buf.as_slice().into(), self.weights.len());
                    self.weights.push(self.weight);
                    self.entry_stack.push(entry);
                }
            }
            self.counted += 1;
            if self.has_size {
                self.sized += 1;
            }
        }
        self.in_event = false;
        self.skipping = false;
        self.event_ok = false;
        self.frames.clear();
    }

    fn finish(mut self) -> Result<Profile> {
        self.end_event();
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        super::check_skipped(
            self.file,
            self.events,
            self.profile.skipped,
            self.first_bad.take(),
            "events",
        )?;
        let mut keyed: Vec<(usize, Box<[FrameId]>)> =
            self.stack_index.into_iter().map(|(k, i)| (i, k)).collect();
        keyed.sort_unstable_by_key(|&(i, _)| i);
        let mut labels: Vec<Labels> = Vec::with_capacity(keyed.len());
        let mut stacks: Vec<(usize, Box<[FrameId]>)> = Vec::with_capacity(keyed.len());
        for (i, key) in keyed {
            let (frames, tail) = key.split_at(key.len() - 2);
            let label = |v: u32| (v != NO_LABEL).then_some(v);
            labels.push(Labels {
                pid: label(tail[0]),
                probe: label(tail[1]).map(|p| self.probe_names[p as usize].clone()),
            });
            stacks.push((i, frames.into()));
        }
        let nested = if self.opt.outermost_only {
            nested_on_stack(&self.profile, &stacks, &self.entry_stack)
        } else {
            vec![false; stacks.len()]
        };
        for (((i, ids), nested), labels) in stacks.into_iter().zip(nested).zip(labels) {
            if nested {
                self.nested += self.weights[i].allocs;
            } else {
                self.profile.add_ids_labeled(ids, &labels, self.weights[i]);
            }
        }
        self.profile.bytes_known = self.counted > 0 && self.sized == self.counted;
        Ok(self.profile)
    }
}

/// For each stack (root first) of uprobe entry events: whether a probed function, the leaf of
/// some entry stack, is among its callers (between the root and the leaf).
fn nested_on_stack(
    profile: &Profile,
    stacks: &[(usize, Box<[FrameId]>)],
    entry_stack: &[bool],
) -> Vec<bool> {
    let probed: rustc_hash::FxHashSet<&str> = stacks
        .iter()
        .filter(|(i, ids)| entry_stack[*i] && ids.len() >= 2)
        .map(|(_, ids)| profile.name(ids[ids.len() - 1]))
        .filter(|n| !n.starts_with('['))
        .map(crate::once::base_name)
        .collect();
    stacks
        .iter()
        .map(|(i, ids)| {
            entry_stack[*i]
                && ids.len() > 2
                && crate::once::called_from_probed(
                    ids[1..ids.len() - 1].iter().map(|&id| profile.name(id)),
                    &probed,
                )
        })
        .collect()
}

/// Whether the leaf stack `line` of an entry probe event of function `probe` is that
/// function, named `leaf` by perf: perf printed it at offset 0 (`__GI___libc_malloc+0x0`), or
/// without an offset under one of the function's aliases (`__libc_calloc` for `calloc`). A
/// probe placed inside a function (`malloc+16`) keeps perf's name.
fn probed_leaf(line: &str, leaf: &str, probe: &str) -> bool {
    let Some((_, func, _)) = stack_line_parts(line) else {
        return false;
    };
    match func.rfind("+0x") {
        Some(i) if func[i + 3..].bytes().all(|b| b.is_ascii_hexdigit()) => {
            func[i + 3..].bytes().all(|b| b == b'0')
        }
        _ => crate::once::base_name(leaf) == crate::once::base_name(probe),
    }
}

/// Whether an event's trace data is a uprobe (or kprobe) entry's `(ADDRESS)`.
fn is_uprobe_entry(rest: &str) -> bool {
    rest.strip_prefix('(')
        .and_then(|r| r.split_once(')'))
        .is_some_and(|(addr, _)| !addr.is_empty() && addr.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The `size=` and `nmemb=` fields of a uprobe's trace data, decimal or `0x` hex.
fn trace_sizes(rest: &str) -> (Option<u64>, Option<u64>) {
    let mut size = None;
    let mut nmemb = None;
    if !rest.contains('=') {
        return (None, None);
    }
    for tok in rest.split_ascii_whitespace() {
        if let Some(v) = tok.strip_prefix("size=") {
            size = parse_number(v);
        } else if let Some(v) = tok.strip_prefix("nmemb=") {
            nmemb = parse_number(v);
        }
    }
    (size, nmemb)
}

fn parse_number(v: &str) -> Option<u64> {
    match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => v.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers() {
        assert!(looks_like_event_header(
            "allocs  6903/6903  [001]   482.267002: probe_libc:malloc: (7fad08569930) size=100"
        ));
        assert!(looks_like_event_header("java 19983 cycles:"));
        assert!(looks_like_event_header(
            "V8 WorkerThread 24636/25607 [000] 94564.109216: cycles:"
        ));
        assert!(!looks_like_event_header("  0  64091   :tick-60s"));
        assert!(!looks_like_event_header("CPU     ID    FUNCTION:NAME"));
        let h = parse_header("vote   913    72.176760:     257597 cycles:uppp:").unwrap();
        assert_eq!((h.comm, h.pid, h.tid), ("vote", "?", "913"));
        assert_eq!(h.period, Some(257597));
        assert_eq!(h.event, Some("cycles:uppp"));
    }

    #[test]
    fn sizes_and_return_probes() {
        let text = "p 1/2 [0] 1.0: probe_libc:malloc: (7f) size=0x10\n\t1 main (/x)\n\n\
                    p 1/2 [0] 1.1: probe_libc:malloc__return: (7f <- 5)\n\t1 main (/x)\n\n\
                    p 1/2 [0] 1.2: probe_libc:calloc: (7f) nmemb=3 size=8\n\t1 main (/x)\n";
        let p = parse(text, "t", &PerfOptions::default()).unwrap();
        assert!(p.bytes_known);
        assert_eq!(p.total(), Weight::new(2, 16 + 24));
    }

    #[test]
    fn stacks_keep_pid_and_probe() {
        let text = "p 7/7 [0] 1.0: probe_libc:malloc: (7f) size=16\n\t1 f (/x)\n\t2 main (/x)\n\n\
                    p 8/9 [0] 1.1: probe_libc:malloc: (7f) size=16\n\t1 f (/x)\n\t2 main (/x)\n\n\
                    p 7/7 [0] 1.2: probe_libc:calloc: (7f) size=16\n\t1 f (/x)\n\t2 main (/x)\n\n\
                    p 10 [0] 1.3: cycles:u: \n\t1 f (/x)\n\t2 main (/x)\n";
        let p = parse(text, "t", &PerfOptions::default()).unwrap();
        assert_eq!(p.len(), 1, "one stack of frames");
        let mut labels: Vec<(Option<u32>, Option<&str>, u64)> = p
            .labeled_stacks()
            .map(|(_, l, w)| (l.pid, l.probe.as_deref(), w.allocs))
            .collect();
        labels.sort();
        assert_eq!(
            labels,
            [
                // A lone number is the thread id (perf script without `-F pid`): no pid.
                (None, None, 1),
                (Some(7), Some("calloc"), 1),
                (Some(7), Some("malloc"), 1),
                (Some(8), Some("malloc"), 1)
            ]
        );
    }

    #[test]
    fn modules_with_spaces_and_parentheses() {
        assert_eq!(
            stack_line_parts("  7f12 foo+0x1 (/tmp/a.out (deleted))"),
            Some(("7f12", "foo+0x1", "/tmp/a.out (deleted)"))
        );
        assert_eq!(
            stack_line_parts("7f12 foo(int) const (/tmp/my dir/a.out)"),
            Some(("7f12", "foo(int) const", "/tmp/my dir/a.out"))
        );
        assert_eq!(
            stack_line_parts("7f1e2215d058  (/lib/libc.so)"),
            Some(("7f1e2215d058", " ", "/lib/libc.so"))
        );
        assert_eq!(stack_line_parts("7f12 main(int)"), None);
        assert_eq!(stack_line_parts("THIS_IS_A_WEIRD_LINE"), None);
    }

    #[test]
    fn outermost_only_needs_a_known_pair_and_the_same_call_site() {
        let opt = PerfOptions {
            outermost_only: true,
            ..PerfOptions::default()
        };
        let ev = |f: &str, site: &str| {
            format!("p 1/2 [0] 1.0: probe_libc:{f}: (7f)\n\t1 {f} (/l)\n\t{site} f (/x)\n\n")
        };
        // realloc then malloc from another call site: two allocations.
        let t = ev("realloc", "10") + &ev("malloc", "20");
        assert_eq!(parse(&t, "t", &opt).unwrap().total().allocs, 2);
        // malloc twice from one call site (a loop): two allocations.
        let t = ev("malloc", "10") + &ev("malloc", "10");
        assert_eq!(parse(&t, "t", &opt).unwrap().total().allocs, 2);
        // realloc's tail call into malloc: one.
        let t = ev("realloc", "10") + &ev("malloc", "10");
        assert_eq!(parse(&t, "t", &opt).unwrap().total().allocs, 1);
        // A probed function among the callers: counted there, not here.
        let t = ev("swift_allocObject", "10")
            + "p 1/2 [0] 1.0: probe_libc:malloc: (7f)\n\t1 malloc (/l)\n\t2 swift_slowAlloc (/s)\n\t3 swift_allocObject (/s)\n\t10 f (/x)\n\n";
        assert_eq!(parse(&t, "t", &opt).unwrap().total().allocs, 1);
        // ... unless its return was seen in between.
        let ret = "p 1/2 [0] 1.0: probe_libc:realloc__return: (7f <- 5)\n\t1 f (/x)\n\n";
        let t = ev("realloc", "10") + ret + &ev("malloc", "10");
        assert_eq!(parse(&t, "t", &opt).unwrap().total().allocs, 2);
    }

    #[test]
    fn tidy() {
        let mut s = String::new();
        for (i, o) in [
            (
                "go/build.(*importReader).readByte",
                "go/build.(*importReader).readByte",
            ),
            ("foo<Vec::<usize>>(Vec<usize>)", "foo<Vec::<usize>>"),
            (
                "(anonymous namespace)::myBar()",
                "(anonymous namespace)::myBar",
            ),
            ("a;b(int)", "a:b"),
        ] {
            s.clear();
            tidy_generic(i, &mut s);
            assert_eq!(s, o);
        }
    }
}
