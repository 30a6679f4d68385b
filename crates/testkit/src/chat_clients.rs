//! Clients that are always talking: each sends one OpenAI chat completion after
//! another to an endpoint (plain or streamed) until told to stop, and checks every
//! answer as a strict client would. A request *failed* when it got a status other
//! than 200, a connection error, a truncated body or an unparseable answer; a stream
//! that ended with a well-formed SSE error event (OpenAI's error shape) and
//! `data: [DONE]` is counted apart, with its code.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// What one client sends.
#[derive(Debug, Clone)]
pub struct ClientPlan {
    pub stream: bool,
    /// Tokens asked for per request (generated models never sample EOS).
    pub max_tokens: u32,
    /// The request's `model` (the Switchyard endpoint routes by it); none: left out.
    pub model: Option<String>,
}

/// What every client saw, together.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChatTally {
    /// Complete 200 answers (a stream with every event and `[DONE]`).
    pub complete: u64,
    /// Streams that ended with a well-formed SSE error event, by its code.
    pub ended_with_error_event: BTreeMap<String, u64>,
    /// Everything else, each in words.
    pub failures: Vec<String>,
    /// The longest request, from sending to the last byte.
    pub longest: Duration,
}

impl ChatTally {
    pub fn requests(&self) -> u64 {
        self.complete
            + self.ended_with_error_event.values().sum::<u64>()
            + self.failures.len() as u64
    }
}

/// Running clients; [`ChattingClients::finish`] stops them after their current
/// request and returns the tally.
#[derive(Debug)]
pub struct ChattingClients {
    stop: CancellationToken,
    tally: Arc<Mutex<ChatTally>>,
    clients: Vec<JoinHandle<()>>,
}

impl ChattingClients {
    /// One client per plan, each talking to `base` (e.g. `http://127.0.0.1:PORT`).
    pub fn start(base: &str, plans: &[ClientPlan]) -> Self {
        let stop = CancellationToken::new();
        let tally = Arc::new(Mutex::new(ChatTally::default()));
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap_or_default();
        let clients = plans
            .iter()
            .enumerate()
            .map(|(index, plan)| {
                let (stop, tally, http) = (stop.clone(), tally.clone(), http.clone());
                let (url, plan) = (format!("{base}/v1/chat/completions"), plan.clone());
                tokio::spawn(async move {
                    let mut seed = index as u64 * 1_000;
                    while !stop.is_cancelled() {
                        seed += 1;
                        let started = Instant::now();
                        let verdict = one_request(&http, &url, &plan, seed).await;
                        let took = started.elapsed();
                        let mut tally = tally.lock().unwrap_or_else(PoisonError::into_inner);
                        tally.longest = tally.longest.max(took);
                        match verdict {
                            Verdict::Complete => tally.complete += 1,
                            Verdict::ErrorEvent(code) => {
                                *tally.ended_with_error_event.entry(code).or_default() += 1;
                            }
                            Verdict::Failed(why) => tally.failures.push(format!(
                                "client {index} ({}), after {took:?}: {why}",
                                if plan.stream { "stream" } else { "plain" }
                            )),
                        }
                    }
                })
            })
            .collect();
        Self {
            stop,
            tally,
            clients,
        }
    }

