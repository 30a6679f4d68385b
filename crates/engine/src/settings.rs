//! User settings: checked-in defaults plus the user's overrides, validated here so
//! every front end (window, CLI) refuses the same bad values with the same words.
//! The file they are kept in: [`crate::settings_file`].

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::binaries::BinaryKind;
use crate::errors::{EngineError, Result};

/// How the window looks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum Theme {
    /// Follow the operating system's light or dark preference.
    #[default]
    System,
    Light,
    Dark,
}

/// Everything a person can change in Settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct Settings {
    /// Folder for models, binaries, logs and state; `null` means the platform
    /// default. A change takes effect at the next start.
    #[serde(default)]
    #[ts(type = "string | null")]
    pub data_dir: Option<PathBuf>,
    /// Port of the Switchyard endpoint other programs call: one OpenAI-compatible
    /// address for every model, the request's `model` picking it (see
    /// docs/router.md). Clear of llama-server's 8080, Ollama's 11434, LM Studio's 1234.
    #[serde(default = "default_endpoint_port")]
    pub endpoint_port: u16,
    /// Serve the Switchyard endpoint to other machines too (all addresses); off:
    /// this computer only.
    #[serde(default)]
    pub endpoint_on_network: bool,
    /// Minutes without requests after which a model the endpoint loaded is
    /// unloaded (a model's own idle time beats it); 0: never.
    #[serde(default = "default_model_idle_minutes")]
    pub model_idle_minutes: u16,
    /// A model that fits whole on the GPU only once others are unloaded: unload
    /// them (`evict`, the default: a model split with the CPU answers several times
    /// slower), or load it partly on the CPU beside them (`split_with_cpu`).
    #[serde(default)]
    pub gpu_shortfall: crate::orchestrator::router::GpuShortfall,
    /// Port of Switchyard's image API.
    #[serde(default = "default_image_port")]
    pub image_port: u16,
    /// Closing the window keeps Switchyard (and its servers) running in the tray.
    #[serde(default = "default_close_to_tray")]
    pub close_to_tray: bool,
    /// Start Switchyard when the user logs in. Off unless the user asks for it.
    #[serde(default)]
    pub autostart: bool,
    /// Light, dark, or follow the system.
    #[serde(default)]
    pub theme: Theme,
    /// Where models are fetched from when added by Hugging Face name: the Hub, or a
    /// mirror that serves the same paths.
    #[serde(default = "default_hub_url")]
    pub hub_url: String,
    /// "Use this llama-server": the user's own build (a distro package, a source
    /// build) instead of a downloaded one. Tested the same way before it is used.
    #[serde(default)]
    #[ts(type = "string | null")]
    pub llama_server_path: Option<PathBuf>,
    /// "Use this sd": the user's own stable-diffusion.cpp CLI (`sd-cli` or `sd`).
    #[serde(default)]
    #[ts(type = "string | null")]
    pub sd_path: Option<PathBuf>,
    /// Where llama.cpp and stable-diffusion.cpp releases are downloaded from: `null`
    /// for GitHub, or a mirror that serves `{repo}/releases/download/{tag}/{file}`.
    #[serde(default)]
    pub binaries_mirror: Option<String>,
    /// Start again, at launch, the llama-server instances that were running when
    /// Switchyard last closed. On by default: closing the app with a server running
    /// is not a decision to stop it (stopping it by hand is, and clears the mark).
    #[serde(default = "default_restore_llm_servers")]
    pub restore_llm_servers: bool,
    /// Offload the LLM for an image when the two together would use more than this
    /// share (percent, 0–100) of the bottleneck: VRAM when a GPU is used, else RAM.
    /// 0 pauses the LLM for every image (nothing measures below it).
    #[serde(default = "default_offload_threshold")]
    pub offload_threshold: u8,
    /// Before the LLM is paused for an image, the answers it is writing get this
    /// many seconds to finish (new requests wait meanwhile); what is left then is
    /// sent again once it is back (a stream under way ends with an error event).
    #[serde(default = "default_drain_seconds")]
    pub drain_seconds: u16,
    /// Generation speed (tokens per second) below which a model counts as too slow
    /// to chat with: the wizard and the System tab recommend the largest model that
    /// fits and still reaches it.
    #[serde(default = "default_usable_tokens_per_second")]
    pub usable_tokens_per_second: u16,
    /// Keep conversations across a pause: before an LLM stops for an image, an
    /// unload or a restart, each slot's KV cache is saved, and read back when the
    /// same model and configuration start again, so the next turn does not read
    /// the whole conversation again. On by default.
    #[serde(default = "default_keep_conversations")]
    pub keep_conversations: bool,
    /// MiB the saved conversations may take on disk (the oldest go first).
    #[serde(default = "default_kv_cache_budget_mib")]
    pub kv_cache_budget_mib: u32,
    /// Web apps (`scheme://host[:port]`) whose pages may use the LLM endpoints and
    /// the image API from the person's browser. Pages of this machine
    /// (`http://localhost:…`) always may; every other page is refused.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// The first-run wizard was finished or skipped; it opens by itself only while
    /// this is false (Settings can open it again).
    #[serde(default)]
    pub first_run_done: bool,
}

