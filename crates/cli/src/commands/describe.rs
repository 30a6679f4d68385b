//! `describe NAME` (configuration, runtime, estimate vs measured) and `health NAME`.

use switchyard_engine::estimate::Breakdown;
use switchyard_engine::llama::{state_word, InstanceState, InstanceStatus, OwnerKind};
use switchyard_engine::ErrorReport;

use super::Outcome;
use crate::context::Context;
use crate::exit;
use crate::render::{self, dash, mib};

async fn status(context: &Context, name: &str) -> Result<InstanceStatus, ErrorReport> {
    match context.daemon()? {
        Some(daemon) => daemon.describe(name).await,
        None => Ok(context.local_engine(OwnerKind::Cli)?.llama().status(name)?),
    }
}

pub async fn health(context: &Context, name: &str) -> Outcome {
    let status = status(context, name).await?;
    let healthy = status.state == InstanceState::Healthy;
    if context.json {
        println!(
            "{}",
            render::json(&serde_json::json!({
                "name": name,
                "state": status.state,
                "healthy": healthy,
                "reason": status.reason,
                "endpoint": status.endpoint,
            }))
        );
    } else {
        println!("{name}: {}", state_word(status.state));
    }
    Ok(if healthy { 0 } else { exit::NOT_HEALTHY })
}

pub async fn describe(context: &Context, name: &str) -> Outcome {
    let status = status(context, name).await?;
    if context.json {
        println!("{}", render::json(&status));
    } else {
        println!("{}", text(&status));
    }
    Ok(0)
}

fn text(status: &InstanceStatus) -> String {
    let spec = &status.spec;
    let auto = |value: u32, automatic: bool| {
        if automatic {
            "auto".to_owned()
        } else {
            value.to_string()
        }
    };
    let field = |label: &str, value: String| format!("  {:<11} {value}", format!("{label}:"));
    let mut out = vec![
        format!("Name: {}", spec.name),
        "Configuration:".to_owned(),
        field("model", spec.model_path.display().to_string()),
        field("model id", dash(spec.model_id.as_ref())),
        field(
            "listens on",
            format!(
                "{}:{}",
                spec.host,
                spec.port.map_or("auto".to_owned(), |port| port.to_string())
            ),
        ),
        field("context", auto(spec.config.context, spec.auto.context)),
        field(
            "gpu layers",
            auto(spec.config.gpu_layers, spec.auto.gpu_layers),
        ),
        field("parallel", spec.config.parallel.to_string()),
        field(
            "threads",
            spec.threads
                .map_or("auto".to_owned(), |threads| threads.to_string()),
        ),
        field("extra args", spec.extra_args.join(" ")),
        "Runtime:".to_owned(),
        field(
            "state",
            if status.reason.is_empty() {
                state_word(status.state).to_owned()
            } else {
                format!("{} ({})", state_word(status.state), status.reason)
            },
        ),
        field("pid", dash(status.pid)),
        field("endpoint", dash(status.endpoint.as_ref())),
        field("clients at", dash(status.api_endpoint.as_ref())),
        field("restarts", status.restarts.to_string()),
    ];
    if let Some(error) = &status.error {
        out.push(field("error", error.message.clone()));
    }
    if let Some(running) = &status.running {
        out.push(field("binary", running.binary.clone()));
        out.push(field(
            "running",
            format!(
                "context {}, gpu layers {}, parallel {}",
                running.config.context, running.config.gpu_layers, running.config.parallel
            ),
        ));
        out.push(field("command", running.args.join(" ")));
        for note in &running.notes {
            out.push(field("note", note.clone()));
        }
    }
    out.push("Memory (estimate vs measured):".to_owned());
    let estimate = status
        .running
        .as_ref()
        .and_then(|running| running.estimate.as_ref());
    let measured = status.measured.as_ref();
    let row = |label: &str, pick: fn(&Breakdown) -> u64| {
        [
            label.to_owned(),
            estimate.map_or("-".to_owned(), |e| mib(pick(&e.ram) + pick(&e.vram))),
            measured.map_or("-".to_owned(), |m| mib(pick(&m.ram) + pick(&m.vram))),
        ]
    };
    let mut rows = vec![
        row("weights", |b| b.weights + b.output_layer),
        row("kv cache", |b| b.kv_cache),
        row("compute", |b| b.compute),
        // Estimated: the logits buffer and the runtime/driver context; measured:
        // the logits buffer only (nothing logs the rest).
        row("output + runtime", |b| b.overhead),
        row("total", Breakdown::total),
    ];
    rows.push([
        "resident (RSS)".to_owned(),
        "-".to_owned(),
        dash(measured.and_then(|m| m.rss_bytes).map(mib)),
    ]);
    out.push(render::table(["", "ESTIMATE", "MEASURED"], rows));
    if measured.is_some() {
        out.push(
            "  (measured: the buffers llama-server logged; the runtime it does not log \
             is in the resident size)"
                .to_owned(),
        );
    }
    out.join("\n")
}
