//! Setting up llama-server and sd: the person's own build or a downloaded one,
//! proven by running it on the smallest installed model.

use std::path::{Path, PathBuf};

use super::Engine;
use crate::binaries::{BinaryKind, BinaryStatus, EnsureBinary, MachineFacts};
use crate::errors::{EngineError, Result};
use crate::locks::read;
use crate::models;

/// The largest installed model the binary real test may load by itself.
const REAL_TEST_MODEL_MAX_BYTES: u64 = 2 * 1024 * 1024 * 1024;

impl Engine {
    /// A working `kind` binary: the cached one when unchanged, else the first variant
    /// (CUDA, Vulkan, Metal, CPU) that installs and passes its tests, or the user's own
    /// `custom_path` (by default the one Settings name for `kind`). Without
    /// `test_model`, the smallest installed model of the right kind runs the real test;
    /// with none installed, only the basic test runs.
    pub async fn ensure_binary(
        &self,
        kind: BinaryKind,
        mut options: EnsureBinary,
    ) -> Result<BinaryStatus> {
        if self.inner.shutdown.is_cancelled() {
            return Err(EngineError::ShuttingDown);
        }
        if options.custom_path.is_none() {
            options.custom_path = self.custom_binary_path(kind);
        }
        if options.test_model.is_none() {
            options.test_model = self.smallest_model_for(kind);
        }
        let facts = MachineFacts::from_system(&self.system_info());
        let status = self
            .inner
            .binaries
            .ensure(kind, &options, &facts, &self.inner.shutdown)
            .await?;
        if kind == BinaryKind::LlamaServer {
            self.inner.llama.use_binary(status.clone());
        }
        Ok(status)
    }

    /// The `kind` binary in use, as last validated (no test runs): the user's own
    /// when Settings name one (`None` until it has passed its tests), else the
    /// downloaded one.
    pub fn binary_status(&self, kind: BinaryKind) -> Option<BinaryStatus> {
        match self.custom_binary_path(kind) {
            Some(path) => self.inner.binaries.custom_status(kind, &path),
            None => self.inner.binaries.status(kind),
        }
    }

    fn custom_binary_path(&self, kind: BinaryKind) -> Option<PathBuf> {
        read(&self.inner.settings)
            .custom_binary_path(kind)
            .map(Path::to_path_buf)
    }

    /// The smallest installed model a real test of `kind` can run: an LLM for
    /// llama-server, a one-file diffusion model for sd (several components need
    /// flags the test does not guess). None above [`REAL_TEST_MODEL_MAX_BYTES`]: the
    /// test proves the build works, and a model too big for the GPU would fail it for
    /// the wrong reason.
    fn smallest_model_for(&self, kind: BinaryKind) -> Option<PathBuf> {
        let wanted = match kind {
            BinaryKind::LlamaServer => models::ModelKind::Llm,
            BinaryKind::Diffusion => models::ModelKind::Diffusion,
        };
        let store = &self.inner.models;
        store
            .models()
            .into_iter()
            .filter(|model| model.kind == wanted)
            .filter(|model| kind == BinaryKind::LlamaServer || model.files.len() == 1)
            .filter(|model| model.size_bytes() <= REAL_TEST_MODEL_MAX_BYTES)
            .min_by_key(models::InstalledModel::size_bytes)
            .and_then(|model| {
                let weights = model
                    .files
                    .iter()
                    .find(|file| file.role == models::FileRole::Weights)?;
                Some(store.model_dir(&model.id).join(&weights.file_name))
            })
    }
}
