//! The command line, as clap reads it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "switchyard",
    version,
    about = "Switchyard without a window: llama-server instances, models and images from a terminal",
    after_help = "Exit codes: 0 ok, 1 failure, 2 usage, 3 not found, 4 invalid configuration, 5 not healthy, 6 daemon unreachable, 7 run by another Switchyard, 8 could not start. See docs/cli.md."
)]
pub struct Cli {
    /// Machine-readable output (JSON on stdout; errors too).
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The instances: name, pid, port, backend, model, health, uptime.
    Ps,
    /// Start an instance (through the daemon, which is started when none runs).
    Up {
        name: String,
        /// Run the server in this process instead, until Ctrl-C.
        #[arg(long)]
        foreground: bool,
    },
    /// Stop an instance.
    Down { name: String },
    /// Stop and start an instance.
    Restart { name: String },
    /// An instance's log lines.
    Logs {
        name: String,
        /// Keep printing new lines until Ctrl-C (needs the daemon).
        #[arg(long, short)]
        follow: bool,
        /// How many of the last lines.
        #[arg(long, default_value_t = 50)]
        tail: usize,
    },
    /// An instance's configuration, runtime, and memory estimate vs measured.
    Describe { name: String },
    /// Whether an instance is healthy (exit 0) or not (exit 5).
    Health { name: String },
    /// Installed models.
    #[command(subcommand)]
    Models(ModelsCommand),
    /// Generate images with an installed diffusion model; saves PNGs.
    Image(ImageArgs),
    /// Instance files.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Run the daemon (default), or ask a running one.
    Daemon {
        #[command(subcommand)]
        action: Option<DaemonCommand>,
        /// The control API's port on 127.0.0.1 (0: any free one).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// The image API's port on 127.0.0.1 (default: the `image_port` setting,
        /// 8081; 0: any free one).
        #[arg(long)]
        image_port: Option<u16>,
        /// The Switchyard endpoint's port (default: the `endpoint_port` setting,
        /// 8434; 0: any free one, written to daemon.json).
        #[arg(long)]
        endpoint_port: Option<u16>,
    },
    /// Run the daemon at login: a systemd user unit on Linux.
    #[command(subcommand)]
    Service(ServiceCommand),
}

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Installed models with kind, size and files.
    List,
    /// Download a model: a URL, or a Hugging Face `owner/repo` with `--file`.
    Pull {
        source: String,
        /// The file in the repository (for `owner/repo`).
        #[arg(long)]
        file: Option<String>,
        #[arg(long, default_value = "main")]
        revision: String,
        /// The name to list it under (default: the file name without `.gguf`).
        #[arg(long)]
        name: Option<String>,
        /// `llm` or `diffusion` (default: what the repository's and the file's
        /// names suggest, e.g. `diffusion` for "stable-diffusion-v1-5-GGUF").
        #[arg(long)]
        kind: Option<String>,
        /// The expected SHA-256 (a URL has none of its own).
        #[arg(long)]
        sha256: Option<String>,
    },
    /// Delete an installed model and its files.
    Rm { id: String },
    /// Check an installed model's files against their SHA-256.
    Verify { id: String },
    /// The models of the Switchyard endpoint (served by the daemon): state,
    /// memory, requests, pinned, when an idle one unloads.
    Ps,
    /// Load a model now, as the endpoint does on a request (unloading the least
    /// recently used when it needs the room). Starts the daemon if none runs.
    Load { model: String },
    /// Unload a model once the answers it is writing are done.
    Unload { model: String },
    /// Pin a model: never unloaded to make room, when idle, or for an image.
    Pin {
        model: String,
        /// Unpin it instead.
        #[arg(long)]
        off: bool,
    },
}

#[derive(Debug, Args)]
pub struct ImageArgs {
    pub prompt: String,
    /// An installed diffusion model (default: the first one).
    #[arg(long)]
    pub model: Option<String>,
    #[arg(long, default_value = "")]
    pub negative: String,
    #[arg(long, default_value_t = 512)]
    pub width: u32,
    #[arg(long, default_value_t = 512)]
    pub height: u32,
    #[arg(long, default_value_t = 20)]
    pub steps: u32,
    #[arg(long, default_value_t = 7.0)]
    pub cfg_scale: f32,
    #[arg(long)]
    pub sampler: Option<String>,
    /// Negative or omitted: random.
    #[arg(long)]
    pub seed: Option<i64>,
    #[arg(long, default_value_t = 1)]
    pub count: u32,
    /// Where the PNGs go.
    #[arg(long, short, default_value = ".")]
    pub out: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check every instance file; exit 4 when one has a problem.
    Validate,
}

#[derive(Debug, Subcommand)]
pub enum DaemonCommand {
    /// Run it in this terminal (the default).
    Run,
    /// Whether one runs, its pid and port, and instance files it could not use.
    Status,
    /// Read the instance files again.
    Reload,
    /// Stop the running daemon (its servers stop with it).
    Stop,
}

#[derive(Debug, Subcommand)]
pub enum ServiceCommand {
    /// Write the unit (and enable it when a systemd user session exists).
    Install {
        /// Only print the unit.
        #[arg(long)]
        print: bool,
    },
    /// Disable and remove the unit.
    Uninstall,
    /// Whether the unit is installed and active.
    Status,
}
