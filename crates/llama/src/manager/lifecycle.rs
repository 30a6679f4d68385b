//! Starting, stopping, restarting and restoring servers: one owner per instance,
//! the endpoint opened first, the launch prepared (binary, flags, port, memory,
//! keys), the supervisor started; stops cut the answers under way first.

use super::*;

impl LlamaManager {
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

    /// What `name` would need if started with `budget` free: its `auto` fields
    /// fitted to that budget, measured where llama-server already reported this
    /// model and configuration. The router makes this much room before a start.
    /// `None` when Switchyard cannot read the model's shape (llama-server's own
    /// defaults then apply); `INSUFFICIENT_RESOURCES` when even `budget` is short.
    pub async fn planned_need(
        &self,
        name: &str,
        budget: switchyard_estimate::Budget,
    ) -> Result<Option<switchyard_estimate::LlamaEstimate>> {
        let spec = self.status(name)?.spec;
        let (_, _, resolved) = self.resolve_plan(&spec, Some(budget), 0).await?;
        Ok(resolved.estimate)
    }

    /// The binary, what it supports, and `spec` resolved against `free` memory
    /// (read now when `None`).
    async fn resolve_plan(
        &self,
        spec: &InstanceSpec,
        free: Option<switchyard_estimate::Budget>,
        port: u16,
    ) -> Result<(PathBuf, BinaryFacts, plan::Resolved)> {
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
        let calibration = lock(&self.shared.calibration).clone();
        let environment = environment.clone();
        let (free, suggested_context) = tokio::task::spawn_blocking(move || {
            (
                free.unwrap_or_else(|| environment.free_memory()),
                environment.suggested_context(),
            )
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
        Ok((binary_path, facts, resolved))
    }

    /// Everything decided before a spawn: binary, flags, port, configuration.
    async fn prepare(&self, spec: &InstanceSpec) -> Result<Launch> {
        let port = ports::claim(crate::LOOPBACK, spec.port)?;
        let (binary_path, facts, resolved) = self.resolve_plan(spec, None, port).await?;
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
        let own_key = switchyard_base::secrets::random_token()?;
        let key_file = api_key_path(&self.shared.state_dir, &spec.name);
        let keys: Vec<&str> = spec
            .api_key
            .iter()
            .map(String::as_str)
            .chain([own_key.as_str()])
            .collect();
        switchyard_base::secrets::write_lines(&key_file, &keys)?;
        plan.api_key_file = Some(key_file);
        let slot_folder = self.slot_folder(spec, &facts, &plan);
        plan.slot_save_path = slot_folder.as_ref().map(|folder| folder.path.clone());
        self.shared
            .endpoints
            .set_server_key(&spec.name, spec.api_key.is_none().then(|| own_key.clone()));
        Ok(Launch {
            server_key: own_key,
            slot_folder,
            name: spec.name.clone(),
            plan,
            flags: facts.flags,
            auto_port: spec.port.is_none(),
            model_key: spec.measurement_key(),
            backend: resolved.backend,
            estimate: resolved.estimate,
            notes: resolved.notes,
        })
    }

    /// The folder this launch keeps its conversations in across stops, when the
    /// binary can save them: given even while saving is off, so that turning it
    /// on applies to the servers already running (a folder that cannot be made
    /// only turns saving off for this run).
    fn slot_folder(
        &self,
        spec: &InstanceSpec,
        facts: &BinaryFacts,
        plan: &crate::args::LaunchPlan,
    ) -> Option<crate::saved_slots::SlotFolder> {
        if !facts.flags.knows("--slot-save-path") {
            return None;
        }
        match self.shared.slot_store().prepare(&spec.name, plan) {
            Ok(folder) => Some(folder),
            Err(error) => {
                tracing::warn!(instance = spec.name, %error, "cannot prepare the folder for saved conversations: this run keeps none");
                None
            }
        }
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
            flags: SupportedFlags::probe_recorded(binary, Some(&self.shared.state_dir)).await,
            backend: crate::devices::probe_backend(binary, Some(&self.shared.state_dir)).await,
        };
        lock(&self.shared.binary_facts).insert(binary.to_path_buf(), (stamp, facts.clone()));
        facts
    }

    /// Stops the instance (SIGTERM, a second SIGTERM, SIGKILL, each after its
    /// deadline) and returns once the process is gone and its port free.
    pub async fn stop(&self, name: &str) -> Result<InstanceStatus> {
        self.end_run(name, false, CutReason::Stopping, false).await
    }

    /// Stops the server like [`Self::stop`], saving its conversations first so
    /// that the next start with the same configuration has them: the router
    /// unloads a model this way (to make room, or idle).
    pub async fn unload(&self, name: &str) -> Result<InstanceStatus> {
        self.end_run(name, false, CutReason::Stopping, true).await
    }

    /// Stops the server like [`Self::unload`] but keeps the person's intent to run
    /// it: the orchestrator pauses it for an image, and an app closed meanwhile
    /// starts it again at the next launch.
    pub async fn pause(&self, name: &str) -> Result<InstanceStatus> {
        self.end_run(name, true, CutReason::PausedForImage, true)
            .await
    }

    /// Ends the running server. Requests still being answered are cut first (see
    /// `Endpoints::cut`): llama-server then has nothing to finish and ends on the
    /// first SIGTERM at once, instead of after the deadline for a second one.
    /// With `save_slots`, its conversations are saved before the signal (within
    /// the save deadline, which the stop's deadline here makes room for).
    async fn end_run(
        &self,
        name: &str,
        keep_intent: bool,
        cut: CutReason,
        save_slots: bool,
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
            run.cancel
                .stop(endpoints.answers_were_cut(name), save_slots);
            let policy = self.policy();
            let stop = policy.stop;
            let saving = if save_slots {
                policy.slots.save_deadline
            } else {
                Duration::ZERO
            };
            let deadline = saving + stop.graceful + stop.after_second_term + STOP_SLACK;
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
            self.end_run(name, false, CutReason::Restarting, true)
                .await?;
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
            let _ = self.end_run(&name, true, CutReason::Closing, false).await;
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
}
