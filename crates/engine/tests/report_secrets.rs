//! "Report a problem" with a real llama-server that was given an API key and extra
//! arguments and was sent prompts, well-formed and not: the zip holds none of them.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod llama_common;

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::Path;

use llama_common::{rig, spec, wait_until};
use switchyard_testkit::gguf::LlamaSpec;

const KEY: &str = "sesame-report-5b9e21";
const EXTRA_VALUE: &str = "hf_canary_token_31b7";
const PROMPT: &str = "canary-7f3a-prompt: what is the secret plan";
const BROKEN_PROMPT: &str = "canary-7f3a-broken";
const GRAMMAR: &str = "canary-7f3a-grammar";

fn zip_entries(path: &Path) -> BTreeMap<String, String> {
    let mut archive = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    (0..archive.len())
        .map(|index| {
            let mut file = archive.by_index(index).unwrap();
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes).unwrap();
            (
                file.name().unwrap().into_owned(),
                String::from_utf8_lossy(&bytes).into_owned(),
            )
        })
        .collect()
}

async fn post(url: String, body: impl Into<reqwest::Body>) -> (u16, String) {
    let response = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(url)
        .bearer_auth(KEY)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("the server answers");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

#[tokio::test]
async fn the_report_holds_no_key_no_extra_values_no_prompt_and_no_answer() {
    let rig = rig().await;
    let model = rig.model("tiny.gguf", &LlamaSpec::default());
    let llama = rig.engine.llama().clone();
    let mut guarded = spec("guarded", &model);
    guarded.api_key = Some(KEY.into());
    // A flag llama-server accepts and ignores without a Hub model: its value
    // stands for a token given through extra arguments.
    guarded.extra_args = vec!["--hf-token".into(), EXTRA_VALUE.into()];
    llama.create(guarded).unwrap();
    let status = llama.start("guarded").await.expect("starts");
    let endpoint = status.api_endpoint.expect("the endpoint listens");

    let (code, body) = post(
        format!("{endpoint}/v1/chat/completions"),
        serde_json::json!({
            "messages": [{"role": "user", "content": PROMPT}],
            "max_tokens": 24,
            "seed": 7,
        })
        .to_string(),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    let answer = answer["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .trim()
        .to_owned();
    // A body cut inside the prompt: llama-server's parse error quotes it.
    let (code, body) = post(
        format!("{endpoint}/v1/chat/completions"),
        format!(r#"{{"messages":[{{"role":"user","content":"{BROKEN_PROMPT} and more"#),
    )
    .await;
    assert_eq!(code, 400, "{body}");
    // A grammar that does not parse: llama-server prints it whole.
    let (code, body) = post(
        format!("{endpoint}/completion"),
        serde_json::json!({
            "prompt": "x",
            "n_predict": 2,
            "grammar": format!("root ::= {GRAMMAR} ("),
        })
        .to_string(),
    )
    .await;
    assert_eq!(code, 400, "{body}");
    let log_file = rig.data_dir().join("logs/guarded/llama-server.log");
    let logged = || std::fs::read_to_string(&log_file).unwrap_or_default();
    wait_until("llama-server's complaints are in the log", || {
        let log = logged();
        log.contains("got exception") && log.contains("failed to parse grammar")
    })
    .await;

    let report = rig.engine.write_problem_report("test").expect("a report");

    let files = zip_entries(&report);
    let log = &files["logs/guarded/llama-server.log"];
    assert!(log.contains("model buffer size"), "calibration lines stay");
    assert!(log.contains("got exception"), "the error itself stays");
    for (name, text) in &files {
        for secret in [KEY, EXTRA_VALUE, "canary-7f3a"] {
            assert!(!text.contains(secret), "{secret} in {name}:\n{text}");
        }
        // The model's answer (random text from a generated model), where it is
        // long enough to be told from other text.
        if answer.len() >= 12 {
            assert!(!text.contains(&answer), "the answer in {name}");
        }
    }
    let instances: serde_json::Value = serde_json::from_str(&files["instances.json"]).unwrap();
    assert_eq!(instances[0]["spec"]["api_key"], "<redacted>");
    assert_eq!(
        instances[0]["spec"]["extra_args"],
        serde_json::json!(["--hf-token", "<redacted>"])
    );
    // Nor does the window's live log hold them.
    let lines = llama.logs("guarded", 0, 10_000).unwrap();
    assert!(lines
        .iter()
        .all(|line| !line.message.contains("canary-7f3a") && !line.message.contains(EXTRA_VALUE)));
    llama.stop("guarded").await.expect("stops");
}
