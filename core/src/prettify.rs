//! Prettify rules: rewrite frame names and fold runs of frames before drawing.
//!
//! The rule file format is one rule per line; `#` starts a comment line:
//!
//! ```text
//! # remove a text wherever it appears in a frame name
//! strip: specialized
//! # replace a text inside frame names
//! replace: Swift. => S.
//! # replace a run of consecutive frames (leaf-most run first matched from the root) by one frame
//! fold: swift_allocObject;swift_slowAlloc;malloc => A
//! # remove frames with exactly this name
//! drop: __libc_start_call_main
//! # count frames with exactly this name as allocation machinery, never as an allocation site
//! alloc: pool_get
//! ```
//!
//! The text after `strip:` keeps its trailing space only when written as `strip: "specialized "`
//! (quotes are removed); unquoted texts are trimmed.

use std::path::Path;

use crate::error::{Error, Result};
use crate::profile::{Frame, Profile};

/// One rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rule {
    /// Replace `from` by `to` inside every frame name (`strip` is a replace by "").
    Replace {
        /// The text to find.
        from: String,
        /// What to put instead.
        to: String,
    },
    /// Replace every run of consecutive frames equal to `run` by the single frame `into`.
    Fold {
        /// The frames, root-most first.
        run: Vec<String>,
        /// The frame that stands for them.
        into: String,
    },
    /// Remove every frame named exactly this.
    Drop(String),
    /// Count frames named exactly this as allocation machinery (see [`crate::sites`]); the
    /// frames themselves stay.
    Alloc(String),
}

/// An ordered list of [`Rule`]s.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rules(pub Vec<Rule>);

impl Rules {
    /// The rules of the Swift server guide: drop `specialized `, and fold
    /// `swift_allocObject;swift_slowAlloc;malloc` (also with glibc's `__libc_malloc`) into `A`.
    pub fn builtin() -> Rules {
        let fold = |leaf: &str| Rule::Fold {
            run: vec![
                "swift_allocObject".into(),
                "swift_slowAlloc".into(),
                leaf.into(),
            ],
            into: "A".into(),
        };
        Rules(vec![
            Rule::Replace {
                from: "specialized ".into(),
                to: String::new(),
            },
            fold("malloc"),
            fold("__libc_malloc"),
            Rule::Alloc("A".into()),
        ])
    }

    /// The allocation machinery: the built-in list and the `alloc:` rules.
    pub fn machinery(&self) -> crate::sites::Machinery {
        crate::sites::Machinery {
            extra: self
                .0
                .iter()
                .filter_map(|r| match r {
                    Rule::Alloc(name) => Some(name.clone()),
                    _ => None,
                })
                .collect(),
        }
    }

    /// Whether there is no rule.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Appends `other`'s rules after these.
    pub fn extend(&mut self, other: Rules) {
        self.0.extend(other.0);
    }

