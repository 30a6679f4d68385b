//! Instance files: one TOML file per llama-server instance in
//! `<config>/instances/NAME.toml`, for people who run Switchyard without a window
//! (the `switchyard` command and its daemon). Each maps to an [`InstanceSpec`];
//! every problem names the file, the field's path (`llama.port`) and what is wrong
//! (`INVALID_INSTANCE_FILE`).
//!
//! ```toml
//! model = "/srv/models/qwen3-8b-q4_k_m.gguf"   # or: model_id = "qwen3-8b"
//! autostart = true                              # the daemon starts it
//! pinned = true           # the router never unloads it
//! idle_unload_secs = 600  # unloaded after 10 idle minutes when the router loaded it
//!
//! [llama]
//! port = 8080          # llama-server's own; omitted: a free port at each start
//! endpoint_port = 8081 # the stable endpoint clients use; omitted: chosen once
//! context = 8192       # omitted: fitted to the model and the machine
//! gpu_layers = 99      # omitted: fitted to free VRAM
//! threads = 8
//! extra_args = ["--temp", "0.6"]
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::{DraftSpec, InstanceSpec, ModelRole, ReasoningChoice};
use switchyard_base::errors::{EngineError, Result};
use switchyard_estimate::{CacheType, FlashAttention};

/// The folder of instance files inside the config folder.
pub fn instances_dir(config_dir: &Path) -> PathBuf {
    config_dir.join("instances")
}

const EXTENSION: &str = "toml";

/// The file that configures instance `name` in `instances_dir`.
pub fn file_of(instances_dir: &Path, name: &str) -> PathBuf {
    instances_dir.join(format!("{name}.{EXTENSION}"))
}
/// Ports below this need administrator rights on Linux and macOS.
const FIRST_UNPRIVILEGED_PORT: u16 = 1024;
const CONTEXT_RANGE: (u32, u32) = (128, 4 * 1024 * 1024);
const PARALLEL_RANGE: (u32, u32) = (1, 256);
const THREADS_RANGE: (u32, u32) = (1, 1024);
const BATCH_RANGE: (u32, u32) = (1, 1024 * 1024);
const GPU_LAYERS_MAX: u32 = 10_000;

/// An instance file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileContents {
    /// The GGUF file (relative paths start at the instance file's folder).
    model: Option<PathBuf>,
    /// Or an installed model of the store, by id.
    model_id: Option<String>,
    /// A multimodal projector beside the model.
    mmproj: Option<PathBuf>,
    /// The daemon starts this instance when it starts.
    #[serde(default)]
    autostart: bool,
    /// The router never unloads it (to make room or when idle).
    #[serde(default)]
    pinned: bool,
    /// Seconds without requests before the router unloads it (0: never).
    idle_unload_secs: Option<u64>,
    #[serde(default)]
    llama: LlamaSection,
    /// `[draft]`: speculative decoding with a smaller model of the same vocabulary.
    draft: Option<DraftSection>,
    /// `chat`, `embedding` or `reranking`; omitted: from the model's metadata.
    role: Option<ModelRole>,
}

/// `[draft]`: the draft model and how many tokens it drafts.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DraftSection {
    /// The draft's GGUF file (relative paths start at the instance file's folder).
    model: PathBuf,
    max_tokens: Option<u32>,
    min_tokens: Option<u32>,
}

/// `[llama]`: how llama-server runs. Omitted fields take the engine's defaults.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LlamaSection {
    port: Option<u16>,
    /// The stable endpoint clients use (held while the server pauses).
    endpoint_port: Option<u16>,
    host: Option<String>,
    context: Option<u32>,
    gpu_layers: Option<u32>,
    parallel: Option<u32>,
    threads: Option<u32>,
    batch: Option<u32>,
    ubatch: Option<u32>,
    cache_type_k: Option<CacheType>,
    cache_type_v: Option<CacheType>,
    flash_attention: Option<FlashAttention>,
    kv_unified: Option<bool>,
    cpu_moe_layers: Option<u32>,
    swa_full: Option<bool>,
    context_checkpoints: Option<u32>,
    prompt_cache_mib: Option<u32>,
    api_key: Option<String>,
    reasoning: Option<ReasoningChoice>,
    #[serde(default)]
    extra_args: Vec<String>,
}

