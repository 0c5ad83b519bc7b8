//! What each rule catches, why it matters, and a file that breaks it next to
//! the same file fixed: the text of docs/rules.md and of `hisflow rules
//! NAME`. Each rule's text is `src/workflow/rules/<name>.md`, compiled in by
//! the `rules!` registry, so a rule cannot exist without one.
//!
//! A text has four sections, each under a `## ` heading: `Catches`, `Why`,
//! `Failing` and `Fixed` — or `No example` instead of the last two, saying
//! why no small file can show the rule. An example is one or more fenced
//! blocks whose info string is `yaml <path>` (`yaml <path> latin1` for a
//! file saved as Latin-1): the files of a folder that `hisflow validate`
//! checks. `Fixed` lists only the files that change. tests/rules.rs writes
//! each example out and validates it.

use std::fmt::Write;

use super::diagnostic::Rule;

/// How an example file is saved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    /// ISO 8859-1: what `not-utf8` is about. Text outside Latin-1 is saved
    /// as `?`.
    Latin1,
}

/// One file of an example, by its path inside the folder validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExampleFile {
    pub path: &'static str,
    pub text: &'static str,
    pub encoding: Encoding,
}

impl ExampleFile {
    /// The file's bytes as saved.
    pub fn bytes(&self) -> Vec<u8> {
        match self.encoding {
            Encoding::Utf8 => self.text.as_bytes().to_vec(),
            Encoding::Latin1 => self
                .text
                .chars()
                .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
                .collect(),
        }
    }
}

/// One rule's explanation, as written in its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    pub rule: Rule,
    /// What the rule reports, and where.
    pub catches: &'static str,
    /// What would go wrong if the validator let it through.
    pub why: &'static str,
    /// The `Failing` section: prose and the files of the example.
    pub failing: &'static str,
    /// The `Fixed` section: the files that change, and what changed.
    pub fixed: &'static str,
    /// Why no example is given, for the rules no small file can break.
    pub no_example: Option<&'static str>,
}

impl Explanation {
    pub fn of(rule: Rule) -> Self {
        let text = rule.text();
        let section = |name: &str| sections(text).find(|(h, _)| *h == name).map(|(_, b)| b);
        Explanation {
            rule,
            catches: section("Catches").unwrap_or_default(),
            why: section("Why").unwrap_or_default(),
            failing: section("Failing").unwrap_or_default(),
            fixed: section("Fixed").unwrap_or_default(),
            no_example: section("No example"),
        }
    }

    /// The files of the failing example.
    pub fn failing_files(&self) -> Vec<ExampleFile> {
        files(self.failing)
    }

    /// The files the fix changes or adds; the others stay as they fail.
    pub fn fixed_files(&self) -> Vec<ExampleFile> {
        files(self.fixed)
    }

    /// The rule's section of docs/rules.md.
    pub fn markdown(&self) -> String {
        let r = self.rule;
        let mut out = format!("## {}\n\n", r.name());
        let _ = writeln!(
            out,
            "`{}` · {} · {}\n",
            r.code(),
            r.severity().as_str(),
            r.summary()
        );
        let _ = writeln!(out, "{}\n", self.catches);
        let _ = writeln!(out, "**Why it matters.**\n{}\n", self.why);
        match self.no_example {
            Some(why) => {
                let _ = writeln!(out, "**No example.**\n{why}\n");
            }
            None => {
                let _ = writeln!(out, "**Failing:**\n\n{}\n", captioned(self.failing));
                let _ = writeln!(out, "**Fixed:**\n\n{}\n", captioned(self.fixed));
            }
        }
        out
    }
}

/// The whole of docs/rules.md.
pub fn markdown() -> String {
    let mut out = String::from(
        "# Validation rules\n\n\
         <!-- Generated from src/workflow/rules/*.md by `hisflow rules --markdown`; tests/rules.rs fails when this file is stale. -->\n\n",
    );
    out.push_str(
        "Every rule `hisflow validate` checks: what it catches, why it matters, and a\n\
         file that breaks it next to the same file fixed. Each diagnostic names its\n\
         rule (`hisflow::<name>`) and links its section here; `hisflow rules NAME`\n\
         prints the section in a terminal. tests/rules.rs writes every example to a\n\
         folder and validates it: the failing one reports its rule and nothing\n\
         else, the fixed one validates clean. A file name such as `p/platform.yaml`\n\
         is a path inside the folder given to `hisflow validate`.\n\n\
         | rule | severity | what it catches |\n|---|---|---|\n",
    );
    for r in Rule::ALL {
        let _ = writeln!(
            out,
            "| [`{n}`](#{n}) | {} | {} |",
            r.severity().as_str(),
            r.summary(),
            n = r.name()
        );
    }
    out.push('\n');
    for r in Rule::ALL {
        out.push_str(&Explanation::of(*r).markdown());
    }
    // One newline at the end, as editors save it.
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

/// `(heading, body)` of each `## ` section, headings inside fenced blocks
/// excepted; bodies trimmed.
fn sections(text: &'static str) -> impl Iterator<Item = (&'static str, &'static str)> {
    let mut starts = Vec::new();
    let mut fenced = false;
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        if line.starts_with("```") {
            fenced = !fenced;
        } else if !fenced && let Some(h) = line.strip_prefix("## ") {
            starts.push((at, at + line.len(), h.trim()));
        }
        at += line.len();
    }
    let ends: Vec<usize> = starts
        .iter()
        .skip(1)
        .map(|(s, _, _)| *s)
        .chain([text.len()])
        .collect();
    starts
        .into_iter()
        .zip(ends)
        .map(move |((_, body, h), end)| (h, text[body..end].trim()))
}

