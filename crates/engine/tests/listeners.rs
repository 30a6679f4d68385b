//! Every listener Switchyard opens, as an attacker would try it: a page in the
//! person's browser (foreign `Origin`, CORS preflight), a page that rebinds its name
//! to 127.0.0.1 (foreign `Host`), llama-server's own port found by a port scan, a
//! flood of large bodies while the LLM is paused, and clients too slow to finish.
//! The LLM endpoint (with the real llama-server), the app's image API (fake sd: the
//! guard runs before sd does anything) and the daemon's control and image APIs.

#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg(target_os = "linux")]

mod llama_common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use llama_common::{rig, spec, Rig, DEADLINE};
use switchyard_engine::control::{run_daemon, DaemonFile, DaemonOptions};
use switchyard_engine::diffusion::{DiffusionModelFiles, ImageServiceOptions, RunnerKind};
use switchyard_engine::engine::ImageServerConfig;
use switchyard_engine::llama::EndpointPolicy;
use switchyard_engine::net::serve::ConnectionLimits;
use switchyard_testkit::gguf::LlamaSpec;
use switchyard_testkit::tools::fake_sd;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

const ALLOWED: &str = "https://chat.example.org";
const EVIL: &str = "https://evil.example";

/// The status line and headers of a raw HTTP/1.1 exchange (the body is not read).
async fn raw(address: SocketAddr, request: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0_u8; 1];
    let read = async {
        while !head.ends_with(b"\r\n\r\n") {
            if stream.read(&mut byte).await.unwrap_or(0) == 0 {
                break;
            }
            head.push(byte[0]);
        }
    };
    tokio::time::timeout(DEADLINE, read)
        .await
        .expect("an answer");
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    (status, head)
}

