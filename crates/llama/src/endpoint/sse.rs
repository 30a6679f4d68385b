//! Server-sent events as the endpoint forwards them: whole events only, so a stream
//! that must end early (its server is stopping) can end on an event boundary with
//! an error event and `[DONE]` instead of a cut-off body.

use axum::body::Bytes;
use serde_json::json;

/// Collects bytes and hands out the complete events among them.
#[derive(Debug, Default)]
pub(super) struct EventFramer {
    pending: Vec<u8>,
}

impl EventFramer {
    /// Adds `bytes`; returns every event now complete (empty when none is).
    pub fn push(&mut self, bytes: &[u8]) -> Bytes {
        self.pending.extend_from_slice(bytes);
        match last_event_end(&self.pending) {
            Some(end) => {
                let rest = self.pending.split_off(end);
                Bytes::from(std::mem::replace(&mut self.pending, rest))
            }
            None => Bytes::new(),
        }
    }

    /// What is left when the stream has ended by itself (its own business).
    pub fn rest(&mut self) -> Bytes {
        Bytes::from(std::mem::take(&mut self.pending))
    }
}

/// Where the last complete event in `bytes` ends (after its blank line).
fn last_event_end(bytes: &[u8]) -> Option<usize> {
    let lf = bytes
        .windows(2)
        .rposition(|pair| pair == b"\n\n")
        .map(|at| at + 2);
    let crlf = bytes
        .windows(4)
        .rposition(|quad| quad == b"\r\n\r\n")
        .map(|at| at + 4);
    lf.max(crlf)
}

/// The end of a stream that could not be completed: an error event in OpenAI's
/// error shape (clients show its message), then `[DONE]`.
pub(super) fn error_end(code: &str, message: &str, suggestion: &str) -> Bytes {
    let error = json!({
        "error": {
            "code": code,
            "message": message,
            "suggestion": suggestion,
            "type": "switchyard_unavailable",
        }
    });
    Bytes::from(format!("data: {error}\n\ndata: [DONE]\n\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_whole_events_are_handed_out() {
        let mut framer = EventFramer::default();
        assert!(framer.push(b"data: {\"a\":").is_empty());
        assert_eq!(
            &framer.push(b"1}\n\ndata: {\"b\"")[..],
            b"data: {\"a\":1}\n\n"
        );
        assert_eq!(
            &framer.push(b":2}\n\ndata: [DONE]\n\n")[..],
            b"data: {\"b\":2}\n\ndata: [DONE]\n\n"
        );
        assert!(framer.rest().is_empty());
        assert_eq!(
            &framer.push(b"data: x\r\n\r\ndata: y")[..],
            b"data: x\r\n\r\n"
        );
        assert_eq!(&framer.rest()[..], b"data: y");
    }

    #[test]
    fn an_error_end_is_one_json_event_and_done() {
        let end = error_end("LLM_PAUSED_FOR_IMAGE", "paused \"now\"", "wait");
        let text = std::str::from_utf8(&end).unwrap_or_default();
        let events: Vec<&str> = text.split("\n\n").filter(|e| !e.is_empty()).collect();
        assert_eq!(events.len(), 2, "{text}");
        assert_eq!(events[1], "data: [DONE]");
        let payload: serde_json::Value =
            serde_json::from_str(events[0].trim_start_matches("data: ")).unwrap_or_default();
        assert_eq!(payload["error"]["code"], "LLM_PAUSED_FOR_IMAGE");
        assert_eq!(payload["error"]["message"], "paused \"now\"");
    }
}
