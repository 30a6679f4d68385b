//! The llama-server instances of this app: create, update, remove, start, stop,
//! restart, list, logs and a streaming test chat.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::chat::{apply_payload, ChatDelta, ChatOutcome, ChatRequest, SseDecoder};
use super::endpoint::{CutReason, EndpointPolicy, Endpoints};
use super::environment::LaunchEnvironment;
use super::flags::SupportedFlags;
use super::logs::{LogLine, RotatingFile};
use super::output::InstanceLog;
use super::ownership::{self, Owner, OwnerKind, Ownership};
use super::plan::{self, backend_of, Inputs};
use super::policy::SupervisionPolicy;
use super::ports;
use super::spec::InstanceSpec;
use super::state::{InstanceState, InstanceStatus, StateChange};
use super::store::{self, StoredInstance, StoredInstances};
use crate::llm_service_state;
use crate::saved_slots::{SavedSlotsUsage, SlotStore, SlotsReport};
use crate::LlamaEvent;
use supervisor::{supervise, Launch, StopSignal};
use switchyard_base::clock::Clock;
use switchyard_base::emit::Emitter;
use switchyard_base::errors::{EngineError, ErrorReport, Result};
use switchyard_base::locks::{lock, read, write};
use switchyard_base::services::{ServiceKind, StatusBoard};
use switchyard_binaries::{BinaryKind, BinaryStatus};
use switchyard_estimate::{Backend, Calibration, LlamaConfig, MeasuredMemory, MeasuredSpeed};
use switchyard_process::{pidfile, EndedLeftover};

mod chat;
mod lifecycle;
mod requests;
mod supervisor;

/// Extra time a stop may take beyond its signal deadlines (reaping, log drain).
const STOP_SLACK: Duration = Duration::from_secs(5);
/// Beyond the load timeout, for the restarts a start may go through.
const START_WAIT_SLACK: Duration = Duration::from_secs(60);
const START_WAIT_POLL: Duration = Duration::from_millis(50);

/// A started instance's supervisor, and this process's claim on the instance.
#[derive(Debug)]
struct Run {
    cancel: StopSignal,
    task: JoinHandle<()>,
    /// Released when the run is dropped, after its server is gone.
    _ownership: Ownership,
}

#[derive(Debug)]
struct Instance {
    status: InstanceStatus,
    was_running: bool,
    log: Arc<InstanceLog>,
    run: Option<Run>,
    /// This process's claim while a start prepares, before its run exists: a
    /// second start here sees it and waits for nothing.
    starting: Option<Ownership>,
}

impl Instance {
    /// A start is on its way here, or its supervisor still runs.
    fn runs_here(&self) -> bool {
        self.starting.is_some() || self.run.as_ref().is_some_and(|run| !run.task.is_finished())
    }
}

/// What the manager and its supervisors share.
#[derive(Debug)]
pub struct Shared {
    pub(crate) state_dir: PathBuf,
    logs_dir: PathBuf,
    pub(crate) events: Emitter<LlamaEvent>,
    /// The LLM service's state, kept in step with the instances' (see
    /// [`Shared::announce_service_state`]).
    status: StatusBoard,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) http: reqwest::Client,
    environment: Arc<dyn LaunchEnvironment>,
    /// The llama-server last set up through the engine (a user-supplied one
    /// included), which beats the environment's downloaded one.
    binary: RwLock<Option<BinaryStatus>>,
    policy: RwLock<SupervisionPolicy>,
    instances: Mutex<BTreeMap<String, Instance>>,
    binary_facts: Mutex<BTreeMap<PathBuf, (FileStamp, BinaryFacts)>>,
    calibration: Mutex<Calibration>,
    chats: AtomicU64,
    leftovers: Vec<EndedLeftover>,
    /// Set by `shutdown`: the app is closing and starts nothing new.
    closing: AtomicBool,
    /// Each instance's stable endpoint (a proxy that holds requests while its
    /// server is away).
    endpoints: Endpoints,
    /// Who this process is when it claims an instance (see `ownership`).
    owner_kind: RwLock<OwnerKind>,
    /// Where the instances are kept (`instances.json`, the window's, by default).
    store_file: RwLock<PathBuf>,
    /// Where conversations are kept across stops (`<state>/kv-cache` until the
    /// engine names its data folder's).
    slot_store: RwLock<SlotStore>,
}

/// A binary is probed again when it changes.
type FileStamp = (u64, Option<std::time::SystemTime>);