/// One valid instance file.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceFile {
    pub path: PathBuf,
    pub spec: InstanceSpec,
    pub autostart: bool,
}

/// What a folder of instance files holds: the valid ones, and a problem for each
/// of the others (`INVALID_INSTANCE_FILE`, or `FILE_UNREADABLE`).
#[derive(Debug, Default)]
pub struct InstanceFiles {
    pub files: Vec<InstanceFile>,
    pub problems: Vec<EngineError>,
}

fn problem(file: &Path, field: &str, problem: impl Into<String>) -> EngineError {
    EngineError::InvalidInstanceFile {
        file: file.to_path_buf(),
        field: field.to_owned(),
        problem: problem.into(),
    }
}

/// Reads every `*.toml` in `dir` (a missing folder holds none). `resolve_model_id`
/// fills the model paths of a spec that names an installed model (the engine's
/// store); its error is reported on the file's `model_id`. Ports fixed by two
/// files are reported on the second (by name).
pub fn load_dir(
    dir: &Path,
    resolve_model_id: &dyn Fn(InstanceSpec) -> Result<InstanceSpec>,
) -> InstanceFiles {
    let mut loaded = InstanceFiles::default();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return loaded,
        Err(source) => {
            loaded.problems.push(EngineError::FileUnreadable {
                path: dir.to_path_buf(),
                source,
            });
            return loaded;
        }
    };
    let mut paths: Vec<PathBuf> = entries
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == EXTENSION))
        .collect();
    paths.sort();
    let mut ports: BTreeMap<u16, PathBuf> = BTreeMap::new();
    for path in paths {
        let read = std::fs::read_to_string(&path)
            .map_err(|source| EngineError::FileUnreadable {
                path: path.clone(),
                source,
            })
            .and_then(|text| parse(&path, &text))
            .and_then(|file| resolve(file, resolve_model_id));
        let file = match read {
            Ok(file) => file,
            Err(error) => {
                loaded.problems.push(error);
                continue;
            }
        };
        // A server's port and its stable endpoint's are one namespace.
        let fixed = [
            ("llama.port", file.spec.port),
            ("llama.endpoint_port", file.spec.endpoint_port),
        ];
        let taken = fixed.iter().find_map(|(field, port)| {
            let port = (*port)?;
            ports.get(&port).map(|first| (*field, port, first.clone()))
        });
        if let Some((field, port, first)) = taken {
            loaded.problems.push(problem(
                &path,
                field,
                format!("port {port} is also fixed by {}", first.display()),
            ));
            continue;
        }
        for port in fixed.iter().filter_map(|(_, port)| *port) {
            ports.insert(port, path.clone());
        }
        loaded.files.push(file);
    }
    loaded
}

/// The model paths from the store, and the model file's existence.
fn resolve(
    mut file: InstanceFile,
    resolve_model_id: &dyn Fn(InstanceSpec) -> Result<InstanceSpec>,
) -> Result<InstanceFile> {
    if file.spec.model_id.is_some() {
        file.spec = resolve_model_id(file.spec)
            .map_err(|error| problem(&file.path, "model_id", error.to_string()))?;
    } else if !file.spec.model_path.is_file() {
        return Err(problem(
            &file.path,
            "model",
            format!("no file at {}", file.spec.model_path.display()),
        ));
    }
    Ok(file)
}

