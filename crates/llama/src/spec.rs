//! What a person configures for a llama-server instance.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use switchyard_base::errors::{EngineError, Result};
use switchyard_estimate::{AutoFields, LlamaConfig};

/// The address llama-server listens on unless the person opts in to another.
pub const LOOPBACK: &str = "127.0.0.1";

/// Flags Switchyard sets itself; extra arguments may not repeat them, or the
/// recorded configuration and the health checks would talk about another server.
const MANAGED_FLAGS: [&str; 10] = [
    "-m",
    "--model",
    "--port",
    "--host",
    "--api-key",
    "--api-key-file",
    "--log-file",
    "-md",
    "--model-draft",
    "--spec-draft-model",
];

/// What a server is for: chat (completions), embeddings, or reranking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS, Default)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum ModelRole {
    /// From the model's metadata: a pooling type makes an embedding model, rank
    /// pooling a reranker; anything else chats.
    #[default]
    Auto,
    Chat,
    /// `--embeddings`: `/v1/embeddings`, and no chat.
    Embedding,
    /// `--reranking`: `/v1/rerank`.
    Reranking,
}

/// Speculative decoding: a small model of the same vocabulary drafts tokens that
/// the instance's model checks in one pass, so it writes several tokens for the
/// price of about one when the draft guesses right (`--spec-draft-model`, `-md`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, Default)]
#[serde(default)]
#[ts(export)]
pub struct DraftSpec {
    /// The draft's GGUF file.
    #[ts(type = "string")]
    pub model_path: PathBuf,
    /// The catalog id, when it came from the store.
    pub model_id: Option<String>,
    /// Tokens drafted per step (`--spec-draft-n-max`); `null`: llama-server's default.
    pub max_tokens: Option<u32>,
    /// The fewest drafted tokens worth checking (`--spec-draft-n-min`); `null`:
    /// llama-server's default.
    pub min_tokens: Option<u32>,
}

/// Whether llama-server separates the model's thinking from its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS, Default)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum ReasoningChoice {
    /// Decided from the model's metadata and chat template.
    #[default]
    Auto,
    /// Always pass the reasoning flags.
    On,
    /// Never pass them: thoughts, if any, stay in the answer text.
    Off,
}

/// One named llama-server: its model, where it listens and how it runs.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(default)]
#[ts(export)]
pub struct InstanceSpec {
    /// Unique; also the folder name of its logs (letters, digits, `-`, `_`, `.`).
    pub name: String,
    /// The GGUF file to load.
    #[ts(type = "string")]
    pub model_path: PathBuf,
    /// The catalog id, when the model came from the store (keys measurements).
    pub model_id: Option<String>,
    /// A multimodal projector loaded beside the model (`--mmproj`).
    #[ts(type = "string | null")]
    pub mmproj_path: Option<PathBuf>,
    /// llama-server's own port: fixed, or `null` for a free one chosen at each start.
    pub port: Option<u16>,
    /// The stable endpoint's port, where clients connect (a proxy that holds their
    /// requests while the server is paused for an image): fixed, or `null` for a
    /// free one chosen at the first start and kept from then on.
    pub endpoint_port: Option<u16>,
    /// Context, GPU layers, slots, batches, cache types, flash attention.
    pub config: LlamaConfig,
    /// The settings left to Switchyard: fitted to free memory at each start.
    pub auto: AutoFields,
    /// `-t`; `null` lets llama-server choose.
    pub threads: Option<u32>,
    /// The listening address; anything but loopback is the person's explicit opt-in
    /// to serve other machines.
    pub host: String,
    /// Required from clients when set.
    pub api_key: Option<String>,
    pub reasoning: ReasoningChoice,
    /// Appended after Switchyard's own arguments.
    pub extra_args: Vec<String>,
    /// The router never unloads it: not to make room, not when idle.
    pub pinned: bool,
    /// Seconds without requests after which the router unloads it when the router
    /// loaded it; `null`: the router's default (15 minutes); 0: never.
    #[ts(type = "number | null")]
    pub idle_unload_secs: Option<u64>,
    /// A draft model for speculative decoding.
    pub draft: Option<DraftSpec>,
    /// Chat, embeddings or reranking.
    pub role: ModelRole,
}