/// What a binary's `--help` and `--list-devices` say, read once per binary.
#[derive(Debug, Clone)]
struct BinaryFacts {
    flags: SupportedFlags,
    backend: Option<Backend>,
}

impl Shared {
    pub(crate) fn policy(&self) -> SupervisionPolicy {
        read(&self.policy).clone()
    }

    /// Moves `name` to `to`, announces it, and applies `change` to its status.
    pub(crate) fn transition(
        &self,
        name: &str,
        to: InstanceState,
        reason: &str,
        error: Option<&EngineError>,
        change: impl FnOnce(&mut InstanceStatus),
    ) {
        let (event, upstream) = {
            let mut instances = lock(&self.instances);
            let Some(instance) = instances.get_mut(name) else {
                return;
            };
            let status = &mut instance.status;
            let from = status.state;
            change(status);
            status.state = to;
            reason.clone_into(&mut status.reason);
            if let Some(error) = error {
                status.error = Some(error.report());
            }
            let upstream = status
                .running
                .as_ref()
                .map(|running| ports::connect_base(&running.host, running.port));
            let event = StateChange {
                name: name.to_owned(),
                from,
                to,
                reason: reason.to_owned(),
                pid: status.pid,
                port: status.running.as_ref().map(|running| running.port),
                error: error.map(EngineError::report),
                at_ms: self.clock.now_ms(),
            };
            (event, upstream)
        };
        self.endpoints
            .on_state(name, to, upstream, event.error.clone());
        tracing::info!(instance = name, from = ?event.from, to = ?event.to, reason, "llama-server state");
        self.events.emit(LlamaEvent::State(event));
        self.announce_service_state();
    }

    /// The LLM service's state from the instances', on the engine's status board
    /// (which announces a change). Worked out under the instances' lock, so two
    /// transitions at once cannot leave the older answer on the board.
    fn announce_service_state(&self) {
        let instances = lock(&self.instances);
        let state = llm_service_state(instances.values().map(|instance| instance.status.state));
        self.status.set(ServiceKind::Llm, state);
    }

    /// Announces a save or restore of slots that did something, and keeps the
    /// folder within its budget after a save.
    pub(crate) fn report_slots(&self, mut report: SlotsReport) {
        if report.action == crate::saved_slots::SlotAction::Save {
            let budget = self.policy().slots.budget_bytes;
            report.evicted_files = read(&self.slot_store).enforce_budget(budget);
        }
        if report.is_empty() {
            return;
        }
        tracing::info!(
            instance = report.instance,
            action = ?report.action,
            slots = report.slots,
            tokens = report.tokens,
            bytes = report.bytes,
            elapsed_ms = report.elapsed_ms,
            problems = ?report.problems,
            "conversations (KV cache)"
        );
        self.events.emit(LlamaEvent::Slots(report));
    }

    pub(crate) fn slot_store(&self) -> SlotStore {
        read(&self.slot_store).clone()
    }

    pub(crate) fn update(&self, name: &str, change: impl FnOnce(&mut InstanceStatus)) {
        if let Some(instance) = lock(&self.instances).get_mut(name) {
            change(&mut instance.status);
        }
    }

    /// A supervisor that gave up: the person's intent to run it no longer holds.
    pub(crate) fn forget_running(&self, name: &str) {
        if let Some(instance) = lock(&self.instances).get_mut(name) {
            instance.was_running = false;
        }
        self.persist();
    }

    pub(crate) fn instance_log(&self, name: &str) -> Arc<InstanceLog> {
        lock(&self.instances)
            .get(name)
            .map(|instance| instance.log.clone())
            .unwrap_or_else(|| Arc::new(InstanceLog::new(self.policy().logs.ring_lines)))
    }

    pub(crate) fn log_file(&self, name: &str) -> RotatingFile {
        let logs = self.policy().logs;
        RotatingFile::open(&self.logs_dir.join(name), logs.file_bytes, logs.files_kept)
    }

    pub(crate) fn record_measurement(
        &self,
        model_key: &str,
        config: &LlamaConfig,
        backend: Backend,
        measured: MeasuredMemory,
    ) {
        let mut calibration = lock(&self.calibration);
        match calibration.record_shared(&self.state_dir, model_key, config, backend, measured) {
            Ok(merged) => *calibration = merged,
            Err(error) => {
                // Kept for this run at least.
                calibration.record(model_key, config, backend, measured);
                tracing::warn!(%error, "cannot save the calibration");
            }
        }
    }

