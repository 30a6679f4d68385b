//! "Report a problem": one zip with what a helper needs to see: versions, this
//! machine's facts, the settings with anything secret taken out, the servers'
//! states (API keys and the values of extra arguments taken out), and the logs
//! (which hold no prompts or answers: see `llama::request_text`; any instance's key
//! found in them is taken out too). Written to a temporary name and renamed when
//! complete, so a half-written report never lies in the folder.

use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::errors::{EngineError, Result};
use crate::llama::InstanceStatus;
use crate::redact::{self, REDACTED};
use crate::settings::Settings;

/// The end of each log file that goes into a report: the recent past is what
/// explains a problem, and a report must stay small enough to attach.
pub const LOG_TAIL_BYTES: u64 = 2 * 1024 * 1024;

/// What goes into a report besides the logs; each part becomes one JSON file.
#[derive(Debug)]
pub struct ReportContents<'a> {
    pub versions: serde_json::Value,
    pub system: serde_json::Value,
    pub settings: &'a Settings,
    /// The instances as they are now; their secrets are taken out here.
    pub instances: &'a [InstanceStatus],
    pub binaries: serde_json::Value,
    /// The folder whose files go under `logs/` in the zip.
    pub logs_dir: &'a Path,
    /// Replaced by `~` wherever it appears in the settings (it names the person).
    pub home_dir: Option<&'a Path>,
}

/// Writes `switchyard-report-<stamp>.zip` into `folder` and returns its path.
pub fn write_report(folder: &Path, stamp: u64, contents: &ReportContents<'_>) -> Result<PathBuf> {
    let storage = |source: std::io::Error| EngineError::StorageUnavailable {
        path: folder.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(folder).map_err(storage)?;
    let path = folder.join(format!("switchyard-report-{stamp}.zip"));
    let partial = folder.join(format!(".switchyard-report-{stamp}.zip.partial"));
    let written = write_zip(&partial, contents).and_then(|()| {
        std::fs::rename(&partial, &path).map_err(|source| EngineError::StorageUnavailable {
            path: path.clone(),
            source,
        })
    });
    if written.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    written.map(|()| path)
}

fn write_zip(path: &Path, contents: &ReportContents<'_>) -> Result<()> {
    let file = std::fs::File::create(path).map_err(|source| EngineError::StorageUnavailable {
        path: path.to_path_buf(),
        source,
    })?;
    let mut zip = ZipOut {
        writer: zip::ZipWriter::new(file),
        path,
    };
    let settings = redacted_settings(contents.settings, contents.home_dir);
    let instances: Vec<InstanceStatus> = contents.instances.iter().map(redacted_instance).collect();
    let secrets = secrets_of(contents.instances);
    zip.bytes("README.txt", WHAT_IT_HOLDS.as_bytes())?;
    zip.json("versions.json", &contents.versions)?;
    zip.json("system.json", &contents.system)?;
    zip.json("settings.json", &settings)?;
    zip.json("instances.json", &instances)?;
    zip.json("binaries.json", &contents.binaries)?;
    for log in log_files(contents.logs_dir) {
        let Ok(relative) = log.strip_prefix(contents.logs_dir) else {
            continue;
        };
        let name = format!("logs/{}", relative.to_string_lossy().replace('\\', "/"));
        // A log that vanished (rotated away) meanwhile is simply left out.
        if let Ok(tail) = read_tail(&log, LOG_TAIL_BYTES) {
            zip.bytes(&name, &without_secrets(tail, &secrets))?;
        }
    }
    let file = zip
        .writer
        .finish()
        .map_err(|error| zip_error(path, &error))?;
    file.sync_all()
        .map_err(|source| EngineError::StorageUnavailable {
            path: path.to_path_buf(),
            source,
        })
}

struct ZipOut<'a> {
    writer: zip::ZipWriter<std::fs::File>,
    path: &'a Path,
}

impl ZipOut<'_> {
    fn json(&mut self, name: &str, value: &impl Serialize) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(value).map_err(|error| EngineError::Internal {
            problem: format!("serializing {name}: {error}"),
        })?;
        self.bytes(name, &bytes)
    }

    fn bytes(&mut self, name: &str, bytes: &[u8]) -> Result<()> {
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        self.writer
            .start_file(name, options)
            .map_err(|error| zip_error(self.path, &error))?;
        self.writer
            .write_all(bytes)
            .map_err(|source| EngineError::StorageUnavailable {
                path: self.path.to_path_buf(),
                source,
            })
    }
}

fn zip_error(path: &Path, error: &zip::result::ZipError) -> EngineError {
    EngineError::StorageUnavailable {
        path: path.to_path_buf(),
        source: std::io::Error::other(error.to_string()),
    }
}

/// Every regular file under `dir`, sorted; symbolic links are not followed.
fn log_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries.flatten() {
            match entry.file_type() {
                Ok(kind) if kind.is_dir() => pending.push(entry.path()),
                Ok(kind) if kind.is_file() => found.push(entry.path()),
                _ => {}
            }
        }
    }
    found.sort();
    found
}

