//! Keeps what people send to a model, and what it answers, out of the logs.
//!
//! At `-lv 4` llama-server prints neither for a well-formed request: the lines that
//! quote them (`converted request: …`, `prompt token …`, `next token: … '<piece>'`,
//! `launching slot : {…}`) are debug lines, level 5. A few warnings and errors do
//! quote them, though, and those lines would reach the log files a problem report
//! carries:
//!
//! ```text
//! 0.00.279.979 W srv    operator(): got exception: {"error":{"code":400,"message":"[json.exception.parse_error.101] parse error at line 1, column 57: syntax error while parsing value - invalid string: missing closing quote; last read: '\"<the prompt so far>'", …}}
//! parse: error parsing grammar: expecting ')' at <the rest of the grammar>
//! <the grammar, on lines of its own>
//! common_chat_parse: unparsed peg-native output: <the answer>
//! common_sampler_init: error initializing grammar sampler for grammar:
//! <the grammar> … Generation prompt: '<the prompt>'
//! ```
//!
//! Each such line keeps its words up to the quote, the quote is replaced, and the
//! lines a message continues on (no timestamp of their own) are left out until the
//! next timestamped line. Everything else, the memory lines the estimator reads
//! included, passes unchanged.

use std::borrow::Cow;

use super::logs::is_timestamp;

/// What stands where the quoted text was.
pub const WITHHELD: &str = "<request or answer text withheld by Switchyard>";

/// A message that quotes a request or an answer: the words that lead to the quote
/// (in order on the line; the quote starts after the last), and whether the quote
/// may go on over lines of its own.
struct Quoting {
    leads: &'static [&'static str],
    continues: bool,
}

const QUOTING: [Quoting; 6] = [
    // A request that is not JSON: the parser quotes what it read last.
    Quoting {
        leads: &["got exception: ", "last read: "],
        continues: false,
    },
    Quoting {
        leads: &["error parsing grammar: "],
        continues: true,
    },
    Quoting {
        leads: &["error initializing grammar sampler for grammar:"],
        continues: true,
    },
    // The answer the chat parser could not take apart.
    Quoting {
        leads: &["unparsed ", " output: "],
        continues: true,
    },
    Quoting {
        leads: &["anthropic string not as expected: "],
        continues: true,
    },
    // A template error may quote the messages it was applied to.
    Quoting {
        leads: &["failed to apply template: "],
        continues: true,
    },
];

/// One run's filter (its state: inside a message whose quote goes on).
#[derive(Debug, Default)]
pub struct RequestTextFilter {
    in_quote: bool,
}

impl RequestTextFilter {
    /// The line as it may be kept, or `None` when all of it is quoted text.
    pub fn filter<'a>(&mut self, raw: &'a str) -> Option<Cow<'a, str>> {
        if self.in_quote {
            if !starts_with_timestamp(raw) {
                return None;
            }
            self.in_quote = false;
        }
        for quoting in &QUOTING {
            if let Some(quote_at) = quote_start(raw, quoting.leads) {
                self.in_quote = quoting.continues;
                return Some(Cow::Owned(format!("{}{WITHHELD}", &raw[..quote_at])));
            }
        }
        Some(Cow::Borrowed(raw))
    }
}

/// Where the quote begins: after the last of `leads`, each found after the one
/// before it.
fn quote_start(line: &str, leads: &[&str]) -> Option<usize> {
    let mut at = 0;
    for lead in leads {
        at += line.get(at..)?.find(lead)? + lead.len();
    }
    Some(at)
}

fn starts_with_timestamp(line: &str) -> bool {
    line.split(' ').next().is_some_and(is_timestamp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filtered(lines: &[&str]) -> Vec<String> {
        let mut filter = RequestTextFilter::default();
        lines
            .iter()
            .filter_map(|line| filter.filter(line).map(Cow::into_owned))
            .collect()
    }

    #[test]
    fn a_request_that_is_not_json_keeps_the_error_and_loses_the_prompt() {
        // As llama-server (b11434) printed it for a body cut inside the prompt.
        let line = r#"0.00.301.773 W srv    operator(): got exception: {"error":{"code":400,"message":"[json.exception.parse_error.101] parse error at line 1, column 57: syntax error while parsing value - invalid string: missing closing quote; last read: '\"canary-trunc-2222'","type":"invalid_request_error"}}"#;
        let kept = filtered(&[line]);
        assert_eq!(kept.len(), 1);
        assert!(!kept[0].contains("canary"), "{}", kept[0]);
        assert!(
            kept[0].contains("missing closing quote; last read: <request or answer"),
            "{}",
            kept[0]
        );
        // Other exceptions name a field, not text: kept whole.
        let other = r#"0.00.3 W srv    operator(): got exception: {"error":{"code":400,"message":"Field 'max_tokens': type must be number, but is string"}}"#;
        assert_eq!(filtered(&[other]), [other]);
    }

    #[test]
    fn a_bad_grammar_is_left_out_with_its_continuation_lines() {
        // As llama-server printed it: the parser's lines carry no timestamp.
        let lines = [
            "0.00.581.913 I srv  get_availabl: prompt cache update took 0.03 ms",
            "parse: error parsing grammar: expecting ')' at ",
            "",
            "root ::= canary-gram-7777 (",
            "0.00.582.048 E failed to parse grammar",
            "0.00.582.086 E srv    send_error: task id = 7, error: Failed to initialize samplers: failed to parse grammar",
        ];
        let kept = filtered(&lines);
        assert_eq!(
            kept,
            [
                lines[0].to_owned(),
                format!("parse: error parsing grammar: {WITHHELD}"),
                lines[4].to_owned(),
                lines[5].to_owned(),
            ]
        );
    }

    #[test]
    fn an_unparsed_answer_and_a_grammar_sampler_error_lose_their_text() {
        let lines = [
            "0.01.000.001 W common_chat_parse: unparsed peg-native output: canary-answer first line",
            "canary-answer second line",
            "0.01.000.002 E common_sampler_init: error initializing grammar sampler for grammar:",
            "root ::= \"canary-grammar\"",
            "",
            "Generation prompt:",
            "'canary-prompt'",
            "0.01.000.003 I srv  update_slots: all slots are idle",
        ];
        let kept = filtered(&lines);
        assert_eq!(kept.len(), 3, "{kept:#?}");
        assert!(
            kept.iter().all(|line| !line.contains("canary")),
            "{kept:#?}"
        );
        assert_eq!(kept[2], lines[7]);
    }

    #[test]
    fn memory_lines_and_multiline_sampler_settings_pass_unchanged() {
        let lines = [
            "0.00.011.055 I load_tensors:   CPU_Mapped model buffer size =     0.53 MiB",
            "0.00.056.474 I llama_kv_cache:        CPU KV buffer size =    16.00 MiB",
            "0.00.060.000 I sched_reserve:        CPU compute buffer size =    17.27 MiB",
            "0.21.616.455 I common_memory_breakdown_print: | memory breakdown [MiB] | total   free    self   model   context   compute    unaccounted |",
            "0.01.738.836 I slot launch_slot_: id  0 | task -1 | sampler params: ",
            "\trepeat_last_n = 64, repeat_penalty = 1.000, frequency_penalty = 0.000",
            "main: server is listening",
        ];
        assert_eq!(filtered(&lines), lines);
    }
}
