//! Output: tables for people, JSON for scripts.

use comfy_table::presets::NOTHING;
use comfy_table::{Cell, Table};
use serde::Serialize;
use switchyard_engine::control::InstanceRow;
use switchyard_engine::llama::{state_word, LogLine};
use switchyard_engine::ErrorReport;

/// A borderless table with a header row, like `docker ps`.
pub fn table<const N: usize>(
    header: [&str; N],
    rows: impl IntoIterator<Item = [String; N]>,
) -> String {
    let mut table = Table::new();
    table.load_preset(NOTHING);
    table.set_header(header.map(Cell::new));
    for row in rows {
        table.add_row(row.map(Cell::new));
    }
    table.to_string()
}

pub fn json(value: &impl Serialize) -> String {
    serde_json::to_string_pretty(value)
        .unwrap_or_else(|error| format!("{{\"error\": \"{error}\"}}"))
}

pub fn error(report: &ErrorReport, as_json: bool) -> String {
    if as_json {
        json(&serde_json::json!({ "error": report }))
    } else if report.suggestion.is_empty() {
        format!("error: {}", report.message)
    } else {
        format!("error: {}\n  hint: {}", report.message, report.suggestion)
    }
}

pub fn dash<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_owned(), |value| value.to_string())
}

/// 45s, 3m04s, 2h05m, 3d04h.
pub fn duration(seconds: u64) -> String {
    match seconds {
        0..60 => format!("{seconds}s"),
        60..3600 => format!("{}m{:02}s", seconds / 60, seconds % 60),
        3600..86_400 => format!("{}h{:02}m", seconds / 3600, (seconds % 3600) / 60),
        _ => format!("{}d{:02}h", seconds / 86_400, (seconds % 86_400) / 3600),
    }
}

pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

pub fn instances(rows: &[InstanceRow]) -> String {
    table(
        [
            "NAME", "PID", "PORT", "BACKEND", "MODEL", "HEALTH", "UPTIME", "OWNER",
        ],
        rows.iter().map(|row| {
            let backend = match (&row.backend, &row.variant) {
                (Some(backend), Some(variant)) => format!("{}/{variant}", word(backend)),
                (Some(backend), None) => word(backend),
                (None, Some(variant)) => variant.clone(),
                (None, None) => "-".to_owned(),
            };
            [
                row.name.clone(),
                dash(row.pid),
                dash(row.port),
                backend,
                row.model.clone(),
                state_word(row.state).to_owned(),
                dash(row.uptime_s.map(duration)),
                dash(
                    row.owner
                        .as_ref()
                        .map(|owner| format!("{}:{}", word(&owner.kind), owner.pid)),
                ),
            ]
        }),
    )
}

pub fn log_lines(lines: &[LogLine]) -> String {
    lines
        .iter()
        .map(|line| line.message.clone())
        .collect::<Vec<_>>()
        .join("\n")
}

/// A serde enum's name (`healthy`, `cpu`, `daemon`).
pub fn word(value: &impl Serialize) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations_read_like_docker_s() {
        assert_eq!(super::duration(45), "45s");
        assert_eq!(super::duration(184), "3m04s");
        assert_eq!(super::duration(7500), "2h05m");
        assert_eq!(super::duration(273_600), "3d04h");
    }
}
