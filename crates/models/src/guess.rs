//! What a model file most likely is, from its name alone: the name to list it under,
//! the kind of model, the role the file plays beside the weights, and the
//! quantization the name announces. These only prefill (the window's Add form,
//! `switchyard models pull`); the person can change them, and the GGUF header has
//! the last word. One place, so the window and the command line guess alike.

use std::cmp::Ordering;

use serde::Serialize;
use ts_rs::TS;

use super::catalog::{FileRole, ModelKind};

/// What a file's name suggests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct FileGuess {
    /// The name to list the model under: the file's name without `.gguf`
    /// ("Llama-3.1-8B-Q4_K_M"), `%` escapes of an address decoded.
    pub name: String,
    pub kind: ModelKind,
    /// `weights`, or what the file goes with the weights as (a projector, a VAE, a
    /// text encoder); `null` for a file that is no GGUF model file (a README, an
    /// imatrix), which Switchyard does not run.
    pub role: Option<FileRole>,
    /// "Q4_K_M", "IQ4_XS", "F16", …, upper-case; `null` when the name says none.
    pub quantization: Option<String>,
}

impl FileGuess {
    /// Guesses from a file's path or address. `context` is where it lives (a Hub
    /// repository's `owner/name`, or empty): a repository called
    /// "stable-diffusion-v1-5-GGUF" says what its files are.
    pub fn of(context: &str, path_or_url: &str) -> Self {
        let name = suggested_name(path_or_url);
        Self {
            kind: model_kind(&format!("{context}/{path_or_url}")),
            role: file_role(base_name(path_or_url)),
            quantization: quantization(&name),
            name,
        }
    }
}

/// The last part of a path or address, without a query string or fragment.
pub fn base_name(path_or_url: &str) -> &str {
    let without_query = path_or_url.split(['?', '#']).next().unwrap_or_default();
    without_query
        .split('/')
        .rfind(|part| !part.is_empty())
        .unwrap_or_default()
}

/// "models/Llama-3.1-8B-Q4_K_M.gguf" → "Llama-3.1-8B-Q4_K_M".
pub fn suggested_name(path_or_url: &str) -> String {
    let decoded = percent_decoded(base_name(path_or_url));
    match decoded.len().checked_sub(GGUF.len()) {
        Some(stem) if decoded.is_char_boundary(stem) && is_gguf(&decoded) => {
            decoded[..stem].to_owned()
        }
        _ => decoded,
    }
}

const GGUF: &str = ".gguf";

fn is_gguf(name: &str) -> bool {
    name.to_ascii_lowercase().ends_with(GGUF)
}

/// `%20` → ` `; an escape that does not make UTF-8 keeps the name as written.
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| text.to_owned())
}

const SEPARATORS: &[u8] = b"-_.";

/// The quantization a name announces: the first `Q4_K_M`, `IQ2_XS`, `Q8_0`,
/// `BF16`, `F16`, `F32`, `FP16` or `FP32` that stands between separators (`-`, `_`,
/// `.`) or at an end.
pub fn quantization(name: &str) -> Option<String> {
    let upper = name.to_ascii_uppercase();
    let bytes = upper.as_bytes();
    (0..bytes.len())
        .filter(|&start| start == 0 || SEPARATORS.contains(&bytes[start - 1]))
        .find_map(|start| quant_tag_at(bytes, start).map(|end| upper[start..end].to_owned()))
}

/// Where a tag that starts at `start` ends, if one does.
fn quant_tag_at(bytes: &[u8], start: usize) -> Option<usize> {
    let ends_here = |end: usize| end == bytes.len() || SEPARATORS.contains(&bytes[end]);
    let rest = &bytes[start..];
    // `I?Q<digit>`, then `_<letters or digits>` groups, as many as stand.
    let mut i = start + usize::from(rest.first() == Some(&b'I'));
    if bytes.get(i) == Some(&b'Q') && bytes.get(i + 1).is_some_and(u8::is_ascii_digit) {
        i += 2;
        let mut ends = vec![i];
        while bytes.get(i) == Some(&b'_') && bytes.get(i + 1).is_some_and(u8::is_ascii_alphanumeric)
        {
            i += 1;
            while bytes.get(i).is_some_and(u8::is_ascii_alphanumeric) {
                i += 1;
            }
            ends.push(i);
        }
        // The longest reading that ends at a separator (a group before one that
        // does not is still a tag: "Q4_K_M_x(1)" → "Q4_K_M").
        return ends.into_iter().rev().find(|&end| ends_here(end));
    }
    ["BF16", "FP16", "FP32", "F16", "F32"]
        .iter()
        .find(|tag| rest.starts_with(tag.as_bytes()) && ends_here(start + tag.len()))
        .map(|tag| start + tag.len())
}