fn default_hub_url() -> String {
    crate::models::hub::DEFAULT_HUB_URL.to_owned()
}

fn default_endpoint_port() -> u16 {
    crate::orchestrator::router::DEFAULT_ROUTER_PORT
}
fn default_model_idle_minutes() -> u16 {
    15
}
fn default_image_port() -> u16 {
    8081
}
fn default_close_to_tray() -> bool {
    true
}
fn default_restore_llm_servers() -> bool {
    true
}
fn default_keep_conversations() -> bool {
    true
}
fn default_kv_cache_budget_mib() -> u32 {
    u32::try_from(crate::llama::DEFAULT_SLOT_BUDGET_BYTES >> 20).unwrap_or(u32::MAX)
}
fn default_offload_threshold() -> u8 {
    75
}
fn default_drain_seconds() -> u16 {
    u16::try_from(crate::orchestrator::DEFAULT_DRAIN_MS / 1000).unwrap_or(30)
}

fn default_usable_tokens_per_second() -> u16 {
    10
}

/// The usable speed's range, in tokens per second.
pub const USABLE_TOKENS_PER_SECOND_RANGE: std::ops::RangeInclusive<u16> = 1..=1000;

/// The drain time's range, in seconds: up to ten minutes (an image waits that long
/// at most for the answers under way).
pub const DRAIN_SECONDS_RANGE: std::ops::RangeInclusive<u16> = 0..=600;

/// The offload threshold's range, in percent.
pub const OFFLOAD_THRESHOLD_RANGE: std::ops::RangeInclusive<u8> = 0..=100;

impl Default for Settings {
    fn default() -> Self {
        Self {
            data_dir: None,
            endpoint_port: default_endpoint_port(),
            endpoint_on_network: false,
            model_idle_minutes: default_model_idle_minutes(),
            gpu_shortfall: crate::orchestrator::router::GpuShortfall::default(),
            image_port: default_image_port(),
            close_to_tray: default_close_to_tray(),
            autostart: false,
            theme: Theme::default(),
            hub_url: default_hub_url(),
            llama_server_path: None,
            sd_path: None,
            binaries_mirror: None,
            restore_llm_servers: default_restore_llm_servers(),
            offload_threshold: default_offload_threshold(),
            drain_seconds: default_drain_seconds(),
            usable_tokens_per_second: default_usable_tokens_per_second(),
            keep_conversations: default_keep_conversations(),
            kv_cache_budget_mib: default_kv_cache_budget_mib(),
            allowed_origins: Vec::new(),
            first_run_done: false,
        }
    }
}

/// From 64 MiB (a short conversation of a small model) to 1 TiB.
pub const KV_CACHE_BUDGET_MIB_RANGE: std::ops::RangeInclusive<u32> = 64..=1_048_576;

/// Ports below this need administrator rights on Linux and macOS.
const FIRST_UNPRIVILEGED_PORT: u16 = 1024;

impl Settings {
    /// Reads stored settings. Missing fields take their defaults; a stored value that
    /// no longer parses (hand-edited, or from another version) must not stop the app
    /// from starting, so it yields the defaults and the reason, for a warning.
    pub fn from_stored(value: serde_json::Value) -> (Self, Option<String>) {
        match serde_json::from_value::<Self>(value) {
            Ok(settings) => match settings.validate() {
                Ok(()) => (settings, None),
                Err(error) => (Self::default(), Some(error.to_string())),
            },
            Err(error) => (Self::default(), Some(error.to_string())),
        }
    }

