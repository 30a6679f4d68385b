//! Deleting a model only when no server uses it: a llama-server of this engine
//! (running or on its way), this engine's image server, or an instance of the
//! daemon that runs on this data folder. Its files vanishing under a running server
//! would crash it at the next page it reads, and its restart would fail.

use std::path::Path;

use super::Engine;
use crate::errors::{EngineError, Result};
use crate::llama::InstanceSpec;

impl Engine {
    /// Deletes an installed model; `MODEL_IN_USE`, naming the instance and who
    /// runs it, while a server uses it.
    pub async fn delete_model(&self, id: &str) -> Result<()> {
        if let Some((instance, owner)) = self.model_user(id).await {
            return Err(EngineError::ModelInUse {
                model_id: id.to_owned(),
                instance,
                owner,
            });
        }
        self.models().delete(id)?;
        let forgotten = self
            .llama()
            .forget_saved_slots_of_model(&self.models().model_dir(id));
        if forgotten > 0 {
            tracing::info!(
                model = id,
                folders = forgotten,
                "deleted the model's saved conversations"
            );
        }
        Ok(())
    }

    /// The first server found using model `id`: its instance name and who runs it.
    async fn model_user(&self, id: &str) -> Option<(String, String)> {
        let folder = self.models().model_dir(id);
        for status in self.llama().list() {
            if status.state.is_active() && uses(&status.spec, id, &folder) {
                let owner = status
                    .owned_by
                    .map_or("this Switchyard", |owner| owner.kind.describe());
                return Some((status.spec.name, owner.to_owned()));
            }
        }
        if self.image_server().is_some_and(|server| server.model == id) {
            return Some(("the image server".to_owned(), "this Switchyard".to_owned()));
        }
        // The daemon's instances, by their specs (a row names a model by its key
        // only). A daemon that does not answer cannot be asked; it holds the files
        // open, so its server keeps what it loaded.
        let client = self.daemon_client()?;
        let rows = client.list().await.ok()?;
        for row in rows.into_iter().filter(|row| row.state.is_active()) {
            let Ok(status) = client.describe(&row.name).await else {
                continue;
            };
            if uses(&status.spec, id, &folder) {
                return Some((row.name, "the Switchyard daemon".to_owned()));
            }
        }
        None
    }
}

/// The instance runs a file of model `id` (whose files live in `folder`).
fn uses(spec: &InstanceSpec, id: &str, folder: &Path) -> bool {
    let in_folder = |path: &Path| {
        path.starts_with(folder)
            || path
                .canonicalize()
                .ok()
                .zip(folder.canonicalize().ok())
                .is_some_and(|(path, folder)| path.starts_with(folder))
    };
    spec.model_id.as_deref() == Some(id)
        || in_folder(&spec.model_path)
        || spec.mmproj_path.as_deref().is_some_and(in_folder)
}