    /// Reads a rule file.
    pub fn read(path: &Path) -> Result<Rules> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Rules::parse(&text, &path.display().to_string())
    }

    /// Parses rule text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Rules> {
        let mut rules = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let err = |message: String| Error::Parse {
                file: file.to_owned(),
                line: i + 1,
                message,
            };
            let (kind, rest) = line.split_once(':').ok_or_else(|| {
                err(format!(
                    "expected `strip:`, `replace:`, `fold:`, `drop:` or `alloc:` at the start of `{line}`"
                ))
            })?;
            let rest = rest.trim();
            let arrow = |rest: &str| -> Result<(String, String)> {
                let (a, b) = rest
                    .split_once("=>")
                    .ok_or_else(|| err(format!("expected `FROM => TO` after `{kind}:`")))?;
                Ok((unquote(a), unquote(b)))
            };
            let rule = match kind.trim() {
                "strip" => Rule::Replace {
                    from: nonempty(unquote(rest), &err)?,
                    to: String::new(),
                },
                "replace" => {
                    let (from, to) = arrow(rest)?;
                    Rule::Replace {
                        from: nonempty(from, &err)?,
                        to,
                    }
                }
                "fold" => {
                    let (run, into) = arrow(rest)?;
                    let run: Vec<String> = run.split(';').map(|f| f.trim().to_owned()).collect();
                    if run.iter().any(String::is_empty) || into.is_empty() {
                        return Err(err(
                            "`fold:` needs `frame;frame;… => frame` with no empty frame".into(),
                        ));
                    }
                    Rule::Fold { run, into }
                }
                "drop" => Rule::Drop(nonempty(unquote(rest), &err)?),
                "alloc" => Rule::Alloc(nonempty(unquote(rest), &err)?),
                other => {
                    return Err(err(format!(
                        "unknown rule `{other}`: expected strip, replace, fold, drop or alloc"
                    )))
                }
            };
            rules.push(rule);
        }
        Ok(Rules(rules))
    }

    /// Applies every rule, in order, to every stack of `profile`.
    pub fn apply(&self, profile: &Profile) -> Profile {
        let renamed = profile.map_frames(|name| {
            let mut s = std::borrow::Cow::Borrowed(name);
            for rule in &self.0 {
                if let Rule::Replace { from, to } = rule {
                    if s.contains(from.as_str()) {
                        s = s.replace(from.as_str(), to).into();
                    }
                }
            }
            s
        });
        let structural = self
            .0
            .iter()
            .any(|r| matches!(r, Rule::Fold { .. } | Rule::Drop(_)));
        if !structural {
            return renamed;
        }
        renamed.map_stacks(|frames| {
            for rule in &self.0 {
                match rule {
                    Rule::Replace { .. } | Rule::Alloc(_) => {}
                    Rule::Drop(name) => {
                        // Never drop the root: it names the process.
                        let mut first = true;
                        frames.retain(|f| std::mem::take(&mut first) || f.name != *name);
                    }
                    Rule::Fold { run, into } => fold_runs(frames, run, into),
                }
            }
        })
    }
}

/// Folds each run of frames named `run` into one frame `into`, at the location of the run's
/// root-most frame (where the program called into it).
fn fold_runs(frames: &mut Vec<Frame>, run: &[String], into: &str) {
    let mut i = 0;
    while i + run.len() <= frames.len() {
        if frames[i..i + run.len()]
            .iter()
            .zip(run)
            .all(|(a, b)| a.name == *b)
        {
            let folded = Frame {
                name: into.to_owned(),
                location: frames[i].location.clone(),
            };
            frames.splice(i..i + run.len(), std::iter::once(folded));
        }
        i += 1;
    }
}

fn unquote(s: &str) -> String {
    let t = s.trim();
    t.strip_prefix('"')
        .and_then(|u| u.strip_suffix('"'))
        .unwrap_or(t)
        .to_owned()
}

fn nonempty(s: String, err: &dyn Fn(String) -> Error) -> Result<String> {
    if s.is_empty() {
        Err(err("the rule needs a non-empty text".into()))
    } else {
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Weight;

    #[test]
    fn builtin_rules_fold_and_strip() {
        let mut p = Profile::new();
        p.add(
            [
                "app",
                "specialized Foo.bar()",
                "swift_allocObject",
                "swift_slowAlloc",
                "malloc",
            ],
            Weight::new(3, 0),
        );
        p.add(
            [
                "app",
                "Foo.bar()",
                "swift_allocObject",
                "swift_slowAlloc",
                "__libc_malloc",
            ],
            Weight::new(2, 0),
        );
        let q = Rules::builtin().apply(&p);
        assert_eq!(
            q.folded_lines(),
            vec![("app;Foo.bar();A".to_owned(), Weight::new(5, 0))]
        );
    }

    #[test]
    fn parse_rule_file_and_errors() {
        let r = Rules::parse(
            "# c\nstrip: \"specialized \"\nfold: a;b => X\ndrop: z\nreplace: x => y\nalloc: pool_get\n",
            "r",
        )
        .unwrap();
        assert_eq!(r.0.len(), 5);
        assert_eq!(r.machinery().extra, vec!["pool_get".to_owned()]);
        let e = Rules::parse("\nbogus line\n", "rules.txt")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("rules.txt:2:"), "{e}");
        assert!(Rules::parse("fold: a;;b => X", "r").is_err());
    }
}