    /// Keeps a generation speed llama-server logged; runs too short to time
    /// (`MIN_MEASURED_TOKENS`) are left out.
    pub(crate) fn record_speed(
        &self,
        model_key: &str,
        config: &LlamaConfig,
        backend: Backend,
        measured: MeasuredSpeed,
    ) {
        if measured.generated_tokens < switchyard_estimate::speed::MIN_MEASURED_TOKENS {
            return;
        }
        let mut calibration = lock(&self.calibration);
        match calibration.record_speed_shared(&self.state_dir, model_key, config, backend, measured)
        {
            Ok(merged) => *calibration = merged,
            Err(error) => {
                calibration.record_speed(model_key, config, backend, measured);
                tracing::warn!(%error, "cannot save the calibration");
            }
        }
    }

    fn persist(&self) {
        let stored = StoredInstances {
            instances: lock(&self.instances)
                .values()
                .map(|instance| StoredInstance {
                    spec: instance.status.spec.clone(),
                    was_running: instance.was_running,
                })
                .collect(),
        };
        if let Err(error) = store::save(&read(&self.store_file), &stored) {
            tracing::warn!(%error, "cannot save the instances");
        }
    }

    fn announce_list(&self) {
        let instances = lock(&self.instances)
            .values()
            .map(|instance| instance.status.clone())
            .collect();
        self.events.emit(LlamaEvent::Instances { instances });
        self.announce_service_state();
    }
}

/// Cheap to clone; every clone drives the same instances.
#[derive(Debug, Clone)]
pub struct LlamaManager {
    shared: Arc<Shared>,
}

/// What opening the manager found.
#[derive(Debug)]
pub struct Opened {
    pub manager: LlamaManager,
    /// A damaged `instances.json` (kept aside), reported rather than fatal.
    pub warning: Option<ErrorReport>,
}

impl LlamaManager {
    /// Loads the instances from `state_dir` and ends any server an earlier run of
    /// the app left behind (see `pidfile`).
    pub fn open(
        state_dir: &Path,
        logs_dir: &Path,
        events: Emitter<LlamaEvent>,
        status: StatusBoard,
        clock: Arc<dyn Clock>,
        environment: Arc<dyn LaunchEnvironment>,
    ) -> Opened {
        let leftovers = pidfile::end_leftovers(state_dir);
        let store_file = store::path(state_dir);
        let (instances, warning) = load_instances(&store_file);
        let calibration = Calibration::load(state_dir).unwrap_or_default();
        let policy = SupervisionPolicy::default();
        // Health checks and chats go to local servers: never through a proxy.
        let http = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_default();
        let shared = Shared {
            state_dir: state_dir.to_path_buf(),
            logs_dir: logs_dir.to_path_buf(),
            events,
            status,
            clock,
            http,
            environment,
            binary: RwLock::new(None),
            policy: RwLock::new(policy),
            instances: Mutex::new(instances),
            binary_facts: Mutex::new(BTreeMap::new()),
            calibration: Mutex::new(calibration),
            chats: AtomicU64::new(0),
            leftovers,
            closing: AtomicBool::new(false),
            endpoints: Endpoints::new(),
            owner_kind: RwLock::new(OwnerKind::default()),
            store_file: RwLock::new(store_file),
            slot_store: RwLock::new(SlotStore::new(state_dir.join("kv-cache"))),
        };
        Opened {
            manager: Self {
                shared: Arc::new(shared),
            },
            warning,
        }
    }

    /// Servers from an earlier run of the app that were found and ended at start.
    pub fn leftovers_ended(&self) -> &[EndedLeftover] {
        &self.shared.leftovers
    }

    /// The llama-server that starts from now on use (the engine calls this when
    /// one has been set up and validated).
    pub fn use_binary(&self, binary: BinaryStatus) {
        *write(&self.shared.binary) = Some(binary);
    }

    /// Whether a llama-server is there to start (set up through the engine, or
    /// the environment's).
    pub fn has_binary(&self) -> bool {
        read(&self.shared.binary).is_some() || self.shared.environment.llama_binary().is_some()
    }

    /// Replaces the supervision policy (restart backoff, health checks, stop
    /// deadlines, log sizes); applies to starts from now on.
    /// What llama-server reported so far, per model and configuration.
    pub fn calibration(&self) -> Calibration {
        lock(&self.shared.calibration).clone()
    }

    /// Keeps a measurement (from a server started elsewhere, e.g. a benchmark).
    pub fn record_measurement(
        &self,
        model_key: &str,
        config: &LlamaConfig,
        backend: Backend,
        measured: MeasuredMemory,
    ) {
        self.shared
            .record_measurement(model_key, config, backend, measured);
    }

