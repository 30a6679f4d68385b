//! Saving and restoring a running llama-server's slots through its own API
//! (`GET /slots`, `POST /slots/{id}?action=save|restore` with `{"filename": …}`,
//! answered with `n_saved`/`n_written` or `n_restored`/`n_read`), each call within
//! one deadline for the whole operation.

use std::time::Instant;

use serde::Deserialize;
use tokio::time::Instant as Deadline;

use super::{SlotAction, SlotFolder, SlotsReport};

/// One entry of `GET /slots` (only what is needed).
#[derive(Debug, Deserialize)]
struct SlotInfo {
    id: u32,
}

/// The answer to `action=save` or `action=restore`.
#[derive(Debug, Default, Deserialize)]
struct SlotActionAnswer {
    #[serde(default, alias = "n_restored")]
    n_saved: u64,
    #[serde(default, alias = "n_read")]
    n_written: u64,
}

/// Where a server is and the key its port answers to.
#[derive(Debug, Clone, Copy)]
pub struct ServerAccess<'a> {
    pub http: &'a reqwest::Client,
    /// `http://127.0.0.1:PORT`.
    pub base: &'a str,
    pub key: &'a str,
}

/// Saves every slot that holds tokens into `folder` (each under a `.partial` name,
/// renamed once llama-server answered). A slot that holds nothing loses its older
/// save; a slot whose save failed keeps it. Gives up at `deadline`.
pub async fn save_slots(
    server: ServerAccess<'_>,
    instance: &str,
    folder: &SlotFolder,
    deadline: Deadline,
) -> SlotsReport {
    let started = Instant::now();
    let mut report = SlotsReport::new(instance, SlotAction::Save);
    match slot_ids(server, deadline).await {
        Ok(ids) => {
            for id in ids {
                let name = SlotFolder::partial_name(id);
                match slot_action(server, id, "save", &name, deadline).await {
                    Ok(answer) if answer.n_saved > 0 => {
                        match std::fs::rename(folder.partial_path(id), folder.saved_path(id)) {
                            Ok(()) => {
                                report.slots += 1;
                                report.tokens += answer.n_saved;
                                report.bytes += answer.n_written;
                            }
                            Err(error) => report.problems.push(format!("slot {id}: {error}")),
                        }
                    }
                    Ok(_) => {
                        // Empty now: an older conversation must not come back in it.
                        let _ = std::fs::remove_file(folder.partial_path(id));
                        let _ = std::fs::remove_file(folder.saved_path(id));
                    }
                    Err(problem) => {
                        let _ = std::fs::remove_file(folder.partial_path(id));
                        report.problems.push(format!("slot {id}: {problem}"));
                        if Deadline::now() >= deadline {
                            break;
                        }
                    }
                }
            }
        }
        Err(problem) => report.problems.push(problem),
    }
    report.elapsed_ms = elapsed_ms(started);
    report
}

/// Reads each saved slot of `folder` back into the server (before it takes
/// requests). A file the server refuses is deleted: it would fail again.
pub async fn restore_slots(
    server: ServerAccess<'_>,
    instance: &str,
    folder: &SlotFolder,
    deadline: Deadline,
) -> SlotsReport {
    let started = Instant::now();
    let mut report = SlotsReport::new(instance, SlotAction::Restore);
    let saved = folder.saved();
    if saved.is_empty() {
        return report;
    }
    let ids = match slot_ids(server, deadline).await {
        Ok(ids) => ids,
        Err(problem) => {
            report.problems.push(problem);
            report.elapsed_ms = elapsed_ms(started);
            return report;
        }
    };
    for (id, path) in saved {
        if !ids.contains(&id) {
            // Cannot happen with the same configuration; kept out of the server.
            report
                .problems
                .push(format!("slot {id}: this server has no such slot"));
            let _ = std::fs::remove_file(&path);
            continue;
        }
        match slot_action(server, id, "restore", &SlotFolder::saved_name(id), deadline).await {
            Ok(answer) => {
                report.slots += 1;
                report.tokens += answer.n_saved;
                report.bytes += answer.n_written;
            }
            Err(problem) => {
                report.problems.push(format!("slot {id}: {problem}"));
                if Deadline::now() >= deadline {
                    break;
                }
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    report.elapsed_ms = elapsed_ms(started);
    report
}

async fn slot_ids(server: ServerAccess<'_>, deadline: Deadline) -> Result<Vec<u32>, String> {
    let request = server
        .http
        .get(format!("{}/slots", server.base))
        .bearer_auth(server.key);
    let body = send(request, deadline, "listing the slots").await?;
    let slots: Vec<SlotInfo> =
        serde_json::from_str(&body).map_err(|error| format!("GET /slots answered {error}"))?;
    Ok(slots.into_iter().map(|slot| slot.id).collect())
}

async fn slot_action(
    server: ServerAccess<'_>,
    id: u32,
    action: &str,
    filename: &str,
    deadline: Deadline,
) -> Result<SlotActionAnswer, String> {
    let request = server
        .http
        .post(format!("{}/slots/{id}?action={action}", server.base))
        .bearer_auth(server.key)
        .json(&serde_json::json!({ "filename": filename }));
    let body = send(request, deadline, action).await?;
    serde_json::from_str(&body).map_err(|error| format!("{action} answered {error}"))
}

/// Sends within the deadline; llama-server's own error message on a refusal.
async fn send(
    request: reqwest::RequestBuilder,
    deadline: Deadline,
    what: &str,
) -> Result<String, String> {
    let left = deadline.saturating_duration_since(Deadline::now());
    if left.is_zero() {
        return Err(format!("{what}: out of time"));
    }
    let response = request
        .timeout(left)
        .send()
        .await
        .map_err(|error| describe(what, &error))?;
    let status = response.status();
    let body = response
        .text()
        .await
        .map_err(|error| describe(what, &error))?;
    if status.is_success() {
        Ok(body)
    } else {
        let message = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|value| value["error"]["message"].as_str().map(str::to_owned))
            .unwrap_or(body);
        Err(format!("{what}: llama-server answered {status}: {message}"))
    }
}

fn describe(what: &str, error: &reqwest::Error) -> String {
    if error.is_timeout() {
        format!("{what}: out of time")
    } else {
        format!("{what}: {error}")
    }
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}
