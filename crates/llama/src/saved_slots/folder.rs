//! The saved caches on disk: one folder per instance and configuration, the
//! fingerprint that keeps a cache to the configuration that wrote it, the budget.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use switchyard_estimate::{CacheType, FlashAttention};

use crate::args::LaunchPlan;

const CONFIG_FILE: &str = "config.json";
const SAVED_PREFIX: &str = "slot-";
const SAVED_SUFFIX: &str = ".bin";
const PARTIAL_SUFFIX: &str = ".partial";

/// Where the saved caches live (`<data>/kv-cache`).
#[derive(Debug, Clone)]
pub struct SlotStore {
    root: PathBuf,
}

/// One launch's folder, named by its configuration's fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotFolder {
    pub path: PathBuf,
    pub fingerprint: String,
    /// `config.json`'s content.
    identity: Vec<u8>,
}

/// What a saved cache belongs to: the files and the cache's shape. Written beside
/// the caches as `config.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct CacheIdentity {
    instance: String,
    model: FileIdentity,
    mmproj: Option<FileIdentity>,
    binary: FileIdentity,
    context: u32,
    parallel: u32,
    kv_unified: bool,
    cache_type_k: CacheType,
    cache_type_v: CacheType,
    flash_attention: FlashAttention,
    swa_full: bool,
}

/// A file as far as "the same file" goes without reading gigabytes: a replaced or
/// rewritten file has another size or modification time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct FileIdentity {
    path: PathBuf,
    bytes: u64,
    modified_ns: u128,
}

impl FileIdentity {
    fn of(path: &Path) -> Self {
        let meta = std::fs::metadata(path).ok();
        Self {
            path: path.to_path_buf(),
            bytes: meta.as_ref().map_or(0, std::fs::Metadata::len),
            modified_ns: meta
                .and_then(|meta| meta.modified().ok())
                .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |since| since.as_nanos()),
        }
    }
}

impl CacheIdentity {
    fn of(instance: &str, plan: &LaunchPlan) -> Self {
        let config = &plan.config;
        Self {
            instance: instance.to_owned(),
            model: FileIdentity::of(&plan.model_path),
            mmproj: plan.mmproj_path.as_deref().map(FileIdentity::of),
            binary: FileIdentity::of(&plan.binary),
            context: config.context,
            parallel: config.parallel,
            kv_unified: config.kv_unified,
            cache_type_k: config.cache_type_k,
            cache_type_v: config.cache_type_v,
            flash_attention: config.flash_attention,
            swa_full: config.swa_full,
        }
    }

    /// 16 hex digits of SHA-256 over the identity and the person's extra
    /// arguments (which may change the cache; hashed, never written: they may
    /// hold tokens).
    fn fingerprint(&self, extra_args: &[String]) -> String {
        let mut hasher = Sha256::new();
        hasher.update(serde_json::to_vec(self).unwrap_or_default());
        for arg in extra_args {
            hasher.update([0]);
            hasher.update(arg.as_bytes());
        }
        let digest = hasher.finalize();
        digest[..8]
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }
}

