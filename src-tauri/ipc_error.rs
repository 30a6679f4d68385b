//! The one error type every command returns: the engine's report, serialized as
//! `{code, message, suggestion}` for the window.

use serde::Serialize;
use switchyard_engine::{EngineError, ErrorCode, ErrorReport};

#[derive(Debug, Serialize)]
#[serde(transparent)]
pub struct IpcError(pub ErrorReport);

impl From<EngineError> for IpcError {
    fn from(error: EngineError) -> Self {
        Self(error.report())
    }
}

impl IpcError {
    /// A failure of the shell itself (a plugin, the window system).
    pub fn internal(message: impl std::fmt::Display, suggestion: &str) -> Self {
        Self(ErrorReport {
            code: ErrorCode::Internal,
            message: message.to_string(),
            suggestion: suggestion.to_owned(),
        })
    }
}

impl std::fmt::Display for IpcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}: {}", self.0.code, self.0.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_as_the_engine_report() {
        let error = IpcError::from(EngineError::ShuttingDown);
        let json = serde_json::to_value(&error).unwrap();
        assert_eq!(json["code"], "SHUTTING_DOWN");
        assert_eq!(json["message"], "Switchyard is shutting down");
        assert_eq!(json["suggestion"], "Start Switchyard again.");
    }
}
