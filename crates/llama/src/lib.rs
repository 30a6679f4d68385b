//! llama-server instances: named servers, each with its model, port and
//! configuration; started with arguments built from that configuration (empty
//! fields fitted to free memory), watched through `/health` and their own exit,
//! restarted with backoff up to a start limit, stopped in steps, tied to the app's
//! life (through `switchyard_process`: group, parent-death signal, pid file), logged to
//! a ring and rotating files, and chatted with for a test.
//!
//! Files: `state/instances.json` (instances and whether they ran),
//! `state/llama-<name>.pid.json` (running servers, for leftovers),
//! `state/llama-<name>.key` (an API key, readable by the user only),
//! `logs/<name>/llama-server.log` (+ `.1` … `.K`),
//! `kv-cache/<name>/<fingerprint>/slot-<id>.bin` (conversations kept across a stop).

mod args;
mod chat;
mod default_instance;
mod devices;
mod draft;
mod endpoint;
mod environment;
mod events;
mod flags;
pub mod instance_files;
mod logs;
mod manager;
mod output;
mod ownership;
mod plan;
mod policy;
mod ports;
mod reasoning;
mod request_text;
mod saved_slots;
mod service_state;
mod spec;
mod state;
mod store;

pub use args::{redact, LaunchPlan};
pub use chat::{ChatDelta, ChatMessage, ChatOutcome, ChatRequest, ChatTimings};
pub use default_instance::{
    default_instance, llm_control, state_word, tooltip, LlmAction, LlmControl, DEFAULT_INSTANCE,
};
pub use devices::parse_devices;
pub use endpoint::{EndpointActivity, EndpointPolicy, Refusal};
pub use environment::LaunchEnvironment;
pub use events::LlamaEvent;
pub use flags::SupportedFlags;
pub use logs::{parse_line, LogLine, ServerLogLevel};
pub use manager::{LlamaManager, Opened};
pub use ownership::{Owner, OwnerKind};
pub use plan::{plan_memory, Memory};
pub use policy::{HealthPolicy, LogPolicy, RestartPolicy, SupervisionPolicy};
pub use reasoning::is_reasoning_model;
pub use saved_slots::{
    SavedSlotsUsage, SlotAction, SlotSavePolicy, SlotsReport,
    DEFAULT_BUDGET_BYTES as DEFAULT_SLOT_BUDGET_BYTES,
};
pub use service_state::llm_service_state;
pub use spec::{is_valid_name, DraftSpec, InstanceSpec, ModelRole, ReasoningChoice, LOOPBACK};
pub use state::{InstancePreview, InstanceState, InstanceStatus, RunningConfig, StateChange};
pub use switchyard_process::{EndedLeftover, PidRecord, StopPolicy};
