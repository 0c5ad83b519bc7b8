//! Finding and assembling what to validate: folders of workflow files, each a
//! platform (with `platform.yaml`, possibly extending another) or a plain
//! folder of workflows checked against the whole catalog.

use rustc_hash::FxHashMap as HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

use crate::workflow::IndexMap;
use petgraph::algo::kosaraju_scc;
use petgraph::graph::DiGraph;

use super::reuse::{Checked, SettingsRead, WorkflowTerms};
use super::specialise::Reads;
use super::{Callee, Env, Vocab, settings};
use crate::Error;
use crate::platform::catalog;
use crate::workflow::diagnostic::{Diagnostic, Diagnostics, Rule, did_you_mean};
use crate::workflow::expr::Programs;
use crate::workflow::load::{
    self, Ctx, RawFile, RawMachine, RawOverrides, RawPlatform, RawWorkflow,
};
use crate::workflow::model::{Entity, EventRoute, Machine, Platform, SettingDecl, Workflow};
use crate::workflow::raw::{IGNORE, Sp};
use crate::workflow::source::{FileId, Overlay, Sources, Span};
use crate::workflow::vocab::{self, ERROR_CODES, REQUESTS, Shape, States};

/// How deep platforms may extend one another.
pub const MAX_EXTENDS: usize = 16;

/// The file name of a platform manifest.
pub const MANIFEST: &str = "platform.yaml";

/// Folders whose files are not workflows (scenario files live there).
const SKIPPED_DIRS: &[&str] = &["scenarios", "target", "node_modules"];

/// The outcome of a validation run.
#[derive(Debug)]
pub struct Report {
    pub sources: Sources,
    pub diagnostics: Diagnostics,
    /// The platforms that validated without errors; they run as they are,
    /// faster once [`Report::prepare`] has readied them.
    pub platforms: Vec<Platform>,
    /// Workflows of folders without a manifest that validated without errors.
    pub workflows: Vec<Arc<Workflow>>,
    /// Machines of folders without a manifest that validated without errors.
    pub machines: Vec<Arc<Machine>>,
    /// Workflow files and manifests read.
    pub files: usize,
    /// States checked, counting each file once.
    pub states: usize,
    /// What each platform's models read of its settings, by the platform's
    /// folder: what [`Report::prepare`] needs to share its work. `None` once
    /// it has.
    pub(crate) reads: Option<HashMap<PathBuf, Reads>>,
}

/// Validates files and folders (recursively). A file inside a folder is
/// checked in its folder's context, but only its own findings are kept.
pub fn validate_paths(paths: &[PathBuf]) -> Result<Report, Error> {
    validate_paths_with(paths, Overlay::new())
}

