//! One task per started instance: it spawns the server, follows its health, sees
//! its exit the moment it happens (it awaits the child, it does not poll), restarts
//! it with backoff up to the start limit, and stops it in steps when asked.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::process::Command;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::Shared;
use crate::args::{redact, LaunchPlan};
use crate::flags::SupportedFlags;
use crate::output::{pump, OutputSink};
use crate::policy::{StartHistory, StopPolicy};
use crate::ports;
use crate::saved_slots::{
    restore_slots, save_slots, ServerAccess, SlotAction, SlotFolder, SlotsReport,
};
use crate::state::{InstanceState, RunningConfig};
use switchyard_base::errors::{EngineError, Result};
use switchyard_estimate::{parse_llama_log, Backend, LlamaEstimate};
use switchyard_process::{
    describe_exit, spawn_guarded, stop_child, ChildKind, PidFile, StopOutcome,
};

/// The command line as the log and the status show it: the API key hidden, and the
/// person's extra arguments (the last `extra` ones) without their values, which may
/// be tokens.
fn shown_args(args: &[String], extra: usize) -> Vec<String> {
    let own = args.len().saturating_sub(extra);
    let mut shown = redact(&args[..own]);
    shown.extend(switchyard_base::redact::extra_args(&args[own..]));
    shown
}

/// How long the output readers may take to deliver a dead server's last lines.
const DRAIN_GRACE: Duration = Duration::from_millis(500);

/// Everything one supervised instance runs with.
#[derive(Debug)]
pub struct Launch {
    pub name: String,
    pub plan: LaunchPlan,
    pub flags: SupportedFlags,
    /// Ports chosen by Switchyard may change at a restart if taken meanwhile.
    pub auto_port: bool,
    pub model_key: String,
    pub backend: Backend,
    pub estimate: Option<LlamaEstimate>,
    pub notes: Vec<String>,
    /// The key Switchyard's own calls to the server's port send.
    pub server_key: String,
    /// Where this run's conversations are saved and restored from (`None`: not).
    pub slot_folder: Option<SlotFolder>,
}

/// How one run of the server ended.
enum RunEnd {
    /// Asked to stop.
    Stopped(StopOutcome),
    /// It ended by itself (or never started).
    Ended {
        error: EngineError,
        was_healthy: bool,
    },
}

enum Probe {
    Ready,
    Loading,
    Down,
}

/// How the manager tells a supervisor to stop its server.
#[derive(Debug, Clone, Default)]
pub struct StopSignal {
    token: CancellationToken,
    /// The endpoint cut the answers under way: the server has nothing left to
    /// finish, so the second SIGTERM (which ends it at once) need not wait.
    answers_cut: Arc<AtomicBool>,
    /// Its conversations are saved before the signal (a pause, an unload, a
    /// restart), not dropped (a stop, the app closing).
    save_slots: Arc<AtomicBool>,
}

impl StopSignal {
    pub fn stop(&self, answers_cut: bool, save_slots: bool) {
        self.answers_cut.store(answers_cut, Ordering::SeqCst);
        self.save_slots.store(save_slots, Ordering::SeqCst);
        self.token.cancel();
    }

    fn wants_slots_saved(&self) -> bool {
        self.save_slots.load(Ordering::SeqCst)
    }

    async fn cancelled(&self) {
        self.token.cancelled().await;
    }

    fn answers_were_cut(&self) -> bool {
        self.answers_cut.load(Ordering::SeqCst)
    }

    /// The stop's steps: llama-server whose requests were cut still waits up to a
    /// second on its first SIGTERM (its request threads poll their closed
    /// connections once a second), so the second comes after a moment only.
    fn policy(&self, stop: &StopPolicy) -> StopPolicy {
        if self.answers_were_cut() {
            StopPolicy {
                graceful: stop.graceful.min(stop.after_cut),
                ..stop.clone()
            }
        } else {
            stop.clone()
        }
    }
}

