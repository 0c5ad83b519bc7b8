//! Scenarios: a simulated switch, a sequence of requests and switch events,
//! and what must come out — the regression suite of every platform profile.

mod coverage;
mod load;
mod run;
mod settled;

pub use coverage::{CoverageReport, Uncovered, WorkflowCoverage};
pub use load::{Expect, Scenario, ScenarioFile, Step, StepKind, load_scenario};
pub use run::{ScenarioResult, StepResult, run_scenario};
pub use settled::{Impossible, impossible};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::Error;

/// The folder scenario files live in, inside a platform folder.
pub const SCENARIOS: &str = "scenarios";

/// The scenario files of a platform's `scenarios` folder, when `dir` is
/// one: a user who points at the folder means its files.
pub fn files_of_folder(dir: &Path) -> Option<Vec<PathBuf>> {
    if !dir.is_dir() || !dir.ends_with(SCENARIOS) {
        return None;
    }
    Some(yaml_files(dir)).filter(|f| f.first().and_then(|f| platform_of(f)).is_some())
}

/// The YAML files of a folder, sorted; none when it cannot be read.
fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|f| f.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    files
}

/// Scenario files under `paths`, by the platform folder they test (the
/// parent of their `scenarios` folder).
pub fn find(paths: &[PathBuf]) -> Result<BTreeMap<PathBuf, Vec<PathBuf>>, Error> {
    let expanded: Vec<PathBuf> = paths
        .iter()
        .flat_map(|p| files_of_folder(p).unwrap_or_else(|| vec![p.clone()]))
        .collect();
    let paths = &expanded[..];
    let mut out: BTreeMap<PathBuf, Vec<PathBuf>> = BTreeMap::new();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|source| Error::Io {
            path: p.clone(),
            source,
        })?;
        if meta.is_file() {
            let platform = p
                .parent()
                .filter(|d| d.ends_with(SCENARIOS))
                .and_then(Path::parent);
            match platform {
                Some(dir) => out.entry(dir.to_path_buf()).or_default().push(p.clone()),
                None => return Err(Error::NoScenarios { path: p.clone() }),
            }
        } else {
            walk(p, &mut out).map_err(|source| Error::Io {
                path: p.clone(),
                source,
            })?;
        }
    }
    if out.is_empty() {
        return Err(Error::NoScenarios {
            path: paths.first().cloned().unwrap_or_default(),
        });
    }
    for files in out.values_mut() {
        files.sort();
        files.dedup();
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut BTreeMap<PathBuf, Vec<PathBuf>>) -> std::io::Result<()> {
    walk_once(dir, out, &mut std::collections::HashSet::new())
}

/// `walk`, entering each folder once: a symbolic link back up the tree would
/// otherwise be followed for ever.
fn walk_once(
    dir: &Path,
    out: &mut BTreeMap<PathBuf, Vec<PathBuf>>,
    seen: &mut std::collections::HashSet<PathBuf>,
) -> std::io::Result<()> {
    if !seen.insert(dir.canonicalize()?) {
        return Ok(());
    }
    // A platform without scenarios of its own may inherit some.
    if dir.join(crate::workflow::validate::MANIFEST).is_file() {
        out.entry(dir.to_path_buf()).or_default();
    }
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.path());
    for e in entries {
        let path = e.path();
        let name = e.file_name();
        if name.to_string_lossy().starts_with('.') || name == "target" {
            continue;
        }
        if path.is_dir() {
            if name == SCENARIOS {
                for f in std::fs::read_dir(&path)? {
                    let f = f?.path();
                    if f.extension().is_some_and(|x| x == "yaml" || x == "yml") {
                        out.entry(dir.to_path_buf()).or_default().push(f);
                    }
                }
            } else {
                walk_once(&path, out, seen)?;
            }
        }
    }
    Ok(())
}

