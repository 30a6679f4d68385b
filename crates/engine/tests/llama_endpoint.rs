//! Each instance's stable endpoint with the real llama-server: it forwards plain
//! and streamed answers, keeps its port across restarts, holds requests while the
//! server comes back (a crash restart, an orchestrator hold), refuses at once with
//! the reason when nobody brings it back, and bounds what it holds.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod llama_common;

use std::time::Duration;

use llama_common::{chat, kill_9, refusal_code, rig, spec, wait_for_state, wait_until};
use switchyard_engine::llama::{EndpointPolicy, InstanceState};
use switchyard_testkit::gguf::LlamaSpec;

#[tokio::test]
async fn the_endpoint_forwards_plain_and_streamed_answers_and_keeps_its_port() {
    let rig = rig().await;
    let model = rig.model("tiny.gguf", &LlamaSpec::default());
    let llama = rig.engine.llama().clone();
    llama.create(spec("ep", &model)).unwrap();
    let status = llama.start("ep").await.unwrap();
    let endpoint = status.api_endpoint.clone().expect("the endpoint listens");
    assert_ne!(Some(endpoint.clone()), status.endpoint, "its own port");
    let port = status.spec.endpoint_port.expect("the chosen port is kept");

    let health = reqwest::get(format!("{endpoint}/health")).await.unwrap();
    assert_eq!(health.status(), 200);
    let (code, _, body) = chat(&endpoint, false).await;
    assert_eq!(code, 200, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(
        answer["choices"][0]["message"]["content"].is_string(),
        "{body}"
    );
    let (code, _, body) = chat(&endpoint, true).await;
    assert_eq!(code, 200, "{body}");
    assert!(
        body.contains("data: {") && body.contains("data: [DONE]"),
        "{body}"
    );

    llama.restart("ep").await.unwrap();
    let again = llama.status("ep").unwrap();
    assert_eq!(again.api_endpoint.as_deref(), Some(endpoint.as_str()));
    assert_eq!(again.spec.endpoint_port, Some(port));
    let (code, _, _) = chat(&endpoint, false).await;
    assert_eq!(code, 200);
    let activity = llama.endpoint_activity("ep").unwrap();
    assert_eq!(
        (activity.forwarded, activity.refused),
        (4, 0),
        "{activity:?}"
    );
    assert_eq!((activity.held, activity.in_flight), (0, 0), "{activity:?}");
    rig.engine.shutdown().await;
}

#[tokio::test]
async fn a_request_sent_as_the_server_crashes_is_answered_after_the_restart() {
    let mut rig = rig().await;
    let model = rig.model("tiny.gguf", &LlamaSpec::default());
    let llama = rig.engine.llama().clone();
    llama.create(spec("phoenix", &model)).unwrap();
    let status = llama.start("phoenix").await.unwrap();
    let endpoint = status.api_endpoint.unwrap();
    let first_pid = status.pid.unwrap();

    kill_9(first_pid);
    // Sent at once: the endpoint may still think the server healthy, finds it gone,
    // and waits for the restart.
    let (code, _, body) = chat(&endpoint, false).await;
    assert_eq!(code, 200, "{body}");
    let now = llama.status("phoenix").unwrap();
    assert_eq!(now.state, InstanceState::Healthy);
    assert_ne!(now.pid, Some(first_pid), "answered by the restarted server");
    wait_for_state(&mut rig.events, "phoenix", InstanceState::Healthy).await;
    rig.engine.shutdown().await;
}

#[tokio::test]
async fn held_requests_are_bounded_time_out_with_retry_after_and_a_stop_is_refused_at_once() {
    let rig = rig().await;
    let model = rig.model("tiny.gguf", &LlamaSpec::default());
    let llama = rig.engine.llama().clone();
    llama.set_endpoint_policy(EndpointPolicy {
        max_held: 1,
        hold_timeout: Duration::from_secs(2),
        ..EndpointPolicy::default()
    });
    llama.create(spec("held", &model)).unwrap();
    let endpoint = llama.start("held").await.unwrap().api_endpoint.unwrap();

    // As the orchestrator does: hold, then stop.
    llama.hold_requests("held");
    llama.stop("held").await.unwrap();
    let first = tokio::spawn({
        let endpoint = endpoint.clone();
        async move { chat(&endpoint, false).await }
    });
    let waiting = llama.clone();
    wait_until("the first request is held", move || {
        waiting.endpoint_activity("held").unwrap().held == 1
    })
    .await;
    let (code, retry_after, body) = chat(&endpoint, false).await;
    assert_eq!(code, 503, "{body}");
    assert_eq!(refusal_code(&body), "LLM_HOLD_QUEUE_FULL");
    assert_eq!(retry_after.as_deref(), Some("5"));

    let (code, retry_after, body) = first.await.unwrap();
    assert_eq!(code, 503, "{body}");
    assert_eq!(refusal_code(&body), "LLM_HOLD_TIMED_OUT");
    assert_eq!(retry_after.as_deref(), Some("5"));
    assert!(body.contains("paused for an image"), "{body}");

    // Nobody brings it back now: refused at once, with what to do.
    llama.release_requests("held");
    let (code, retry_after, body) = chat(&endpoint, false).await;
    assert_eq!(code, 503, "{body}");
    assert_eq!(refusal_code(&body), "LLM_STOPPED");
    assert_eq!(retry_after, None);
    assert!(body.contains("Start the instance"), "{body}");
    assert_eq!(llama.endpoint_activity("held").unwrap().refused, 3);
    rig.engine.shutdown().await;
}
