//! The llama-server command line for a resolved launch.

use std::path::PathBuf;

use switchyard_estimate::{FlashAttention, LlamaConfig};

use super::flags::SupportedFlags;

/// Everything a start needs, decided before spawning; restarts reuse it.
#[derive(Debug, Clone, PartialEq)]
pub struct LaunchPlan {
    pub binary: PathBuf,
    pub model_path: PathBuf,
    pub mmproj_path: Option<PathBuf>,
    /// The final configuration (auto fields filled in).
    pub config: LlamaConfig,
    /// `true` when Switchyard chose the GPU layers and passes them; `false` with
    /// an unknown backend leaves them to llama-server's own fitting.
    pub pass_gpu_layers: bool,
    pub threads: Option<u32>,
    pub host: String,
    pub port: u16,
    /// The keys it accepts, one per line (never on the command line, which every
    /// local user can read).
    pub api_key_file: Option<PathBuf>,
    pub reasoning: bool,
    /// The names the server answers to and puts in its answers' `model` (the
    /// installed model's id, then the instance's name): without them it names
    /// the model file's path, which clients of the endpoint do not know and
    /// should not see.
    pub aliases: Vec<String>,
    /// Speculative decoding's draft model.
    pub draft: Option<DraftPlan>,
    /// Chat, embeddings or reranking (never `auto` here).
    pub role: crate::ModelRole,
    /// `--pooling` for an embedding model whose file names none (llama-server's
    /// `none` cannot answer `/v1/embeddings`).
    pub pooling: Option<&'static str>,
    /// Where `POST /slots/{id}?action=save|restore` keeps its files (see
    /// `saved_slots`); `None` leaves slot saving off.
    pub slot_save_path: Option<PathBuf>,
    pub extra_args: Vec<String>,
}

/// The draft model as launched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DraftPlan {
    pub model_path: PathBuf,
    pub max_tokens: Option<u32>,
    pub min_tokens: Option<u32>,
    /// `-ngld`, when Switchyard places the layers.
    pub gpu_layers: Option<u32>,
}

/// Verbosity 4 prints the buffer sizes the estimator calibrates against.
const LOG_VERBOSITY: &str = "4";

impl LaunchPlan {
    /// The arguments (without the program). Flags the binary does not know are
    /// left out rather than making it refuse to start.
    pub fn args(&self, flags: &SupportedFlags) -> Vec<String> {
        let mut args = Args {
            list: Vec::new(),
            flags,
        };
        let config = &self.config;
        args.always("-m", self.model_path.to_string_lossy());
        if let Some(mmproj) = &self.mmproj_path {
            args.always("--mmproj", mmproj.to_string_lossy());
        }
        args.always("--host", &self.host);
        args.always("--port", self.port.to_string());
        args.value("-c", config.context.to_string());
        args.value("-np", config.parallel.to_string());
        args.switch(if config.kv_unified { "-kvu" } else { "-no-kvu" });
        args.value("-ctk", config.cache_type_k.flag());
        args.value("-ctv", config.cache_type_v.flag());
        if flags.flash_attention_takes_value() {
            let mode = match config.flash_attention {
                FlashAttention::Auto => "auto",
                FlashAttention::On => "on",
                FlashAttention::Off => "off",
            };
            args.value("-fa", mode);
        } else if config.flash_attention == FlashAttention::On {
            args.switch("-fa");
        }
        args.value("-b", config.batch.to_string());
        args.value("-ub", config.ubatch.to_string());
        if self.pass_gpu_layers {
            args.value("-ngl", config.gpu_layers.to_string());
        }
        if config.cpu_moe_layers > 0 {
            args.value("--n-cpu-moe", config.cpu_moe_layers.to_string());
        }
        if config.swa_full {
            args.switch("--swa-full");
        }
        if let Some(threads) = self.threads {
            args.value("-t", threads.to_string());
        }
        if let Some(draft) = &self.draft {
            // llama.cpp renamed its speculative flags (`--draft-max` became
            // `--spec-draft-n-max`, the old name now refuses to start); newer names first.
            args.always("-md", draft.model_path.to_string_lossy());
            // Builds with `--spec-type` load a draft given alone but never use it.
            args.value("--spec-type", "draft-simple");
            if let Some(max) = draft.max_tokens {
                args.first_known(&["--spec-draft-n-max", "--draft-max"], max.to_string());
            }
            if let Some(min) = draft.min_tokens {
                args.first_known(&["--spec-draft-n-min", "--draft-min"], min.to_string());
            }
            if let Some(layers) = draft.gpu_layers {
                args.value("-ngld", layers.to_string());
            }
            // The draft's cache as the model's (llama.cpp's default is f16).
            args.value("-ctkd", config.cache_type_k.flag());
            args.value("-ctvd", config.cache_type_v.flag());
        }
        args.value("--ctx-checkpoints", config.context_checkpoints.to_string());
        args.value("--cache-ram", config.prompt_cache_mib.to_string());
        if let Some(file) = &self.api_key_file {
            args.always("--api-key-file", file.to_string_lossy());
        }
        args.value("-lv", LOG_VERBOSITY);
        args.switch("--metrics");
        args.switch("--slots");
        if let Some(folder) = &self.slot_save_path {
            args.value("--slot-save-path", folder.to_string_lossy());
        }
        match self.role {
            crate::ModelRole::Embedding => {
                args.switch("--embeddings");
                if let Some(pooling) = self.pooling {
                    args.value("--pooling", pooling);
                }
            }
            crate::ModelRole::Reranking => args.switch("--reranking"),
            crate::ModelRole::Chat | crate::ModelRole::Auto => {}
        }
        if self.reasoning {
            args.switch("--jinja");
            args.value("--reasoning-format", "deepseek");
        }
        let own_alias = self
            .extra_args
            .iter()
            .any(|arg| arg == "-a" || arg == "--alias" || arg.starts_with("--alias="));
        if !self.aliases.is_empty() && !own_alias {
            args.value("--alias", self.aliases.join(","));
        }
        args.list.extend(self.extra_args.iter().cloned());
        args.list
    }
}