/// One instance file's text, checked field by field (the model file's existence
/// and the store are checked by [`load_dir`]). The instance's name is the file's.
pub fn parse(path: &Path, text: &str) -> Result<InstanceFile> {
    let contents = deserialize(path, text)?;
    let name = path
        .file_stem()
        .map(|stem| stem.to_string_lossy().into_owned())
        .unwrap_or_default();
    let folder = path.parent().unwrap_or_else(|| Path::new("."));
    let model_path = match (&contents.model, &contents.model_id) {
        (Some(model), None) => folder.join(model),
        (None, Some(_)) => PathBuf::new(),
        (Some(_), Some(_)) => {
            return Err(problem(
                path,
                "model",
                "set either `model` (a file) or `model_id` (an installed model), not both",
            ))
        }
        (None, None) => {
            return Err(problem(
                path,
                "model",
                "missing: set `model` (a GGUF file) or `model_id` (an installed model)",
            ))
        }
    };
    check_ranges(path, &contents.llama)?;
    let llama = contents.llama;
    let mut spec = InstanceSpec {
        name,
        model_path,
        model_id: contents.model_id,
        mmproj_path: contents.mmproj.map(|mmproj| folder.join(mmproj)),
        port: llama.port,
        endpoint_port: llama.endpoint_port,
        threads: llama.threads,
        api_key: llama.api_key,
        extra_args: llama.extra_args,
        pinned: contents.pinned,
        idle_unload_secs: contents.idle_unload_secs,
        role: contents.role.unwrap_or_default(),
        draft: contents.draft.map(|draft| DraftSpec {
            model_path: folder.join(draft.model),
            model_id: None,
            max_tokens: draft.max_tokens,
            min_tokens: draft.min_tokens,
        }),
        ..InstanceSpec::default()
    };
    if let Some(host) = llama.host {
        spec.host = host;
    }
    if let Some(reasoning) = llama.reasoning {
        spec.reasoning = reasoning;
    }
    // Omitted: fitted at each start, as the window's defaults are.
    spec.auto.context = llama.context.is_none();
    spec.config.context = llama.context.unwrap_or(0);
    spec.auto.gpu_layers = llama.gpu_layers.is_none();
    spec.config.gpu_layers = llama.gpu_layers.unwrap_or(0);
    let config = &mut spec.config;
    config.parallel = llama.parallel.unwrap_or(config.parallel);
    config.batch = llama.batch.unwrap_or(config.batch);
    config.ubatch = llama.ubatch.unwrap_or(config.ubatch);
    config.cache_type_k = llama.cache_type_k.unwrap_or(config.cache_type_k);
    config.cache_type_v = llama.cache_type_v.unwrap_or(config.cache_type_v);
    config.flash_attention = llama.flash_attention.unwrap_or(config.flash_attention);
    config.kv_unified = llama.kv_unified.unwrap_or(config.kv_unified);
    config.cpu_moe_layers = llama.cpu_moe_layers.unwrap_or(config.cpu_moe_layers);
    config.swa_full = llama.swa_full.unwrap_or(config.swa_full);
    config.context_checkpoints = llama
        .context_checkpoints
        .unwrap_or(config.context_checkpoints);
    config.prompt_cache_mib = llama.prompt_cache_mib.unwrap_or(config.prompt_cache_mib);
    // A `model_id`'s path comes from the store later (`load_dir`); every other
    // field is checked now.
    let mut checked = spec.clone();
    if checked.model_id.is_some() {
        checked.model_path = PathBuf::from("(from the store)");
    }
    checked.validate().map_err(|error| match error {
        EngineError::InvalidInput {
            field,
            problem: why,
        } => problem(path, &file_field(field), why),
        other => other,
    })?;
    Ok(InstanceFile {
        path: path.to_path_buf(),
        spec,
        autostart: contents.autostart,
    })
}

/// The "field" of a problem with the file as a whole (its TOML syntax).
/// The field name that stands for the whole file in a `CorruptState` error.
pub(crate) use switchyard_base::errors::WHOLE_FILE;

/// TOML into [`FileContents`], with the failing field's path (`llama.port`).
fn deserialize(path: &Path, text: &str) -> Result<FileContents> {
    let syntax = |error: toml::de::Error| {
        let line = error
            .span()
            .and_then(|span| text.get(..span.start))
            .map(|before| before.lines().count().max(1));
        let at = line
            .map(|line| format!(" (line {line})"))
            .unwrap_or_default();
        problem(
            path,
            WHOLE_FILE,
            format!("not valid TOML{at}: {}", error.message().trim()),
        )
    };
    let deserializer = toml::de::Deserializer::parse(text).map_err(syntax)?;
    // The path ends at the failing key, an unknown one included (`llama.prot`).
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let field = error.path().to_string();
        problem(path, &field, error.inner().message().trim())
    })
}

