//! `config validate`: every instance file, each problem with its file and field.

use switchyard_engine::instance_files;
use switchyard_engine::llama::OwnerKind;
use switchyard_engine::{EngineError, ErrorReport};

use super::Outcome;
use crate::args::ConfigCommand;
use crate::context::Context;
use crate::exit;
use crate::render;

pub fn run(context: &Context, command: ConfigCommand) -> Outcome {
    match command {
        ConfigCommand::Validate => validate(context),
    }
}

fn validate(context: &Context) -> Outcome {
    // The engine, for `model_id` (the store); nothing is started or changed.
    let engine = switchyard_engine::Engine::new(context.engine_deps()?)?;
    engine.llama().set_owner_kind(OwnerKind::Cli);
    engine.use_headless_instances()?;
    let dir = engine.instances_dir();
    let loaded = engine.load_instance_files();
    let problems: Vec<ErrorReport> = loaded.problems.iter().map(EngineError::report).collect();
    if context.json {
        let valid: Vec<_> = loaded
            .files
            .iter()
            .map(|file| serde_json::json!({ "file": file.path, "name": file.spec.name }))
            .collect();
        println!(
            "{}",
            render::json(&serde_json::json!({
                "dir": dir,
                "valid": valid,
                "problems": problems,
            }))
        );
    } else {
        for file in &loaded.files {
            println!("ok      {}", file.path.display());
        }
        for problem in &loaded.problems {
            println!("{}", render::error(&problem.report(), false));
        }
        if loaded.files.is_empty() && loaded.problems.is_empty() {
            println!(
                "no instance files in {} (one `NAME.toml` per instance)",
                instance_files::instances_dir(engine.config_dir()).display()
            );
        }
    }
    Ok(if problems.is_empty() {
        0
    } else {
        exit::INVALID_CONFIG
    })
}
