//! The committed JSON Schemas are what the types generate, and every file
//! under workflows/ passes them, so editors and the validator agree.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::root;

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            yaml_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "yaml") {
            out.push(p);
        }
    }
}

#[test]
fn committed_schemas_match_the_types() {
    for (name, generated) in hisflow::schema::all() {
        let path = root().join("schemas").join(name);
        let committed = fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "{} is out of date: run `cargo run -- schema -o schemas`",
            path.display()
        );
    }
}

#[test]
fn every_workflow_file_passes_its_schema_and_names_it() {
    let schema = |name: &str| {
        let text = fs::read_to_string(root().join("schemas").join(name)).unwrap();
        jsonschema::validator_for(&serde_json::from_str(&text).unwrap()).unwrap()
    };
    let workflow = schema("workflow.schema.json");
    let platform = schema("platform.schema.json");
    let scenario = schema("scenario.schema.json");
    let machine = schema("machine.schema.json");
    let overrides = schema("overrides.schema.json");
    let mut files = Vec::new();
    yaml_files(&root().join("workflows"), &mut files);
    assert!(files.len() >= 40, "found only {} files", files.len());
    for file in files {
        let text = fs::read_to_string(&file).unwrap();
        let is_platform = file.file_name().is_some_and(|n| n == "platform.yaml");
        let is_scenario = file.parent().is_some_and(|d| d.ends_with("scenarios"));
        let (validator, schema_file) = if is_platform {
            (&platform, "platform.schema.json")
        } else if is_scenario {
            (&scenario, "scenario.schema.json")
        } else if text.lines().any(|l| l.starts_with("machine:")) {
            (&machine, "machine.schema.json")
        } else if text.lines().any(|l| l.starts_with("overrides:")) {
            (&overrides, "overrides.schema.json")
        } else {
            (&workflow, "workflow.schema.json")
        };

        let first = text.lines().next().unwrap_or_default();
        let target = first
            .strip_prefix("# yaml-language-server: $schema=")
            .unwrap_or_else(|| {
                panic!(
                    "{} must begin with a yaml-language-server $schema line",
                    file.display()
                )
            });
        assert!(
            target.ends_with(schema_file),
            "{}: names {target}",
            file.display()
        );
        assert!(
            file.parent().unwrap().join(target).is_file(),
            "{}: {target} does not exist",
            file.display()
        );

        let json = hisflow::workflow::load::yaml_to_json(&text).expect("the file parses");
        let errors: Vec<String> = validator
            .iter_errors(&json)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{} fails its schema:\n{}",
            file.display(),
            errors.join("\n")
        );
    }
}

#[test]
fn the_schema_rejects_what_the_validator_rejects_by_shape() {
    let text = fs::read_to_string(root().join("schemas/workflow.schema.json")).unwrap();
    let v = jsonschema::validator_for(&serde_json::from_str(&text).unwrap()).unwrap();
    let bad = serde_json::json!({
        "workflow": "w",
        "start": "a",
        "states": { "a": { "respond": { "ok": {} }, "otherwize": "b" } }
    });
    assert!(
        !v.is_valid(&bad),
        "an unknown state key must fail the schema"
    );
    let good = serde_json::json!({
        "workflow": "w",
        "start": "a",
        "states": { "a": { "choice": [{ "when": true, "next": "a" }], "otherwise": "b" }, "b": { "respond": { "ok": {} } } }
    });
    let errors: Vec<String> = v.iter_errors(&good).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}");
}