pub async fn supervise(
    shared: Arc<Shared>,
    mut launch: Launch,
    cancel: StopSignal,
    ready: oneshot::Sender<Result<()>>,
) {
    let mut ready = Some(ready);
    let mut history = StartHistory::default();
    let name = launch.name.clone();
    loop {
        history.record(Instant::now());
        let end = run_once(&shared, &mut launch, &cancel, &mut ready).await;
        let (error, was_healthy) = match end {
            RunEnd::Stopped(outcome) => {
                let reason = match outcome {
                    StopOutcome::Graceful => "stopped",
                    StopOutcome::SecondTerm if cancel.answers_were_cut() => {
                        "stopped (its answers under way were cut: a second SIGTERM ended it at once)"
                    }
                    StopOutcome::SecondTerm => "stopped (it was busy: a second SIGTERM ended it)",
                    StopOutcome::Killed => "stopped (it did not end on SIGTERM and was killed)",
                };
                shared.transition(&name, InstanceState::Stopped, reason, None, |status| {
                    status.pid = None;
                    status.endpoint = None;
                });
                if let Some(ready) = ready.take() {
                    let _ = ready.send(Err(EngineError::Cancelled));
                }
                return;
            }
            RunEnd::Ended { error, was_healthy } => (error, was_healthy),
        };
        if let Some(ready) = ready.take() {
            // The person's own start failed: tell them now, retrying a model that
            // cannot load would only hide the reason.
            debug_assert!(!was_healthy);
            shared.transition(
                &name,
                InstanceState::Failed,
                "it did not start",
                Some(&error),
                |status| {
                    status.pid = None;
                    status.endpoint = None;
                },
            );
            shared.forget_running(&name);
            let _ = ready.send(Err(error));
            return;
        }
        shared.transition(
            &name,
            InstanceState::Crashed,
            &error.to_string(),
            Some(&error),
            |status| {
                status.pid = None;
                status.endpoint = None;
            },
        );
        let policy = shared.policy().restart;
        if !policy.enabled {
            return;
        }
        let recent = history.recent(Instant::now(), policy.window);
        if recent >= policy.start_limit {
            let failed = EngineError::ServerFailed {
                instance: name.clone(),
                problem: format!(
                    "{recent} starts within {} s; the last: {error}",
                    policy.window.as_secs()
                ),
            };
            shared.transition(
                &name,
                InstanceState::Failed,
                "start limit reached",
                Some(&failed),
                |_| {},
            );
            shared.forget_running(&name);
            return;
        }
        let delay = policy.backoff(recent);
        let reason = format!(
            "restarting in {} ({} of at most {} starts within {} s){}",
            human_delay(delay),
            recent + 1,
            policy.start_limit,
            policy.window.as_secs(),
            if was_healthy {
                ""
            } else {
                "; the last restart did not get healthy"
            }
        );
        shared.transition(
            &name,
            InstanceState::Restarting,
            &reason,
            Some(&error),
            |status| {
                status.restarts += 1;
            },
        );
        tokio::select! {
            () = cancel.cancelled() => {
                shared.transition(&name, InstanceState::Stopped, "stopped while waiting to restart", None, |_| {});
                return;
            }
            () = tokio::time::sleep(delay) => {}
        }
    }
}

