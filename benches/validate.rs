//! Validation throughput, in files/s and states/s, for the shipped workflows/
//! tree and for one generated workflow of 1,000 states. Each is measured next
//! to a baseline in the same run — parsing the same files as bare YAML — so
//! the printed ratio (validation cost / parse cost) means something on a
//! shared, noisy machine where absolute figures drift.
//!
//! Then four series show that validation is linear in what a workflow is
//! made of: states, the size of its expressions, `${…}` template holes and
//! the depth of `extends` chains. Each line gives the cost per unit and the
//! marginal cost of the units added since the line before, which stays flat
//! when the cost is linear, and the ratio to the baseline.
//!
//! Run: `cargo bench --bench validate`

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[path = "support/counting.rs"]
mod counting;
#[path = "support/turns.rs"]
mod turns;

use std::sync::atomic::Ordering;

/// The allocator `hisflow validate` and the language server run with
/// (mimalloc), counting: validation allocates more per byte read than the
/// bare parse does, so the ratio depends on it, and should be the one users
/// get. Counted only around one run of each, not while runs are timed.
#[global_allocator]
static ALLOC: counting::Counting = counting::Counting;

/// Median wall time of each of `runs`, taken in turns
/// ([`turns::medians`]) until each has had about `budget`.
fn measure(budget: Duration, runs: &mut [&mut dyn FnMut()]) -> Vec<Duration> {
    let mut runs: Vec<_> = runs.iter_mut().map(turns::timed).collect();
    turns::medians(3, turns::Until::Budget(budget), &mut runs)
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        // The same files validation reads: scenarios are not workflows.
        if p.is_dir() && !p.ends_with("scenarios") {
            yaml_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "yaml") {
            out.push(p);
        }
    }
}

fn parse_only(files: &[PathBuf]) {
    for f in files {
        let text = std::fs::read_to_string(f).unwrap();
        black_box(marked_yaml::parse_yaml(0, &text).unwrap());
    }
}

