//! A streaming chat with an instance: `POST /v1/chat/completions` with
//! `stream: true`, read as server-sent events (`data: {chunk}` … `data: [DONE]`).
//! Each delta becomes an event; the last chunk's `timings` give tokens per second.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use switchyard_base::errors::{EngineError, Result};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(default)]
#[ts(export)]
pub struct ChatRequest {
    pub messages: Vec<ChatMessage>,
    pub max_tokens: Option<u32>,
    pub temperature: Option<f32>,
    pub seed: Option<u64>,
}

impl Default for ChatRequest {
    fn default() -> Self {
        Self {
            messages: Vec::new(),
            max_tokens: Some(512),
            temperature: None,
            seed: None,
        }
    }
}

impl ChatRequest {
    pub fn user(text: impl Into<String>) -> Self {
        Self {
            messages: vec![ChatMessage {
                role: "user".into(),
                content: text.into(),
            }],
            ..Self::default()
        }
    }
}

/// llama-server's speed report on the last chunk.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, TS, Default)]
#[serde(default)]
#[ts(export)]
pub struct ChatTimings {
    pub prompt_n: u32,
    pub prompt_ms: f64,
    pub prompt_per_second: f64,
    pub predicted_n: u32,
    pub predicted_ms: f64,
    pub predicted_per_second: f64,
    /// With a draft model: tokens it drafted, and how many of them the model
    /// accepted (llama-server reports them only when it drafted any).
    pub draft_n: u32,
    pub draft_n_accepted: u32,
}

/// A piece of the answer as it arrives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct ChatDelta {
    pub instance: String,
    pub chat_id: String,
    pub content: String,
    /// The model's thinking, kept apart from the answer.
    pub reasoning: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct ChatOutcome {
    pub chat_id: String,
    pub content: String,
    pub reasoning: String,
    pub finish_reason: Option<String>,
    pub timings: Option<ChatTimings>,
}

#[derive(Debug, Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Vec<Choice>,
    timings: Option<ChatTimings>,
}

#[derive(Debug, Deserialize)]
struct Choice {
    #[serde(default)]
    delta: Delta,
    finish_reason: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
struct Delta {
    content: Option<String>,
    reasoning_content: Option<String>,
}

/// Splits a byte stream into SSE `data:` payloads; lines may arrive in pieces.
#[derive(Debug, Default)]
pub struct SseDecoder {
    pending: Vec<u8>,
}

impl SseDecoder {
    /// The complete `data:` payloads in `bytes` (with what came before).
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<String> {
        self.pending.extend_from_slice(bytes);
        let mut payloads = Vec::new();
        while let Some(end) = self.pending.iter().position(|byte| *byte == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\r', '\n']);
            if let Some(data) = line.strip_prefix("data:") {
                payloads.push(data.trim_start().to_owned());
            }
        }
        payloads
    }
}

/// Applies one payload to the outcome; returns the delta to announce, if any.
/// `Ok(None)` also for `[DONE]` and chunks without text.
pub fn apply_payload(payload: &str, outcome: &mut ChatOutcome) -> Result<Option<(String, String)>> {
    if payload == "[DONE]" {
        return Ok(None);
    }
    let value: serde_json::Value =
        serde_json::from_str(payload).map_err(|error| EngineError::Network {
            url: "/v1/chat/completions".into(),
            problem: format!("unreadable stream chunk: {error}"),
        })?;
    if let Some(error) = value.get("error") {
        let message = error
            .get("message")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("unknown error");
        return Err(EngineError::Network {
            url: "/v1/chat/completions".into(),
            problem: message.to_owned(),
        });
    }
    let chunk: Chunk = serde_json::from_value(value).map_err(|error| EngineError::Network {
        url: "/v1/chat/completions".into(),
        problem: format!("unexpected stream chunk: {error}"),
    })?;
    if chunk.timings.is_some() {
        outcome.timings = chunk.timings;
    }
    let mut content = String::new();
    let mut reasoning = String::new();
    for choice in chunk.choices {
        if let Some(text) = choice.delta.content {
            content.push_str(&text);
        }
        if let Some(text) = choice.delta.reasoning_content {
            reasoning.push_str(&text);
        }
        if choice.finish_reason.is_some() {
            outcome.finish_reason = choice.finish_reason;
        }
    }
    outcome.content.push_str(&content);
    outcome.reasoning.push_str(&reasoning);
    Ok((!content.is_empty() || !reasoning.is_empty()).then_some((content, reasoning)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_split_across_reads_are_joined() {
        let mut decoder = SseDecoder::default();
        assert!(decoder.feed(b"data: {\"a\"").is_empty());
        assert_eq!(
            decoder.feed(b":1}\n\ndata: [DONE]\n\n"),
            ["{\"a\":1}", "[DONE]"]
        );
    }

    #[test]
    fn real_chunks_fill_the_outcome() {
        let mut outcome = ChatOutcome {
            chat_id: "c".into(),
            content: String::new(),
            reasoning: String::new(),
            finish_reason: None,
            timings: None,
        };
        let first = r#"{"choices":[{"finish_reason":null,"index":0,"delta":{"role":"assistant","content":null}}],"object":"chat.completion.chunk"}"#;
        assert_eq!(apply_payload(first, &mut outcome).unwrap(), None);
        let think = r#"{"choices":[{"index":0,"delta":{"reasoning_content":"hmm"}}]}"#;
        assert_eq!(
            apply_payload(think, &mut outcome).unwrap(),
            Some((String::new(), "hmm".into()))
        );
        let token = r#"{"choices":[{"finish_reason":null,"index":0,"delta":{"content":"3"}}]}"#;
        assert_eq!(
            apply_payload(token, &mut outcome).unwrap(),
            Some(("3".into(), String::new()))
        );
        let last = r#"{"choices":[{"finish_reason":"length","index":0,"delta":{}}],"timings":{"cache_n":0,"prompt_n":51,"prompt_ms":44.857,"prompt_per_token_ms":0.87,"prompt_per_second":1136.9,"predicted_n":3,"predicted_ms":0.546,"predicted_per_token_ms":0.273,"predicted_per_second":3663.0}}"#;
        apply_payload(last, &mut outcome).unwrap();
        assert_eq!(apply_payload("[DONE]", &mut outcome).unwrap(), None);
        assert_eq!(outcome.content, "3");
        assert_eq!(outcome.reasoning, "hmm");
        assert_eq!(outcome.finish_reason.as_deref(), Some("length"));
        let timings = outcome.timings.unwrap();
        assert_eq!(timings.predicted_n, 3);
        assert!((timings.predicted_per_second - 3663.0).abs() < 1e-9);
    }

    #[test]
    fn an_error_chunk_is_an_error() {
        let mut outcome = ChatOutcome {
            chat_id: "c".into(),
            content: String::new(),
            reasoning: String::new(),
            finish_reason: None,
            timings: None,
        };
        let error = apply_payload(r#"{"error":{"message":"context full"}}"#, &mut outcome);
        assert!(error.unwrap_err().to_string().contains("context full"));
    }
}