/// The name's words: lower-case, split at `-`, `_` and `.`.
fn words(name: &str) -> Vec<String> {
    name.to_ascii_lowercase()
        .split(['-', '_', '.'])
        .map(str::to_owned)
        .collect()
}

/// What a file is to its model: `None` for a file that is no GGUF; else a
/// projector, a VAE or a text encoder when its name says so, else the weights.
pub fn file_role(file_name: &str) -> Option<FileRole> {
    if !is_gguf(file_name) {
        return None;
    }
    Some(companion_role(file_name).unwrap_or(FileRole::Weights))
}

/// The role of a file that goes with the weights, when its name says one.
fn companion_role(file_name: &str) -> Option<FileRole> {
    let lower = file_name.to_ascii_lowercase();
    if lower.contains("mmproj") || lower.contains("projector") {
        return Some(FileRole::Mmproj);
    }
    let words = words(file_name);
    let has = |word: &str| words.iter().any(|w| w == word);
    let pair = |first: &str, seconds: &[&str]| {
        words
            .windows(2)
            .any(|two| two[0] == first && seconds.contains(&two[1].as_str()))
    };
    if has("vae") || has("ae") {
        return Some(FileRole::Vae);
    }
    if has("t5xxl")
        || has("umt5")
        || has("textencoder")
        || pair("clip", &["l", "g"])
        || pair("text", &["encoder"])
    {
        return Some(FileRole::TextEncoder);
    }
    None
}

/// Names that mean an image model (stable-diffusion.cpp), with `{a|b}` for
/// spellings: "stable-diffusion", "sd_v1.5", "FLUX.1", "qwen-image", …
const DIFFUSION_NAMES: &[&str] = &[
    "stable{|-|_}diffusion",
    "sdxl",
    "sd{|-|_}3",
    "sd{|-|_}{|v}1{-|_|.}5",
    "sd{|-|_}turbo",
    "flux",
    "chroma",
    "wan2",
    "qwen{|-|_}image",
];

/// Whether a name sounds like an image model rather than an LLM.
pub fn model_kind(path_or_name: &str) -> ModelKind {
    let lower = path_or_name.to_ascii_lowercase();
    let diffusion = DIFFUSION_NAMES
        .iter()
        .flat_map(|pattern| spellings(pattern))
        .any(|spelling| lower.contains(&spelling));
    if diffusion {
        ModelKind::Diffusion
    } else {
        ModelKind::Llm
    }
}

/// Every spelling a pattern allows: "sd{|-}3" → ["sd3", "sd-3"].
fn spellings(pattern: &str) -> Vec<String> {
    let Some((head, rest)) = pattern.split_once('{') else {
        return vec![pattern.to_owned()];
    };
    let Some((choices, tail)) = rest.split_once('}') else {
        return vec![pattern.to_owned()];
    };
    let tails = spellings(tail);
    choices
        .split('|')
        .flat_map(|choice| {
            tails
                .iter()
                .map(move |tail| format!("{head}{choice}{tail}"))
        })
        .collect()
}

