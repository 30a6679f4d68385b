//! File names that come from the network become safe local names: no folders, no
//! traversal, nothing the file system would treat specially.

/// A single safe file name from an untrusted one (a URL's last part, a repo path).
/// Returns `None` when nothing usable is left.
pub fn sanitize_file_name(untrusted: &str) -> Option<String> {
    let last = untrusted.rsplit(['/', '\\']).next().unwrap_or_default();
    let last = last.split(['?', '#']).next().unwrap_or_default();
    let cleaned: String = last
        .chars()
        .map(|c| {
            if c.is_control() || matches!(c, ':' | '*' | '"' | '<' | '>' | '|') {
                '_'
            } else {
                c
            }
        })
        .collect();
    let cleaned = cleaned
        .trim()
        .trim_start_matches('.')
        .trim_end_matches(['.', ' ']);
    if cleaned.is_empty() || cleaned.len() > 255 {
        return None;
    }
    // Windows reserves these names whatever the extension.
    let stem = cleaned
        .split('.')
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase();
    let reserved = ["CON", "PRN", "AUX", "NUL"].contains(&stem.as_str())
        || (stem.len() == 4
            && (stem.starts_with("COM") || stem.starts_with("LPT"))
            && stem.ends_with(|c: char| c.is_ascii_digit()));
    Some(if reserved {
        format!("_{cleaned}")
    } else {
        cleaned.to_owned()
    })
}

/// A folder name for a model, from its display name.
pub fn model_id(name: &str) -> String {
    let id: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let id = id.trim_matches(['-', '.']).to_owned();
    if id.is_empty() {
        "model".to_owned()
    } else {
        id.chars().take(80).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traversal_and_folders_are_removed() {
        assert_eq!(
            sanitize_file_name("../../etc/passwd").as_deref(),
            Some("passwd")
        );
        assert_eq!(
            sanitize_file_name("..\\..\\boot.ini").as_deref(),
            Some("boot.ini")
        );
        assert_eq!(
            sanitize_file_name("/abs/model.gguf").as_deref(),
            Some("model.gguf")
        );
        assert_eq!(
            sanitize_file_name("model.gguf?download=true#x").as_deref(),
            Some("model.gguf")
        );
        assert_eq!(sanitize_file_name(".."), None);
        assert_eq!(sanitize_file_name("dir/"), None);
        assert_eq!(
            sanitize_file_name(".hidden.gguf").as_deref(),
            Some("hidden.gguf")
        );
        assert_eq!(
            sanitize_file_name("a\u{0}b:c.gguf").as_deref(),
            Some("a_b_c.gguf")
        );
        assert_eq!(sanitize_file_name("CON.gguf").as_deref(), Some("_CON.gguf"));
        assert_eq!(sanitize_file_name("com1").as_deref(), Some("_com1"));
        assert_eq!(sanitize_file_name(&"x".repeat(300)), None);
    }

    #[test]
    fn model_ids_are_plain() {
        assert_eq!(
            model_id("Qwen/Qwen3-8B-GGUF: Q4_K_M"),
            "qwen-qwen3-8b-gguf--q4-k-m"
        );
        assert_eq!(model_id("../.."), "model");
    }
}
