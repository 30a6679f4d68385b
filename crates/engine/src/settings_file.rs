//! The settings file, `settings.json` in the config folder, and the one place that
//! knows its layout: the settings are an object under `"settings"` (the layout the
//! app has always written, key by key, so other keys may sit beside it and are
//! kept). The app reads and writes it here, the `switchyard` command reads it here,
//! and a file that cannot be used is reported with the same words to both.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::errors::{EngineError, ErrorReport, Result};
use crate::settings::Settings;

/// The file's name in the config folder.
pub const FILE_NAME: &str = "settings.json";
/// The key the settings live under in the file's object.
pub const KEY: &str = "settings";

pub fn path(config_dir: &Path) -> PathBuf {
    config_dir.join(FILE_NAME)
}

/// What the file held: the settings in it, or why they cannot be used.
enum Stored {
    /// No file, or one without settings in it yet: the defaults.
    Nothing,
    Settings(Settings),
    Unusable(String),
}

fn read(path: &Path) -> Stored {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Stored::Nothing,
        Err(error) => return Stored::Unusable(error.to_string()),
    };
    let mut fields = match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(fields)) => fields,
        Ok(_) => return Stored::Unusable("it is not a JSON object".into()),
        Err(error) => return Stored::Unusable(error.to_string()),
    };
    match fields.remove(KEY) {
        Some(value) => match Settings::from_stored(value) {
            (settings, None) => Stored::Settings(settings),
            (_, Some(problem)) => Stored::Unusable(problem),
        },
        // A file written by hand (a machine without the app) with the fields at
        // the top: say so rather than ignore them without a word.
        None if !fields.is_empty() => Stored::Unusable(format!(
            "the settings belong in a `{KEY}` object: {{\"{KEY}\": {{\"llama_server_path\": …}}}}"
        )),
        None => Stored::Nothing,
    }
}

impl Settings {
    /// The settings saved in `config_dir`, read-only, for front ends that do not
    /// write them (the `switchyard` command). Missing: the defaults; unusable: the
    /// defaults and the reason, naming the file.
    pub fn read_saved(config_dir: &Path) -> (Self, Option<String>) {
        let path = path(config_dir);
        match read(&path) {
            Stored::Nothing => (Self::default(), None),
            Stored::Settings(settings) => (settings, None),
            Stored::Unusable(problem) => (
                Self::default(),
                Some(format!("{}: {problem}", path.display())),
            ),
        }
    }
}

/// The settings the app starts with. A file that cannot be used never stops the
/// app and is never lost: it is copied to `settings.json.damaged` (before the next
/// save replaces it), the defaults are used, and the report says so.
pub fn load(config_dir: &Path) -> (Settings, Option<ErrorReport>) {
    // A save cut short before its rename: the file it was to replace still holds.
    let _ = std::fs::remove_file(staging_path(config_dir));
    let path = path(config_dir);
    match read(&path) {
        Stored::Nothing => (Settings::default(), None),
        Stored::Settings(settings) => (settings, None),
        Stored::Unusable(problem) => {
            let kept = path.with_extension("json.damaged");
            let kept = std::fs::copy(&path, &kept).map(|_| kept).unwrap_or(path);
            let report = EngineError::CorruptState {
                path: kept,
                problem: format!("{problem}. Switchyard started with default settings"),
            }
            .report();
            (Settings::default(), Some(report))
        }
    }
}

/// Where the app's store (tauri-plugin-store) writes a save: the plugin writes its
/// file in place, so it writes here and [`commit_staged`] renames the whole file over
/// `settings.json`. A save is then whole or not at all, as with [`save`].
pub fn staging_path(config_dir: &Path) -> PathBuf {
    config_dir.join(format!("{FILE_NAME}.saving"))
}

/// The file's object as it is now (empty when missing or damaged): a store that
/// starts empty takes these first, so the keys beside the settings are kept.
pub fn stored_object(config_dir: &Path) -> Map<String, Value> {
    match std::fs::read(path(config_dir))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
    {
        Some(Value::Object(fields)) => fields,
        // Nothing yet, or a damaged file `load` kept a copy of.
        _ => Map::new(),
    }
}

/// Makes the save staged at [`staging_path`] the settings file (0600: it may hold a
/// Hub token). Refuses one whose settings do not read back, so a bad store write
/// never replaces good settings.
pub fn commit_staged(config_dir: &Path) -> Result<()> {
    let staged = staging_path(config_dir);
    if let Stored::Unusable(problem) = read(&staged) {
        let _ = std::fs::remove_file(&staged);
        return Err(EngineError::Internal {
            problem: format!("the settings written by the store do not read back: {problem}"),
        });
    }
    crate::fs_atomic::replace_with_private(&staged, &path(config_dir))
        .map_err(|source| EngineError::writing(&path(config_dir), source))
}