    /// Keeps the instances in `state/<file_name>` from now on, and loads the ones
    /// kept there in place of those loaded so far: the `switchyard` command and
    /// its daemon keep theirs apart from the window's `instances.json`, so neither
    /// overwrites the other's list. Refused while a server runs.
    pub fn use_store_file(&self, file_name: &str) -> Result<Option<ErrorReport>> {
        let path = self.shared.state_dir.join(file_name);
        let (loaded, warning) = load_instances(&path);
        let mut instances = lock(&self.shared.instances);
        if instances.values().any(|instance| instance.run.is_some()) {
            return Err(EngineError::Internal {
                problem: "the instance store changes only before any server starts".into(),
            });
        }
        *instances = loaded;
        *write(&self.shared.store_file) = path;
        Ok(warning)
    }

    /// Who this process is when it runs an instance (the app unless told
    /// otherwise); another process asking for the same instance is told this.
    pub fn set_owner_kind(&self, kind: OwnerKind) {
        *write(&self.shared.owner_kind) = kind;
    }

    /// The process that runs `name` now, if any (this one included).
    pub fn owner_of(&self, name: &str) -> Option<Owner> {
        ownership::current_owner(&self.shared.state_dir, name)
    }

    pub fn set_policy(&self, policy: SupervisionPolicy) {
        *write(&self.shared.policy) = policy;
    }

    /// How many requests the endpoints hold, and for how long; applies to
    /// endpoints bound from now on.
    pub fn set_endpoint_policy(&self, policy: EndpointPolicy) {
        self.shared.endpoints.set_policy(policy);
    }

    pub fn policy(&self) -> SupervisionPolicy {
        self.shared.policy()
    }

    /// Keeps conversations across stops in `folder` from the next start on.
    pub fn set_slot_folder(&self, folder: PathBuf) {
        *write(&self.shared.slot_store) = SlotStore::new(folder);
    }

    /// Turns saving conversations across stops on or off, and bounds their folder
    /// (the oldest files go at the next save). Turning it off deletes the saved
    /// ones: a person who does not want them kept does not want them on disk.
    pub fn set_slot_saving(&self, enabled: bool, budget_bytes: u64) {
        {
            let mut policy = write(&self.shared.policy);
            policy.slots.enabled = enabled;
            policy.slots.budget_bytes = budget_bytes;
        }
        if !enabled {
            self.shared.slot_store().clear();
        }
    }

    /// The saved conversations on disk.
    pub fn saved_slots_usage(&self) -> SavedSlotsUsage {
        let store = read(&self.shared.slot_store).clone();
        let (bytes, files) = store.usage();
        let policy = self.policy().slots;
        SavedSlotsUsage {
            enabled: policy.enabled,
            folder: store.root().display().to_string(),
            bytes,
            files,
            budget_bytes: policy.budget_bytes,
        }
    }

    /// Deletes the conversations saved for the model file at or under
    /// `model_path` (it was deleted: they could never be restored).
    pub fn forget_saved_slots_of_model(&self, model_path: &Path) -> u32 {
        read(&self.shared.slot_store)
            .clone()
            .forget_model(model_path)
    }

    pub fn list(&self) -> Vec<InstanceStatus> {
        lock(&self.shared.instances)
            .values()
            .map(|instance| instance.status.clone())
            .collect()
    }

    pub fn status(&self, name: &str) -> Result<InstanceStatus> {
        lock(&self.shared.instances)
            .get(name)
            .map(|instance| instance.status.clone())
            .ok_or_else(|| unknown(name))
    }

    pub fn create(&self, spec: InstanceSpec) -> Result<InstanceStatus> {
        spec.validate()?;
        let status = {
            let mut instances = lock(&self.shared.instances);
            if instances.contains_key(&spec.name) {
                return Err(EngineError::InvalidInput {
                    field: "name",
                    problem: format!("an instance named `{}` exists already", spec.name),
                });
            }
            check_port_unique(&instances, &spec)?;
            let status = InstanceStatus::stopped(spec.clone());
            instances.insert(
                spec.name.clone(),
                Instance {
                    status: status.clone(),
                    was_running: false,
                    log: Arc::new(InstanceLog::new(self.policy().logs.ring_lines)),
                    run: None,
                    starting: None,
                },
            );
            status
        };
        self.shared.persist();
        self.shared.announce_list();
        Ok(status)
    }

