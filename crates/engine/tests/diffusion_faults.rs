//! The image service with the FAKE sd of the test kit, for what the real one will
//! not do on demand: crash with stderr, run out of memory, hang (also deaf to
//! SIGTERM), and be fast enough for 50 concurrent requests. The fake prints the
//! lines real sd-cli prints (see `diffusion_progress.rs` for the real ones). The HTTP
//! guards (foreign Host, API key) and the generation gate are checked here too.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use switchyard_engine::diffusion::http::{FixedService, ImageApiKey, ImageHttp};
use switchyard_engine::diffusion::service::ImageServiceSetup;
use switchyard_engine::diffusion::{
    gate::BoxFuture, DiffusionModelFiles, GateDecision, GateOutcome, GateRequest, GenerationGate,
    ImageRequest, ImageService, ImageServiceOptions, JobStatus, RunnerKind, Stage,
};
use switchyard_engine::events::EventBus;
use switchyard_engine::net::guard::AllowedOrigins;
use switchyard_engine::{EngineEvent, ErrorCode};
use switchyard_testkit::tools::fake_sd;

const DEADLINE: Duration = Duration::from_secs(60);

struct Fixture {
    service: ImageService,
    events: EventBus,
    _dir: tempfile::TempDir,
}

async fn service(options: ImageServiceOptions, stop_grace: Duration) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    // The fake reads nothing from the model; it only has to exist.
    let model = dir.path().join("model.gguf");
    std::fs::write(&model, b"not read by the fake").unwrap();
    let events = EventBus::default();
    let service = ImageService::start(ImageServiceSetup {
        cli_binary: fake_sd(),
        files: DiffusionModelFiles::single(&model),
        components: Default::default(),
        options: ImageServiceOptions {
            runner: RunnerKind::Cli,
            ..options
        },
        work_dir: dir.path().join("work"),
        free_vram: Arc::new(|| None),
        events: events.emitter(),
        stop_grace,
        load_timeout: Duration::from_secs(30),
        pid_dir: None,
    })
    .await
    .unwrap();
    Fixture {
        service,
        events,
        _dir: dir,
    }
}

fn small(prompt: &str) -> ImageRequest {
    ImageRequest {
        width: 64,
        height: 64,
        steps: 3,
        seed: Some(10),
        ..ImageRequest::new(prompt)
    }
}