fn post(path: &str, host: &str, origin: Option<&str>, body: &str) -> String {
    let origin = origin
        .map(|o| format!("Origin: {o}\r\n"))
        .unwrap_or_default();
    format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\n{origin}Content-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn preflight(path: &str, origin: &str) -> String {
    format!(
        "OPTIONS {path} HTTP/1.1\r\nHost: localhost\r\nOrigin: {origin}\r\nAccess-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: content-type, authorization\r\nConnection: close\r\n\r\n"
    )
}

fn address_of(base: &str) -> SocketAddr {
    base.trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .unwrap()
}

/// The app: a running tiny instance and the image server (fake sd); its endpoints
/// bound with `policy`.
async fn app(dir: &Path, policy: EndpointPolicy) -> (Rig, SocketAddr, SocketAddr, SocketAddr) {
    let rig = rig().await;
    rig.engine.llama().set_endpoint_policy(policy);
    let model = rig.model("tiny.gguf", &LlamaSpec::default());
    let llama = rig.engine.llama().clone();
    llama.create(spec("tiny", &model)).unwrap();
    let status = llama.start("tiny").await.unwrap();
    let endpoint = address_of(&status.api_endpoint.unwrap());
    let server = address_of(&status.endpoint.unwrap());
    let sd_model = dir.join("fake-model.gguf");
    std::fs::write(&sd_model, b"read by nobody").unwrap();
    let images = rig
        .engine
        .start_image_server(ImageServerConfig {
            files: Some(DiffusionModelFiles::single(&sd_model)),
            sd_binary: Some(fake_sd()),
            port: Some(0),
            options: ImageServiceOptions {
                runner: RunnerKind::Cli,
                ..ImageServiceOptions::default()
            },
            ..ImageServerConfig::default()
        })
        .await
        .unwrap();
    let images = SocketAddr::from(([127, 0, 0, 1], images.port));
    (rig, endpoint, server, images)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_listener_refuses_unknown_pages_and_foreign_hosts_and_answers_cors_itself() {
    let scratch = tempfile::tempdir().unwrap();
    let (rig, endpoint, server, images) = app(scratch.path(), EndpointPolicy::default()).await;
    // The daemon (its own data folder), with its control and image APIs.
    let daemon_engine =
        llama_common::engine_at(&scratch.path().join("daemon"), scratch.path()).await;
    let (stop_daemon, stopped) = tokio::sync::oneshot::channel::<()>();
    let daemon = tokio::spawn(run_daemon(
        daemon_engine,
        DaemonOptions {
            port: 0,
            image_port: Some(0),
            endpoint_port: Some(0),
            version: "test".into(),
        },
        async move {
            let _ = stopped.await;
        },
    ));
    let data = scratch.path().join("daemon");
    llama_common::wait_until("daemon.json", || {
        DaemonFile::read(&data).ok().flatten().is_some()
    })
    .await;
    let published = DaemonFile::read(&data).unwrap().unwrap();
    let control = SocketAddr::from(([127, 0, 0, 1], published.port));
    let daemon_images = SocketAddr::from(([127, 0, 0, 1], published.image_port.unwrap()));
    let switchyard_endpoint = SocketAddr::from(([127, 0, 0, 1], published.endpoint_port.unwrap()));

    let chat = r#"{"messages":[{"role":"user","content":"hi"}],"max_tokens":2}"#;
    let listeners = [
        ("endpoint", endpoint, "/v1/chat/completions", chat),
        (
            "image API",
            images,
            "/v1/images/generations",
            r#"{"prompt":"x"}"#,
        ),
        (
            "daemon image API",
            daemon_images,
            "/v1/images/generations",
            r#"{"prompt":"x"}"#,
        ),
        ("control API", control, "/v1/reload", ""),
        (
            "Switchyard endpoint",
            switchyard_endpoint,
            "/v1/chat/completions",
            chat,
        ),
    ];
    for (name, address, path, body) in listeners {
        // A page elsewhere: refused before anything is done, and told nothing.
        let (status, head) = raw(address, &post(path, "localhost", Some(EVIL), body)).await;
        assert_eq!(status, 403, "{name}: {head}");
        assert!(
            !head.contains("access-control-allow-origin"),
            "{name}: {head}"
        );
        // DNS rebinding: the page's own name as Host.
        let (status, head) = raw(address, &post(path, "evil.example", None, body)).await;
        assert_eq!(status, 403, "{name}: {head}");
        let (status, head) = raw(address, &preflight(path, EVIL)).await;
        assert_eq!(status, 403, "{name}: {head}");
        assert!(
            !head.contains("access-control-allow-origin"),
            "{name}: {head}"
        );
        // Not yet allowed.
        let (status, _) = raw(address, &preflight(path, ALLOWED)).await;
        assert_eq!(status, 403, "{name}");
    }

    // llama-server's own port, found by a scan: it wants a key the page cannot know.
    let (status, head) = raw(
        server,
        &post("/v1/chat/completions", "localhost", Some(EVIL), chat),
    )
    .await;
    assert_eq!(status, 401, "{head}");
    let (status, _) = raw(server, &post("/slots", "localhost", None, "")).await;
    assert!(status == 401 || status == 404 || status == 405, "{status}");

    // The person allows a web app: its preflight is answered here, for it alone,
    // with no credentials, and llama-server's own CORS headers never pass.
    let mut settings = rig.engine.settings();
    settings.allowed_origins = vec![ALLOWED.into()];
    rig.engine.update_settings(settings).unwrap();
    for (name, address, path, _) in listeners[..2].iter().copied() {
        let (status, head) = raw(address, &preflight(path, ALLOWED)).await;
        assert_eq!(status, 204, "{name}: {head}");
        assert!(
            head.contains(&format!("access-control-allow-origin: {ALLOWED}")),
            "{name}: {head}"
        );
        assert!(
            !head.contains("access-control-allow-credentials"),
            "{name}: {head}"
        );
    }
    let (status, head) = raw(
        endpoint,
        &post("/v1/chat/completions", "localhost", Some(ALLOWED), chat),
    )
    .await;
    assert_eq!(status, 200, "{head}");
    assert!(
        head.contains(&format!("access-control-allow-origin: {ALLOWED}")),
        "{head}"
    );
    assert!(!head.contains("access-control-allow-credentials"), "{head}");
    assert_eq!(
        head.matches("access-control-allow-origin").count(),
        1,
        "{head}"
    );

    // Programs on this machine are unaffected; OpenAI's libraries send a key of
    // their own even to a keyless server: it is taken.
    let answer = reqwest::Client::new()
        .post(format!("http://{endpoint}/v1/chat/completions"))
        .bearer_auth("sk-anything")
        .body(chat)
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);

    let _ = stop_daemon.send(());
    daemon.await.unwrap().unwrap();
    rig.engine.shutdown().await;
}

/// An instance with the person's key: the endpoint passes the client's key on, and
/// llama-server checks it.
#[tokio::test]
async fn an_instance_with_a_key_wants_it_through_the_endpoint() {
    let rig = rig().await;
    let model = rig.model("tiny.gguf", &LlamaSpec::default());
    let llama = rig.engine.llama().clone();
    let mut with_key = spec("keyed", &model);
    with_key.api_key = Some("person-key".into());
    llama.create(with_key).unwrap();
    let endpoint = llama.start("keyed").await.unwrap().api_endpoint.unwrap();
    let client = reqwest::Client::new();
    let chat = |key: Option<&str>| {
        let mut request = client
            .post(format!("{endpoint}/v1/chat/completions"))
            .json(&serde_json::json!({"messages":[{"role":"user","content":"hi"}],"max_tokens":2}));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        request.send()
    };
    assert_eq!(chat(None).await.unwrap().status(), 401);
    assert_eq!(chat(Some("wrong")).await.unwrap().status(), 401);
    assert_eq!(chat(Some("person-key")).await.unwrap().status(), 200);
    rig.engine.shutdown().await;
}

/// Resident memory of this process (the engine runs in it).
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

/// A client that sent `length` bytes of spaces as the body of a chat request, from
/// one small chunk over and over (the flood costs the sender nothing), and stays
/// connected; with the status if the endpoint answered before the body was read.
struct Flooder {
    answered: Option<u16>,
    /// The endpoint took the whole body (else it refused, or closed the connection).
    sent_whole: bool,
    _connection: Option<TcpStream>,
}

async fn flood(endpoint: SocketAddr, length: usize) -> Flooder {
    let Ok(stream) = TcpStream::connect(endpoint).await else {
        return Flooder {
            answered: None,
            sent_whole: false,
            _connection: None,
        };
    };
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    );
    let chunk = vec![b' '; 64 * 1024];
    let (mut reader, mut writer) = stream.into_split();
    let sending = async {
        writer.write_all(head.as_bytes()).await?;
        let mut sent = 0;
        while sent < length {
            let part = chunk.len().min(length - sent);
            writer.write_all(&chunk[..part]).await?;
            sent += part;
        }
        std::io::Result::Ok(())
    };
    let mut answer = vec![0_u8; 64];
    // An answer before the body is all sent is a refusal (413, 503).
    let (answered, sent_whole) = tokio::select! {
        biased;
        read = reader.read(&mut answer) => (read.ok().and_then(|read| {
            String::from_utf8_lossy(&answer[..read]).split_whitespace().nth(1)?.parse().ok()
        }), false),
        sent = sending => (None, sent.is_ok()),
    };
    let stream = reader.reunite(writer).ok();
    Flooder {
        answered,
        sent_whole,
        _connection: stream,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flood_of_large_bodies_while_the_llm_is_paused_stays_within_the_budget() {
    let scratch = tempfile::tempdir().unwrap();
    let budget = 64 * 1024 * 1024;
    let policy = EndpointPolicy {
        body_budget_bytes: budget,
        ..EndpointPolicy::default()
    };
    let (rig, endpoint, _, images) = app(scratch.path(), policy).await;
    let llama = rig.engine.llama().clone();
    // Paused as for an image: requests are held with their bodies.
    llama.hold_requests("tiny");
    llama.pause("tiny").await.unwrap();
    let before = rss_bytes();

    // 100 clients over the cap per body (refused unread), 100 under it (the budget
    // takes a few, the others are told to come back); all stay connected.
    let max = EndpointPolicy::default().max_body_bytes;
    let body = max - 1024 * 1024;
    let floods: Vec<_> = [64 * 1024 * 1024; 100]
        .into_iter()
        .chain([body; 100])
        .map(|length| tokio::spawn(flood(endpoint, length)))
        .collect();
    let mut clients = Vec::new();
    for flood in floods {
        clients.push(
            tokio::time::timeout(DEADLINE, flood)
                .await
                .unwrap()
                .unwrap(),
        );
    }
    let (oversized, under) = clients.split_at(100);
    assert!(
        oversized.iter().all(|client| !client.sent_whole),
        "an oversized body was taken"
    );
    assert!(oversized.iter().any(|client| client.answered == Some(413)));
    let taken = under.iter().filter(|client| client.sent_whole).count();
    let held = llama.endpoint_activity("tiny").unwrap().held as usize;
    assert!(
        held <= budget / body,
        "{held} held of {} that fit",
        budget / body
    );
    assert!(
        taken <= budget / body,
        "{taken} bodies taken of {} that fit",
        budget / body
    );
    assert!(under.iter().any(|client| client.answered == Some(503)));
    assert!(
        llama.request_bytes_held() <= budget,
        "{}",
        llama.request_bytes_held()
    );
    let grown = rss_bytes().saturating_sub(before);
    assert!(
        grown < budget as u64 + 96 * 1024 * 1024,
        "the flood grew the process by {} MiB",
        grown >> 20
    );
    // The rest of the app still answers.
    let health = reqwest::get(format!("http://{images}/health"))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    drop(clients);
    rig.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn clients_too_slow_with_their_headers_or_body_are_cut_off() {
    let rig = rig().await;
    rig.engine.llama().set_endpoint_policy(EndpointPolicy {
        body_timeout: Duration::from_millis(300),
        connections: ConnectionLimits {
            header_timeout: Duration::from_millis(300),
            ..ConnectionLimits::default()
        },
        ..EndpointPolicy::default()
    });
    let model = rig.model("tiny.gguf", &LlamaSpec::default());
    rig.engine.llama().create(spec("tiny", &model)).unwrap();
    let endpoint = address_of(
        &rig.engine
            .llama()
            .start("tiny")
            .await
            .unwrap()
            .api_endpoint
            .unwrap(),
    );

    // A body that stops after a few bytes: 408, and the connection ends.
    let mut slow = TcpStream::connect(endpoint).await.unwrap();
    slow.write_all(b"POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000\r\n\r\n{\"mess")
        .await
        .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(DEADLINE, slow.read_to_end(&mut answer))
        .await
        .expect("closed by the endpoint")
        .ok();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("REQUEST_TIMED_OUT"), "{answer}");

    // Headers that never end: closed.
    let mut slower = TcpStream::connect(endpoint).await.unwrap();
    slower
        .write_all(b"POST /v1/chat/completions HTTP/1.1\r\nHost: loc")
        .await
        .unwrap();
    let mut rest = Vec::new();
    tokio::time::timeout(DEADLINE, slower.read_to_end(&mut rest))
        .await
        .expect("closed by the endpoint")
        .ok();
    rig.engine.shutdown().await;
}

#[tokio::test]
async fn serving_other_machines_needs_a_key_and_the_server_stays_on_loopback() {
    let rig = rig().await;
    let model = rig.model("tiny.gguf", &LlamaSpec::default());
    let llama = rig.engine.llama().clone();
    let mut open = spec("lan", &model);
    open.host = "0.0.0.0".into();
    let refused = llama.create(open.clone()).unwrap_err();
    assert!(
        refused.to_string().contains("needs an API key"),
        "{refused}"
    );
    open.api_key = Some("lan-key".into());
    llama.create(open).unwrap();
    let status = llama.start("lan").await.unwrap();
    assert!(
        status
            .endpoint
            .as_deref()
            .unwrap()
            .starts_with("http://127.0.0.1:"),
        "the server itself listens on loopback: {:?}",
        status.endpoint
    );
    let server_port = address_of(status.endpoint.as_deref().unwrap()).port();
    assert!(
        !is_listening_beyond_loopback(server_port),
        "llama-server's port is not on the network"
    );
    let endpoint_port = address_of(&status.api_endpoint.unwrap()).port();
    assert!(
        is_listening_beyond_loopback(endpoint_port),
        "the endpoint is"
    );
    rig.engine.shutdown().await;
}

/// Whether something listens on `port` on an address other than loopback
/// (`/proc/net/tcp`: local address 0100007F is 127.0.0.1).
fn is_listening_beyond_loopback(port: u16) -> bool {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let port = format!("{port:04X}");
    table.lines().skip(1).any(|line| {
        let mut fields = line.split_whitespace();
        let local = fields.nth(1).unwrap_or_default();
        let state = fields.nth(1).unwrap_or_default();
        let (address, local_port) = local.split_once(':').unwrap_or_default();
        state == "0A" && local_port == port && address != "0100007F"
    })
}

/// The app's image API can want a key too: kept in a 0600 file (not the
/// settings), applied to the running API at once, and read again at the next start.
#[tokio::test]
async fn the_image_api_key_is_a_private_file_and_applies_at_once() {
    use std::os::unix::fs::PermissionsExt as _;

    let scratch = tempfile::tempdir().unwrap();
    let (rig, _, _, images) = app(scratch.path(), EndpointPolicy::default()).await;
    let jobs = format!("http://{images}/v1/images/generations/nothing");
    let client = reqwest::Client::new();
    assert_eq!(client.get(&jobs).send().await.unwrap().status(), 404);

    rig.engine
        .set_image_api_key(Some("image-key".into()))
        .unwrap();
    assert!(rig.engine.image_api_key_is_set());
    assert_eq!(client.get(&jobs).send().await.unwrap().status(), 401);
    let keyed = client
        .get(&jobs)
        .bearer_auth("image-key")
        .send()
        .await
        .unwrap();
    assert_eq!(keyed.status(), 404);
    let file = rig.data_dir().join("state/image-api.key");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let settings = serde_json::to_string(&rig.engine.settings()).unwrap();
    assert!(!settings.contains("image-key"), "not in the settings");
    rig.engine.shutdown().await;

    let again = llama_common::engine_at(&rig.data_dir(), rig.dir.path()).await;
    assert!(again.image_api_key_is_set(), "read again at the next start");
    again.set_image_api_key(None).unwrap();
    assert!(!file.exists());
    again.shutdown().await;
}