    /// Changes an instance's configuration; a running server keeps the old one
    /// until it is restarted.
    pub fn update(&self, spec: InstanceSpec) -> Result<InstanceStatus> {
        spec.validate()?;
        let status = {
            let mut instances = lock(&self.shared.instances);
            check_port_unique(&instances, &spec)?;
            let instance = instances
                .get_mut(&spec.name)
                .ok_or_else(|| unknown(&spec.name))?;
            instance.status.spec = spec;
            instance.status.clone()
        };
        self.shared.persist();
        self.shared.announce_list();
        Ok(status)
    }

    /// Forgets the instance unless a server of it runs or starts here; whether it
    /// was forgotten. (Its log files stay.)
    pub fn remove_if_stopped(&self, name: &str) -> bool {
        let removed = {
            let mut instances = lock(&self.shared.instances);
            let idle = instances.get(name).is_some_and(|instance| {
                instance.starting.is_none()
                    && instance
                        .run
                        .as_ref()
                        .is_none_or(|run| run.task.is_finished())
            });
            idle && instances.remove(name).is_some()
        };
        if removed {
            let _ = std::fs::remove_file(api_key_path(&self.shared.state_dir, name));
            self.shared.persist();
            self.shared.announce_list();
        }
        removed
    }

    /// Stops the instance if it runs and forgets it (its log files stay).
    pub async fn remove(&self, name: &str) -> Result<()> {
        self.stop(name).await?;
        lock(&self.shared.instances).remove(name);
        read(&self.shared.slot_store).forget_instance(name);
        self.shared.endpoints.remove(name);
        let _ = std::fs::remove_file(api_key_path(&self.shared.state_dir, name));
        self.shared.persist();
        self.shared.announce_list();
        Ok(())
    }

    /// Whether the instance was running when the app last closed.
    pub fn was_running(&self, name: &str) -> bool {
        lock(&self.shared.instances)
            .get(name)
            .is_some_and(|instance| instance.was_running)
    }

    /// Log lines with `seq >= since`, at most the last `limit`.
    pub fn logs(&self, name: &str, since: u64, limit: usize) -> Result<Vec<LogLine>> {
        let log = lock(&self.shared.instances)
            .get(name)
            .map(|instance| instance.log.clone())
            .ok_or_else(|| unknown(name))?;
        let lines = lock(&log.ring).since(since, limit);
        Ok(lines)
    }

    /// The folder of the instance's rotating log files.
    pub fn log_dir(&self, name: &str) -> PathBuf {
        self.shared.logs_dir.join(name)
    }
}

/// The valid instances kept in `path` (a damaged file: none, and the reason).
fn load_instances(path: &Path) -> (BTreeMap<String, Instance>, Option<ErrorReport>) {
    let (stored, warning) = match store::load(path) {
        Ok(stored) => (stored, None),
        Err(error) => (StoredInstances::default(), Some(error.report())),
    };
    let ring_lines = SupervisionPolicy::default().logs.ring_lines;
    let instances = stored
        .instances
        .into_iter()
        .filter(|stored| stored.spec.validate().is_ok())
        .map(|stored| {
            let instance = Instance {
                status: InstanceStatus::stopped(stored.spec.clone()),
                was_running: stored.was_running,
                log: Arc::new(InstanceLog::new(ring_lines)),
                run: None,
                starting: None,
            };
            (stored.spec.name, instance)
        })
        .collect();
    (instances, warning)
}

fn unknown(name: &str) -> EngineError {
    EngineError::NotFound {
        what: "instance",
        id: name.to_owned(),
    }
}

/// No two instances may claim one port, as llama-server's or as endpoint.
fn check_port_unique(instances: &BTreeMap<String, Instance>, spec: &InstanceSpec) -> Result<()> {
    let wanted = [("port", spec.port), ("endpoint_port", spec.endpoint_port)];
    for (field, port) in wanted {
        let Some(port) = port else {
            continue;
        };
        let taken = instances.values().find(|other| {
            let other = &other.status.spec;
            other.name != spec.name
                && (other.port == Some(port) || other.endpoint_port == Some(port))
        });
        if let Some(other) = taken {
            return Err(EngineError::InvalidInput {
                field,
                problem: format!(
                    "port {port} belongs to the instance `{}`",
                    other.status.spec.name
                ),
            });
        }
    }
    Ok(())
}

/// The keys llama-server accepts (see `prepare`), mode 0600.
fn api_key_path(state_dir: &Path, name: &str) -> PathBuf {
    state_dir.join(format!("llama-{name}.key"))
}

#[cfg(test)]
mod status_tests;