    pub fn validate(&self) -> Result<()> {
        for (field, port) in [
            ("endpoint_port", self.endpoint_port),
            ("image_port", self.image_port),
        ] {
            if port < FIRST_UNPRIVILEGED_PORT {
                return Err(EngineError::InvalidSetting {
                    field,
                    problem: format!(
                        "port {port} is reserved for the system; use one from {FIRST_UNPRIVILEGED_PORT} to 65535"
                    ),
                });
            }
        }
        if self.endpoint_port == self.image_port {
            return Err(EngineError::InvalidSetting {
                field: "image_port",
                problem: format!("port {} is already the LLM port", self.image_port),
            });
        }
        if !(self.hub_url.starts_with("https://") || self.hub_url.starts_with("http://")) {
            return Err(EngineError::InvalidSetting {
                field: "hub_url",
                problem: format!("`{}` is not an http(s) address", self.hub_url),
            });
        }
        if !OFFLOAD_THRESHOLD_RANGE.contains(&self.offload_threshold) {
            return Err(EngineError::InvalidSetting {
                field: "offload_threshold",
                problem: format!(
                    "{} % is outside {} to {} %",
                    self.offload_threshold,
                    OFFLOAD_THRESHOLD_RANGE.start(),
                    OFFLOAD_THRESHOLD_RANGE.end()
                ),
            });
        }
        if !DRAIN_SECONDS_RANGE.contains(&self.drain_seconds) {
            return Err(EngineError::InvalidSetting {
                field: "drain_seconds",
                problem: format!(
                    "{} s is outside {} to {} s",
                    self.drain_seconds,
                    DRAIN_SECONDS_RANGE.start(),
                    DRAIN_SECONDS_RANGE.end()
                ),
            });
        }
        if !USABLE_TOKENS_PER_SECOND_RANGE.contains(&self.usable_tokens_per_second) {
            return Err(EngineError::InvalidSetting {
                field: "usable_tokens_per_second",
                problem: format!(
                    "{} tokens/s is outside {} to {} tokens/s",
                    self.usable_tokens_per_second,
                    USABLE_TOKENS_PER_SECOND_RANGE.start(),
                    USABLE_TOKENS_PER_SECOND_RANGE.end()
                ),
            });
        }
        if !KV_CACHE_BUDGET_MIB_RANGE.contains(&self.kv_cache_budget_mib) {
            return Err(EngineError::InvalidSetting {
                field: "kv_cache_budget_mib",
                problem: format!(
                    "{} MiB is outside {} to {} MiB",
                    self.kv_cache_budget_mib,
                    KV_CACHE_BUDGET_MIB_RANGE.start(),
                    KV_CACHE_BUDGET_MIB_RANGE.end()
                ),
            });
        }
        if let Some(origin) = self
            .allowed_origins
            .iter()
            .find(|origin| !crate::net::guard::is_origin(origin))
        {
            return Err(EngineError::InvalidSetting {
                field: "allowed_origins",
                problem: format!(
                    "`{origin}` is not an origin: write it as the browser shows it, scheme://host[:port], e.g. https://chat.example.org"
                ),
            });
        }
        if let Some(mirror) = &self.binaries_mirror {
            check_http_url("binaries_mirror", mirror)?;
        }
        for (field, path) in [
            ("data_dir", &self.data_dir),
            ("llama_server_path", &self.llama_server_path),
            ("sd_path", &self.sd_path),
        ] {
            if let Some(path) = path {
                check_full_path(field, path)?;
            }
        }
        Ok(())
    }

    /// The user's own executable for `kind`, if Settings name one.
    pub fn custom_binary_path(&self, kind: BinaryKind) -> Option<&Path> {
        match kind {
            BinaryKind::LlamaServer => self.llama_server_path.as_deref(),
            BinaryKind::Diffusion => self.sd_path.as_deref(),
        }
    }
}

/// Only the shape is checked: whether the file exists and works is the binary
/// tests' job, and a missing file (an unmounted drive) must not reset every setting
/// at the next start.
fn check_full_path(field: &'static str, path: &Path) -> Result<()> {
    if path.as_os_str().is_empty() || !path.is_absolute() {
        return Err(EngineError::InvalidSetting {
            field,
            problem: format!("`{}` is not a full path", path.display()),
        });
    }
    Ok(())
}