/// As [`validate_paths`], reading `overlay`'s texts in place of their files:
/// an editor's unsaved buffers, or a file given on stdin.
pub fn validate_paths_with(paths: &[PathBuf], overlay: Overlay) -> Result<Report, Error> {
    let mut v = Validator {
        sources: Sources::with_overlay(overlay),
        ..Validator::default()
    };
    let mut only: Option<Vec<PathBuf>> = Some(Vec::new());
    let mut dirs = Vec::new();
    for path in paths {
        let overlaid = v.sources.overlay().get(path).is_some();
        let meta = std::fs::metadata(path);
        if overlaid && meta.as_ref().is_ok_and(|m| m.is_dir()) {
            return Err(Error::Io {
                path: path.clone(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "is a folder"),
            });
        }
        let meta = match meta {
            Err(_) if overlaid => None,
            m => Some(m.map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?),
        };
        let Some(meta) = meta else {
            if !is_yaml(path) {
                return Err(Error::NoWorkflows { path: path.clone() });
            }
            let dir = match path.parent() {
                Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                _ => PathBuf::from("."),
            };
            if path.file_name().is_some_and(|n| n == MANIFEST) {
                only = None;
            } else if let Some(o) = &mut only {
                o.push(path.clone());
            }
            dirs.push(dir);
            continue;
        };
        // A FIFO or a device given by name is never read, and never
        // passed over in silence.
        if !meta.is_dir() && !meta.is_file() {
            return Err(Error::Io {
                path: path.clone(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file"),
            });
        }
        if meta.is_dir() {
            only = None;
            let before = dirs.len();
            collect_dirs(path, &mut dirs).map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?;
            if dirs.len() == before {
                return Err(Error::NoWorkflows { path: path.clone() });
            }
        } else {
            let dir = path
                .parent()
                .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
            let dir = if dir.as_os_str().is_empty() {
                PathBuf::from(".")
            } else {
                dir
            };
            if path.file_name().is_some_and(|n| n == MANIFEST) {
                only = None;
            } else if let Some(o) = &mut only {
                o.push(path.clone());
            }
            if !is_yaml(path) {
                return Err(Error::NoWorkflows { path: path.clone() });
            }
            dirs.push(dir);
        }
    }
    dirs.sort();
    dirs.dedup();
    for dir in &dirs {
        v.group(dir)?;
    }
    let mut diagnostics = std::mem::take(&mut v.diags);
    if let Some(only) = only {
        let wanted: Vec<PathBuf> = only.iter().map(|p| v.canonical(p)).collect();
        // Out while the validator resolves its paths, which borrows it.
        let sources = std::mem::take(&mut v.sources);
        let keep: Vec<FileId> = sources
            .iter()
            .filter(|(_, f)| wanted.contains(&v.canonical(f.path())))
            .map(|(id, _)| id)
            .collect();
        v.sources = sources;
        diagnostics = diagnostics
            .into_iter()
            .filter(|d| keep.contains(&d.span.file))
            .fold(Diagnostics::new(), |mut acc, d| {
                acc.push(d);
                acc
            });
    }
    diagnostics.sort();
    Ok(Report {
        sources: v.sources,
        diagnostics,
        platforms: v.platforms,
        workflows: v.loose,
        machines: v.loose_machines,
        files: v.files,
        states: v.states,
        reads: Some(v.reads),
    })
}

/// Loads one platform folder for running: the platform, or every diagnostic.
pub fn load_platform(dir: &Path) -> Result<(Platform, Report), Error> {
    let mut report = validate_paths(&[dir.join(MANIFEST)])?;
    let canonical = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    match report.platforms.iter().position(|p| p.dir == canonical) {
        Some(i) if !report.diagnostics.has_errors() => {
            report.prepare();
            let p = report.platforms.swap_remove(i);
            Ok((p, report))
        }
        _ => Err(Error::Invalid(Box::new(report))),
    }
}

fn is_yaml(p: &Path) -> bool {
    p.extension().is_some_and(|e| e == "yaml" || e == "yml")
}

/// Folders under `root` (itself included) that hold YAML files.
fn collect_dirs(root: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut has_yaml = false;
    let mut subdirs = Vec::new();
    for entry in std::fs::read_dir(root)? {
        let entry = entry?;
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let ty = entry.file_type()?;
        if ty.is_dir() {
            if !name.starts_with('.') && !SKIPPED_DIRS.contains(&name.as_ref()) {
                subdirs.push(path);
            }
        } else if is_yaml(&path) {
            has_yaml = true;
        }
    }
    if has_yaml {
        out.push(root.to_path_buf());
    }
    subdirs.sort();
    for d in subdirs {
        collect_dirs(&d, out)?;
    }
    Ok(())
}

/// The workflow files of one folder, sorted.
fn workflow_files(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let io = |source| Error::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let path = entry.path();
        // `./w.yaml` reads as the user wrote it: `w.yaml`.
        let path = path
            .strip_prefix(".")
            .map(Path::to_path_buf)
            .unwrap_or(path);
        if !is_yaml(&path) || path.file_name().is_none_or(|n| n == MANIFEST) {
            continue;
        }
        // The listing says what an entry is; only a link needs a look at
        // what it points to.
        let file = match entry.file_type() {
            Ok(t) if !t.is_symlink() => t.is_file(),
            _ => path.is_file(),
        };
        if file {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

#[derive(Default)]
struct Validator {
    sources: Sources,
    programs: Programs,
    diags: Diagnostics,
    raw_files: HashMap<PathBuf, Option<Loaded>>,
    raw_platforms: HashMap<PathBuf, Option<Rc<RawPlatform>>>,
    /// Each folder's files, listed once per run: every platform that
    /// extends a folder reads it, and listing it again cost as much as
    /// parsing a file.
    folders: HashMap<PathBuf, Files>,
    /// Each path resolved by the file system once per run (`None` where it
    /// could not be): the folders of every `extends` chain are compared at
    /// each link, a system call per component of the path each time.
    resolved: HashMap<PathBuf, Option<PathBuf>>,
    platforms: Vec<Platform>,
    loose: Vec<Arc<Workflow>>,
    loose_machines: Vec<Arc<Machine>>,
    /// `extends` loops already reported, by their sorted folders.
    extends_loops: Vec<Vec<PathBuf>>,
    checked: Checked,
    reads: HashMap<PathBuf, Reads>,
    files: usize,
    states: usize,
}

/// A file of a folder, loaded once per run.
#[derive(Clone)]
enum Loaded {
    Workflow(Rc<RawWorkflow>),
    Machine(Rc<RawMachine>),
    Overrides(Rc<RawOverrides>),
}

/// The workflows and the machines of a folder, each with its path.
#[derive(Default, Clone)]
struct Files {
    workflows: Vec<(PathBuf, Rc<RawWorkflow>)>,
    machines: Vec<(PathBuf, Rc<RawMachine>)>,
    overrides: Vec<(PathBuf, Rc<RawOverrides>)>,
    /// Files that did not load far enough to say what they are (reported):
    /// what they define is unknown, so names they might define are not
    /// reported missing, and the platform is incomplete.
    broken: usize,
}

/// A chain's settings and error codes, as its manifests declare and set
/// them, root first.
#[derive(Default)]
struct Typed {
    /// Name → declaration, and where it is declared.
    declared: IndexMap<String, (SettingDecl, Span)>,
    /// Name → the value the last manifest that set it gave.
    values: IndexMap<String, serde_json::Value>,
    /// Code → meaning, and where it is declared.
    errors: IndexMap<String, (String, Span)>,
    /// Settings whose declaration or value was wrong (reported): they are
    /// not reported again as undeclared or without a value.
    broken: std::collections::HashSet<String>,
}

/// The states of a folder's machines, by entity.
fn states_of(machines: &Machines) -> States {
    let names = |e: Entity| {
        machines
            .get(&e)
            .map(|(_, m)| m.states.keys().map(|k| k.to_string()).collect())
    };
    States {
        channel: names(Entity::Channel),
        session: names(Entity::Session),
    }
}

/// What a platform's folders hold, for the checks of its manifest.
struct Inventory<'a> {
    workflows: &'a IndexMap<String, (PathBuf, Rc<RawWorkflow>)>,
    machines: &'a Machines,
    /// Some file did not load: a name it might define is not reported
    /// missing.
    broken: bool,
}

/// Machines by the entity they are for.
type Machines = IndexMap<Entity, (PathBuf, Rc<RawMachine>)>;

/// One platform manifest of an `extends` chain, with its folder.
struct Layer {
    dir: PathBuf,
    raw: Rc<RawPlatform>,
}

impl Validator {
    /// `p` as the file system resolves it, if it can.
    fn resolve(&mut self, p: &Path) -> Option<PathBuf> {
        if let Some(r) = self.resolved.get(p) {
            return r.clone();
        }
        let r = p.canonicalize().ok();
        self.resolved.insert(p.to_path_buf(), r.clone());
        r
    }

    /// One spelling of `p`: resolved, or its folder resolved when the file
    /// itself does not exist.
    fn canonical(&mut self, p: &Path) -> PathBuf {
        self.resolve(p)
            .unwrap_or_else(|| crate::workflow::source::overlay_key(p))
    }

    fn same_dir(&mut self, a: &Path, b: &Path) -> bool {
        match (self.resolve(a), self.resolve(b)) {
            (Some(a), Some(b)) => a == b,
            _ => a == b,
        }
    }

    fn ctx(&self, file: FileId) -> Ctx<'_> {
        Ctx {
            sources: &self.sources,
            file,
            programs: &self.programs,
        }
    }

    fn raw_file(&mut self, path: &Path) -> Result<Option<Loaded>, Error> {
        if let Some(r) = self.raw_files.get(path) {
            return Ok(r.clone());
        }
        let loaded = match load::read(&mut self.sources, path, &mut self.diags)? {
            Some(file) => {
                let cx = Ctx {
                    sources: &self.sources,
                    file,
                    programs: &self.programs,
                };
                load::file(cx, &mut self.diags).map(|f| match f {
                    RawFile::Workflow(w) => Loaded::Workflow(Rc::new(w)),
                    RawFile::Machine(m) => Loaded::Machine(Rc::new(m)),
                    RawFile::Overrides(o) => Loaded::Overrides(Rc::new(o)),
                })
            }
            None => None,
        };
        self.files += 1;
        self.states += match &loaded {
            Some(Loaded::Workflow(w)) => w.states.len(),
            Some(Loaded::Machine(m)) => m.states.len(),
            Some(Loaded::Overrides(o)) => o.states.len(),
            None => 0,
        };
        self.raw_files.insert(path.to_path_buf(), loaded.clone());
        Ok(loaded)
    }

    /// The loaded workflows and machines of a folder.
    fn files_of(&mut self, dir: &Path) -> Result<Files, Error> {
        if let Some(files) = self.folders.get(dir) {
            return Ok(files.clone());
        }
        let mut files = Files::default();
        let mut paths = workflow_files(dir)?;
        paths.extend(
            self.sources
                .overlay()
                .new_files_in(dir)
                .into_iter()
                .filter(|p| is_yaml(p) && p.file_name().is_some_and(|n| n != MANIFEST)),
        );
        for f in paths {
            match self.raw_file(&f)? {
                Some(Loaded::Workflow(w)) => {
                    files.broken += usize::from(w.header.is_none());
                    files.workflows.push((f, w));
                }
                Some(Loaded::Machine(m)) => {
                    files.broken += usize::from(m.header.is_none());
                    files.machines.push((f, m));
                }
                Some(Loaded::Overrides(o)) => {
                    files.broken += usize::from(o.header.is_none());
                    files.overrides.push((f, o));
                }
                None => files.broken += 1,
            }
        }
        self.folders.insert(dir.to_path_buf(), files.clone());
        Ok(files)
    }

    /// Machines by entity; a folder's own replace the inherited ones, and
    /// two of one folder may not be for the same entity.
    fn machines(&mut self, own: &[(PathBuf, Rc<RawMachine>)], inherited: Machines) -> Machines {
        let mut out = inherited;
        let mut seen: HashMap<Entity, Span> = HashMap::default();
        for (path, raw) in own {
            let Some(h) = &raw.header else { continue };
            let span = self.ctx(raw.file).span_of(&h.entity);
            if let Some(first) = seen.get(&*h.entity) {
                self.diags.push(
                    Diagnostic::new(
                        Rule::DuplicateMachine,
                        span,
                        format!(
                            "another machine of this folder is also for the {}",
                            h.entity.as_str()
                        ),
                    )
                    .label("second machine for this entity")
                    .related(first.clone(), "the first is here")
                    .help("an entity has one machine: merge them into one file"),
                );
                continue;
            }
            seen.insert(*h.entity, span);
            out.insert(*h.entity, (path.clone(), raw.clone()));
        }
        out
    }

    /// Validates machines in `env`, each with the settings it reads;
    /// `None` if any has errors.
    fn check_machines(
        &mut self,
        machines: &Machines,
        env: &Env<'_>,
    ) -> Option<Vec<(Arc<Machine>, SettingsRead)>> {
        let mut out = Vec::new();
        let mut complete = true;
        for (path, raw) in machines.values() {
            if let Some(m) = self.checked.machine(raw.file, &env.vocab) {
                out.push(m);
                continue;
            }
            let cx = Ctx {
                sources: &self.sources,
                file: raw.file,
                programs: &self.programs,
            };
            let mut diags = Diagnostics::new();
            let read = SettingsRead::start(&self.programs);
            let checked = super::machine::machine(cx, raw, env, path.clone(), &mut diags);
            let read = SettingsRead::stop(&self.programs, read);
            let clean = diags.is_empty();
            self.diags.extend(diags);
            match checked {
                Some(m) => {
                    let m = Arc::new(m);
                    if clean {
                        self.checked
                            .add_machine(raw.file, read.clone(), &env.vocab, m.clone());
                    }
                    out.push((m, read));
                }
                None => complete = false,
            }
        }
        complete.then_some(out)
    }

    fn raw_platform(&mut self, path: &Path) -> Result<Option<Rc<RawPlatform>>, Error> {
        if let Some(r) = self.raw_platforms.get(path) {
            return Ok(r.clone());
        }
        let loaded = match load::read(&mut self.sources, path, &mut self.diags)? {
            Some(file) => {
                let cx = Ctx {
                    sources: &self.sources,
                    file,
                    programs: &self.programs,
                };
                load::platform(cx, &mut self.diags).map(Rc::new)
            }
            None => None,
        };
        self.files += 1;
        self.raw_platforms
            .insert(path.to_path_buf(), loaded.clone());
        Ok(loaded)
    }

    fn group(&mut self, dir: &Path) -> Result<(), Error> {
        let manifest = dir.join(MANIFEST);
        // A manifest not yet saved makes a folder a platform too.
        if self.sources.overlay().is_file(&manifest) {
            return self.platform(dir);
        }
        let files = self.files_of(dir)?;
        let workflows = self.index(&files.workflows, None);
        let machines = self.machines(&files.machines, Machines::default());
        for (_, o) in &files.overrides {
            let Some(h) = &o.header else { continue };
            self.diags.push(
                Diagnostic::new(
                    Rule::BadOverride,
                    self.ctx(o.file).span_of(&h.overrides),
                    format!(
                        "`{}` is overridden outside a platform",
                        h.overrides.as_str()
                    ),
                )
                .label("this folder has no platform.yaml")
                .help("overrides belong in a platform folder whose platform.yaml `extends` the one that has the workflow"),
            );
        }
        let callees: IndexMap<String, Callee> = workflows
            .iter()
            .map(|(n, (_, r))| (n.clone(), Callee::of(r)))
            .collect();
        let env = Env {
            platform: None,
            adapter: None,
            lacks: &[],
            vocab: Vocab {
                platform: None,
                states: states_of(&machines),
                error_codes: Vec::new(),
            },
            workflows: &callees,
            inputs: Vec::new(),
        };
        self.recursion(&workflows);
        for (path, raw) in workflows.values() {
            let cx = Ctx {
                sources: &self.sources,
                file: raw.file,
                programs: &self.programs,
            };
            if let Some(w) = super::workflow(cx, raw, &env, path.clone(), &mut self.diags) {
                self.loose.push(Arc::new(w));
            }
        }
        for (path, raw) in machines.values() {
            let cx = Ctx {
                sources: &self.sources,
                file: raw.file,
                programs: &self.programs,
            };
            if let Some(m) = super::machine::machine(cx, raw, &env, path.clone(), &mut self.diags) {
                self.loose_machines.push(Arc::new(m));
            }
        }
        Ok(())
    }

    /// Workflows by name; later entries (a platform's own files) override
    /// earlier ones (inherited), and two files of one folder may not clash.
    fn index(
        &mut self,
        raws: &[(PathBuf, Rc<RawWorkflow>)],
        inherited: Option<IndexMap<String, (PathBuf, Rc<RawWorkflow>)>>,
    ) -> IndexMap<String, (PathBuf, Rc<RawWorkflow>)> {
        let mut out = inherited.unwrap_or_default();
        let mut own: HashMap<String, Span> = HashMap::default();
        for (path, raw) in raws {
            let Some(h) = &raw.header else { continue };
            let cx = self.ctx(raw.file);
            let span = cx.span_of(&h.workflow);
            if let Some(first) = own.get(h.workflow.as_str()) {
                self.diags.push(
                    Diagnostic::new(
                        Rule::DuplicateWorkflow,
                        span,
                        format!(
                            "another file of this folder is also workflow `{}`",
                            h.workflow.as_str()
                        ),
                    )
                    .label("second definition")
                    .related(first.clone(), "first defined here")
                    .help("give each workflow of a folder its own name"),
                );
                continue;
            }
            own.insert(h.workflow.to_string(), span);
            out.insert(h.workflow.to_string(), (path.clone(), raw.clone()));
        }
        out
    }

    /// Merges a folder's overrides into the workflows it inherits. `own`:
    /// the workflows the folder defines itself, which it edits rather than
    /// overrides.
    fn apply_overrides(
        &mut self,
        overrides: &[(PathBuf, Rc<RawOverrides>)],
        own: &[String],
        workflows: &mut IndexMap<String, (PathBuf, Rc<RawWorkflow>)>,
        bases: &mut HashMap<String, PathBuf>,
    ) -> usize {
        let mut failed = 0;
        let mut seen: HashMap<String, Span> = HashMap::default();
        for (path, o) in overrides {
            let Some(h) = &o.header else { continue };
            let cx = self.ctx(o.file);
            let span = cx.span_of(&h.overrides);
            let name = h.overrides.as_str();
            let problem = if let Some(first) = seen.get(name) {
                Some(
                    Diagnostic::new(
                        Rule::BadOverride,
                        span.clone(),
                        format!("another file of this folder also overrides `{name}`"),
                    )
                    .label("second overrides file")
                    .related(first.clone(), "the first is here")
                    .help("put all of this profile's changes to the workflow in one file"),
                )
            } else if own.iter().any(|w| w == name) {
                Some(
                    Diagnostic::new(
                        Rule::BadOverride,
                        span.clone(),
                        format!("`{name}` is a workflow of this folder"),
                    )
                    .label("not inherited")
                    .help("edit the workflow's own file; overrides change a workflow a platform inherits"),
                )
            } else if !workflows.contains_key(name) {
                let names: Vec<&str> = workflows.keys().map(String::as_str).collect();
                Some(
                    Diagnostic::new(
                        Rule::BadOverride,
                        span.clone(),
                        format!("no inherited workflow `{name}` to override"),
                    )
                    .label("not a workflow of the platforms this one extends")
                    .help(
                        did_you_mean(name, names.iter().copied()).unwrap_or_else(|| {
                            format!("inherited workflows: {}", names.join(", "))
                        }),
                    ),
                )
            } else {
                None
            };
            seen.entry(name.to_string()).or_insert(span);
            if let Some(d) = problem {
                self.diags.push(d);
                failed += 1;
                continue;
            }
            let (base_path, base) = workflows[name].clone();
            let before = self.diags.len();
            let cx = Ctx {
                sources: &self.sources,
                file: o.file,
                programs: &self.programs,
            };
            let Some(merged) = super::overrides::merge(cx, &base, o, &mut self.diags) else {
                // A platform is never served with the inherited workflow
                // its profile meant to change.
                failed += 1;
                continue;
            };
            // A wrong `remove` leaves the platform incomplete, but the
            // merge is still validated, for the rest of its diagnostics.
            if self.diags.len() != before {
                failed += 1;
            }
            bases.entry(name.to_string()).or_insert(base_path);
            workflows.insert(name.to_string(), (path.clone(), Rc::new(merged)));
        }
        failed
    }

    /// Manifests from the root of the `extends` chain down to `dir`'s own.
    fn layers(&mut self, dir: &Path) -> Result<Option<Vec<Layer>>, Error> {
        let mut chain: Vec<Layer> = Vec::new();
        let mut current = dir.to_path_buf();
        // Where this platform says what it extends: a chain too long is its
        // own manifest's error, not one of its ancestors'.
        let mut own_extends: Option<Span> = None;
        loop {
            let Some(raw) = self.raw_platform(&current.join(MANIFEST))? else {
                return Ok(None);
            };
            let parent = raw.header.as_ref().and_then(|h| h.extends.clone());
            chain.push(Layer {
                dir: current.clone(),
                raw: raw.clone(),
            });
            let Some(parent) = parent else { break };
            let parent_span = self.ctx(raw.file).span_of(&parent);
            let own = own_extends
                .get_or_insert_with(|| parent_span.clone())
                .clone();
            // Each platform of a chain re-checks what it inherits: a chain
            // as long as an attacker likes would cost its square.
            if chain.len() >= MAX_EXTENDS {
                self.diags.push(
                    Diagnostic::new(
                        Rule::TooDeep,
                        own,
                        format!("platforms may extend at most {MAX_EXTENDS} deep"),
                    )
                    .label("this platform is deeper")
                    .help("extend a platform nearer the reference"),
                );
                return Ok(None);
            }
            let base = current
                .parent()
                .map_or_else(|| PathBuf::from(".."), Path::to_path_buf);
            let name = parent.as_str();
            // A sibling's folder name, never a path: validating a platform
            // reads nothing outside the folder that holds it and its
            // siblings.
            if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\\']) {
                self.diags.push(
                    Diagnostic::new(
                        Rule::UnknownPlatform,
                        parent_span,
                        format!("`{name}` is not a platform's folder name"),
                    )
                    .label("a path, not a name")
                    .help(format!(
                        "name a platform next to this one: {}",
                        sibling_platforms(&base).join(", ")
                    )),
                );
                return Ok(None);
            }
            let next = base.join(name);
            let manifest = next.join(MANIFEST);
            if !self.sources.overlay().is_file(&manifest) {
                let siblings = sibling_platforms(&base);
                self.diags.push(
                    Diagnostic::new(
                        Rule::UnknownPlatform,
                        parent_span,
                        format!("no platform `{}` next to this one", parent.as_str()),
                    )
                    .label(format!("{} not found", next.join(MANIFEST).display()))
                    .help(
                        did_you_mean(&parent, siblings.iter().map(String::as_str))
                            .unwrap_or_else(|| format!("platforms here: {}", siblings.join(", "))),
                    ),
                );
                return Ok(None);
            }
            if let Some(pos) = chain.iter().position(|l| self.same_dir(&l.dir, &next)) {
                let mut members: Vec<PathBuf> = chain[pos..]
                    .iter()
                    .map(|l| self.resolve(&l.dir).unwrap_or_else(|| l.dir.clone()))
                    .collect();
                members.sort();
                if self.extends_loops.contains(&members) {
                    return Ok(None);
                }
                self.extends_loops.push(members);
                self.diags.push(
                    Diagnostic::new(
                        Rule::ExtendsCycle,
                        parent_span,
                        format!(
                            "platforms extend each other in a loop through `{}`",
                            parent.as_str()
                        ),
                    )
                    .label("closes the loop")
                    .help("one platform of the loop must stop extending"),
                );
                return Ok(None);
            }
            current = next;
        }
        chain.reverse();
        Ok(Some(chain))
    }

    fn platform(&mut self, dir: &Path) -> Result<(), Error> {
        let Some(layers) = self.layers(dir)? else {
            return Ok(());
        };
        let own = layers.last().expect("at least the platform itself");
        let ancestors: Vec<PathBuf> = layers
            .iter()
            .rev()
            .skip(1)
            .map(|l| self.canonical(&l.dir))
            .collect();
        let own_file = own.raw.file;
        let Some(own_header) = own.raw.header.as_ref() else {
            return Ok(());
        };
        let name = own_header.platform.to_string();

        let mut workflows = IndexMap::default();
        // Overridden workflows → the file they override.
        let mut bases: HashMap<String, PathBuf> = HashMap::default();
        let mut machines = Machines::default();
        let mut typed = Typed::default();
        let mut requests: IndexMap<String, (Sp<String>, FileId)> = IndexMap::default();
        let mut events: IndexMap<String, (Sp<String>, Sp<String>, FileId)> = IndexMap::default();
        let mut adapter: Option<(Sp<String>, FileId)> = None;
        let mut switch: Option<marked_yaml::Node> = None;
        let mut lacks: Vec<(Sp<String>, FileId)> = Vec::new();
        let mut broken = 0;
        for layer in &layers {
            let files = self.files_of(&layer.dir)?;
            broken += files.broken;
            let own: Vec<String> = files
                .workflows
                .iter()
                .filter_map(|(_, w)| w.header.as_ref().map(|h| h.workflow.to_string()))
                .collect();
            workflows = self.index(&files.workflows, Some(workflows));
            broken += self.apply_overrides(&files.overrides, &own, &mut workflows, &mut bases);
            machines = self.machines(&files.machines, machines);
            let layer_name = layer
                .raw
                .header
                .as_ref()
                .map_or_else(String::new, |h| h.platform.to_string());
            self.settings_of(&layer.raw, &layer_name, &mut typed);
            if let Some(h) = &layer.raw.header {
                for (req, wf) in &h.requests {
                    self.check_request(layer.raw.file, req);
                    requests.insert(req.to_string(), (wf.clone(), layer.raw.file));
                }
                for (ev, to) in &h.events {
                    events.insert(ev.to_string(), (ev.clone(), to.clone(), layer.raw.file));
                }
                if let Some(a) = &h.adapter {
                    adapter = Some((a.kind.clone(), layer.raw.file));
                    switch = layer.raw.switch.clone();
                    lacks = a
                        .lacks
                        .iter()
                        .map(|l| (l.clone(), layer.raw.file))
                        .collect();
                }
            }
        }

        let platform_span = self.ctx(own_file).span_of(&own_header.platform);
        let settings = self.settings_values(&typed, &name, &platform_span);
        let adapter_spec = match &adapter {
            None => {
                self.diags.push(
                    Diagnostic::new(
                        Rule::MissingKey,
                        platform_span.clone(),
                        format!("platform `{name}` has no adapter"),
                    )
                    .label("no `adapter:` here or in what it extends")
                    .help(format!(
                        "add `adapter: {{ kind: sim }}`; adapter kinds: {}",
                        adapter_kinds()
                    )),
                );
                None
            }
            Some((kind, file)) => match catalog::adapter(kind) {
                Some(a) => Some(a),
                None => {
                    self.diags.push(
                        Diagnostic::new(
                            Rule::UnknownAdapter,
                            self.ctx(*file).span_of(kind),
                            format!("unknown adapter kind `{}`", kind.as_str()),
                        )
                        .label("hisflow has no such adapter")
                        .help(
                            did_you_mean(kind, catalog::ADAPTERS.iter().map(|a| a.kind))
                                .unwrap_or_else(|| format!("adapter kinds: {}", adapter_kinds())),
                        ),
                    );
                    None
                }
            },
        };
        let switch = switch.and_then(|node| {
            let json = load::to_json(&node);
            let checked = match adapter_spec.map(|a| (a, a.switch)) {
                None => return None,
                Some((_, Some(check))) => check(&json),
                Some((a, None)) => Err((
                    Vec::new(),
                    format!("the `{}` adapter takes no `switch`", a.kind),
                )),
            };
            match checked {
                Ok(()) => Some(json),
                Err((path, message)) => {
                    broken += 1;
                    // The wrong entry's key, else the whole description.
                    let mut at = node.span().start().copied();
                    let mut here = &node;
                    for key in &path {
                        let Some((k, v)) = here
                            .as_mapping()
                            .and_then(|m| m.iter().find(|(k, _)| k.as_str() == key))
                        else {
                            break;
                        };
                        at = k.span().start().copied();
                        here = v;
                    }
                    self.diags.push(
                        Diagnostic::new(
                            Rule::InvalidValue,
                            self.ctx(own_file).span(at),
                            format!("invalid `adapter.switch`: {message}"),
                        )
                        .label("not a switch description")
                        .help("see schemas/platform.schema.json: agents, reason_codes, connected, confirm, pending_logout, strict_not_ready, free_logout_reasons"),
                    );
                    None
                }
            }
        });
        if let Some(a) = adapter_spec {
            for (l, file) in &lacks {
                if !a.operations.contains(&l.as_str()) {
                    self.diags.push(
                        Diagnostic::new(
                            Rule::UnknownOperation,
                            self.ctx(*file).span_of(l),
                            format!(
                                "adapter `{}` has no operation `{}` to lack",
                                a.kind,
                                l.as_str()
                            ),
                        )
                        .label("not an operation of this adapter")
                        .help(
                            did_you_mean(l, a.operations.iter().copied()).unwrap_or_else(|| {
                                format!("its operations: {}", a.operations.join(", "))
                            }),
                        ),
                    );
                }
            }
        }

        for (req, (wf, file)) in &requests {
            // A file that did not load may be the workflow: its own
            // diagnostic says what is wrong.
            if broken == 0
                && !workflows.contains_key(wf.as_str())
                && REQUESTS.iter().any(|(r, _)| r == req)
            {
                let names: Vec<&str> = workflows.keys().map(String::as_str).collect();
                self.diags.push(
                    Diagnostic::new(
                        Rule::UnknownWorkflow,
                        self.ctx(*file).span_of(wf),
                        format!("request `{req}` maps to unknown workflow `{}`", wf.as_str()),
                    )
                    .label("no workflow of this name")
                    .help(
                        did_you_mean(wf, names.iter().copied()).unwrap_or_else(|| {
                            format!("workflows of `{name}`: {}", names.join(", "))
                        }),
                    ),
                );
            }
        }
        let missing: Vec<&str> = REQUESTS
            .iter()
            .map(|(r, _)| *r)
            .filter(|r| !requests.contains_key(*r))
            .collect();
        if !missing.is_empty() {
            self.diags.push(
                Diagnostic::new(
                    Rule::UnhandledRequest,
                    platform_span.clone(),
                    format!(
                        "platform `{name}` handles no request {}",
                        missing
                            .iter()
                            .map(|m| format!("`{m}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
                .label("requests without a workflow")
                .help(format!(
                    "map each under `requests:`, e.g. `{}: <workflow>`",
                    missing[0]
                )),
            );
        }

        let routes = self.event_routes(
            &name,
            &platform_span,
            adapter_spec,
            &events,
            Inventory {
                workflows: &workflows,
                machines: &machines,
                broken: broken > 0,
            },
        );

        let callees: IndexMap<String, Callee> = workflows
            .iter()
            .map(|(n, (_, r))| (n.clone(), Callee::of(r)))
            .collect();
        let lack_names: Vec<String> = lacks.iter().map(|(l, _)| l.to_string()).collect();
        let env = Env {
            platform: Some(&name),
            adapter: adapter_spec,
            lacks: &lack_names,
            vocab: Vocab {
                platform: Some(Shape::record(
                    typed
                        .declared
                        .iter()
                        .map(|(n, (d, _))| (n.clone(), settings::shape(&d.ty, n)))
                        .collect(),
                )),
                states: states_of(&machines),
                error_codes: typed.errors.keys().cloned().collect(),
            },
            workflows: &callees,
            inputs: Vec::new(),
        };
        self.recursion(&workflows);
        let mut valid = IndexMap::default();
        // The settings each workflow's expressions name, for its
        // specialisation.
        let mut reads: HashMap<String, SettingsRead> = HashMap::default();
        for (wname, (path, raw)) in &workflows {
            // A profile's merge is a workflow of this platform alone.
            let terms = (!bases.contains_key(wname)).then(|| WorkflowTerms::of(raw, &env));
            if let Some((w, read)) = terms
                .as_ref()
                .and_then(|t| self.checked.workflow(raw.file, t, &env.vocab))
            {
                valid.insert(wname.clone(), w);
                reads.insert(wname.clone(), read);
                continue;
            }
            let cx = Ctx {
                sources: &self.sources,
                file: raw.file,
                programs: &self.programs,
            };
            let mut diags = Diagnostics::new();
            let read = SettingsRead::start(&self.programs);
            let checked = super::workflow(cx, raw, &env, path.clone(), &mut diags);
            let read = SettingsRead::stop(&self.programs, read);
            let clean = diags.is_empty();
            self.diags.extend(diags);
            if let Some(mut w) = checked {
                if let Some(base) = bases.get(wname) {
                    w.base = Some(base.clone());
                    for s in w.graph.node_weights_mut() {
                        s.changed = s.span.file != raw.file;
                    }
                }
                let w = Arc::new(w);
                if let (Some(terms), true) = (terms, clean) {
                    self.checked
                        .add_workflow(raw.file, terms, read.clone(), &env.vocab, w.clone());
                }
                valid.insert(wname.clone(), w);
                reads.insert(wname.clone(), read);
            }
        }
        let machines = self.check_machines(&machines, &env);
        let complete = valid.len() == workflows.len() && adapter_spec.is_some() && broken == 0;
        if let (true, Some(machines)) = (complete, machines) {
            let (machines, machine_reads): (Vec<_>, Vec<_>) = machines.into_iter().unzip();
            let platform = Platform {
                name,
                description: own_header.description.as_ref().map(|d| d.to_string()),
                dir: self.resolve(dir).unwrap_or_else(|| dir.to_path_buf()),
                ancestors: ancestors.clone(),
                adapter: adapter_spec.map(|a| a.kind.to_string()).unwrap_or_default(),
                switch,
                lacks: lack_names,
                settings,
                declared: typed
                    .declared
                    .into_iter()
                    .map(|(n, (d, _))| (n, d))
                    .collect(),
                error_codes: typed.errors.into_iter().map(|(c, (m, _))| (c, m)).collect(),
                requests: requests
                    .into_iter()
                    .map(|(k, (v, _))| (k, v.to_string()))
                    .collect(),
                events: routes,
                workflows: valid,
                machines,
            };
            self.reads.insert(
                platform.dir.clone(),
                Reads {
                    workflows: reads,
                    machines: machine_reads,
                },
            );
            self.platforms.push(platform);
        }
        Ok(())
    }

    /// Checks `events:` — names of the catalog that the adapter delivers,
    /// routed to a workflow or `ignore` — and that every event the adapter
    /// delivers is heard by a machine, routed or ignored.
    fn event_routes(
        &mut self,
        platform: &str,
        platform_span: &Span,
        adapter: Option<&'static crate::platform::AdapterSpec>,
        events: &IndexMap<String, (Sp<String>, Sp<String>, FileId)>,
        Inventory {
            workflows,
            machines,
            broken,
        }: Inventory<'_>,
    ) -> IndexMap<String, EventRoute> {
        let mut routes = IndexMap::default();
        // Events a misspelt key most likely meant: that diagnostic names
        // them already, so they are not also reported unhandled.
        let mut meant = Vec::new();
        for (key, to, file) in events.values() {
            let cx = self.ctx(*file);
            let Some(spec) = crate::platform::events::event(key) else {
                self.diags
                    .push(super::states::unknown_event(cx.span_of(key), key));
                meant.extend(crate::workflow::diagnostic::closest(
                    key,
                    crate::platform::EVENTS.iter().map(|e| e.name),
                ));
                continue;
            };
            if let Some(a) = adapter
                && !a.events.contains(&spec.name)
            {
                self.diags.push(
                    Diagnostic::new(
                        Rule::UnknownEvent,
                        cx.span_of(key),
                        format!("the `{}` adapter never delivers `{}`", a.kind, spec.name),
                    )
                    .label("this route is never taken")
                    .help(format!("it delivers: {}", a.events.join(", "))),
                );
                continue;
            }
            if to.as_str() == IGNORE {
                routes.insert(spec.name.to_string(), EventRoute::Ignore);
            } else if let Some((_, raw)) = workflows.get(to.as_str()) {
                let needs: Vec<String> = Callee::of(raw)
                    .inputs
                    .into_iter()
                    .filter(|(_, required)| *required)
                    .map(|(n, _)| format!("`{n}`"))
                    .collect();
                if !needs.is_empty() {
                    self.diags.push(
                        Diagnostic::new(
                            Rule::MissingArgument,
                            cx.span_of(to),
                            format!(
                                "`{}` needs input {}, which a switch event does not give",
                                to.as_str(),
                                needs.join(", ")
                            ),
                        )
                        .label("runs with no request")
                        .help("a workflow run for an event reads the event as `event`; make its inputs optional, or route the event to a workflow without any"),
                    );
                    continue;
                }
                routes.insert(spec.name.to_string(), EventRoute::Workflow(to.to_string()));
            } else if !broken {
                let names: Vec<&str> = workflows.keys().map(String::as_str).collect();
                self.diags.push(
                    Diagnostic::new(
                        Rule::UnknownWorkflow,
                        cx.span_of(to),
                        format!(
                            "event `{}` routes to unknown workflow `{}`",
                            spec.name,
                            to.as_str()
                        ),
                    )
                    .label("no workflow of this name")
                    .help(
                        did_you_mean(to, names.iter().copied().chain([IGNORE])).unwrap_or_else(
                            || {
                                format!(
                                    "`ignore`, or a workflow of `{platform}`: {}",
                                    names.join(", ")
                                )
                            },
                        ),
                    ),
                );
            }
        }
        let Some(adapter) = adapter else {
            return routes;
        };
        let triggers = || {
            machines.values().flat_map(|(_, m)| {
                m.on.iter()
                    .chain(m.states.values().flat_map(|s| s.on.iter()))
                    .map(|t| t.trigger.as_str())
            })
        };
        let heard = |e: &str| triggers().any(|t| t == e);
        let unhandled = |meant: &[&str]| {
            adapter
                .events
                .iter()
                .any(|e| !events.contains_key(*e) && !heard(e) && !meant.contains(e))
        };
        // A misspelt trigger is reported at the machine; the event it meant
        // is not reported again as unhandled. Looking for it is only worth
        // it when some event is.
        if unhandled(&meant) {
            meant.extend(
                triggers()
                    .filter(|t| crate::platform::events::event(t).is_none())
                    .filter_map(|t| {
                        crate::workflow::diagnostic::closest(
                            t,
                            crate::platform::EVENTS.iter().map(|e| e.name),
                        )
                    }),
            );
        }
        let unhandled: Vec<&str> = adapter
            .events
            .iter()
            .copied()
            .filter(|e| !events.contains_key(*e) && !heard(e) && !meant.contains(e))
            .collect();
        if !unhandled.is_empty() {
            self.diags.push(
                Diagnostic::new(
                    Rule::UnhandledEvent,
                    platform_span.clone(),
                    format!(
                        "platform `{platform}` does nothing with {}",
                        unhandled
                            .iter()
                            .map(|e| format!("`{e}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
                .label(format!(
                    "the `{}` adapter delivers {}",
                    adapter.kind,
                    if unhandled.len() == 1 { "it" } else { "them" }
                ))
                .help(format!(
                    "route each under `events:` to a workflow or `ignore` (e.g. `{}: ignore`), or give a machine a transition on it",
                    unhandled[0]
                )),
            );
        }
        routes
    }

    /// Reads one manifest's declarations and values into `typed`.
    fn settings_of(&mut self, raw: &RawPlatform, platform: &str, typed: &mut Typed) {
        let cx = Ctx {
            sources: &self.sources,
            file: raw.file,
            programs: &self.programs,
        };
        let diags = &mut self.diags;
        if let Some(node) = &raw.declare {
            let declared = settings::declarations(cx, node, diags);
            typed.broken.extend(declared.broken);
            for d in declared.settings {
                let span = cx.span_of(&d.name);
                if let Some((prev, at)) = typed.declared.get(d.name.as_str()) {
                    diags.push(
                        Diagnostic::new(
                            Rule::UnknownSetting,
                            span,
                            format!(
                                "setting `{}` is declared by platform `{}` already",
                                d.name.as_str(),
                                prev.platform
                            ),
                        )
                        .label("declared again")
                        .related(at.clone(), "declared here")
                        .help("set its value under `settings:` instead, or declare a setting of another name"),
                    );
                    continue;
                }
                typed.declared.insert(
                    d.name.to_string(),
                    (
                        SettingDecl {
                            name: d.name.to_string(),
                            ty: d.ty,
                            default: d.default,
                            description: d.description,
                            platform: platform.to_string(),
                        },
                        span,
                    ),
                );
            }
            for (code, meaning) in declared.errors {
                let span = cx.span_of(&code);
                let protocol = ERROR_CODES.iter().any(|(c, _)| *c == code.as_str());
                let again = typed.errors.get(code.as_str()).map(|(_, at)| at.clone());
                if protocol || again.is_some() {
                    let mut d = Diagnostic::new(
                        Rule::UnknownSetting,
                        span,
                        format!("error code `{}` is declared already", code.as_str()),
                    )
                    .label(if protocol {
                        "a code of the protocol"
                    } else {
                        "declared again"
                    })
                    .help("use it as it is; declare only codes the protocol lacks");
                    if let Some(at) = again {
                        d = d.related(at, "declared here");
                    }
                    diags.push(d);
                    continue;
                }
                typed.errors.insert(code.to_string(), (meaning, span));
            }
        }
        for (k, v) in &raw.settings {
            match typed.declared.get(k.as_str()) {
                Some((d, _)) => match settings::value(cx, &d.ty, v, k, diags) {
                    Some(j) => {
                        typed.values.insert(k.to_string(), j);
                    }
                    None => {
                        typed.broken.insert(k.to_string());
                    }
                },
                None if typed.broken.contains(k.as_str()) => {}
                None => {
                    let names = || typed.declared.keys().map(String::as_str);
                    diags.push(
                        Diagnostic::new(
                            Rule::UnknownSetting,
                            cx.span_of(k),
                            format!(
                                "no platform of this chain declares setting `{}`",
                                k.as_str()
                            ),
                        )
                        .label("undeclared setting")
                        .help(did_you_mean(k, names()).unwrap_or_else(|| {
                            format!(
                                "declare it under `declare: settings:`; settings here: {}",
                                names().collect::<Vec<_>>().join(", ")
                            )
                        })),
                    );
                }
            }
        }
    }

    /// Every declared setting's value — set, or its default — in
    /// declaration order; one with neither is reported at the platform.
    fn settings_values(
        &mut self,
        typed: &Typed,
        platform: &str,
        at: &Span,
    ) -> IndexMap<String, serde_json::Value> {
        let mut out = IndexMap::default();
        for (name, (d, declared_at)) in &typed.declared {
            match typed.values.get(name).or(d.default.as_ref()) {
                Some(v) => {
                    out.insert(name.clone(), v.clone());
                }
                None if typed.broken.contains(name) => {}
                None => self.diags.push(
                    Diagnostic::new(
                        Rule::MissingKey,
                        at.clone(),
                        format!("platform `{platform}` gives setting `{name}` no value"),
                    )
                    .label("a setting without a value")
                    .related(declared_at.clone(), "declared here, without a default")
                    .help(format!("set it under `settings:` ({}: {})", name, d.ty)),
                ),
            }
        }
        out
    }

    fn check_request(&mut self, file: FileId, req: &Sp<String>) {
        if !vocab::is_request(req) {
            let cx = self.ctx(file);
            self.diags.push(
                Diagnostic::new(
                    Rule::UnknownRequest,
                    cx.span_of(req),
                    format!("`{}` is not a request of the client protocol", req.as_str()),
                )
                .label("unknown request")
                .help(vocab::request_help(req)),
            );
        }
    }

    /// Workflows that call each other in a loop can never be bounded.
    fn recursion(&mut self, workflows: &IndexMap<String, (PathBuf, Rc<RawWorkflow>)>) {
        let mut g = DiGraph::<usize, Option<(FileId, Sp<String>)>>::new();
        let nodes: Vec<_> = (0..workflows.len()).map(|i| g.add_node(i)).collect();
        for (i, (_, raw)) in workflows.values().enumerate() {
            for state in raw.states.values().filter_map(|s| s.raw.as_ref()) {
                let calls = state
                    .call
                    .iter()
                    .chain(state.body.iter().filter_map(|b| b.call.as_ref()));
                for callee in calls {
                    if let Some(j) = workflows.get_index_of(callee.as_str()) {
                        g.add_edge(nodes[i], nodes[j], Some((raw.file, callee.clone())));
                    }
                }
            }
        }
        for scc in kosaraju_scc(&g) {
            let looped = scc.len() > 1 || g.contains_edge(scc[0], scc[0]);
            if !looped {
                continue;
            }
            let mut names: Vec<&str> = scc
                .iter()
                .map(|n| workflows.get_index(g[*n]).map_or("?", |(k, _)| k.as_str()))
                .collect();
            names.sort_unstable();
            let edge = g.edge_indices().find(|e| {
                let (a, b) = g.edge_endpoints(*e).expect("edge");
                scc.contains(&a) && scc.contains(&b)
            });
            if let Some(Some((file, at))) = edge.and_then(|e| g.edge_weight(e)).cloned() {
                let span = self.ctx(file).span_of(&at);
                self.diags.push(
                    Diagnostic::new(Rule::RecursiveCall, span, format!("workflows {} call each other in a loop", names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")))
                        .label("this call closes the loop")
                        .help("a workflow may not call itself, directly or through others; move the shared steps into a workflow both call"),
                );
            }
        }
    }
}

fn sibling_platforms(base: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(base)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().join(MANIFEST).is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    out.sort();
    out
}

fn adapter_kinds() -> String {
    catalog::ADAPTERS
        .iter()
        .map(|a| a.kind)
        .collect::<Vec<_>>()
        .join(", ")
}