/// The fenced `yaml <path>` blocks of a section.
fn files(section: &'static str) -> Vec<ExampleFile> {
    let mut out = Vec::new();
    let mut open: Option<(&'static str, Encoding, usize)> = None;
    let mut at = 0;
    for line in section.split_inclusive('\n') {
        let next = at + line.len();
        if let Some(info) = line.trim_end().strip_prefix("```") {
            match open.take() {
                Some((path, encoding, from)) => out.push(ExampleFile {
                    path,
                    text: &section[from..at],
                    encoding,
                }),
                None => {
                    let mut words = info.split_whitespace();
                    if words.next() == Some("yaml")
                        && let Some(path) = words.next()
                    {
                        let encoding = match words.next() {
                            Some("latin1") => Encoding::Latin1,
                            _ => Encoding::Utf8,
                        };
                        open = Some((path, encoding, next));
                    } else {
                        // A block that is no file: skip to its end.
                        open = Some(("", Encoding::Utf8, next));
                    }
                }
            }
        }
        at = next;
    }
    out.retain(|f| !f.path.is_empty());
    out
}

/// A section with each file's path as a caption above its block, and
/// the info string left as plain `yaml` for renderers.
fn captioned(section: &str) -> String {
    let mut out = String::new();
    let mut fenced = false;
    for line in section.split_inclusive('\n') {
        match line.trim_end().strip_prefix("```") {
            Some(info) if !fenced => {
                fenced = true;
                let mut words = info.split_whitespace();
                let lang = words.next().unwrap_or_default();
                match (words.next(), words.next()) {
                    (Some(path), Some("latin1")) => {
                        let _ = writeln!(out, "`{path}`, saved as Latin-1:\n");
                    }
                    (Some(path), _) => {
                        let _ = writeln!(out, "`{path}`:\n");
                    }
                    _ => {}
                }
                let _ = writeln!(out, "```{lang}");
            }
            Some(_) => {
                fenced = false;
                out.push_str(line);
            }
            None => out.push_str(line),
        }
    }
    if !section.ends_with('\n') && out.ends_with('\n') {
        out.pop();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_is_explained_in_full() {
        for r in Rule::ALL {
            let e = Explanation::of(*r);
            let name = r.name();
            assert!(!e.catches.is_empty(), "{name}: no `## Catches`");
            assert!(!e.why.is_empty(), "{name}: no `## Why`");
            match e.no_example {
                Some(why) => {
                    assert!(!why.is_empty(), "{name}: `## No example` says not why");
                    assert!(e.failing.is_empty() && e.fixed.is_empty(), "{name}");
                }
                None => {
                    assert!(!e.failing_files().is_empty(), "{name}: no failing file");
                    assert!(!e.fixed_files().is_empty(), "{name}: no fixed file");
                }
            }
            for (h, _) in sections(r.text()) {
                assert!(
                    ["Catches", "Why", "Failing", "Fixed", "No example"].contains(&h),
                    "{name}: unknown section `## {h}`"
                );
            }
        }
    }

    #[test]
    fn files_are_read_from_their_fences() {
        let section = "Two files:\n\n```yaml p/platform.yaml\nplatform: p\n```\n\n```yaml w.yaml latin1\nworkflow: é\n```\n\n```\nnot a file\n```\n";
        let files = files(section);
        assert_eq!(files.len(), 2);
        assert_eq!(files[0].path, "p/platform.yaml");
        assert_eq!(files[0].text, "platform: p\n");
        assert_eq!(files[1].encoding, Encoding::Latin1);
        assert_eq!(files[1].bytes(), b"workflow: \xe9\n");
        let shown = captioned(section);
        assert!(
            shown.contains("`p/platform.yaml`:\n\n```yaml\nplatform: p\n```"),
            "{shown}"
        );
        assert!(
            shown.contains("`w.yaml`, saved as Latin-1:\n\n```yaml\n"),
            "{shown}"
        );
    }
}