/// The platform folder of a scenario file: the parent of its `scenarios`
/// folder, when that holds a platform manifest.
pub fn platform_of(file: &Path) -> Option<PathBuf> {
    let dir = file.parent().filter(|d| d.ends_with(SCENARIOS))?.parent()?;
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    dir.join(crate::workflow::validate::MANIFEST)
        .is_file()
        .then(|| dir.to_path_buf())
}

/// The scenarios `platform` inherits: those of the platforms it extends
/// that say `inherit: true`, unless a nearer folder (its own first) has a
/// scenario file of the same name. A file that does not read is left to its
/// own platform's run, which reports it.
pub fn inherited(platform: &crate::Platform) -> Vec<PathBuf> {
    let names = |dir: &Path| yaml_files(&dir.join(SCENARIOS));
    let mut seen: std::collections::HashSet<std::ffi::OsString> = names(&platform.dir)
        .iter()
        .filter_map(|f| f.file_name().map(ToOwned::to_owned))
        .collect();
    let mut out = Vec::new();
    // Shown as the user would write them: relative to here.
    let cwd = std::env::current_dir().and_then(|d| d.canonicalize()).ok();
    for dir in &platform.ancestors {
        let dir = cwd
            .as_ref()
            .and_then(|c| dir.strip_prefix(c).ok())
            .unwrap_or(dir);
        for f in names(dir) {
            let Some(name) = f.file_name().map(ToOwned::to_owned) else {
                continue;
            };
            if !seen.insert(name) {
                continue;
            }
            let inherits = std::fs::read_to_string(&f)
                .ok()
                .and_then(|t| crate::workflow::load::yaml_to_json(t.trim_start_matches('\u{feff}')))
                .is_some_and(|v| v.get("inherit") == Some(&serde_json::Value::Bool(true)));
            if inherits {
                out.push(f);
            }
        }
    }
    out
}

/// Loads scenario `files` against their platforms in `report` (which must
/// have validated them), adding their diagnostics to it.
pub fn check_files(report: &mut crate::Report, files: &[PathBuf]) -> Result<usize, Error> {
    let programs = crate::workflow::expr::Programs::default();
    let mut count = 0;
    for f in files {
        let Some(dir) = platform_of(f) else { continue };
        let dir = dir.canonicalize().unwrap_or(dir);
        let Some(platform) = report.platforms.iter().find(|p| p.dir == dir) else {
            // The platform has errors of its own, reported already.
            continue;
        };
        let mut diags = crate::Diagnostics::new();
        load_scenario(&mut report.sources, &programs, f, platform, &mut diags)?;
        report.diagnostics.extend(diags);
        count += 1;
    }
    report.diagnostics.sort();
    report.files += count;
    Ok(count)
}

/// Loads the scenarios of every platform of a validation report, adding
/// their diagnostics to it; `hisflow validate` checks scenarios this way.
/// Returns how many scenario files were read.
pub fn check_report(report: &mut crate::Report) -> Result<usize, Error> {
    let programs = crate::workflow::expr::Programs::default();
    let cwd = std::env::current_dir().and_then(|d| d.canonicalize()).ok();
    let mut count = 0;
    for platform in &report.platforms {
        // Paths read as the user would write them: relative to here. The
        // platform that is here is `.`, which the walk can enter (an empty
        // path it cannot); its files are then named without `./`.
        let dir = cwd
            .as_ref()
            .and_then(|c| platform.dir.strip_prefix(c).ok())
            .map_or_else(|| platform.dir.clone(), Path::to_path_buf);
        let dir = if dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dir
        };
        if !dir.join(SCENARIOS).is_dir() {
            continue;
        }
        let Ok(found) = find(std::slice::from_ref(&dir)) else {
            continue;
        };
        for files in found.get(&dir).into_iter() {
            for f in files {
                let f = &f
                    .strip_prefix(".")
                    .map_or_else(|_| f.clone(), Path::to_path_buf);
                let mut diags = crate::Diagnostics::new();
                load_scenario(&mut report.sources, &programs, f, platform, &mut diags)?;
                report.diagnostics.extend(diags);
                count += 1;
            }
        }
    }
    report.diagnostics.sort();
    report.files += count;
    Ok(count)
}
