//! A server stopped while it answers, with the real llama-server: the requests
//! being answered are cut first, so it ends at once (not after the grace its first
//! SIGTERM gets while it works); a plain
//! request that got nothing yet is sent again when the server comes back (a
//! restart) or refused with the reason (a stop); a stream under way ends with a
//! well-formed error event and `[DONE]`, never a cut-off body.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod llama_common;

use std::time::{Duration, Instant};

use llama_common::{
    fast_policy, long_chat, refusal_code, rig, slow_model_spec, spec, wait_for_generation,
    wait_for_state, Rig,
};
use switchyard_engine::llama::{InstanceState, StopPolicy, SupervisionPolicy};
use switchyard_testkit::chat_clients::{judge_plain, judge_stream};

/// A busy server's first SIGTERM gets this long before the second (which ends it
/// at once): a stop that takes less did not wait for it.
const FIRST_SIGTERM_GRACE: Duration = Duration::from_secs(20);
const LONG_ANSWER: u32 = 2000;

/// Two slots of the slow model, a plain answer and a stream each being written.
async fn busy_server(
    name: &str,
) -> (
    Rig,
    String,
    Vec<tokio::task::JoinHandle<(u16, Result<String, String>)>>,
) {
    let rig = rig().await;
    rig.engine.llama().set_policy(SupervisionPolicy {
        stop: StopPolicy {
            graceful: FIRST_SIGTERM_GRACE,
            after_second_term: Duration::from_secs(2),
            ..StopPolicy::default()
        },
        ..fast_policy()
    });
    let model = rig.model("slow.gguf", &slow_model_spec());
    let llama = rig.engine.llama().clone();
    let mut spec = spec(name, &model);
    spec.config.context = 4096;
    spec.config.parallel = 2;
    llama.create(spec).unwrap();
    let endpoint = llama.start(name).await.unwrap().api_endpoint.unwrap();
    let clients = [false, true]
        .map(|stream| {
            let endpoint = endpoint.clone();
            tokio::spawn(async move { long_chat(&endpoint, stream, LONG_ANSWER).await })
        })
        .into();
    // Both are being written (the stream's first events have reached its client).
    wait_for_generation(&endpoint, 2, 5).await;
    (rig, endpoint, clients)
}

#[tokio::test]
async fn a_busy_server_stops_at_once_and_its_clients_hear_why() {
    let (mut rig, _, clients) = busy_server("busy").await;
    let started = Instant::now();
    rig.engine.llama().stop("busy").await.unwrap();
    let took = started.elapsed();
    let changes = wait_for_state(&mut rig.events, "busy", InstanceState::Stopped).await;
    let stopped = changes.last().unwrap();
    assert!(
        took < FIRST_SIGTERM_GRACE,
        "its answers were cut, so nothing waited for them: {took:?}, {changes:#?}"
    );
    assert_eq!(
        stopped.reason,
        "stopped (its answers under way were cut: a second SIGTERM ended it at once)"
    );

    let [plain, streamed]: [_; 2] = clients.try_into().unwrap();
    let (code, body) = plain.await.unwrap();
    let body = body.unwrap();
    assert_eq!(
        (code, refusal_code(&body).as_str()),
        (503, "LLM_STOPPED"),
        "{body}"
    );
    let (code, body) = streamed.await.unwrap();
    assert_eq!(code, 200);
    assert_eq!(
        judge_stream(&body.unwrap()),
        Ok(Some("LLM_STOPPED".into())),
        "the stream under way ends with an error event and [DONE]"
    );
    rig.engine.shutdown().await;
}

#[tokio::test]
async fn a_restart_sends_the_plain_request_again_and_ends_the_stream_with_its_reason() {
    let (rig, endpoint, clients) = busy_server("again").await;
    let llama = rig.engine.llama().clone();
    let first_pid = llama.status("again").unwrap().pid;
    llama.restart("again").await.unwrap();

    let [plain, streamed]: [_; 2] = clients.try_into().unwrap();
    let (code, body) = streamed.await.unwrap();
    assert_eq!(code, 200);
    assert_eq!(
        judge_stream(&body.unwrap()),
        Ok(Some("LLM_RESTARTING".into()))
    );
    let (code, body) = plain.await.unwrap();
    let body = body.unwrap();
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        judge_plain(&body),
        Ok(()),
        "answered whole by the new server"
    );
    assert_ne!(llama.status("again").unwrap().pid, first_pid);
    let activity = llama.endpoint_activity("again").unwrap();
    assert_eq!(
        (activity.in_flight, activity.held, activity.refused),
        (0, 0, 0),
        "{endpoint}: {activity:?}"
    );
    rig.engine.shutdown().await;
}