/// A workflow of `n` states: choices over the session, switch operations with
/// every outcome handled, events, and a response at the end. Each guard is
/// `terms` comparisons long.
fn generated(n: usize, terms: usize) -> String {
    let mut s = String::from("workflow: big\nstart: s0\nstates:\n");
    for i in 0..n - 1 {
        let next = format!("s{}", i + 1);
        match i % 3 {
            0 => {
                let guard = (0..terms)
                    .map(|t| {
                        format!(
                            "session.channels.exists(c, c.active && size(c.interactions) > {})",
                            i + t
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(" && ");
                s.push_str(&format!(
                    "  s{i}:\n    choice:\n      - when: {guard}\n        next: {next}\n    otherwise: {next}\n"
                ))
            }
            1 => s.push_str(&format!(
                "  s{i}:\n    op: agent.set_not_ready\n    args: {{ channel: \"'voice'\", reason: \"'r{i}'\" }}\n    timeout: 2s\n    on: {{ ok: {next} }}\n    otherwise: {next}\n"
            )),
            _ => s.push_str(&format!("  s{i}:\n    emit: channel.event.stateChanged\n    data: {{ n: \"{i}\" }}\n    next: {next}\n")),
        }
    }
    s.push_str(&format!("  s{}:\n    respond:\n      ok: {{}}\n", n - 1));
    s
}

/// A workflow whose 64 answers are errors with messages of `holes` `${…}`
/// holes each, every hole a different expression.
fn with_holes(holes: usize) -> String {
    const ANSWERS: usize = 64;
    let mut s = String::from(
        "workflow: holes\ninput:\n  reason: { type: string, required: false }\nstart: pick\nstates:\n  pick:\n    choice:\n",
    );
    for a in 0..ANSWERS {
        s.push_str(&format!(
            "      - when: size(session.channels) == {a}\n        next: a{a}\n"
        ));
    }
    s.push_str("    otherwise: a0\n");
    for a in 0..ANSWERS {
        let message: String = (0..holes)
            .map(|h| format!("${{size(session.channels) + {}}} ", a * holes + h))
            .collect();
        s.push_str(&format!(
            "  a{a}:\n    respond:\n      error:\n        code: Internal\n        message: \"{message}\"\n"
        ));
    }
    s
}

/// `depth` platforms, each extending the one before, the first extending a
/// copy of workflows/reference; returns the last one's folder and every file
/// validating it reads.
fn chain(root: &Path, depth: usize) -> (PathBuf, Vec<PathBuf>) {
    let reference = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("workflows/reference");
    let base = root.join("p0");
    std::fs::create_dir_all(&base).unwrap();
    let mut files = Vec::new();
    for e in std::fs::read_dir(&reference).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "yaml") {
            let to = base.join(p.file_name().unwrap());
            std::fs::copy(&p, &to).unwrap();
            files.push(to);
        }
    }
    let mut last = base;
    for d in 1..=depth {
        let dir = root.join(format!("p{d}"));
        std::fs::create_dir_all(&dir).unwrap();
        let manifest = dir.join("platform.yaml");
        std::fs::write(
            &manifest,
            format!(
                "platform: p{d}\ndescription: level {d}\nextends: p{}\nsettings:\n  media: [voice, chat]\n",
                d - 1
            ),
        )
        .unwrap();
        files.push(manifest);
        last = dir;
    }
    (last, files)
}

/// What one validation and one bare parse of the same files cost.
struct Costs {
    validate: Duration,
    parse: Duration,
    validate_allocs: isize,
    parse_allocs: isize,
}

/// Times `validate` and `parse`, then counts what one run of each allocates.
fn costs(budget: Duration, mut validate: impl FnMut(), mut parse: impl FnMut()) -> Costs {
    let times = measure(budget, &mut [&mut validate, &mut parse]);
    Costs {
        validate: times[0],
        parse: times[1],
        validate_allocs: counting::allocations(validate),
        parse_allocs: counting::allocations(parse),
    }
}

fn report(name: &str, files: usize, states: usize, c: &Costs) {
    let Costs {
        validate, parse, ..
    } = *c;
    let per_s = |n: usize, d: Duration| n as f64 / d.as_secs_f64();
    println!("{name} ({files} files, {states} states)");
    println!(
        "  validate: {:>10.3} ms  {:>10.0} files/s  {:>12.0} states/s",
        validate.as_secs_f64() * 1e3,
        per_s(files, validate),
        per_s(states, validate)
    );
    println!(
        "  baseline: {:>10.3} ms  (same files parsed as bare YAML)",
        parse.as_secs_f64() * 1e3
    );
    println!(
        "  ratio:    {:>10.2} x the cost of parsing",
        validate.as_secs_f64() / parse.as_secs_f64()
    );
    // Wall-clock time follows allocations more than instructions: each
    // block first touched is memory the caches have not seen.
    println!(
        "  allocations: {} per validation, {} per parse ({:.2} x)",
        c.validate_allocs,
        c.parse_allocs,
        c.validate_allocs as f64 / c.parse_allocs.max(1) as f64
    );
}

/// One point of a series: `units` of what grows, the paths to validate and
/// the files they read.
struct Point {
    units: usize,
    paths: Vec<PathBuf>,
    files: Vec<PathBuf>,
}

fn series(title: &str, unit: &str, budget: Duration, points: &[Point]) {
    println!("{title}");
    println!(
        "  {:>6}  {:>11}  {:>11}  {:>11}  {:>11}  {:>11}  {:>6}",
        format!("{unit}s"),
        "validate ms",
        format!("µs/{unit}"),
        "marginal µs",
        "baseline ms",
        format!("µs/{unit}"),
        "ratio"
    );
    let mut previous: Option<(usize, Duration)> = None;
    for p in points {
        let check = hisflow::validate_paths(&p.paths).unwrap();
        assert!(!check.diagnostics.has_errors(), "{:?}", check.diagnostics);
        let times = measure(
            budget,
            &mut [
                &mut || {
                    black_box(hisflow::validate_paths(&p.paths).unwrap());
                },
                &mut || parse_only(&p.files),
            ],
        );
        let (validate, parse) = (times[0], times[1]);
        let per = |d: Duration| d.as_secs_f64() * 1e6 / p.units as f64;
        // The cost of one more unit, from the point before: flat when
        // linear, whatever the fixed cost.
        let marginal = previous.map_or(String::from("-"), |(u, d)| {
            format!(
                "{:.2}",
                (validate.as_secs_f64() - d.as_secs_f64()) * 1e6 / (p.units - u) as f64
            )
        });
        println!(
            "  {:>6}  {:>11.3}  {:>11.2}  {:>11}  {:>11.3}  {:>11.2}  {:>6.2}",
            p.units,
            validate.as_secs_f64() * 1e3,
            per(validate),
            marginal,
            parse.as_secs_f64() * 1e3,
            per(parse),
            validate.as_secs_f64() / parse.as_secs_f64()
        );
        previous = Some((p.units, validate));
    }
}

/// A workflow alone in a folder of its own: a file is validated in its
/// folder's context, with every other file there.
fn write(dir: &Path, name: &str, text: &str) -> Point {
    let folder = dir.join(name.trim_end_matches(".yaml"));
    std::fs::create_dir_all(&folder).unwrap();
    let path = folder.join(name);
    std::fs::write(&path, text).unwrap();
    Point {
        units: 0,
        paths: vec![path.clone()],
        files: vec![path],
    }
}

/// Validates `paths` three times: the part callgrind counts with
/// `--toggle-collect='*prof_validate*'`.
#[inline(never)]
fn prof_validate(paths: &[PathBuf]) {
    for _ in 0..3 {
        black_box(hisflow::validate_paths(paths).unwrap());
    }
}

/// Parses `files` as bare YAML three times: `--toggle-collect='*prof_parse*'`.
#[inline(never)]
fn prof_parse(files: &[PathBuf]) {
    for _ in 0..3 {
        parse_only(files);
    }
}

/// `--profile tree|generated`: only the runs callgrind counts, each input
/// validated and parsed three times, for instruction ratios that do not
/// move with the machine's load.
fn profile(what: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (paths, files) = if what == "generated" {
        let big = dir.path().join("big.yaml");
        std::fs::write(&big, generated(1000, 1)).unwrap();
        (vec![big.clone()], vec![big])
    } else {
        let tree = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("workflows");
        let mut files = Vec::new();
        yaml_files(&tree, &mut files);
        (vec![tree], files)
    };
    prof_validate(&paths);
    prof_parse(&files);
}

fn main() {
    counting::COUNTING.store(false, Ordering::Relaxed);
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--profile") {
        return profile(args.get(i + 1).map_or("tree", String::as_str));
    }
    // `cargo test --benches` runs bench binaries with `--bench`-less args; keep it quick then.
    let quick = !std::env::args().any(|a| a == "--bench");
    let (budget, point_budget) = if quick {
        (Duration::from_millis(50), Duration::from_millis(20))
    } else {
        (Duration::from_secs(3), Duration::from_secs(1))
    };

    let tree = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("workflows");
    let mut files = Vec::new();
    yaml_files(&tree, &mut files);
    let check = hisflow::validate_paths(std::slice::from_ref(&tree)).unwrap();
    assert!(!check.diagnostics.has_errors());
    let c = costs(
        budget,
        || {
            black_box(hisflow::validate_paths(std::slice::from_ref(&tree)).unwrap());
        },
        || parse_only(&files),
    );
    report("workflows/ tree", check.files, check.states, &c);
    // What running a platform adds after validating it (`hisflow serve`,
    // `hisflow test`): each platform's expressions specialised for its
    // settings. `hisflow validate` and the language server stop before.
    let times = measure(
        budget,
        &mut [
            &mut || {
                let mut r = hisflow::validate_paths(std::slice::from_ref(&tree)).unwrap();
                r.prepare();
                black_box(r);
            },
            &mut || parse_only(&files),
        ],
    );
    println!(
        "  prepared for running: {:>6.3} ms  ({:.2} x the cost of parsing)",
        times[0].as_secs_f64() * 1e3,
        times[0].as_secs_f64() / times[1].as_secs_f64()
    );

    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.yaml");
    std::fs::write(&big, generated(1000, 1)).unwrap();
    let check = hisflow::validate_paths(std::slice::from_ref(&big)).unwrap();
    assert!(!check.diagnostics.has_errors(), "{:?}", check.diagnostics);
    assert_eq!(check.states, 1000);
    let big_files = vec![big.clone()];
    let c = costs(
        budget,
        || {
            black_box(hisflow::validate_paths(std::slice::from_ref(&big)).unwrap());
        },
        || parse_only(&big_files),
    );
    report("generated workflow, 1,000 states", 1, 1000, &c);
    println!();

    let points: Vec<Point> = [250, 500, 1000, 2000]
        .into_iter()
        .map(|n| Point {
            units: n,
            ..write(dir.path(), &format!("states{n}.yaml"), &generated(n, 1))
        })
        .collect();
    series(
        "states: generated workflows of n states",
        "state",
        point_budget,
        &points,
    );

    let points: Vec<Point> = [1, 2, 4, 8]
        .into_iter()
        .map(|terms| {
            let text = generated(300, terms);
            Point {
                units: text.len().div_ceil(1024),
                ..write(dir.path(), &format!("size{terms}.yaml"), &text)
            }
        })
        .collect();
    series(
        "file size: 300 states, guards of 1, 2, 4 and 8 terms",
        "KiB",
        point_budget,
        &points,
    );

    let points: Vec<Point> = [4, 8, 16, 32]
        .into_iter()
        .map(|h| Point {
            units: 64 * h,
            ..write(dir.path(), &format!("holes{h}.yaml"), &with_holes(h))
        })
        .collect();
    series(
        "holes: 64 messages of 4, 8, 16 and 32 `${…}` holes",
        "hole",
        point_budget,
        &points,
    );

    let points: Vec<Point> = [1, 2, 4, 8]
        .into_iter()
        .map(|depth| {
            let root = dir.path().join(format!("chain{depth}"));
            let (last, files) = chain(&root, depth);
            Point {
                units: depth,
                paths: vec![last],
                files,
            }
        })
        .collect();
    series(
        "extends: a platform at depth 1, 2, 4 and 8 above a copy of workflows/reference",
        "level",
        point_budget,
        &points,
    );
}