async fn run_once(
    shared: &Arc<Shared>,
    launch: &mut Launch,
    cancel: &StopSignal,
    ready: &mut Option<oneshot::Sender<Result<()>>>,
) -> RunEnd {
    let name = launch.name.clone();
    let first = ready.is_some();
    // The first start checked the port before anything was spawned; a restart
    // checks again (another program may have taken it meanwhile).
    if !first {
        let free = ports::is_free(&launch.plan.host, launch.plan.port).unwrap_or(false);
        if !free {
            if launch.auto_port {
                match ports::pick_free(&launch.plan.host) {
                    Ok(port) => launch.plan.port = port,
                    Err(error) => return ended(error, false),
                }
            } else {
                return ended(
                    EngineError::PortInUse {
                        host: launch.plan.host.clone(),
                        port: launch.plan.port,
                    },
                    false,
                );
            }
        }
    }
    let plan = &launch.plan;
    let args = plan.args(&launch.flags);
    let sink = Arc::new(OutputSink::new(
        &name,
        shared.instance_log(&name),
        shared.log_file(&name),
        shared.events.clone(),
    ));
    {
        // Each request's generation speed, for later predictions of this model
        // and configuration.
        let (shared, model_key, config, backend) = (
            Arc::clone(shared),
            launch.model_key.clone(),
            launch.plan.config.clone(),
            launch.backend,
        );
        sink.on_generation_speed(move |speed| {
            shared.record_speed(&model_key, &config, backend, speed);
        });
    }
    let shown_args = shown_args(&args, plan.extra_args.len());
    sink.note(&format!(
        "starting {} {}",
        plan.binary.display(),
        shown_args.join(" ")
    ));
    let mut command = Command::new(&plan.binary);
    command
        .args(&args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = match spawn_guarded(command).await {
        Ok(child) => child,
        Err(error) => {
            let error = EngineError::ServerStartFailed {
                instance: name.clone(),
                exit: "not started".into(),
                details: format!("{}: {error}", plan.binary.display()),
            };
            return ended(error, false);
        }
    };
    let pid = child.id().unwrap_or(0);
    // Removed however this run ends (each end below has reaped the process first).
    let _pid_file = PidFile::record(
        &shared.state_dir,
        ChildKind::LlamaServer,
        Some(&name),
        pid,
        &plan.binary,
        plan.port,
    );
    let mut readers = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        readers.push(tokio::spawn(pump(stdout, sink.clone())));
    }
    if let Some(stderr) = child.stderr.take() {
        readers.push(tokio::spawn(pump(stderr, sink.clone())));
    }
    let base = ports::connect_base(&plan.host, plan.port);
    let endpoint = format!("http://{}:{}", display_host(&plan.host), plan.port);
    let running = RunningConfig {
        config: plan.config.clone(),
        threads: plan.threads,
        host: plan.host.clone(),
        port: plan.port,
        reasoning: plan.reasoning,
        role: plan.role,
        args: shown_args,
        binary: plan.binary.display().to_string(),
        estimate: launch.estimate.clone(),
        notes: launch.notes.clone(),
    };
    let started_at = shared.clock.now_ms();
    shared.transition(
        &name,
        InstanceState::Starting,
        &format!("spawned (pid {pid}) on port {}", plan.port),
        None,
        |status| {
            status.pid = Some(pid);
            status.endpoint = Some(endpoint);
            status.running = Some(running);
            status.started_at_ms = Some(started_at);
            status.error = None;
        },
    );

    let policy = shared.policy();
    let spawned = Instant::now();
    let mut phase = InstanceState::Starting;
    let mut failures = 0u32;
    let mut unhealthy_since: Option<Instant> = None;
    loop {
        let interval = if matches!(phase, InstanceState::Healthy | InstanceState::Unhealthy) {
            policy.health.healthy_interval
        } else {
            policy.health.loading_interval
        };
        let check = async {
            tokio::time::sleep(interval).await;
            probe(shared, &base, policy.health.probe_timeout).await
        };
        tokio::select! {
            biased;
            () = cancel.cancelled() => {
                shared.transition(&name, InstanceState::Stopping, "stop requested", None, |_| {});
                if cancel.wants_slots_saved() && matches!(phase, InstanceState::Healthy | InstanceState::Unhealthy) {
                    save_conversations(shared, launch, &base).await;
                }
                let (outcome, status) = stop_child(&mut child, &cancel.policy(&policy.stop)).await;
                sink.note(&format!("stopped: {}", describe_exit(status)));
                drain(readers).await;
                return RunEnd::Stopped(outcome);
            }
            status = child.wait() => {
                let status = status.ok();
                drain(readers).await;
                let exit = describe_exit(status);
                sink.note(&format!("llama-server ended: {exit}"));
                let details = sink.last_words();
                let was_healthy = !matches!(phase, InstanceState::Starting | InstanceState::Loading);
                let error = if was_healthy {
                    EngineError::ServerCrashed { instance: name.clone(), exit, details }
                } else {
                    EngineError::ServerStartFailed { instance: name.clone(), exit, details }
                };
                return ended(error, was_healthy);
            }
            result = check => {
                match result {
                    Probe::Ready => {
                        failures = 0;
                        unhealthy_since = None;
                        if phase != InstanceState::Healthy {
                            let reason = if matches!(phase, InstanceState::Unhealthy) {
                                "answers again".to_owned()
                            } else {
                                format!("ready after {} ms", spawned.elapsed().as_millis())
                            };
                            if matches!(phase, InstanceState::Starting | InstanceState::Loading) {
                                calibrate(shared, launch, &sink, pid);
                                // Before the held requests are let through: the first
                                // finds its conversation's prefix already there.
                                restore_conversations(shared, launch, &base).await;
                            }
                            phase = InstanceState::Healthy;
                            shared.transition(&name, phase, &reason, None, |_| {});
                            if let Some(ready) = ready.take() {
                                let _ = ready.send(Ok(()));
                            }
                        }
                    }
                    Probe::Loading if phase == InstanceState::Starting => {
                        phase = InstanceState::Loading;
                        shared.transition(&name, phase, "loading the model (/health answers 503)", None, |_| {});
                    }
                    Probe::Loading | Probe::Down => {
                        if matches!(phase, InstanceState::Healthy | InstanceState::Unhealthy) {
                            failures += 1;
                            if failures >= policy.health.unhealthy_after && phase == InstanceState::Healthy {
                                phase = InstanceState::Unhealthy;
                                unhealthy_since = Some(Instant::now());
                                let reason = format!("{failures} health checks in a row failed");
                                shared.transition(&name, phase, &reason, None, |_| {});
                            }
                            let hung_for = unhealthy_since.map(|since| since.elapsed());
                            if let (Some(hung_for), Some(limit)) = (hung_for, policy.health.restart_unhealthy_after) {
                                if hung_for >= limit {
                                    sink.note(&format!("no answer for {} s: ending it", hung_for.as_secs()));
                                    let (_, status) = stop_child(&mut child, &policy.stop).await;
                                    drain(readers).await;
                                    let error = EngineError::ServerCrashed {
                                        instance: name.clone(),
                                        exit: format!("ended by Switchyard, {}", describe_exit(status)),
                                        details: format!(
                                            "it did not answer /health for {:.1} s",
                                            hung_for.as_secs_f64()
                                        ),
                                    };
                                    return ended(error, true);
                                }
                            }
                        } else if spawned.elapsed() > policy.health.load_timeout {
                            let _ = stop_child(&mut child, &policy.stop).await;
                            drain(readers).await;
                            let error = EngineError::ServerStartFailed {
                                instance: name.clone(),
                                exit: "ended by Switchyard".into(),
                                details: format!(
                                    "not ready within {} s; its last lines: {}",
                                    policy.health.load_timeout.as_secs(),
                                    sink.last_words()
                                ),
                            };
                            return ended(error, false);
                        }
                    }
                }
            }
        }
    }
}

