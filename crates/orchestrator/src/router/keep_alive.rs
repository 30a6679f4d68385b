//! Ollama's `keep_alive` request field: how long the model stays loaded after this
//! request — seconds as a number, or a duration such as `"10m"`, `"1h30m"`, `"45s"`;
//! 0 unloads it once answered; a negative value keeps it until told otherwise.

use serde_json::Value;

/// How long a model stays loaded after its last request, as a client asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepAlive {
    /// Until unloaded by hand or to make room.
    Forever,
    /// This many milliseconds after the last request (0: at once).
    For(u64),
}

/// The request's `keep_alive`, if it has a readable one (an unreadable one is
/// ignored, as llama-server ignores fields it does not know).
pub fn of_request(body: &Value) -> Option<KeepAlive> {
    match body.get("keep_alive")? {
        Value::Number(number) => {
            let seconds = number.as_f64()?;
            Some(from_seconds(seconds))
        }
        Value::String(text) => parse_duration(text.trim()),
        _ => None,
    }
}

fn from_seconds(seconds: f64) -> KeepAlive {
    if seconds < 0.0 {
        KeepAlive::Forever
    } else {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        KeepAlive::For((seconds * 1000.0).min(u64::MAX as f64) as u64)
    }
}

/// `"300"` (seconds), `"-1"`, or Go-style units: `"1h30m"`, `"10m"`, `"500ms"`.
fn parse_duration(text: &str) -> Option<KeepAlive> {
    if let Ok(seconds) = text.parse::<f64>() {
        return Some(from_seconds(seconds));
    }
    let (negative, mut rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let mut total_ms = 0.0;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit_ms = match &rest[..unit_len] {
            "ms" => 1.0,
            "s" => 1_000.0,
            "m" => 60_000.0,
            "h" => 3_600_000.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total_ms += number * unit_ms;
    }
    if negative {
        return Some(KeepAlive::Forever);
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Some(KeepAlive::For(total_ms.min(u64::MAX as f64) as u64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_strings_and_units_are_read_as_ollama_reads_them() {
        let cases = [
            (json!({"keep_alive": 0}), Some(KeepAlive::For(0))),
            (json!({"keep_alive": 90}), Some(KeepAlive::For(90_000))),
            (json!({"keep_alive": -1}), Some(KeepAlive::Forever)),
            (json!({"keep_alive": "0"}), Some(KeepAlive::For(0))),
            (json!({"keep_alive": "10m"}), Some(KeepAlive::For(600_000))),
            (
                json!({"keep_alive": "1h30m"}),
                Some(KeepAlive::For(5_400_000)),
            ),
            (json!({"keep_alive": "500ms"}), Some(KeepAlive::For(500))),
            (json!({"keep_alive": "-1m"}), Some(KeepAlive::Forever)),
            (json!({"keep_alive": "soon"}), None),
            (json!({"keep_alive": "10x"}), None),
            (json!({"keep_alive": true}), None),
            (json!({}), None),
        ];
        for (body, expected) in cases {
            assert_eq!(of_request(&body), expected, "{body}");
        }
    }
}