    /// What the clients saw so far.
    pub fn tally(&self) -> ChatTally {
        self.tally
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Waits until every client has had `answers` more requests end, at most
    /// `within`; false at the deadline.
    pub async fn wait_for_requests(&self, answers: u64, within: Duration) -> bool {
        let target = self.tally().requests() + answers;
        let started = Instant::now();
        while self.tally().requests() < target {
            if started.elapsed() > within {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }

    /// Lets each client finish the request it is in, then returns the tally.
    pub async fn finish(mut self) -> ChatTally {
        self.stop.cancel();
        for client in std::mem::take(&mut self.clients) {
            let _ = client.await;
        }
        self.tally()
    }
}

enum Verdict {
    Complete,
    ErrorEvent(String),
    Failed(String),
}

async fn one_request(http: &reqwest::Client, url: &str, plan: &ClientPlan, seed: u64) -> Verdict {
    let mut body = serde_json::json!({
        "messages": [{"role": "user", "content": "Tell me about switch yards."}],
        "max_tokens": plan.max_tokens,
        "seed": seed,
        "stream": plan.stream,
    });
    if let Some(model) = &plan.model {
        body["model"] = serde_json::Value::from(model.as_str());
    }
    let response = match http.post(url).json(&body).send().await {
        Ok(response) => response,
        Err(error) => return Verdict::Failed(format!("no answer: {error}")),
    };
    let status = response.status().as_u16();
    let text = match response.text().await {
        Ok(text) => text,
        Err(error) => return Verdict::Failed(format!("status {status}, body cut: {error}")),
    };
    if status != 200 {
        return Verdict::Failed(format!("status {status}: {}", excerpt(&text)));
    }
    if plan.stream {
        check_stream(&text)
    } else {
        check_plain(&text)
    }
}

fn check_plain(text: &str) -> Verdict {
    match judge_plain(text) {
        Ok(()) => Verdict::Complete,
        Err(why) => Verdict::Failed(why),
    }
}

fn check_stream(text: &str) -> Verdict {
    match judge_stream(text) {
        Ok(None) => Verdict::Complete,
        Ok(Some(code)) => Verdict::ErrorEvent(code),
        Err(why) => Verdict::Failed(why),
    }
}

/// A plain answer: one chat completion in JSON; else why not.
pub fn judge_plain(text: &str) -> Result<(), String> {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(answer) if answer["choices"][0]["message"].is_object() => Ok(()),
        Ok(_) => Err(format!("not a chat completion: {}", excerpt(text))),
        Err(error) => Err(format!("not JSON ({error}): {}", excerpt(text))),
    }
}

/// A streamed answer: every event a `data:` line of JSON, the last one
/// `data: [DONE]`, an error event (if any) just before it. `Ok(Some(code))` when
/// it ended with an error event; `Err` says what is wrong with it.
pub fn judge_stream(text: &str) -> Result<Option<String>, String> {
    if !text.ends_with("\n\n") {
        return Err(format!("the stream ends mid-event: …{}", tail(text)));
    }
    let events: Vec<&str> = text
        .split("\n\n")
        .map(str::trim)
        .filter(|event| !event.is_empty())
        .collect();
    if events.last() != Some(&"data: [DONE]") {
        return Err(format!("no [DONE] at the end: …{}", tail(text)));
    }
    let mut error_code = None;
    for event in &events[..events.len() - 1] {
        let Some(payload) = event.strip_prefix("data: ") else {
            return Err(format!("an event without data: {}", excerpt(event)));
        };
        let value: serde_json::Value = serde_json::from_str(payload)
            .map_err(|error| format!("an event is not JSON ({error}): {}", excerpt(event)))?;
        if error_code.is_some() {
            return Err(format!("events after the error: {}", excerpt(event)));
        }
        if let Some(error) = value.get("error") {
            let (Some(code), Some(_)) = (error["code"].as_str(), error["message"].as_str()) else {
                return Err(format!(
                    "an error event without code and message: {}",
                    excerpt(event)
                ));
            };
            error_code = Some(code.to_owned());
        }
    }
    Ok(error_code)
}

fn excerpt(text: &str) -> String {
    text.chars().take(300).collect()
}

fn tail(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    chars[chars.len().saturating_sub(120)..].iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(text: &str) -> String {
        match check_stream(text) {
            Verdict::Complete => "complete".into(),
            Verdict::ErrorEvent(code) => format!("error event {code}"),
            Verdict::Failed(why) => format!("failed: {why}"),
        }
    }

    #[test]
    fn streams_are_judged_as_a_strict_client_would() {
        let chunk = "data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\n";
        assert_eq!(
            verdict(&format!("{chunk}{chunk}data: [DONE]\n\n")),
            "complete"
        );
        let error =
            "data: {\"error\":{\"code\":\"LLM_PAUSED_FOR_IMAGE\",\"message\":\"paused\"}}\n\n";
        assert_eq!(
            verdict(&format!("{chunk}{error}data: [DONE]\n\n")),
            "error event LLM_PAUSED_FOR_IMAGE"
        );
        assert!(verdict(chunk).starts_with("failed: no [DONE]"));
        assert!(verdict(&format!("{chunk}data: {{\"choi"))
            .starts_with("failed: the stream ends mid-event"));
        assert!(
            verdict(&format!("{error}{chunk}data: [DONE]\n\n")).starts_with("failed: events after")
        );
        assert!(matches!(
            check_plain("{\"choices\":[{\"message\":{}}]}"),
            Verdict::Complete
        ));
        assert!(matches!(
            check_plain("{\"choices\":[{\"mess"),
            Verdict::Failed(_)
        ));
    }
}