/// `50 ms`, `2 s`, `1.5 s`.
fn human_delay(delay: Duration) -> String {
    if delay < Duration::from_secs(1) {
        format!("{} ms", delay.as_millis())
    } else if delay.subsec_millis() == 0 {
        format!("{} s", delay.as_secs())
    } else {
        format!("{:.1} s", delay.as_secs_f64())
    }
}

fn ended(error: EngineError, was_healthy: bool) -> RunEnd {
    RunEnd::Ended { error, was_healthy }
}

fn display_host(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

async fn drain(readers: Vec<tokio::task::JoinHandle<()>>) {
    for mut reader in readers {
        if tokio::time::timeout(DRAIN_GRACE, &mut reader)
            .await
            .is_err()
        {
            reader.abort();
        }
    }
}

async fn probe(shared: &Shared, base: &str, timeout: Duration) -> Probe {
    let response = shared
        .http
        .get(format!("{base}/health"))
        .timeout(timeout)
        .send()
        .await;
    match response.map(|response| response.status().as_u16()) {
        Ok(200) => Probe::Ready,
        Ok(503) => Probe::Loading,
        _ => Probe::Down,
    }
}

/// Saves the slots of a server about to stop, within the save deadline (a slow or
/// failing save is reported and the stop goes on).
async fn save_conversations(shared: &Shared, launch: &Launch, base: &str) {
    let policy = shared.policy().slots;
    let (Some(folder), true) = (&launch.slot_folder, policy.enabled) else {
        return;
    };
    if let Err(error) = folder.ensure() {
        shared.report_slots(SlotsReport::failed(
            &launch.name,
            SlotAction::Save,
            error.to_string(),
        ));
        return;
    }
    let deadline = tokio::time::Instant::now() + policy.save_deadline;
    let access = ServerAccess {
        http: &shared.http,
        base,
        key: &launch.server_key,
    };
    let report = save_slots(access, &launch.name, folder, deadline).await;
    shared.report_slots(report);
}

/// Reads the slots saved by an earlier run of the same configuration back into
/// a server that has just become ready.
async fn restore_conversations(shared: &Shared, launch: &Launch, base: &str) {
    let policy = shared.policy().slots;
    let (Some(folder), true) = (&launch.slot_folder, policy.enabled) else {
        return;
    };
    let deadline = tokio::time::Instant::now() + policy.restore_deadline;
    let access = ServerAccess {
        http: &shared.http,
        base,
        key: &launch.server_key,
    };
    let report = restore_slots(access, &launch.name, folder, deadline).await;
    shared.report_slots(report);
}

/// Hands what llama-server reported at load to the estimator's calibration.
fn calibrate(shared: &Shared, launch: &Launch, sink: &OutputSink, pid: u32) {
    let startup = sink.finish_startup();
    let mut measured = parse_llama_log(&startup);
    measured.rss_bytes = resident_bytes(pid);
    if !measured.is_empty() {
        shared.record_measurement(
            &launch.model_key,
            &launch.plan.config,
            launch.backend,
            measured,
        );
    }
    shared.update(&launch.name, |status| status.measured = Some(measured));
}

/// VmRSS from `/proc/<pid>/status` (Linux).
fn resident_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