fn read_tail(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    let mut file = std::fs::File::open(path)?;
    let length = file.metadata()?.len();
    file.seek(SeekFrom::Start(length.saturating_sub(limit)))?;
    let mut bytes = Vec::new();
    file.take(limit).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// The first file in the zip: what the rest is, and what is not in it.
const WHAT_IT_HOLDS: &str = "\
A Switchyard problem report.

versions.json   Switchyard's and the pinned llama.cpp and stable-diffusion.cpp versions
system.json     this machine's CPU, memory and GPUs
settings.json   the settings, without credentials or tokens in addresses
instances.json  the llama-server instances: configuration and state, without API keys
                and without the values of extra arguments
binaries.json   the llama-server and sd builds in use
logs/           the last 2 MiB of each log file

Not in it: API keys, the text of prompts and answers (Switchyard keeps them out of
its logs), images, models.
";

/// An instance as a helper may see it: whether it has an API key, not the key;
/// which extra flags it passes, not their values (a value may be a token).
fn redacted_instance(instance: &InstanceStatus) -> InstanceStatus {
    let mut shown = instance.clone();
    if shown.spec.api_key.is_some() {
        shown.spec.api_key = Some(REDACTED.to_owned());
    }
    shown.spec.extra_args = redact::extra_args(&shown.spec.extra_args);
    shown
}

/// The instances' API keys and the values of their extra arguments, as they could
/// stand in a log (an older version logged extra arguments whole). Values too short
/// to tell from ordinary text (`0.2`, `512`) are left out: they are settings, and
/// replacing them would garble the logs.
fn secrets_of(instances: &[InstanceStatus]) -> Vec<String> {
    let mut secrets = Vec::new();
    for spec in instances.iter().map(|instance| &instance.spec) {
        secrets.extend(spec.api_key.clone());
        for arg in &spec.extra_args {
            let value = match arg.split_once('=') {
                Some((flag, value)) if flag.starts_with('-') => value,
                _ if arg.starts_with('-') => continue,
                _ => arg,
            };
            if value.len() >= MIN_SCRUBBED_VALUE {
                secrets.push(value.to_owned());
            }
        }
    }
    secrets.retain(|secret| secret.len() >= MIN_SCRUBBED_KEY);
    secrets
}

const MIN_SCRUBBED_KEY: usize = 4;
const MIN_SCRUBBED_VALUE: usize = 8;

/// `bytes` with every occurrence of each secret replaced.
fn without_secrets(mut bytes: Vec<u8>, secrets: &[String]) -> Vec<u8> {
    for secret in secrets {
        bytes = replace_all(&bytes, secret.as_bytes(), REDACTED.as_bytes());
    }
    bytes
}

fn replace_all(haystack: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut rest = haystack;
    while let Some(at) = rest
        .windows(needle.len())
        .position(|window| window == needle)
    {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(with);
        rest = &rest[at + needle.len()..];
    }
    out.extend_from_slice(rest);
    out
}

/// The settings as a helper may see them: credentials and queries (tokens) out of
/// every address, and the home folder written as `~`.
fn redacted_settings(settings: &Settings, home: Option<&Path>) -> serde_json::Value {
    let mut settings = settings.clone();
    settings.hub_url = redact_url(&settings.hub_url);
    settings.binaries_mirror = settings.binaries_mirror.as_deref().map(redact_url);
    let mut value = serde_json::to_value(&settings).unwrap_or_default();
    if let (Some(home), Some(fields)) = (home, value.as_object_mut()) {
        let home = home.display().to_string();
        for field in fields.values_mut() {
            let shortened = field
                .as_str()
                .and_then(|text| text.strip_prefix(&home))
                // `/home/ada` is not the start of `/home/adam/...`.
                .filter(|rest| rest.is_empty() || rest.starts_with(std::path::MAIN_SEPARATOR))
                .map(|rest| format!("~{rest}"));
            if let Some(shortened) = shortened {
                *field = serde_json::Value::String(shortened);
            }
        }
    }
    value
}

/// `https://user:token@host/path?key=secret` → `https://host/path`.
fn redact_url(address: &str) -> String {
    match reqwest::Url::parse(address) {
        Ok(mut url) => {
            let _ = url.set_username("");
            let _ = url.set_password(None);
            url.set_query(None);
            url.set_fragment(None);
            url.to_string()
        }
        // Not an address (validation refuses those); nothing of it is needed.
        Err(_) => "(redacted)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entries(path: &Path) -> std::collections::BTreeMap<String, String> {
        let mut archive = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
        (0..archive.len())
            .map(|index| {
                let mut file = archive.by_index(index).unwrap();
                let mut text = String::new();
                file.read_to_string(&mut text).unwrap();
                (file.name().unwrap().into_owned(), text)
            })
            .collect()
    }

    #[test]
    fn the_zip_holds_facts_redacted_settings_and_log_tails() {
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("logs");
        std::fs::create_dir_all(logs.join("default")).unwrap();
        std::fs::write(logs.join("default/llama-server.log"), "loaded model\n").unwrap();
        let long = "x".repeat(usize::try_from(LOG_TAIL_BYTES).unwrap()) + "the end\n";
        std::fs::write(logs.join("long.log"), &long).unwrap();
        let settings = Settings {
            hub_url: "https://user:hf_secret@mirror.example/hub?token=abc".into(),
            binaries_mirror: Some("https://key:pass@bin.example/releases".into()),
            llama_server_path: Some("/home/ada/llama/llama-server".into()),
            ..Settings::default()
        };
        let contents = ReportContents {
            versions: json!({"app": "0.1.0"}),
            system: json!({"cpu": {"logical_cores": 2}}),
            settings: &settings,
            instances: &[],
            binaries: json!({"llama_server": null}),
            logs_dir: &logs,
            home_dir: Some(Path::new("/home/ada")),
        };

        let path = write_report(&dir.path().join("reports"), 1234, &contents).unwrap();

        assert_eq!(path.file_name().unwrap(), "switchyard-report-1234.zip");
        let files = entries(&path);
        assert_eq!(
            files.keys().map(String::as_str).collect::<Vec<_>>(),
            [
                "README.txt",
                "binaries.json",
                "instances.json",
                "logs/default/llama-server.log",
                "logs/long.log",
                "settings.json",
                "system.json",
                "versions.json",
            ]
        );
        assert_eq!(files["logs/default/llama-server.log"], "loaded model\n");
        let tail = &files["logs/long.log"];
        assert_eq!(tail.len() as u64, LOG_TAIL_BYTES);
        assert!(tail.ends_with("the end\n"));
        let stored: serde_json::Value = serde_json::from_str(&files["settings.json"]).unwrap();
        assert_eq!(stored["hub_url"], "https://mirror.example/hub");
        assert_eq!(stored["binaries_mirror"], "https://bin.example/releases");
        assert_eq!(stored["llama_server_path"], "~/llama/llama-server");
        assert!(!files["settings.json"].contains("secret"));
        assert!(!files["settings.json"].contains("pass"));
        let versions: serde_json::Value = serde_json::from_str(&files["versions.json"]).unwrap();
        assert_eq!(versions["app"], "0.1.0");
        // Only the finished zip is left in the folder.
        let left: Vec<_> = std::fs::read_dir(dir.path().join("reports"))
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(
            left,
            [std::ffi::OsString::from("switchyard-report-1234.zip")]
        );
    }

    #[test]
    fn api_keys_and_extra_values_stay_out_of_the_zip() {
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("logs");
        std::fs::create_dir_all(logs.join("chat")).unwrap();
        // As an older version logged it.
        std::fs::write(
            logs.join("chat/llama-server.log"),
            "[switchyard] starting llama-server --api-key sesame-report-0c4d --hf-token hf_extra_91ab\n",
        )
        .unwrap();
        let mut spec = crate::llama::InstanceSpec::new("chat", "/models/m.gguf");
        spec.api_key = Some("sesame-report-0c4d".into());
        spec.extra_args = vec!["--hf-token".into(), "hf_extra_91ab".into()];
        let instances = [InstanceStatus::stopped(spec)];
        let settings = Settings::default();
        let contents = ReportContents {
            versions: json!({}),
            system: json!({}),
            settings: &settings,
            instances: &instances,
            binaries: json!({}),
            logs_dir: &logs,
            home_dir: None,
        };

        let path = write_report(&dir.path().join("reports"), 1, &contents).unwrap();

        let files = entries(&path);
        for (name, text) in &files {
            assert!(!text.contains("sesame-report-0c4d"), "{name}: {text}");
            assert!(!text.contains("hf_extra_91ab"), "{name}: {text}");
        }
        let stored: serde_json::Value = serde_json::from_str(&files["instances.json"]).unwrap();
        assert_eq!(stored[0]["spec"]["api_key"], REDACTED);
        assert_eq!(
            stored[0]["spec"]["extra_args"],
            json!(["--hf-token", REDACTED])
        );
        assert!(files["README.txt"].contains("Not in it: API keys"));
    }

    #[test]
    fn an_unwritable_folder_is_a_storage_error() {
        let dir = tempfile::tempdir().unwrap();
        let occupied = dir.path().join("reports");
        std::fs::write(&occupied, b"a file, not a folder").unwrap();
        let settings = Settings::default();
        let contents = ReportContents {
            versions: json!({}),
            system: json!({}),
            settings: &settings,
            instances: &[],
            binaries: json!({}),
            logs_dir: dir.path(),
            home_dir: None,
        };
        let error = write_report(&occupied, 1, &contents).unwrap_err();
        assert_eq!(error.code(), crate::ErrorCode::StorageUnavailable);
    }
}
