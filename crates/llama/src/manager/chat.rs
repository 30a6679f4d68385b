//! The LLM tab's streaming test chat, through the instance's endpoint like any
//! client.

use super::*;

impl LlamaManager {
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
                    self.shared.events.emit(LlamaEvent::ChatDelta(ChatDelta {
                        instance: name.to_owned(),
                        chat_id: chat_id.clone(),
                        content,
                        reasoning,
                    }));
                }
            }
        }
        self.shared.events.emit(LlamaEvent::ChatDone {
            instance: name.to_owned(),
            outcome: outcome.clone(),
        });
        Ok(outcome)
    }
}