/// Writes `settings` into the file, whole or not at all (temporary file, rename),
/// keeping any other key of its object. Does not validate: the caller has.
pub fn save(config_dir: &Path, settings: &Settings) -> Result<()> {
    let path = path(config_dir);
    let mut fields = stored_object(config_dir);
    let value = serde_json::to_value(settings).map_err(|error| EngineError::Internal {
        problem: format!("settings do not serialize: {error}"),
    })?;
    fields.insert(KEY.to_owned(), value);
    std::fs::create_dir_all(config_dir)
        .and_then(|()| crate::fs_atomic::write_json_private(&path, &fields))
        .map_err(|source| EngineError::writing(&path, source))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errors::ErrorCode;
    use crate::settings::Theme;

    #[test]
    fn what_is_saved_is_what_is_read_under_the_settings_key() {
        let dir = tempfile::tempdir().unwrap_or_else(|error| panic!("{error}"));
        let config = dir.path().join("config");
        let settings = Settings {
            theme: Theme::Dark,
            llama_server_path: Some("/opt/llama-server".into()),
            first_run_done: true,
            ..Settings::default()
        };
        save(&config, &settings).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(Settings::read_saved(&config), (settings.clone(), None));
        assert_eq!(load(&config), (settings.clone(), None));

        let text = std::fs::read_to_string(path(&config)).unwrap_or_default();
        let file: Value = serde_json::from_str(&text).unwrap_or_default();
        assert_eq!(file[KEY]["theme"], "dark", "{text}");
    }

    #[test]
    fn a_save_keeps_the_files_other_keys() {
        let dir = tempfile::tempdir().unwrap_or_else(|error| panic!("{error}"));
        std::fs::write(
            path(dir.path()),
            r#"{"window": {"width": 900}, "settings": {}}"#,
        )
        .unwrap_or_else(|error| panic!("{error}"));
        save(dir.path(), &Settings::default()).unwrap_or_else(|error| panic!("{error}"));
        let text = std::fs::read_to_string(path(dir.path())).unwrap_or_default();
        let file: Value = serde_json::from_str(&text).unwrap_or_default();
        assert_eq!(file["window"]["width"], 900);
        assert_eq!(file[KEY]["endpoint_port"], 8434);
    }

    #[test]
    fn a_staged_save_replaces_the_file_whole_and_private_and_a_bad_one_is_refused() {
        let dir = tempfile::tempdir().unwrap_or_else(|error| panic!("{error}"));
        let config = dir.path();
        save(config, &Settings::default()).unwrap_or_else(|error| panic!("{error}"));
        let before = std::fs::read_to_string(path(config)).unwrap_or_default();

        std::fs::write(staging_path(config), r#"{"settings": {"endpoint_port": "#)
            .unwrap_or_else(|error| panic!("{error}"));
        let error = commit_staged(config).err();
        assert!(error.is_some(), "a torn store write is refused");
        assert_eq!(
            std::fs::read_to_string(path(config)).unwrap_or_default(),
            before
        );
        assert!(!staging_path(config).exists());

        let mut fields = stored_object(config);
        fields.insert(KEY.into(), serde_json::json!({"theme": "dark"}));
        let text = serde_json::to_string(&fields).unwrap_or_default();
        std::fs::write(staging_path(config), text).unwrap_or_else(|error| panic!("{error}"));
        commit_staged(config).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(load(config).0.theme, Theme::Dark);
        assert!(!staging_path(config).exists());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(path(config)).map(|m| m.permissions().mode());
            assert_eq!(mode.unwrap_or(0) & 0o777, 0o600);
        }
    }

    #[test]
    fn saved_settings_are_read_from_the_settings_object_and_a_flat_file_is_named() {
        let dir = tempfile::tempdir().unwrap_or_else(|error| panic!("{error}"));
        let file = path(dir.path());
        let write = |text: &str| std::fs::write(&file, text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            Settings::read_saved(dir.path()),
            (Settings::default(), None)
        );

        write(r#"{"settings": {"llama_server_path": "/opt/llama-server"}}"#);
        let (settings, problem) = Settings::read_saved(dir.path());
        assert_eq!(problem, None);
        assert_eq!(
            settings.llama_server_path.as_deref(),
            Some(Path::new("/opt/llama-server"))
        );

        write(r#"{"llama_server_path": "/opt/llama-server"}"#);
        let (settings, problem) = Settings::read_saved(dir.path());
        assert_eq!(settings, Settings::default());
        let problem = problem.unwrap_or_default();
        assert!(problem.contains("`settings` object"), "{problem}");
        assert!(problem.contains(FILE_NAME), "the file is named: {problem}");

        write("[1, 2]");
        let (_, problem) = Settings::read_saved(dir.path());
        assert!(problem.unwrap_or_default().contains("not a JSON object"));

        write("{}");
        assert_eq!(
            Settings::read_saved(dir.path()),
            (Settings::default(), None)
        );
    }

    #[test]
    fn a_damaged_file_is_kept_byte_for_byte_and_reported_at_start() {
        let dir = tempfile::tempdir().unwrap_or_else(|error| panic!("{error}"));
        let damaged = r#"{"settings": {"theme": "dark", "endpoint_port": "#;
        std::fs::write(path(dir.path()), damaged).unwrap_or_else(|error| panic!("{error}"));
        let (settings, report) = load(dir.path());
        assert_eq!(settings, Settings::default());
        let report = report.unwrap_or_else(|| panic!("a damaged file is reported"));
        assert_eq!(report.code, ErrorCode::CorruptState);
        assert!(
            report.message.contains("settings.json.damaged"),
            "{}",
            report.message
        );
        assert!(
            report.message.contains("default settings"),
            "{}",
            report.message
        );
        let kept = dir.path().join("settings.json.damaged");
        assert_eq!(std::fs::read_to_string(kept).unwrap_or_default(), damaged);

        // A value that no longer validates is reported the same way.
        std::fs::write(path(dir.path()), r#"{"settings": {"endpoint_port": 80}}"#)
            .unwrap_or_else(|error| panic!("{error}"));
        let (_, report) = load(dir.path());
        assert!(report.is_some_and(|report| report.message.contains("endpoint_port")));

        // The next save replaces the damaged file with a whole one.
        save(dir.path(), &Settings::default()).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(load(dir.path()), (Settings::default(), None));
    }
}