/// An address downloads can be built on: http or https, with a host.
fn check_http_url(field: &'static str, value: &str) -> Result<()> {
    let invalid = || EngineError::InvalidSetting {
        field,
        problem: format!("`{value}` is not an http(s) address"),
    };
    let url = reqwest::Url::parse(value).map_err(|_| invalid())?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(invalid());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(EngineError::InvalidSetting {
            field,
            problem: format!(
                "`{value}` has a query or fragment; file paths are appended to it, so give the folder address only"
            ),
        });
    }
    Ok(())
}

/// The result of saving settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct SettingsUpdate {
    pub settings: Settings,
    /// Some changes (the data folder) only take effect after Switchyard restarts.
    pub restart_required: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_cover_every_field() {
        // An empty stored object must give exactly the documented defaults, and the
        // defaults must serialize every field (nothing silently skipped).
        let (settings, problem) = Settings::from_stored(json!({}));
        assert_eq!(problem, None);
        assert_eq!(settings, Settings::default());
        let stored = serde_json::to_value(Settings::default()).unwrap();
        // serde_json sorts object keys.
        let fields: Vec<&str> = stored
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            fields,
            [
                "allowed_origins",
                "autostart",
                "binaries_mirror",
                "close_to_tray",
                "data_dir",
                "drain_seconds",
                "endpoint_on_network",
                "endpoint_port",
                "first_run_done",
                "gpu_shortfall",
                "hub_url",
                "image_port",
                "keep_conversations",
                "kv_cache_budget_mib",
                "llama_server_path",
                "model_idle_minutes",
                "offload_threshold",
                "restore_llm_servers",
                "sd_path",
                "theme",
                "usable_tokens_per_second"
            ]
        );
        assert!(settings.close_to_tray);
        assert!(
            settings.restore_llm_servers,
            "servers running at close come back"
        );
        assert!(!settings.autostart, "autostart is off by default");
    }

    #[test]
    fn offload_threshold_is_a_percent_from_0_to_100() {
        let (settings, problem) = Settings::from_stored(json!({"endpoint_port": 9000}));
        assert_eq!(problem, None);
        assert_eq!(
            settings.offload_threshold, 75,
            "old files load with the default"
        );
        for good in [0, 10, 75, 100] {
            let settings = Settings {
                offload_threshold: good,
                ..Settings::default()
            };
            assert!(settings.validate().is_ok(), "{good}");
        }
        for bad in [101, 255] {
            let settings = Settings {
                offload_threshold: bad,
                ..Settings::default()
            };
            let error = settings.validate().unwrap_err().to_string();
            assert!(error.contains("offload_threshold"), "{error}");
        }
    }

    #[test]
    fn the_usable_speed_round_trips_and_is_bounded() {
        let (settings, problem) = Settings::from_stored(json!({"endpoint_port": 9000}));
        assert_eq!(problem, None);
        assert_eq!(
            settings.usable_tokens_per_second, 10,
            "old files load with the default"
        );
        let (settings, problem) = Settings::from_stored(json!({"usable_tokens_per_second": 25}));
        assert_eq!(problem, None);
        assert_eq!(settings.usable_tokens_per_second, 25);
        let stored = serde_json::to_value(&settings).unwrap();
        assert_eq!(stored["usable_tokens_per_second"], 25);
        for bad in [0, 1001] {
            let settings = Settings {
                usable_tokens_per_second: bad,
                ..Settings::default()
            };
            let error = settings.validate().unwrap_err().to_string();
            assert!(error.contains("usable_tokens_per_second"), "{error}");
        }
    }

    #[test]
    fn partial_settings_keep_other_defaults() {
        let (settings, _) = Settings::from_stored(json!({"theme": "dark", "endpoint_port": 9000}));
        assert_eq!(settings.theme, Theme::Dark);
        assert_eq!(settings.endpoint_port, 9000);
        assert_eq!(settings.image_port, 8081);
    }

    #[test]
    fn unreadable_settings_fall_back_to_defaults_with_a_reason() {
        let (settings, problem) = Settings::from_stored(json!({"endpoint_port": "eighty"}));
        assert_eq!(settings, Settings::default());
        assert!(problem.unwrap().contains("invalid type"));
        let (settings, problem) = Settings::from_stored(json!({"endpoint_port": 80}));
        assert_eq!(settings, Settings::default());
        assert!(problem.unwrap().contains("endpoint_port"));
    }

    #[test]
    fn validation_names_the_field() {
        let same_ports = Settings {
            image_port: 8434,
            ..Settings::default()
        };
        let error = same_ports.validate().unwrap_err();
        assert!(matches!(
            error,
            EngineError::InvalidSetting {
                field: "image_port",
                ..
            }
        ));

        let relative = Settings {
            data_dir: Some("models".into()),
            ..Settings::default()
        };
        let error = relative.validate().unwrap_err();
        assert!(matches!(
            error,
            EngineError::InvalidSetting {
                field: "data_dir",
                ..
            }
        ));

        let privileged = Settings {
            endpoint_port: 443,
            ..Settings::default()
        };
        assert!(privileged
            .validate()
            .unwrap_err()
            .to_string()
            .contains("443"));
        assert!(Settings::default().validate().is_ok());
    }

    #[test]
    fn settings_from_before_the_binary_fields_still_load() {
        let (settings, problem) = Settings::from_stored(json!({
            "endpoint_port": 9000, "image_port": 9001, "close_to_tray": false,
            "autostart": false, "theme": "light", "hub_url": "https://huggingface.co",
            "data_dir": null
        }));
        assert_eq!(problem, None);
        assert_eq!(settings.endpoint_port, 9000);
        assert_eq!(settings.llama_server_path, None);
        assert_eq!(settings.sd_path, None);
        assert_eq!(settings.binaries_mirror, None);
        assert!(settings.restore_llm_servers);
    }

    #[test]
    fn restoring_llm_servers_can_be_turned_off_and_must_be_a_boolean() {
        let (settings, problem) = Settings::from_stored(json!({"restore_llm_servers": false}));
        assert_eq!(problem, None);
        assert!(!settings.restore_llm_servers);
        let (settings, problem) = Settings::from_stored(json!({"restore_llm_servers": "yes"}));
        assert!(
            settings.restore_llm_servers,
            "a bad value gives the defaults"
        );
        assert!(problem.unwrap().contains("invalid type"));
    }

    #[test]
    fn custom_binary_paths_must_be_full_paths() {
        for (field, settings) in [
            (
                "llama_server_path",
                Settings {
                    llama_server_path: Some("bin/llama-server".into()),
                    ..Settings::default()
                },
            ),
            (
                "sd_path",
                Settings {
                    sd_path: Some("".into()),
                    ..Settings::default()
                },
            ),
        ] {
            let error = settings.validate().unwrap_err();
            assert!(
                matches!(error, EngineError::InvalidSetting { field: f, .. } if f == field),
                "{error}"
            );
        }
        // A full path is accepted even when nothing is there yet: the binary tests
        // say whether it works.
        let settings = Settings {
            llama_server_path: Some("/opt/llama.cpp/bin/llama-server".into()),
            sd_path: Some("/nowhere/sd-cli".into()),
            ..Settings::default()
        };
        assert!(settings.validate().is_ok());
        assert_eq!(
            settings.custom_binary_path(BinaryKind::LlamaServer),
            Some(Path::new("/opt/llama.cpp/bin/llama-server"))
        );
        assert_eq!(
            settings.custom_binary_path(BinaryKind::Diffusion),
            Some(Path::new("/nowhere/sd-cli"))
        );
    }

    #[test]
    fn the_binaries_mirror_must_be_an_http_address() {
        for good in ["https://mirror.example.org", "http://127.0.0.1:8000/files/"] {
            let settings = Settings {
                binaries_mirror: Some(good.into()),
                ..Settings::default()
            };
            assert!(settings.validate().is_ok(), "{good}");
        }
        for bad in [
            "",
            "mirror.example.org",
            "ftp://mirror.example.org",
            "https://",
            "file:///srv/mirror",
            "https://mirror.example.org/?token=1",
        ] {
            let settings = Settings {
                binaries_mirror: Some(bad.into()),
                ..Settings::default()
            };
            let error = settings.validate().unwrap_err();
            assert!(
                matches!(
                    error,
                    EngineError::InvalidSetting {
                        field: "binaries_mirror",
                        ..
                    }
                ),
                "{bad}: {error}"
            );
        }
    }
}