/// Hides the API key and the extra arguments' values (see [`switchyard_base::redact`]), so no
/// span or log line can print them.
impl std::fmt::Debug for InstanceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Taken apart whole, so a new field cannot be forgotten here.
        let Self {
            name,
            model_path,
            model_id,
            mmproj_path,
            port,
            endpoint_port,
            config,
            auto,
            threads,
            host,
            api_key,
            reasoning,
            extra_args,
            pinned,
            idle_unload_secs,
            draft,
            role,
        } = self;
        f.debug_struct("InstanceSpec")
            .field("name", name)
            .field("model_path", model_path)
            .field("model_id", model_id)
            .field("mmproj_path", mmproj_path)
            .field("port", port)
            .field("endpoint_port", endpoint_port)
            .field("config", config)
            .field("auto", auto)
            .field("threads", threads)
            .field("host", host)
            .field("api_key", &switchyard_base::redact::Hidden(api_key))
            .field("reasoning", reasoning)
            .field(
                "extra_args",
                &switchyard_base::redact::extra_args(extra_args),
            )
            .field("pinned", pinned)
            .field("idle_unload_secs", idle_unload_secs)
            .field("draft", draft)
            .field("role", role)
            .finish()
    }
}

impl Default for InstanceSpec {
    fn default() -> Self {
        Self {
            name: String::new(),
            model_path: PathBuf::new(),
            model_id: None,
            mmproj_path: None,
            port: None,
            endpoint_port: None,
            config: LlamaConfig::default(),
            auto: AutoFields {
                gpu_layers: true,
                context: true,
            },
            threads: None,
            host: LOOPBACK.to_owned(),
            api_key: None,
            reasoning: ReasoningChoice::Auto,
            extra_args: Vec::new(),
            pinned: false,
            idle_unload_secs: None,
            draft: None,
            role: ModelRole::Auto,
        }
    }
}

impl InstanceSpec {
    /// An instance of `model_path` with every default: free port, loopback, GPU
    /// layers and context fitted to the machine.
    pub fn new(name: impl Into<String>, model_path: impl Into<PathBuf>) -> Self {
        Self {
            name: name.into(),
            model_path: model_path.into(),
            ..Self::default()
        }
    }

    /// The key under which measurements of this model are kept.
    pub fn model_key(&self) -> String {
        self.model_id.clone().unwrap_or_else(|| {
            self.model_path
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
    }

    /// The key under which measurements of this instance's server are kept: its
    /// model's, or with a draft, both (a server with a draft holds both models).
    pub fn measurement_key(&self) -> String {
        match &self.draft {
            Some(draft) => format!(
                "{}+draft:{}",
                self.model_key(),
                draft.model_id.clone().unwrap_or_else(|| {
                    draft
                        .model_path
                        .file_name()
                        .map(|name| name.to_string_lossy().into_owned())
                        .unwrap_or_default()
                })
            ),
            None => self.model_key(),
        }
    }

    pub fn validate(&self) -> Result<()> {
        let invalid = |field: &'static str, problem: String| {
            Err(EngineError::InvalidInput { field, problem })
        };
        if !is_valid_name(&self.name) {
            return invalid(
                "name",
                format!(
                    "`{}` must be 1 to 64 letters, digits, `-`, `_` or `.`, not starting with `.`",
                    self.name
                ),
            );
        }
        if self.model_path.as_os_str().is_empty() {
            return invalid("model_path", "choose a model file".into());
        }
        if self.port == Some(0) {
            return invalid(
                "port",
                "0 is not a port; leave it empty for a free one".into(),
            );
        }
        if self.endpoint_port == Some(0) {
            return invalid(
                "endpoint_port",
                "0 is not a port; leave it empty for a free one".into(),
            );
        }
        if self.endpoint_port.is_some() && self.endpoint_port == self.port {
            return invalid(
                "endpoint_port",
                "the endpoint and llama-server need different ports".into(),
            );
        }
        if self.host.trim().is_empty() || self.host.contains(char::is_whitespace) {
            return invalid("host", format!("`{}` is not an address", self.host));
        }
        if self.config.context == 0 && !self.auto.context {
            return invalid(
                "context",
                "set a context size or let Switchyard choose".into(),
            );
        }
        if self.draft.is_some() && matches!(self.role, ModelRole::Embedding | ModelRole::Reranking)
        {
            return invalid(
                "draft",
                "a draft speeds up writing tokens; an embedding or reranking server writes none"
                    .into(),
            );
        }
        if let Some(draft) = &self.draft {
            if draft.model_path.as_os_str().is_empty() {
                return invalid(
                    "draft",
                    "choose the draft model's file, or remove the draft".into(),
                );
            }
            if let (Some(min), Some(max)) = (draft.min_tokens, draft.max_tokens) {
                if min > max {
                    return invalid(
                        "draft",
                        format!("at least {min} drafted tokens but at most {max}: the minimum must not exceed the maximum"),
                    );
                }
            }
            if draft.max_tokens == Some(0) {
                return invalid("draft", "draft at least 1 token per step".into());
            }
        }
        if self.threads == Some(0) {
            return invalid(
                "threads",
                "at least 1, or empty for llama-server's choice".into(),
            );
        }
        if self.api_key.as_deref().is_some_and(str::is_empty) {
            return invalid("api_key", "empty; remove it instead".into());
        }
        if self.api_key.is_none() && !is_loopback_host(&self.host) {
            return invalid(
                "api_key",
                format!(
                    "serving other machines (host `{}`) needs an API key: set one, or keep the host {LOOPBACK}",
                    self.host
                ),
            );
        }
        if let Some(flag) = self.extra_args.iter().find(|arg| is_managed_flag(arg)) {
            return invalid(
                "extra_args",
                format!("`{flag}` is set by Switchyard from the instance's own fields"),
            );
        }
        Ok(())
    }
}

fn is_managed_flag(arg: &str) -> bool {
    let flag = arg.split_once('=').map_or(arg, |(flag, _)| flag);
    MANAGED_FLAGS.contains(&flag)
}

/// `127.x.y.z`, `::1` or `localhost`: only this machine can connect.
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim().trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|address| address.is_loopback())
}