fn check_ranges(path: &Path, llama: &LlamaSection) -> Result<()> {
    let in_range = |field: &str, value: Option<u32>, (low, high): (u32, u32)| match value {
        Some(value) if value < low || value > high => Err(problem(
            path,
            field,
            format!("{value} is out of range: use {low} to {high}"),
        )),
        _ => Ok(()),
    };
    for (field, port) in [
        ("llama.port", llama.port),
        ("llama.endpoint_port", llama.endpoint_port),
    ] {
        if let Some(port) = port.filter(|port| *port < FIRST_UNPRIVILEGED_PORT) {
            return Err(problem(
                path,
                field,
                format!(
                    "{port} needs administrator rights: use {FIRST_UNPRIVILEGED_PORT} to 65535, or omit it for a free port"
                ),
            ));
        }
    }
    in_range("llama.context", llama.context, CONTEXT_RANGE)?;
    in_range("llama.parallel", llama.parallel, PARALLEL_RANGE)?;
    in_range("llama.threads", llama.threads, THREADS_RANGE)?;
    in_range("llama.batch", llama.batch, BATCH_RANGE)?;
    in_range("llama.ubatch", llama.ubatch, BATCH_RANGE)?;
    in_range("llama.gpu_layers", llama.gpu_layers, (0, GPU_LAYERS_MAX))?;
    if let (Some(batch), Some(ubatch)) = (llama.batch, llama.ubatch) {
        if ubatch > batch {
            return Err(problem(
                path,
                "llama.ubatch",
                format!("{ubatch} is larger than `llama.batch` ({batch})"),
            ));
        }
    }
    Ok(())
}

