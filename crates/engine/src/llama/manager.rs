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
use super::endpoint::{CutReason, EndpointActivity, EndpointPolicy, Endpoints};
use super::environment::LaunchEnvironment;
use super::flags::SupportedFlags;
use super::logs::{LogLine, RotatingFile};
use super::output::InstanceLog;
use super::ownership::{self, Owner, OwnerKind, Ownership};
use super::pidfile::{self, EndedLeftover};
use super::plan::{self, backend_of, Inputs};
use super::policy::SupervisionPolicy;
use super::ports;
use super::spec::InstanceSpec;
use super::state::{InstanceState, InstanceStatus, StateChange};
use super::store::{self, StoredInstance, StoredInstances};
use super::supervisor::{supervise, Launch, StopSignal};
use crate::binaries::{BinaryKind, BinaryStatus};
use crate::clock::Clock;
use crate::errors::{EngineError, ErrorReport, Result};
use crate::estimate::{Backend, Calibration, LlamaConfig, MeasuredMemory};
use crate::events::{EngineEvent, EventBus};
use crate::locks::{lock, read, write};
use crate::services::{llm_service_state, ServiceKind, StatusBoard};

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
    pub(crate) events: EventBus,
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
        self.events.emit(EngineEvent::LlamaState(event));
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
        self.events.emit(EngineEvent::LlamaInstances { instances });
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
        events: EventBus,
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

    /// The orchestrator is about to stop `name` and will bring it back: its
    /// endpoint holds requests instead of refusing them until it is healthy.
    pub fn hold_requests(&self, name: &str) {
        self.shared
            .endpoints
            .hold(name, "the LLM is paused for an image");
    }

    /// The orchestrator's hold began: waits until the requests being forwarded to
    /// `name` have been answered, at most until `deadline`, then cuts those left
    /// (they are sent again once the server is back, or a stream under way ends
    /// with an error event). Returns how many were cut.
    pub async fn drain_requests(&self, name: &str, deadline: tokio::time::Instant) -> u64 {
        self.shared
            .endpoints
            .drain(name, deadline, CutReason::PausedForImage)
            .await
    }

    /// Ends a hold without the server coming back (the reload failed, or the
    /// person took over): waiting requests get the reason.
    pub fn release_requests(&self, name: &str) {
        self.shared.endpoints.release(name);
    }

    /// The origins of browser apps every endpoint lets in (the `allowed_origins`
    /// setting); shared, so setting it applies at once.
    pub fn allowed_origins(&self) -> crate::net::guard::AllowedOrigins {
        self.shared.endpoints.allowed_origins()
    }

    /// Bytes of request bodies the endpoints hold now (held and in-flight
    /// requests keep theirs until answered).
    pub fn request_bytes_held(&self) -> usize {
        self.shared.endpoints.body_bytes_held()
    }

    /// The endpoint's counters, once it listens.
    pub fn endpoint_activity(&self, name: &str) -> Option<EndpointActivity> {
        self.shared.endpoints.activity(name)
    }

    /// Requests held on any endpoint now (clients waiting for a paused LLM).
    pub fn requests_waiting(&self) -> u64 {
        self.shared.endpoints.waiting()
    }

    /// Requests being answered on any endpoint now.
    pub fn requests_in_flight(&self) -> u64 {
        self.shared.endpoints.in_flight()
    }

    /// Requests held or being answered on any endpoint now.
    pub fn requests_busy(&self) -> u64 {
        self.shared.endpoints.busy()
    }

    pub fn policy(&self) -> SupervisionPolicy {
        self.shared.policy()
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
        self.shared.endpoints.remove(name);
        let _ = std::fs::remove_file(api_key_path(&self.shared.state_dir, name));
        self.shared.persist();
        self.shared.announce_list();
        Ok(())
    }

    /// Starts the instance and returns once it is healthy, or with the reason it
    /// could not start (`INSTANCE_OWNED` when another Switchyard process runs it,
    /// `PORT_IN_USE` before anything is spawned, llama-server's own message when it
    /// exits while loading, `INSUFFICIENT_RESOURCES`). Starting a running instance
    /// returns its status.
    pub async fn start(&self, name: &str) -> Result<InstanceStatus> {
        let outcome = self.start_owned(name).await;
        if matches!(outcome, Err(EngineError::InstanceOwned { .. })) {
            // The window shows the owner from now on, not only this error.
            self.refresh_owners();
        }
        outcome
    }

    /// Waits for the start already on its way in this process (another caller's:
    /// the daemon's autostart, a second `up`), which [`Self::start`] does not: its
    /// status once it served, or why it is not running.
    pub async fn wait_for_start(&self, name: &str) -> Result<InstanceStatus> {
        let waited = self.policy().health.load_timeout + START_WAIT_SLACK;
        let deadline = tokio::time::Instant::now() + waited;
        loop {
            let (status, runs_here) = {
                let instances = lock(&self.shared.instances);
                let instance = instances.get(name).ok_or_else(|| unknown(name))?;
                (instance.status.clone(), instance.runs_here())
            };
            // Unhealthy comes only after healthy: that start has ended too.
            if matches!(
                status.state,
                InstanceState::Healthy | InstanceState::Unhealthy
            ) {
                return Ok(status);
            }
            if !runs_here {
                return Err(match status.error {
                    Some(error) => EngineError::ServerFailed {
                        instance: name.to_owned(),
                        problem: error.message,
                    },
                    None => EngineError::ServerNotRunning {
                        instance: name.to_owned(),
                    },
                });
            }
            if tokio::time::Instant::now() > deadline {
                return Err(EngineError::TimedOut {
                    what: format!("starting llama-server `{name}`"),
                    seconds: waited.as_secs(),
                });
            }
            tokio::time::sleep(START_WAIT_POLL).await;
        }
    }

    /// Sets each instance's `owned_by` to the other process that holds its lock
    /// now (none for those this process runs), and announces the list when that
    /// changed. The app calls it while it watches for a daemon.
    pub fn refresh_owners(&self) {
        let changed = {
            let mut instances = lock(&self.shared.instances);
            let mut changed = false;
            for (name, instance) in instances.iter_mut() {
                let owner = if instance.runs_here() {
                    None
                } else {
                    ownership::current_owner(&self.shared.state_dir, name)
                };
                if instance.status.owned_by != owner {
                    instance.status.owned_by = owner;
                    changed = true;
                }
            }
            changed
        };
        if changed {
            self.shared.announce_list();
        }
    }

    async fn start_owned(&self, name: &str) -> Result<InstanceStatus> {
        if self.shared.closing.load(Ordering::SeqCst) {
            return Err(EngineError::ShuttingDown);
        }
        let spec = {
            let mut instances = lock(&self.shared.instances);
            let instance = instances.get_mut(name).ok_or_else(|| unknown(name))?;
            let running = instance
                .run
                .as_ref()
                .is_some_and(|run| !run.task.is_finished());
            if running || instance.starting.is_some() {
                return Ok(instance.status.clone());
            }
            instance.run = None;
            // Before anything else: a server another Switchyard runs is not ours
            // to start (its port check would only say "port in use").
            let me = Owner::this_process(*read(&self.shared.owner_kind));
            instance.starting = Some(ownership::claim(&self.shared.state_dir, name, &me)?);
            instance.status.owned_by = None;
            instance.status.spec.clone()
        };
        // A start that cannot open its endpoint lets its claim go (below).
        let prepared = match self.open_endpoint(&spec) {
            Ok(()) => self.prepare(&spec).await,
            Err(error) => Err(error),
        };
        let claimed = lock(&self.shared.instances)
            .get_mut(name)
            .and_then(|instance| instance.starting.take());
        let (launch, Some(claimed)) = (prepared?, claimed) else {
            // Removed while it prepared.
            return Err(unknown(name));
        };
        let cancel = StopSignal::default();
        let (ready, answer) = oneshot::channel();
        {
            let mut instances = lock(&self.shared.instances);
            let instance = instances.get_mut(name).ok_or_else(|| unknown(name))?;
            if instance.run.is_some() {
                // Another start won the race while this one prepared.
                return Ok(instance.status.clone());
            }
            if self.shared.closing.load(Ordering::SeqCst) {
                return Err(EngineError::ShuttingDown);
            }
            instance.was_running = true;
            instance.status.restarts = 0;
            instance.status.error = None;
            let task = tokio::spawn(supervise(
                self.shared.clone(),
                launch,
                cancel.clone(),
                ready,
            ));
            instance.run = Some(Run {
                cancel,
                task,
                _ownership: claimed,
            });
        }
        self.shared.persist();
        match answer.await {
            Ok(Ok(())) => self.status(name),
            Ok(Err(error)) => Err(error),
            Err(_) => Err(EngineError::Internal {
                problem: format!("the supervisor of `{name}` ended without an answer"),
            }),
        }
    }

    /// Makes the instance's stable endpoint listen (it stays up across stops for
    /// images, restarts and reloads). A free port chosen here is kept in the
    /// specification, so clients find it at the same address after the next launch.
    fn open_endpoint(&self, spec: &InstanceSpec) -> Result<()> {
        let address = self
            .shared
            .endpoints
            .ensure(&spec.name, &spec.host, spec.endpoint_port)?;
        let chosen = spec.endpoint_port.is_none();
        self.shared.update(&spec.name, |status| {
            if chosen {
                status.spec.endpoint_port = Some(address.port());
            }
            status.api_endpoint = Some(ports::connect_base(&spec.host, address.port()));
        });
        if chosen {
            self.shared.persist();
        }
        Ok(())
    }

    /// Everything decided before a spawn: binary, flags, port, configuration.
    async fn prepare(&self, spec: &InstanceSpec) -> Result<Launch> {
        let environment = &self.shared.environment;
        let chosen = read(&self.shared.binary).clone();
        let binary = chosen
            .or_else(|| environment.llama_binary())
            .ok_or_else(|| EngineError::BinaryUnavailable {
                kind: BinaryKind::LlamaServer.label().to_owned(),
                problem: "no llama-server has been set up yet".into(),
            })?;
        let binary_path = PathBuf::from(&binary.path);
        let facts = self.binary_facts(&binary_path).await;
        // A downloaded variant says its backend; the person's own build says it
        // through --list-devices.
        let backend = backend_of(binary.variant).or(facts.backend);
        let port = ports::claim(super::LOOPBACK, spec.port)?;
        let calibration = lock(&self.shared.calibration).clone();
        let environment = environment.clone();
        let (free, suggested_context) = tokio::task::spawn_blocking(move || {
            (environment.free_memory(), environment.suggested_context())
        })
        .await
        .map_err(|error| EngineError::Internal {
            problem: format!("reading free memory: {error}"),
        })?;
        let resolved = plan::resolve(
            spec,
            Inputs {
                binary: &binary_path,
                backend,
                free,
                suggested_context,
                calibration: &calibration,
                port,
            },
        )
        .await?;
        let mut plan = resolved.plan;
        // llama-server's own port answers only with a key, so a web page that finds
        // the port (it reflects any Origin in CORS) gets nothing: the person's key
        // when set (clients send it through the endpoint), and Switchyard's own for
        // this run, which the endpoint adds for clients of a keyless instance.
        if !facts.flags.knows("--api-key-file") {
            return Err(EngineError::BinaryUnavailable {
                kind: BinaryKind::LlamaServer.label().to_owned(),
                problem: format!(
                    "{} has no --api-key-file: it is too old to keep its port private (a key on its command line could be read by every local user); use a newer llama.cpp build",
                    binary_path.display()
                ),
            });
        }
        let own_key = crate::secrets::random_token()?;
        let key_file = api_key_path(&self.shared.state_dir, &spec.name);
        let keys: Vec<&str> = spec
            .api_key
            .iter()
            .map(String::as_str)
            .chain([own_key.as_str()])
            .collect();
        crate::secrets::write_lines(&key_file, &keys)?;
        plan.api_key_file = Some(key_file);
        self.shared
            .endpoints
            .set_server_key(&spec.name, spec.api_key.is_none().then_some(own_key));
        Ok(Launch {
            name: spec.name.clone(),
            plan,
            flags: facts.flags,
            auto_port: spec.port.is_none(),
            model_key: spec.model_key(),
            backend: resolved.backend,
            estimate: resolved.estimate,
            notes: resolved.notes,
        })
    }

    async fn binary_facts(&self, binary: &Path) -> BinaryFacts {
        let stamp: FileStamp = std::fs::metadata(binary)
            .map(|meta| (meta.len(), meta.modified().ok()))
            .unwrap_or((0, None));
        if let Some((cached, facts)) = lock(&self.shared.binary_facts).get(binary) {
            if *cached == stamp {
                return facts.clone();
            }
        }
        let facts = BinaryFacts {
            flags: SupportedFlags::probe(binary).await,
            backend: super::devices::probe_backend(binary).await,
        };
        lock(&self.shared.binary_facts).insert(binary.to_path_buf(), (stamp, facts.clone()));
        facts
    }

    /// Stops the instance (SIGTERM, a second SIGTERM, SIGKILL, each after its
    /// deadline) and returns once the process is gone and its port free.
    pub async fn stop(&self, name: &str) -> Result<InstanceStatus> {
        self.end_run(name, false, CutReason::Stopping).await
    }

    /// Stops the server like [`Self::stop`] but keeps the person's intent to run it:
    /// the orchestrator pauses it for an image, and an app closed meanwhile starts
    /// it again at the next launch.
    pub async fn pause(&self, name: &str) -> Result<InstanceStatus> {
        self.end_run(name, true, CutReason::PausedForImage).await
    }

    /// Ends the running server. Requests still being answered are cut first (see
    /// `Endpoints::cut`): llama-server then has nothing to finish and ends on the
    /// first SIGTERM at once, instead of after the deadline for a second one.
    async fn end_run(
        &self,
        name: &str,
        keep_intent: bool,
        cut: CutReason,
    ) -> Result<InstanceStatus> {
        let run = {
            let mut instances = lock(&self.shared.instances);
            let instance = instances.get_mut(name).ok_or_else(|| unknown(name))?;
            if !keep_intent {
                instance.was_running = false;
            }
            instance.run.take()
        };
        if !keep_intent {
            self.shared.persist();
        }
        if let Some(run) = run {
            let endpoints = &self.shared.endpoints;
            endpoints.cut(name, cut);
            run.cancel.stop(endpoints.answers_were_cut(name));
            let stop = self.policy().stop;
            let deadline = stop.graceful + stop.after_second_term + STOP_SLACK;
            let Run {
                mut task,
                _ownership: claim,
                ..
            } = run;
            if tokio::time::timeout(deadline, &mut task).await.is_err() {
                task.abort();
                tracing::error!(instance = name, "the supervisor did not stop in time");
            }
            // The claim goes only now, with the server gone.
            drop(claim);
        }
        let mut status = self.status(name)?;
        if status.state != InstanceState::Stopped && status.state != InstanceState::Failed {
            // A supervisor that had ended (crashed without restarts) leaves its last
            // state; stopping makes it plain stopped.
            self.shared
                .transition(name, InstanceState::Stopped, "stopped", None, |status| {
                    status.pid = None;
                    status.endpoint = None;
                });
            status = self.status(name)?;
        }
        Ok(status)
    }

    /// Stops and starts the server; requests wait for the new one meanwhile (a
    /// stream under way ends with an error event).
    pub async fn restart(&self, name: &str) -> Result<InstanceStatus> {
        let endpoints = &self.shared.endpoints;
        endpoints.hold(name, "the server is restarting");
        let restarted = async {
            self.end_run(name, false, CutReason::Restarting).await?;
            self.start(name).await
        }
        .await;
        if restarted.is_err() {
            endpoints.release(name);
        }
        restarted
    }

    /// Stops every server for the app's exit, remembering which ran so that
    /// [`Self::restore`] can start them at the next launch.
    pub async fn shutdown(&self) {
        self.shared.closing.store(true, Ordering::SeqCst);
        let names: Vec<String> = lock(&self.shared.instances).keys().cloned().collect();
        for name in names {
            let _ = self.end_run(&name, true, CutReason::Closing).await;
        }
        self.shared.endpoints.close_all().await;
        self.shared.persist();
    }

    /// Starts the instances that were running when the app last closed. Returns
    /// each one's outcome.
    pub async fn restore(&self) -> Vec<(String, Result<InstanceStatus>)> {
        let names: Vec<String> = lock(&self.shared.instances)
            .iter()
            .filter(|(_, instance)| instance.was_running)
            .map(|(name, _)| name.clone())
            .collect();
        let mut outcomes = Vec::new();
        for name in names {
            let outcome = self.start(&name).await;
            outcomes.push((name, outcome));
        }
        outcomes
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

    /// A streaming chat: each piece of the answer is announced as a
    /// `llama_chat_delta` event as it arrives; the whole answer (with thinking
    /// apart, and llama-server's tokens per second) is returned at the end.
    pub async fn chat(&self, name: &str, request: ChatRequest) -> Result<ChatOutcome> {
        let status = self.status(name)?;
        // Through the stable endpoint, like any client: a chat typed while the server
        // is paused for an image waits for it instead of failing.
        let (Some(endpoint), true) = (
            status.api_endpoint.as_ref(),
            self.shared.endpoints.accepts(name),
        ) else {
            return Err(EngineError::ServerNotRunning {
                instance: name.to_owned(),
            });
        };
        let url = format!("{endpoint}/v1/chat/completions");
        let chat_id = format!(
            "chat-{}",
            self.shared.chats.fetch_add(1, Ordering::Relaxed) + 1
        );
        let mut body = serde_json::json!({
            "messages": request.messages,
            "stream": true,
        });
        if let Some(max_tokens) = request.max_tokens {
            body["max_tokens"] = max_tokens.into();
        }
        if let Some(temperature) = request.temperature {
            body["temperature"] = temperature.into();
        }
        if let Some(seed) = request.seed {
            body["seed"] = seed.into();
        }
        let mut call = self.shared.http.post(&url).json(&body);
        if let Some(key) = &status.spec.api_key {
            call = call.bearer_auth(key);
        }
        let network = |error: reqwest::Error| EngineError::Network {
            url: url.clone(),
            problem: error.to_string(),
        };
        let mut response = call.send().await.map_err(network)?;
        if !response.status().is_success() {
            return Err(EngineError::HttpStatus {
                url: url.clone(),
                status: response.status().as_u16(),
            });
        }
        let mut outcome = ChatOutcome {
            chat_id: chat_id.clone(),
            content: String::new(),
            reasoning: String::new(),
            finish_reason: None,
            timings: None,
        };
        let mut decoder = SseDecoder::default();
        while let Some(bytes) = response.chunk().await.map_err(network)? {
            for payload in decoder.feed(&bytes) {
                if let Some((content, reasoning)) = apply_payload(&payload, &mut outcome)? {
                    self.shared
                        .events
                        .emit(EngineEvent::LlamaChatDelta(ChatDelta {
                            instance: name.to_owned(),
                            chat_id: chat_id.clone(),
                            content,
                            reasoning,
                        }));
                }
            }
        }
        self.shared.events.emit(EngineEvent::LlamaChatDone {
            instance: name.to_owned(),
            outcome: outcome.clone(),
        });
        Ok(outcome)
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
#[path = "manager_status_tests.rs"]
mod status_tests;