struct Args<'a> {
    list: Vec<String>,
    flags: &'a SupportedFlags,
}

impl Args<'_> {
    /// Flags every llama-server has had: passed even if `--help` hid them.
    fn always(&mut self, flag: &str, value: impl Into<String>) {
        self.list.push(flag.to_owned());
        self.list.push(value.into());
    }

    fn value(&mut self, flag: &str, value: impl Into<String>) {
        if self.flags.knows(flag) {
            self.always(flag, value);
        } else {
            tracing::info!(flag, "this llama-server does not know the flag; left out");
        }
    }

    /// The first of `flags` (newest name first) this binary knows.
    fn first_known(&mut self, flags: &[&str], value: String) {
        match flags.iter().find(|flag| self.flags.knows(flag)) {
            Some(flag) => self.always(flag, value),
            None => tracing::info!(
                ?flags,
                "this llama-server knows none of the flags; left out"
            ),
        }
    }

    fn switch(&mut self, flag: &str) {
        if self.flags.knows(flag) {
            self.list.push(flag.to_owned());
        } else {
            tracing::info!(flag, "this llama-server does not know the flag; left out");
        }
    }
}

/// The command line as shown to people: the API key is not.
pub fn redact(args: &[String]) -> Vec<String> {
    let mut shown = Vec::with_capacity(args.len());
    let mut hide_next = false;
    for arg in args {
        if hide_next {
            shown.push("***".to_owned());
            hide_next = false;
        } else {
            hide_next = arg == "--api-key";
            shown.push(arg.clone());
        }
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_estimate::CacheType;

    fn plan() -> LaunchPlan {
        LaunchPlan {
            binary: "llama-server".into(),
            model_path: "/models/m.gguf".into(),
            mmproj_path: None,
            config: LlamaConfig {
                context: 8192,
                parallel: 2,
                kv_unified: false,
                cache_type_k: CacheType::Q8_0,
                flash_attention: FlashAttention::On,
                gpu_layers: 33,
                cpu_moe_layers: 4,
                ..LlamaConfig::default()
            },
            pass_gpu_layers: true,
            threads: Some(6),
            host: "127.0.0.1".into(),
            port: 8080,
            api_key_file: Some("/state/a.key".into()),
            reasoning: true,
            aliases: vec!["qwen".into(), "chat".into()],
            draft: None,
            role: crate::ModelRole::Chat,
            pooling: None,
            slot_save_path: None,
            extra_args: vec!["--temp".into(), "0.3".into()],
        }
    }

    fn pairs(args: &[String]) -> String {
        args.join(" ")
    }

    #[test]
    fn the_persons_own_alias_beats_switchyards() {
        let mut plan = plan();
        plan.extra_args = vec!["-a".into(), "mine".into()];
        let line = pairs(&plan.args(&SupportedFlags::assume_current()));
        assert!(
            line.ends_with("--reasoning-format deepseek -a mine"),
            "{line}"
        );
    }

    #[test]
    fn every_setting_becomes_its_flag() {
        let args = plan().args(&SupportedFlags::assume_current());
        let line = pairs(&args);
        for expected in [
            "-m /models/m.gguf",
            "--host 127.0.0.1 --port 8080",
            "-c 8192 -np 2 -no-kvu -ctk q8_0 -ctv f16 -fa on -b 2048 -ub 512 -ngl 33 --n-cpu-moe 4 -t 6 --ctx-checkpoints 3 --cache-ram 0",
            "--api-key-file /state/a.key -lv 4 --metrics --slots --jinja --reasoning-format deepseek --alias qwen,chat --temp 0.3",
        ] {
            assert!(line.contains(expected), "{expected:?} missing in {line}");
        }
    }

    #[test]
    fn unknown_flags_are_left_out_and_old_flash_attention_is_a_switch() {
        let flags = SupportedFlags::from_help(
            "-c,    --ctx-size N     size\n-fa,   --flash-attn     enable\n--port PORT    port\n",
        );
        let line = pairs(&plan().args(&flags));
        assert!(line.contains("-c 8192"), "{line}");
        assert!(line.contains(" -fa "), "{line}");
        assert!(!line.contains("-fa on"), "{line}");
        assert!(
            !line.contains("-kvu") && !line.contains("--reasoning-format"),
            "{line}"
        );
    }

    #[test]
    fn a_draft_uses_the_names_this_build_knows() {
        let mut drafted = plan();
        drafted.draft = Some(DraftPlan {
            model_path: "/models/small.gguf".into(),
            max_tokens: Some(8),
            min_tokens: Some(2),
            gpu_layers: Some(0),
        });
        let renamed = SupportedFlags::from_help(
            "--spec-draft-model, -md, --model-draft FNAME  draft\n--spec-type none,draft-simple  types\n--spec-draft-n-max N  max\n--spec-draft-n-min N  min\n--draft, --draft-n, --draft-max N  removed\n--draft-min, --draft-n-min N  removed\n-ngld, --gpu-layers-draft N  layers\n",
        );
        let line = pairs(&drafted.args(&renamed));
        assert!(
            line.contains("-md /models/small.gguf --spec-type draft-simple"),
            "{line}"
        );
        assert!(
            line.contains("--spec-draft-n-max 8 --spec-draft-n-min 2 -ngld 0"),
            "{line}"
        );
        assert!(
            !line.contains("--draft-max"),
            "the removed name refuses to start: {line}"
        );
        let older = SupportedFlags::from_help(
            "-md, --model-draft FNAME  draft\n--draft-max, --draft, --draft-n N  max\n--draft-min, --draft-n-min N  min\n",
        );
        let line = pairs(&drafted.args(&older));
        assert!(
            line.contains("-md /models/small.gguf --draft-max 8 --draft-min 2"),
            "{line}"
        );
        assert!(!line.contains("--spec-type"), "{line}");
    }

    #[test]
    fn embedding_and_reranking_servers_get_their_flags() {
        let mut embedder = plan();
        embedder.role = crate::ModelRole::Embedding;
        embedder.pooling = Some("mean");
        let line = pairs(&embedder.args(&SupportedFlags::assume_current()));
        assert!(line.contains("--embeddings --pooling mean"), "{line}");
        let mut reranker = plan();
        reranker.role = crate::ModelRole::Reranking;
        let line = pairs(&reranker.args(&SupportedFlags::assume_current()));
        assert!(
            line.contains("--reranking") && !line.contains("--embeddings"),
            "{line}"
        );
    }
}