/// Where an [`InstanceSpec`] field lives in an instance file.
fn file_field(spec_field: &str) -> String {
    match spec_field {
        "name" => "(file name)".to_owned(),
        "model_path" => "model".to_owned(),
        "model_id" | "mmproj_path" => spec_field.replace("_path", ""),
        "draft" => "draft".to_owned(),
        other => format!("llama.{other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_text(text: &str) -> Result<InstanceFile> {
        parse(Path::new("/etc/switchyard/instances/chat.toml"), text)
    }

    fn field_of(error: EngineError) -> String {
        match error {
            EngineError::InvalidInstanceFile { field, .. } => field,
            other => panic!("not an instance file problem: {other}"),
        }
    }

    #[test]
    fn a_full_file_maps_to_the_spec() {
        let file = parse_text(
            r#"
            model = "models/tiny.gguf"
            autostart = true
            [llama]
            port = 8090
            context = 2048
            threads = 2
            parallel = 1
            flash_attention = "off"
            extra_args = ["--temp", "0.2"]
            "#,
        )
        .unwrap();
        assert!(file.autostart);
        let spec = file.spec;
        assert_eq!(spec.name, "chat");
        assert_eq!(
            spec.model_path,
            PathBuf::from("/etc/switchyard/instances/models/tiny.gguf")
        );
        assert_eq!(spec.port, Some(8090));
        assert_eq!(spec.config.context, 2048);
        assert!(!spec.auto.context);
        assert!(spec.auto.gpu_layers, "omitted GPU layers are fitted");
        assert_eq!(spec.config.flash_attention, FlashAttention::Off);
        assert_eq!(spec.threads, Some(2));
    }

    #[test]
    fn a_draft_section_gives_speculative_decoding_and_its_problems_name_it() {
        let spec = parse_text(
            r#"
            model = "big.gguf"
            [draft]
            model = "small.gguf"
            max_tokens = 8
            "#,
        )
        .unwrap()
        .spec;
        let draft = spec.draft.unwrap();
        assert_eq!(
            draft.model_path,
            PathBuf::from("/etc/switchyard/instances/small.gguf")
        );
        assert_eq!((draft.max_tokens, draft.min_tokens), (Some(8), None));
        assert_eq!(spec.role, ModelRole::Auto, "omitted: from the model");
        let embedder = parse_text("model = \"e.gguf\"\nrole = \"embedding\"\n").unwrap();
        assert_eq!(embedder.spec.role, ModelRole::Embedding);
        let refused = parse_text(
            "model = \"big.gguf\"\n[draft]\nmodel = \"small.gguf\"\nmax_tokens = 2\nmin_tokens = 3\n",
        )
        .unwrap_err();
        assert_eq!(field_of(refused), "draft");
    }

    #[test]
    fn omitted_fields_take_the_engines_defaults() {
        let spec = parse_text("model_id = \"qwen\"").unwrap().spec;
        assert_eq!(spec.port, None);
        assert!(spec.auto.context && spec.auto.gpu_layers);
        assert_eq!(spec.host, crate::LOOPBACK);
    }

    #[test]
    fn every_problem_names_its_field() {
        let cases = [
            ("model = \"m.gguf\"\n[llama]\nprot = 8080", "llama.prot"),
            ("model = \"m.gguf\"\n[llama]\nport = 70000", "llama.port"),
            ("model = \"m.gguf\"\n[llama]\nport = 80", "llama.port"),
            ("model = \"m.gguf\"\n[llama]\nport = \"x\"", "llama.port"),
            ("model = \"m.gguf\"\n[llama]\ncontext = 16", "llama.context"),
            ("model = \"m.gguf\"\n[llama]\nthreads = 0", "llama.threads"),
            (
                "model = \"m.gguf\"\n[llama]\nbatch = 64\nubatch = 128",
                "llama.ubatch",
            ),
            (
                "model = \"m.gguf\"\n[llama]\nextra_args = [\"--port\", \"1\"]",
                "llama.extra_args",
            ),
            ("model = \"m.gguf\"\n[llama]\nhost = \"\"", "llama.host"),
            (
                "model = \"m.gguf\"\n[llama]\nflash_attention = \"maybe\"",
                "llama.flash_attention",
            ),
            ("[llama]\nport = 8080", "model"),
            ("model = \"m.gguf\"\nmodel_id = \"m\"", "model"),
            ("model = \"m.gguf\"\ncolour = 1", "colour"),
            ("model = ", "(file)"),
            ("model = \"é\"\n[llama]\nport = é", "(file)"),
        ];
        for (text, field) in cases {
            let error = parse_text(text).unwrap_err();
            assert_eq!(
                error.code(),
                switchyard_base::errors::ErrorCode::InvalidInstanceFile
            );
            let message = error.to_string();
            assert!(message.contains("chat.toml"), "{message}");
            let suggestion = error.suggestion();
            let names_what = if field == WHOLE_FILE {
                "TOML syntax".to_owned()
            } else {
                format!("`{field}`")
            };
            assert!(suggestion.contains(&names_what), "{suggestion}");
            assert_eq!(field_of(error), field, "{text}");
        }
    }

    proptest::proptest! {
        /// Whatever a person (or a broken editor) writes, the answer is a value or
        /// a problem, never a panic.
        #[test]
        fn any_text_parses_or_names_a_problem(text in "(model|llama|port|\\[|\\]|=|\"|[a-z0-9 .\n é])*") {
            let _ = parse_text(&text);
        }
    }

    #[test]
    fn unknown_keys_are_named_in_the_message() {
        let error = parse_text("model = \"m.gguf\"\n[llama]\nprot = 8080").unwrap_err();
        assert!(
            error.to_string().contains("unknown field `prot`"),
            "{error}"
        );
    }

    #[test]
    fn a_folder_reports_port_collisions_and_missing_models() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("tiny.gguf"), b"GGUF").unwrap();
        let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
        write("a.toml", "model = \"tiny.gguf\"\n[llama]\nport = 8100");
        write("b.toml", "model = \"tiny.gguf\"\n[llama]\nport = 8100");
        write("c.toml", "model = \"gone.gguf\"");
        write("d.toml", "model_id = \"not-installed\"");
        write(
            "e.toml",
            "model = \"tiny.gguf\"\n[llama]\nendpoint_port = 8100",
        );
        write("notes.txt", "not an instance");
        let loaded = load_dir(dir.path(), &|_| {
            Err(EngineError::InvalidInput {
                field: "model_id",
                problem: "no installed model `not-installed`".into(),
            })
        });
        let names: Vec<_> = loaded.files.iter().map(|f| f.spec.name.as_str()).collect();
        assert_eq!(names, ["a"]);
        let problems: Vec<String> = loaded.problems.iter().map(ToString::to_string).collect();
        assert_eq!(problems.len(), 4, "{problems:#?}");
        assert!(problems[0].contains("b.toml: `llama.port`: port 8100 is also fixed by"));
        assert!(problems[1].contains("c.toml: `model`: no file at"));
        assert!(problems[2].contains("d.toml: `model_id`:"), "{problems:#?}");
        assert!(problems[2].contains("not-installed"));
        assert!(problems[3].contains("e.toml: `llama.endpoint_port`: port 8100 is also fixed by"));
    }
}
