//! Reasoning models (Qwen3, DeepSeek-R1, GPT-OSS, …) think before they answer. They
//! are recognized by their chat template and metadata, not the file name, and get
//! `--jinja --reasoning-format deepseek` so llama-server returns the thinking in
//! `reasoning_content`, apart from the answer.

use switchyard_gguf::GgufFile;

/// What in a chat template shows the model thinks in tagged blocks.
const TEMPLATE_MARKERS: [&str; 6] = [
    "<think>",
    "</think>",
    "enable_thinking",
    "reasoning_content",
    "thinking",
    "<|channel|>analysis",
];

/// Architectures whose models always reason.
const REASONING_ARCHITECTURES: [&str; 1] = ["gpt-oss"];

pub fn is_reasoning_model(file: &GgufFile) -> bool {
    let template = file.get_str("tokenizer.chat_template").unwrap_or_default();
    let template_says = TEMPLATE_MARKERS
        .iter()
        .any(|marker| template.contains(marker));
    let architecture_says = file
        .architecture()
        .is_some_and(|arch| REASONING_ARCHITECTURES.contains(&arch));
    template_says || architecture_says
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_gguf::Value;

    fn with_template(template: &str) -> GgufFile {
        GgufFile {
            version: 3,
            metadata: vec![
                ("general.architecture".into(), Value::String("qwen3".into())),
                (
                    "tokenizer.chat_template".into(),
                    Value::String(template.into()),
                ),
            ],
            tensors: Vec::new(),
            alignment: 32,
            header_len: 0,
            data_offset: 0,
            file_len: None,
        }
    }

    #[test]
    fn thinking_templates_are_recognized() {
        let qwen3 = "{%- if enable_thinking is defined and enable_thinking is false %}{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}";
        assert!(is_reasoning_model(&with_template(qwen3)));
        let deepseek = "{% if '</think>' in content %}{% set content = content.split('</think>')[-1] %}{% endif %}";
        assert!(is_reasoning_model(&with_template(deepseek)));
        let plain = "{% for message in messages %}<|im_start|>{{ message['role'] }}{% endfor %}";
        assert!(!is_reasoning_model(&with_template(plain)));
    }
}