impl SlotStore {
    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The folder this launch saves to and restores from: created (the user's
    /// only), its leftovers of an interrupted save removed, and the instance's
    /// folders of other configurations deleted (their caches must never be read
    /// into this one).
    pub fn prepare(&self, instance: &str, plan: &LaunchPlan) -> std::io::Result<SlotFolder> {
        let identity = CacheIdentity::of(instance, plan);
        let fingerprint = identity.fingerprint(&plan.extra_args);
        let instance_dir = self.root.join(instance);
        let folder = SlotFolder {
            path: instance_dir.join(&fingerprint),
            identity: serde_json::to_vec_pretty(&identity).unwrap_or_default(),
            fingerprint,
        };
        folder.ensure()?;
        let (path, fingerprint) = (&folder.path, &folder.fingerprint);
        for entry in std::fs::read_dir(&instance_dir)?.flatten() {
            if entry.file_name() != fingerprint.as_str() {
                let old = entry.path();
                tracing::info!(instance, folder = %old.display(), "deleting the saved KV cache of another configuration");
                remove_path(&old);
            }
        }
        for entry in std::fs::read_dir(path)?.flatten() {
            if entry
                .file_name()
                .to_string_lossy()
                .ends_with(PARTIAL_SUFFIX)
            {
                remove_path(&entry.path());
            }
        }
        Ok(folder)
    }

    /// Deletes every saved cache.
    pub fn clear(&self) {
        for path in read_dir_paths(&self.root) {
            remove_path(&path);
        }
    }

    /// Deletes an instance's saved caches (it was removed).
    pub fn forget_instance(&self, instance: &str) {
        remove_path(&self.root.join(instance));
    }

    /// Deletes every saved cache of a model file at or under `model_path` (the
    /// model was deleted). Returns how many folders went.
    pub fn forget_model(&self, model_path: &Path) -> u32 {
        let mut removed = 0;
        for folder in self.folders() {
            let identity: Option<CacheIdentity> = std::fs::read(folder.join(CONFIG_FILE))
                .ok()
                .and_then(|bytes| serde_json::from_slice(&bytes).ok());
            if identity.is_some_and(|identity| identity.model.path.starts_with(model_path)) {
                remove_path(&folder);
                removed += 1;
            }
        }
        removed
    }

    /// The saved caches' total size and count.
    pub fn usage(&self) -> (u64, u32) {
        let files = self.saved_files();
        let bytes = files.iter().map(|file| file.bytes).sum();
        (bytes, u32::try_from(files.len()).unwrap_or(u32::MAX))
    }

    /// Deletes the oldest saved caches until the folder fits `budget_bytes`.
    /// Returns how many files went.
    pub fn enforce_budget(&self, budget_bytes: u64) -> u32 {
        let mut files = self.saved_files();
        let mut total: u64 = files.iter().map(|file| file.bytes).sum();
        files.sort_by_key(|file| file.modified);
        let mut removed = 0;
        for file in files {
            if total <= budget_bytes {
                break;
            }
            tracing::info!(file = %file.path.display(), bytes = file.bytes, "the saved KV caches are over their budget: deleting the oldest");
            if std::fs::remove_file(&file.path).is_ok() {
                total = total.saturating_sub(file.bytes);
                removed += 1;
            }
        }
        removed
    }

    /// `<root>/<instance>/<fingerprint>` folders.
    fn folders(&self) -> Vec<PathBuf> {
        let mut folders = Vec::new();
        for instance in read_dir_paths(&self.root) {
            folders.extend(read_dir_paths(&instance).into_iter().filter(|p| p.is_dir()));
        }
        folders
    }

    fn saved_files(&self) -> Vec<SavedFile> {
        self.folders()
            .iter()
            .flat_map(|folder| SlotFolder::saved_in(folder))
            .filter_map(|(_, path)| {
                let meta = std::fs::metadata(&path).ok()?;
                Some(SavedFile {
                    bytes: meta.len(),
                    modified: meta.modified().unwrap_or(UNIX_EPOCH),
                    path,
                })
            })
            .collect()
    }
}

struct SavedFile {
    path: PathBuf,
    bytes: u64,
    modified: SystemTime,
}

impl SlotFolder {
    /// Makes the folder (the user's only) and its `config.json` again if they are
    /// gone: saving was turned off meanwhile, which deleted them, or someone
    /// cleaned the disk.
    pub fn ensure(&self) -> std::io::Result<()> {
        create_private_dir(&self.path)?;
        let config = self.path.join(CONFIG_FILE);
        if !config.exists() {
            switchyard_base::fs_atomic::write_private(&config, &self.identity)?;
        }
        Ok(())
    }

    /// The name llama-server writes a save to (it takes a bare file name in its
    /// `--slot-save-path`); renamed to [`Self::saved_path`] once complete.
    pub fn partial_name(id: u32) -> String {
        format!("{SAVED_PREFIX}{id}{PARTIAL_SUFFIX}")
    }

    pub fn partial_path(&self, id: u32) -> PathBuf {
        self.path.join(Self::partial_name(id))
    }

    pub fn saved_name(id: u32) -> String {
        format!("{SAVED_PREFIX}{id}{SAVED_SUFFIX}")
    }

    pub fn saved_path(&self, id: u32) -> PathBuf {
        self.path.join(Self::saved_name(id))
    }

    /// The complete saves here, by slot.
    pub fn saved(&self) -> Vec<(u32, PathBuf)> {
        Self::saved_in(&self.path)
    }

    fn saved_in(folder: &Path) -> Vec<(u32, PathBuf)> {
        let mut saved: Vec<(u32, PathBuf)> = read_dir_paths(folder)
            .into_iter()
            .filter_map(|path| {
                let name = path.file_name()?.to_str()?;
                let id = name
                    .strip_prefix(SAVED_PREFIX)?
                    .strip_suffix(SAVED_SUFFIX)?
                    .parse()
                    .ok()?;
                Some((id, path))
            })
            .collect();
        saved.sort();
        saved
    }
}

fn read_dir_paths(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|entry| entry.path()).collect())
        .unwrap_or_default()
}

fn create_private_dir(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)?;
    // A folder made earlier with wider rights is narrowed too.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
}

