//! Binary commands: one engine call each. The engine picks the test model and, when
//! Settings name one, the user's own executable.

use switchyard_engine::binaries::{BinaryKind, BinaryStatus, EnsureBinary};
use switchyard_engine::Engine;
use tauri::State;
use tracing::instrument;

use crate::ipc_error::IpcError;

/// Sets up (or re-validates, with `force_validation`) the `kind` binary. Runs for as
/// long as downloads and tests take; `binary_log` and `binary_download` events tell
/// the window what happens meanwhile.
#[tauri::command(rename_all = "snake_case")]
#[instrument(skip(engine), err(Debug))]
pub async fn ensure_binary(
    engine: State<'_, Engine>,
    kind: BinaryKind,
    force_validation: bool,
) -> Result<BinaryStatus, IpcError> {
    Ok(engine
        .ensure_binary(
            kind,
            EnsureBinary {
                force_validation,
                ..EnsureBinary::default()
            },
        )
        .await?)
}

/// The `kind` binary in use as last validated, or `null` before its first setup.
/// Off the main thread: a user-supplied path is resolved on disk (maybe a slow mount).
#[tauri::command(async)]
#[instrument(skip(engine))]
pub fn binary_status(engine: State<'_, Engine>, kind: BinaryKind) -> Option<BinaryStatus> {
    engine.binary_status(kind)
}
