//! JSON Schemas of the files integrators write, generated from the same types
//! the loader deserializes, so the editor and the validator agree.

use schemars::generate::SchemaSettings;

use crate::workflow::raw::{MachineFile, OverridesFile, PlatformFile, WorkflowFile};

/// Schemas by file name, in the order `hisflow schema` writes them.
pub fn all() -> Vec<(&'static str, String)> {
    vec![
        ("workflow.schema.json", generate::<WorkflowFile>()),
        ("overrides.schema.json", generate::<OverridesFile>()),
        ("platform.schema.json", generate::<PlatformFile>()),
        ("machine.schema.json", generate::<MachineFile>()),
        (
            "scenario.schema.json",
            generate::<crate::scenario::ScenarioFile>(),
        ),
        (
            "config.schema.json",
            generate::<crate::server::config::ServeConfig>(),
        ),
        ("protocol.schema.json", crate::server::protocol::schema()),
    ]
}

fn generate<T: schemars::JsonSchema>() -> String {
    let generator = SchemaSettings::draft07().into_generator();
    let schema = generator.into_root_schema_for::<T>();
    let mut out = serde_json::to_string_pretty(&schema).expect("schemas serialize");
    out.push('\n');
    out
}