fn remove_path(path: &Path) {
    let removed = if path.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    };
    if let Err(error) = removed {
        if error.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(path = %path.display(), %error, "cannot delete a saved KV cache");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_estimate::LlamaConfig;

    fn plan(dir: &Path, context: u32) -> LaunchPlan {
        let model = dir.join("model.gguf");
        std::fs::write(&model, b"GGUF").unwrap();
        LaunchPlan {
            binary: dir.join("llama-server"),
            model_path: model,
            mmproj_path: None,
            config: LlamaConfig {
                context,
                ..LlamaConfig::default()
            },
            pass_gpu_layers: false,
            threads: None,
            host: "127.0.0.1".into(),
            port: 1,
            api_key_file: None,
            reasoning: false,
            aliases: Vec::new(),
            draft: None,
            role: crate::ModelRole::Chat,
            pooling: None,
            slot_save_path: None,
            extra_args: Vec::new(),
        }
    }

    #[test]
    fn another_configuration_gets_another_folder_and_the_old_one_goes() {
        let dir = tempfile::tempdir().unwrap();
        let store = SlotStore::new(dir.path().join("kv-cache"));
        let launch = plan(dir.path(), 4096);
        let first = store.prepare("chat", &launch).unwrap();
        std::fs::write(first.saved_path(0), b"cache").unwrap();
        std::fs::write(first.partial_path(1), b"half").unwrap();

        let again = store.prepare("chat", &launch).unwrap();
        assert_eq!(again, first, "the same configuration keeps its folder");
        assert_eq!(again.saved().len(), 1, "its complete save stays");
        assert!(
            !first.partial_path(1).exists(),
            "an interrupted save is removed"
        );

        let mut other_context = launch.clone();
        other_context.config.context = 8192;
        let other = store.prepare("chat", &other_context).unwrap();
        assert_ne!(other.fingerprint, first.fingerprint);
        assert!(
            !first.path.exists(),
            "the other configuration's cache is deleted"
        );

        let mut with_args = other_context;
        with_args.extra_args = vec!["--rope-scaling".into(), "yarn".into()];
        assert_ne!(
            store.prepare("chat", &with_args).unwrap().fingerprint,
            other.fingerprint
        );
    }

    #[test]
    fn a_rewritten_model_file_is_another_configuration() {
        let dir = tempfile::tempdir().unwrap();
        let store = SlotStore::new(dir.path().join("kv-cache"));
        let launch = plan(dir.path(), 4096);
        let first = store.prepare("chat", &launch).unwrap();
        std::fs::write(&launch.model_path, b"GGUF, another model").unwrap();
        assert_ne!(store.prepare("chat", &launch).unwrap(), first);
    }

    #[test]
    fn the_folder_is_the_users_only_and_config_json_names_the_model() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let store = SlotStore::new(dir.path().join("kv-cache"));
        let folder = store.prepare("chat", &plan(dir.path(), 4096)).unwrap();
        let mode = std::fs::metadata(&folder.path)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
        std::fs::write(folder.saved_path(0), b"cache").unwrap();
        assert_eq!(store.forget_model(&dir.path().join("other.gguf")), 0);
        assert_eq!(
            store.forget_model(&dir.path().join("model")),
            0,
            "a name's prefix is not its folder"
        );
        assert_eq!(
            store.forget_model(dir.path()),
            1,
            "the model's folder covers its file"
        );
        assert!(!folder.path.exists());
    }

    #[test]
    fn the_budget_deletes_the_oldest_files_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = SlotStore::new(dir.path().join("kv-cache"));
        let a = store.prepare("a", &plan(dir.path(), 4096)).unwrap();
        let b = store.prepare("b", &plan(dir.path(), 4096)).unwrap();
        let write = |path: PathBuf, age_secs: u64| {
            std::fs::write(&path, vec![0u8; 100]).unwrap();
            let when = SystemTime::now() - std::time::Duration::from_secs(age_secs);
            std::fs::File::options()
                .write(true)
                .open(&path)
                .unwrap()
                .set_modified(when)
                .unwrap();
        };
        write(a.saved_path(0), 300);
        write(b.saved_path(0), 200);
        write(a.saved_path(1), 100);
        assert_eq!(store.usage(), (300, 3));
        assert_eq!(store.enforce_budget(250), 1);
        assert!(!a.saved_path(0).exists(), "the oldest went");
        assert!(b.saved_path(0).exists() && a.saved_path(1).exists());
        assert_eq!(store.enforce_budget(250), 0, "within budget: nothing more");
        assert_eq!(store.usage(), (200, 2));
    }
}