/// Case-insensitive, with runs of digits compared as numbers.
pub(crate) fn natural_order(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let (x_digits, x_rest) =
                    a.split_at(a.iter().take_while(|c| c.is_ascii_digit()).count());
                let (y_digits, y_rest) =
                    b.split_at(b.iter().take_while(|c| c.is_ascii_digit()).count());
                let trim = |digits: &[u8]| -> Vec<u8> {
                    digits.iter().copied().skip_while(|&d| d == b'0').collect()
                };
                let (x_value, y_value) = (trim(x_digits), trim(y_digits));
                let order = x_value
                    .len()
                    .cmp(&y_value.len())
                    .then_with(|| x_value.cmp(&y_value));
                if order != Ordering::Equal {
                    return order;
                }
                (a, b) = (x_rest, y_rest);
            }
            (Some(x), Some(y)) => {
                let order = x.to_ascii_lowercase().cmp(&y.to_ascii_lowercase());
                if order != Ordering::Equal {
                    return order;
                }
                (a, b) = (&a[1..], &b[1..]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_is_the_file_name_without_gguf_from_a_path_or_an_address() {
        assert_eq!(
            suggested_name("Meta-Llama-3.1-8B-Instruct-Q4_K_M.gguf"),
            "Meta-Llama-3.1-8B-Instruct-Q4_K_M"
        );
        assert_eq!(suggested_name("sub/dir/model.GGUF"), "model");
        assert_eq!(
            suggested_name("https://example.com/m/Mistral%207B-Q5_K_M.gguf?download=true"),
            "Mistral 7B-Q5_K_M"
        );
        assert_eq!(suggested_name("bad%zzescape%e2.gguf"), "bad%zzescape%e2");
        assert_eq!(suggested_name(""), "");
        assert_eq!(suggested_name("https://example.com/dir/"), "dir");
    }

    #[test]
    fn the_quantization_is_read_from_the_name() {
        let of = |path: &str| quantization(&suggested_name(path));
        assert_eq!(
            of("Meta-Llama-3.1-8B-Instruct-Q4_K_M.gguf").as_deref(),
            Some("Q4_K_M")
        );
        assert_eq!(of("model-IQ4_XS.gguf").as_deref(), Some("IQ4_XS"));
        assert_eq!(of("mmproj-model-f16.gguf").as_deref(), Some("F16"));
        assert_eq!(of("model.bf16.gguf").as_deref(), Some("BF16"));
        assert_eq!(
            of("Qwen2.5-7B-Instruct-q8_0-00001-of-00002.gguf").as_deref(),
            Some("Q8_0")
        );
        assert_eq!(of("README.md"), None);
        // A tag must stand alone: not inside a word, not "Q40".
        assert_eq!(of("Qwen2-7B.gguf"), None);
        assert_eq!(of("model-Q40.gguf"), None);
    }

    #[test]
    fn a_second_files_role_and_a_models_kind_are_guessed() {
        assert_eq!(
            file_role("mmproj-Qwen2-VL-7B-Instruct-f16.gguf"),
            Some(FileRole::Mmproj)
        );
        assert_eq!(file_role("ae.safetensors.gguf"), Some(FileRole::Vae));
        assert_eq!(file_role("sdxl_vae-f16.gguf"), Some(FileRole::Vae));
        assert_eq!(file_role("t5xxl_fp16.gguf"), Some(FileRole::TextEncoder));
        assert_eq!(file_role("clip_l-Q8_0.gguf"), Some(FileRole::TextEncoder));
        assert_eq!(file_role("model-Q4_K_M.gguf"), Some(FileRole::Weights));
        assert_eq!(file_role("README.md"), None);
        assert_eq!(file_role("model.imatrix"), None);

        for diffusion in [
            "second-state/stable-diffusion-v1-5-GGUF/sd-v1-5-Q8_0.gguf",
            "city96/FLUX.1-dev-gguf/flux1-dev-Q4_0.gguf",
            "/sd_turbo-f16-q8_0.gguf",
            "https://example.com/models/sd-v1-5-Q8_0.gguf",
        ] {
            assert_eq!(model_kind(diffusion), ModelKind::Diffusion, "{diffusion}");
        }
        assert_eq!(
            model_kind("bartowski/Meta-Llama-3.1-8B-Instruct-GGUF/x.gguf"),
            ModelKind::Llm
        );
    }

    #[test]
    fn a_guess_takes_the_kind_from_the_repository_too() {
        let guess = FileGuess::of("second-state/stable-diffusion-v1-5-GGUF", "v1-Q8_0.gguf");
        assert_eq!(
            guess,
            FileGuess {
                name: "v1-Q8_0".into(),
                kind: ModelKind::Diffusion,
                role: Some(FileRole::Weights),
                quantization: Some("Q8_0".into()),
            }
        );
        assert_eq!(FileGuess::of("", "README.md").role, None);
    }

    #[test]
    fn names_compare_in_natural_order() {
        assert_eq!(natural_order("model-Q2", "model-Q10"), Ordering::Less);
        assert_eq!(natural_order("A-002", "a-2"), Ordering::Equal);
        assert_eq!(natural_order("b", "A"), Ordering::Greater);
        assert_eq!(natural_order("x", "x1"), Ordering::Less);
    }
}