fn process_exists(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[tokio::test]
async fn a_crash_reports_the_exit_code_and_the_last_20_stderr_lines() {
    let fixture = service(ImageServiceOptions::default(), Duration::from_secs(2)).await;
    let id = fixture.service.submit(small("[crash] a cat")).unwrap();
    let view = fixture.service.wait(&id, DEADLINE).await.unwrap();
    assert_eq!(view.status, JobStatus::Error);
    let error = view.error.unwrap();
    assert_eq!(error.code, ErrorCode::GenerationFailed);
    let details = error.details.unwrap();
    assert_eq!(details.exit_code, Some(3));
    assert_eq!(details.exit, "exited with code 3");
    assert_eq!(details.stderr.len(), 20);
    assert!(
        details.stderr[0].ends_with("fake failure line 6"),
        "{:?}",
        details.stderr
    );
    assert!(details.stderr[19].ends_with("fake failure line 25"));
    assert!(!details.out_of_memory);
    assert!(
        error.message.contains("fake failure line 25"),
        "{}",
        error.message
    );
    fixture.service.stop().await;
}

#[tokio::test]
async fn out_of_memory_text_is_recognised() {
    let fixture = service(ImageServiceOptions::default(), Duration::from_secs(2)).await;
    let id = fixture.service.submit(small("[oom] a cat")).unwrap();
    let view = fixture.service.wait(&id, DEADLINE).await.unwrap();
    let error = view.error.unwrap();
    assert_eq!(error.code, ErrorCode::GenerationFailed);
    assert!(error.details.unwrap().out_of_memory);
    assert!(
        error.suggestion.contains("smaller size"),
        "{}",
        error.suggestion
    );
    fixture.service.stop().await;
}

/// Waits until the job is sampling and its sd process is known.
async fn wait_until_sampling(fixture: &Fixture, id: &str) -> u32 {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let mut events = fixture.events.subscribe();
    loop {
        let view = fixture.service.job(id).unwrap();
        if view.progress.stage == Stage::Sampling && view.progress.step >= 1 {
            if let Some(pid) = fixture.service.active_pid() {
                return pid;
            }
        }
        assert!(!view.status.is_finished(), "ended early: {view:?}");
        // The next progress event, or a re-check at the deadline.
        let _ = tokio::time::timeout_at(deadline, events.recv()).await;
        assert!(
            tokio::time::Instant::now() < deadline,
            "never reached sampling"
        );
    }
}

#[tokio::test]
async fn cancel_mid_sampling_ends_the_process_and_reports_cancelled() {
    let fixture = service(ImageServiceOptions::default(), Duration::from_secs(2)).await;
    let id = fixture.service.submit(small("[hang] a cat")).unwrap();
    let pid = wait_until_sampling(&fixture, &id).await;
    assert!(process_exists(pid));
    fixture.service.cancel(&id).unwrap();
    let view = fixture.service.wait(&id, DEADLINE).await.unwrap();
    assert_eq!(view.status, JobStatus::Cancelled);
    assert!(!process_exists(pid), "sd {pid} still exists");
    assert_eq!(fixture.service.active_pid(), None);
    fixture.service.stop().await;
}

#[tokio::test]
async fn an_sd_deaf_to_sigterm_is_killed_after_the_grace_period() {
    let grace = Duration::from_millis(500);
    let fixture = service(ImageServiceOptions::default(), grace).await;
    let id = fixture
        .service
        .submit(small("[hang-ignore-term] a cat"))
        .unwrap();
    let pid = wait_until_sampling(&fixture, &id).await;
    let cancelled_at = std::time::Instant::now();
    fixture.service.cancel(&id).unwrap();
    let view = fixture.service.wait(&id, DEADLINE).await.unwrap();
    assert_eq!(view.status, JobStatus::Cancelled);
    assert!(
        cancelled_at.elapsed() >= grace,
        "it waited for the grace period"
    );
    assert!(!process_exists(pid), "sd {pid} still exists");
    fixture.service.stop().await;
}

#[tokio::test]
async fn a_job_past_its_time_limit_is_stopped() {
    let fixture = service(
        ImageServiceOptions {
            job_timeout_secs: 1,
            ..ImageServiceOptions::default()
        },
        Duration::from_secs(2),
    )
    .await;
    let id = fixture.service.submit(small("[hang] a cat")).unwrap();
    let view = fixture.service.wait(&id, DEADLINE).await.unwrap();
    assert_eq!(view.status, JobStatus::Error);
    assert_eq!(view.error.unwrap().code, ErrorCode::TimedOut);
    assert_eq!(fixture.service.active_pid(), None);
    fixture.service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_requests_are_served_in_order_or_refused_none_lost() {
    let fixture = service(
        ImageServiceOptions {
            queue_capacity: 8,
            ..ImageServiceOptions::default()
        },
        Duration::from_secs(2),
    )
    .await;
    let http = ImageHttp::serve(
        Arc::new(FixedService(fixture.service.clone())),
        0,
        ImageApiKey::default(),
        AllowedOrigins::default(),
    )
    .await
    .unwrap();
    let base = format!("http://{}", http.address());
    // Job events in arrival order, collected as they come (the bus keeps a bounded
    // backlog; a lag would be a failure, not a silent gap).
    let log: Arc<Mutex<Vec<(String, JobStatus)>>> = Arc::default();
    let mut events = fixture.events.subscribe();
    let collector = tokio::spawn({
        let log = log.clone();
        async move {
            loop {
                match events.recv().await {
                    Ok(EngineEvent::ImageJobChanged(summary)) => {
                        log.lock().unwrap().push((summary.id, summary.status));
                    }
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                        panic!("the event collector missed {missed} events")
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        }
    });
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    // 20 steps make each job long enough (100 ms and more) for the queue to fill.
    let sends = (0..50).map(|n| {
        let client = client.clone();
        let url = format!("{base}/v1/images/generations");
        async move {
            let response = client
                .post(url)
                .json(&json!({"prompt": format!("request {n}"), "width": 64, "height": 64, "steps": 20, "seed": n}))
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (n, status, response.json::<Value>().await.unwrap())
        }
    });
    let answers = futures_join_all(sends).await;
    let mut accepted = Vec::new();
    let mut refused = 0;
    for (n, status, body) in &answers {
        match status {
            202 => accepted.push((body["id"].as_str().unwrap().to_owned(), *n)),
            429 => {
                assert_eq!(body["error"]["code"], "QUEUE_FULL", "{body}");
                refused += 1;
            }
            other => panic!("request {n}: HTTP {other} {body}"),
        }
    }
    assert_eq!(accepted.len() + refused, 50);
    assert!(refused > 0, "a queue of 8 cannot take 50 at once");
    assert!(
        accepted.len() >= 9,
        "the running job and 8 waiting: {}",
        accepted.len()
    );
    let mut ids: Vec<&String> = accepted.iter().map(|(id, _)| id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), accepted.len(), "ids are unique");

    // Every accepted job completes with its own image and seed.
    for (id, n) in &accepted {
        let view = fixture.service.wait(id, DEADLINE).await.unwrap();
        assert_eq!(view.status, JobStatus::Complete, "{view:?}");
        let images = view.result.unwrap().images;
        assert_eq!(images.len(), 1);
        assert_eq!(images[0].seed, i64::from(*n));
    }
    // They ran one at a time, in the order they were accepted.
    let deadline = std::time::Instant::now() + DEADLINE;
    let (started, finished) = loop {
        assert!(!collector.is_finished(), "collector ended early");
        let log = log.lock().unwrap().clone();
        let mut started: Vec<String> = Vec::new();
        let mut finished = Vec::new();
        for (id, status) in log {
            if status == JobStatus::Running && !started.contains(&id) {
                started.push(id.clone());
            }
            if status == JobStatus::Complete {
                finished.push(id);
            }
        }
        if finished.len() == accepted.len() {
            break (started, finished);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "events missing: {finished:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    collector.abort();
    let mut in_accept_order: Vec<String> = accepted.iter().map(|(id, _)| id.clone()).collect();
    in_accept_order.sort(); // ids carry the acceptance counter
    assert_eq!(started, in_accept_order);
    assert_eq!(finished, in_accept_order);
    http.stop().await;
    fixture.service.stop().await;
}

/// `join_all` without the futures crate: spawn and collect in order.
async fn futures_join_all<F, T>(futures: impl Iterator<Item = F>) -> Vec<T>
where
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for handle in handles {
        out.push(handle.await.unwrap());
    }
    out
}

#[tokio::test]
async fn foreign_hosts_and_origins_are_refused_and_the_api_key_is_checked() {
    let fixture = service(ImageServiceOptions::default(), Duration::from_secs(2)).await;
    let http = ImageHttp::serve(
        Arc::new(FixedService(fixture.service.clone())),
        0,
        ImageApiKey::fixed(Some("sekret".into())),
        AllowedOrigins::default(),
    )
    .await
    .unwrap();
    let base = format!("http://{}", http.address());
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let health = client.get(format!("{base}/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let body: Value = health.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["busy"], false);

    let rebinding = client
        .get(format!("{base}/health"))
        .header("Host", "evil.example:8081")
        .send()
        .await
        .unwrap();
    assert_eq!(rebinding.status(), 403);
    let foreign_origin = client
        .post(format!("{base}/v1/images/generations"))
        .header("Origin", "http://evil.example")
        .bearer_auth("sekret")
        .json(&json!({"prompt": "a cat"}))
        .send()
        .await
        .unwrap();
    assert_eq!(foreign_origin.status(), 403);

    let create = |key: Option<&str>| {
        let mut request = client
            .post(format!("{base}/v1/images/generations"))
            .header("Origin", "http://localhost:5173")
            .json(&json!({"prompt": "a cat", "width": 64, "height": 64, "steps": 1}));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        request.send()
    };
    assert_eq!(create(None).await.unwrap().status(), 401);
    assert_eq!(create(Some("wrong!")).await.unwrap().status(), 401);
    let accepted = create(Some("sekret")).await.unwrap();
    assert_eq!(accepted.status(), 202);
    let id = accepted.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    fixture.service.wait(&id, DEADLINE).await.unwrap();
    let polled = client
        .get(format!("{base}/v1/images/generations/{id}"))
        .bearer_auth("sekret")
        .send()
        .await
        .unwrap();
    let polled: Value = polled.json().await.unwrap();
    assert_eq!(polled["status"], "complete");
    assert_eq!(polled["progress"]["percent"], 100.0);
    assert_eq!(polled["result"]["images"][0]["width"], 64);

    let invalid = client
        .post(format!("{base}/v1/images/generations"))
        .bearer_auth("sekret")
        .json(&json!({"prompt": "a cat", "width": 100}))
        .send()
        .await
        .unwrap();
    assert_eq!(invalid.status(), 400);
    let missing = client
        .delete(format!("{base}/v1/images/generations/img_nope"))
        .bearer_auth("sekret")
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let openapi: Value = client
        .get(format!("{base}/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(openapi["openapi"], "3.1.0");
    assert!(openapi["paths"]["/v1/images/generations/{id}"]["delete"].is_object());
    http.stop().await;
    fixture.service.stop().await;
}

/// Records every call, to check the seam the orchestrator will use.
#[derive(Debug, Default)]
struct RecordingGate {
    calls: Mutex<Vec<String>>,
}

impl GenerationGate for RecordingGate {
    fn open<'a>(
        &'a self,
        first: &'a GateRequest,
    ) -> BoxFuture<'a, switchyard_engine::errors::Result<GateDecision>> {
        self.calls.lock().unwrap().push(format!(
            "open {} behind={}",
            first.job_id, first.queued_after
        ));
        Box::pin(async {
            Ok(GateDecision {
                release_after: true,
            })
        })
    }

    fn before_job<'a>(
        &'a self,
        job: &'a GateRequest,
    ) -> BoxFuture<'a, switchyard_engine::errors::Result<()>> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("job {}", job.job_id));
        Box::pin(async { Ok(()) })
    }

    fn close<'a>(&'a self, outcome: &'a GateOutcome) -> BoxFuture<'a, ()> {
        self.calls.lock().unwrap().push(format!(
            "close completed={} failed={} released={}",
            outcome.completed, outcome.failed, outcome.sd_memory_released
        ));
        Box::pin(async {})
    }
}

#[tokio::test]
async fn queued_jobs_share_one_gate_window() {
    let fixture = service(ImageServiceOptions::default(), Duration::from_secs(2)).await;
    let gate = Arc::new(RecordingGate::default());
    fixture.service.set_gate(gate.clone());
    // The first job hangs until cancelled, so the other two queue behind it.
    let first = fixture.service.submit(small("[hang] first")).unwrap();
    wait_until_sampling(&fixture, &first).await;
    let second = fixture.service.submit(small("second")).unwrap();
    let third = fixture.service.submit(small("[crash] third")).unwrap();
    fixture.service.cancel(&first).unwrap();
    for id in [&first, &second, &third] {
        fixture.service.wait(id, DEADLINE).await.unwrap();
    }
    // `close` comes after the last job's result: wait for it, not for time.
    let deadline = std::time::Instant::now() + DEADLINE;
    while !gate
        .calls
        .lock()
        .unwrap()
        .last()
        .is_some_and(|call| call.starts_with("close"))
    {
        assert!(std::time::Instant::now() < deadline, "gate never closed");
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let calls = gate.calls.lock().unwrap().clone();
    assert_eq!(
        calls,
        [
            format!("open {first} behind=0"),
            format!("job {first}"),
            format!("job {second}"),
            format!("job {third}"),
            "close completed=1 failed=1 released=true".to_owned(),
        ]
    );
    fixture.service.stop().await;
}

/// sd writes a job's images into the work folder and Switchyard reads them back:
/// it lives in the data folder, private to this user, never a shared `/tmp` path.
#[cfg(unix)]
#[tokio::test]
async fn the_image_work_folder_is_private_and_a_foreign_one_is_refused() {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    use switchyard_engine::engine::ImageServerConfig;
    use switchyard_testkit::{test_engine, FakeProbe, ManualClock};

    let (engine, dir) = test_engine(
        Arc::new(FakeProbe::cpu_only(32)),
        Arc::new(ManualClock::at(0)),
    );
    let model = dir.path().join("model.gguf");
    std::fs::write(&model, b"not read by the fake").unwrap();
    let config = || ImageServerConfig {
        files: Some(DiffusionModelFiles::single(&model)),
        port: Some(0),
        sd_binary: Some(fake_sd()),
        options: ImageServiceOptions {
            runner: RunnerKind::Cli,
            ..ImageServiceOptions::default()
        },
        ..ImageServerConfig::default()
    };
    let work = dir.path().join("data/state/images-work");
    // Ours but open to everyone (an older Switchyard, a careless copy): narrowed.
    std::fs::create_dir_all(&work).unwrap();
    std::fs::set_permissions(&work, std::fs::Permissions::from_mode(0o777)).unwrap();
    engine.start_image_server(config()).await.unwrap();
    assert_eq!(std::fs::metadata(&work).unwrap().mode() & 0o777, 0o700);
    let id = engine.generate_image(small("a cat")).unwrap();
    let view = engine.wait_image_job(&id, DEADLINE).await.unwrap();
    assert_eq!(view.status, JobStatus::Complete, "{view:?}");
    engine.stop_image_server().await;

    // Someone else's: refused, named, left alone.
    if std::os::unix::fs::chown(&work, Some(65534), Some(65534)).is_err() {
        eprintln!("skipped the foreign owner: giving a folder away needs root");
        return;
    }
    let error = engine.start_image_server(config()).await.unwrap_err();
    assert_eq!(error.code(), ErrorCode::StorageUnavailable);
    assert!(
        error.to_string().contains(&work.display().to_string()),
        "{error}"
    );
    engine.shutdown().await;
}
