//! Speculative decoding's one precondition, checked before a start: the draft
//! must read and write the same tokens as the model it drafts for. The rule is
//! llama.cpp's own (`common_speculative_are_compatible` in `common/speculative.cpp`),
//! read from both headers, so the person gets a clear refusal instead of a server
//! that loads both models and then quietly runs without speculation (llama-server
//! catches "draft model vocab type must match target model" and goes on).

use switchyard_gguf::{GgufFile, Value};

/// llama.cpp's `SPEC_VOCAB_MAX_SIZE_DIFFERENCE`.
const MAX_SIZE_DIFFERENCE: usize = 128;
/// llama.cpp's `SPEC_VOCAB_CHECK_START_TOKEN_ID`: the first few (control) tokens
/// may differ.
const CHECK_FROM_TOKEN: usize = 5;

/// Why `draft` cannot draft for `target`, or `None` when it can.
pub fn vocabulary_mismatch(target: &GgufFile, draft: &GgufFile) -> Option<String> {
    let kind = |file: &GgufFile| file.get_str("tokenizer.ggml.model").map(str::to_owned);
    if kind(target) != kind(draft) {
        return Some(format!(
            "the tokenizers differ ({} vs {})",
            kind(target).unwrap_or_else(|| "none".into()),
            kind(draft).unwrap_or_else(|| "none".into())
        ));
    }
    for (what, add_key, id_key) in [
        (
            "beginning-of-text",
            "tokenizer.ggml.add_bos_token",
            "tokenizer.ggml.bos_token_id",
        ),
        (
            "end-of-text",
            "tokenizer.ggml.add_eos_token",
            "tokenizer.ggml.eos_token_id",
        ),
    ] {
        let adds = |file: &GgufFile| matches!(file.get(add_key), Some(Value::Bool(true)));
        let id = |file: &GgufFile| file.get_u64(id_key);
        if adds(target) != adds(draft) || (adds(target) && id(target) != id(draft)) {
            return Some(format!("their {what} tokens differ"));
        }
    }
    let tokens = |file: &GgufFile| -> Vec<String> {
        file.get("tokenizer.ggml.tokens")
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .map(|item| item.as_str().unwrap_or_default().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    let (target_tokens, draft_tokens) = (tokens(target), tokens(draft));
    if target_tokens.len().abs_diff(draft_tokens.len()) > MAX_SIZE_DIFFERENCE {
        return Some(format!(
            "their vocabularies hold {} and {} tokens (at most {MAX_SIZE_DIFFERENCE} apart)",
            target_tokens.len(),
            draft_tokens.len()
        ));
    }
    let differs = target_tokens
        .iter()
        .zip(&draft_tokens)
        .enumerate()
        .skip(CHECK_FROM_TOKEN)
        .find(|(_, (a, b))| a != b);
    differs.map(|(id, (a, b))| format!("token {id} is `{a}` in the model but `{b}` in the draft"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_testkit::gguf::LlamaSpec;

    async fn header(spec: &LlamaSpec) -> GgufFile {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.gguf");
        spec.write_to(&path).unwrap();
        switchyard_gguf::read_local(&path).await.unwrap()
    }

    #[tokio::test]
    async fn a_draft_of_the_same_vocabulary_fits_and_another_is_named() {
        let model = header(&LlamaSpec::default()).await;
        let smaller = header(&LlamaSpec {
            layers: 1,
            ..LlamaSpec::default()
        })
        .await;
        assert_eq!(vocabulary_mismatch(&model, &smaller), None);
        let other = header(&LlamaSpec {
            vocab: 2048,
            ..LlamaSpec::default()
        })
        .await;
        let problem = vocabulary_mismatch(&model, &other).unwrap();
        assert!(problem.contains("512 and 2048"), "{problem}");
    }
}