/// Names become folder and file names: no separators, no dots in front, short.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_escape_the_logs_folder() {
        for bad in ["", "..", "../x", "a/b", ".hidden", "a b", &"x".repeat(65)] {
            assert!(!is_valid_name(bad), "{bad:?}");
        }
        for good in ["default", "qwen3-8b", "model_2.q4"] {
            assert!(is_valid_name(good), "{good:?}");
        }
    }

    #[test]
    fn serving_other_machines_needs_a_key() {
        let mut spec = InstanceSpec::new("a", "/m.gguf");
        spec.host = "0.0.0.0".into();
        let refused = spec.validate().unwrap_err().to_string();
        assert!(refused.contains("needs an API key"), "{refused}");
        spec.api_key = Some("k".into());
        assert!(spec.validate().is_ok());
        for local in ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"] {
            assert!(is_loopback_host(local), "{local}");
        }
        for network in ["0.0.0.0", "::", "192.168.1.5", "example.org"] {
            assert!(!is_loopback_host(network), "{network}");
        }
    }

    #[test]
    fn extra_args_may_not_redefine_managed_flags() {
        let mut spec = InstanceSpec::new("a", "/m.gguf");
        spec.extra_args = vec!["--port=9000".into()];
        assert!(spec.validate().is_err());
        spec.extra_args = vec!["--temp".into(), "0.2".into()];
        assert!(spec.validate().is_ok());
    }

    #[test]
    fn debug_output_never_shows_the_api_key_or_extra_values() {
        let mut spec = InstanceSpec::new("chat", "/m.gguf");
        spec.api_key = Some("sesame-debug-7f3a".into());
        spec.extra_args = vec!["--hf-token".into(), "hf_debug_9c1e".into()];
        for shown in [format!("{spec:?}"), format!("{spec:#?}")] {
            assert!(!shown.contains("sesame-debug-7f3a"), "{shown}");
            assert!(!shown.contains("hf_debug_9c1e"), "{shown}");
            assert!(shown.contains("<redacted>"), "{shown}");
            assert!(shown.contains("--hf-token"), "{shown}");
            assert!(shown.contains("\"chat\""), "{shown}");
        }
        // Also where a spec is part of something larger (a status, a stored list).
        let status = crate::InstanceStatus::stopped(spec);
        assert!(!format!("{status:?}").contains("sesame-debug-7f3a"));
    }
}
