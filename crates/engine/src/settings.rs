//! User settings: checked-in defaults plus the user's overrides, validated here so
//! every front end (window, CLI) refuses the same bad values with the same words.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use ts_rs::TS;

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
    /// Port of the stable LLM endpoint that other programs call.
    #[serde(default = "default_llm_port")]
    pub llm_port: u16,
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
}

fn default_hub_url() -> String {
    crate::models::hub::DEFAULT_HUB_URL.to_owned()
}

fn default_llm_port() -> u16 {
    8080
}
fn default_image_port() -> u16 {
    8081
}
fn default_close_to_tray() -> bool {
    true
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            data_dir: None,
            llm_port: default_llm_port(),
            image_port: default_image_port(),
            close_to_tray: default_close_to_tray(),
            autostart: false,
            theme: Theme::default(),
            hub_url: default_hub_url(),
        }
    }
}

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
        for (field, port) in [("llm_port", self.llm_port), ("image_port", self.image_port)] {
            if port < FIRST_UNPRIVILEGED_PORT {
                return Err(EngineError::InvalidSetting {
                    field,
                    problem: format!(
                        "port {port} is reserved for the system; use one from {FIRST_UNPRIVILEGED_PORT} to 65535"
                    ),
                });
            }
        }
        if self.llm_port == self.image_port {
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
        if let Some(dir) = &self.data_dir {
            if !dir.is_absolute() {
                return Err(EngineError::InvalidSetting {
                    field: "data_dir",
                    problem: format!("{} is not a full path", dir.display()),
                });
            }
        }
        Ok(())
    }
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
                "autostart",
                "close_to_tray",
                "data_dir",
                "hub_url",
                "image_port",
                "llm_port",
                "theme"
            ]
        );
        assert!(settings.close_to_tray);
        assert!(!settings.autostart, "autostart is off by default");
    }

    #[test]
    fn partial_settings_keep_other_defaults() {
        let (settings, _) = Settings::from_stored(json!({"theme": "dark", "llm_port": 9000}));
        assert_eq!(settings.theme, Theme::Dark);
        assert_eq!(settings.llm_port, 9000);
        assert_eq!(settings.image_port, 8081);
    }

    #[test]
    fn unreadable_settings_fall_back_to_defaults_with_a_reason() {
        let (settings, problem) = Settings::from_stored(json!({"llm_port": "eighty"}));
        assert_eq!(settings, Settings::default());
        assert!(problem.unwrap().contains("invalid type"));
        let (settings, problem) = Settings::from_stored(json!({"llm_port": 80}));
        assert_eq!(settings, Settings::default());
        assert!(problem.unwrap().contains("llm_port"));
    }

    #[test]
    fn validation_names_the_field() {
        let same_ports = Settings {
            image_port: 8080,
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
            llm_port: 443,
            ..Settings::default()
        };
        assert!(privileged
            .validate()
            .unwrap_err()
            .to_string()
            .contains("443"));
        assert!(Settings::default().validate().is_ok());
    }
}
