//! sd's output turned into progress: stage, step i/N, image i of n, overall percent.
//!
//! What sd 0.4.x prints (examples/common/log.cpp, src/util.cpp, src/stable-diffusion.cpp):
//! log lines `[INFO ] file.cpp:123  - message` (errors to stderr, the rest to
//! stdout), and a progress bar redrawn in place with `\r`:
//! `  |=====>     | 3/20 - 1.23s/it\x1b[K`, a newline only after the last step. The
//! same bar counts model loading (`MB/s`, `GB/s`), sampling steps and tiled VAE
//! decoding (`s/it`, `it/s`). Split the output on `\r` as well as `\n`.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum Stage {
    /// Waiting in the queue.
    Queued,
    /// sd reads the model (a per-request sd-cli run, or a persistent server starting).
    Loading,
    /// Denoising: step i of N for image i of n.
    Sampling,
    /// The VAE turns latents into pixels.
    Decoding,
    /// Images are written out.
    Saving,
    /// Finished (with images, an error, or cancelled).
    Done,
}

/// Progress of one job, as the API and the window show it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct Progress {
    pub stage: Stage,
    /// The current stage's step (sampling steps, loading or tile chunks); 0 before
    /// the first.
    pub step: u32,
    pub total_steps: u32,
    /// 1-based image being made.
    pub image: u32,
    pub images: u32,
    /// The whole job, 0 to 100.
    pub percent: f32,
    /// Seconds per sampling step as sd measured it, for an ETA.
    pub seconds_per_step: Option<f32>,
}

impl Progress {
    pub fn queued(images: u32, steps: u32) -> Self {
        Self {
            stage: Stage::Queued,
            step: 0,
            total_steps: steps,
            image: 1,
            images: images.max(1),
            percent: 0.0,
            seconds_per_step: None,
        }
    }

    /// Seconds left by sd's own step timing, when sampling.
    pub fn eta_seconds(&self) -> Option<f32> {
        let per_step = self.seconds_per_step?;
        let images_left = self.images.saturating_sub(self.image);
        let steps_left = self.total_steps.saturating_sub(self.step)
            + images_left.saturating_mul(self.total_steps);
        Some(per_step * steps_left as f32)
    }
}

/// Shares of the overall percent: loading, then sampling (split over images), then
/// decoding and saving.
const LOADING_END: f32 = 10.0;
const SAMPLING_END: f32 = 90.0;
const DECODING_END: f32 = 98.0;

/// One redraw of sd's progress bar.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BarLine {
    pub step: u32,
    pub total: u32,
    /// Seconds per item (`s/it`, or the inverse of `it/s`); `None` for byte rates.
    pub seconds_per_item: Option<f32>,
    /// `MB/s` or `GB/s`: the model is being read.
    pub is_bytes: bool,
}

/// Reads `  |====>  | 3/20 - 1.23s/it\x1b[K` (the escape may be missing).
pub fn parse_bar(line: &str) -> Option<BarLine> {
    let line = line.trim();
    if !line.starts_with('|') {
        return None;
    }
    let (_, tail) = line.rsplit_once('|')?;
    let tail = tail.replace("\x1b[K", "");
    let (counts, speed) = tail.trim().split_once(" - ")?;
    let (step, total) = counts.trim().split_once('/')?;
    let step: u32 = step.trim().parse().ok()?;
    let total: u32 = total.trim().parse().ok()?;
    if total == 0 || step > total {
        return None;
    }
    let speed = speed.trim();
    let number = |suffix: &str| speed.strip_suffix(suffix)?.trim().parse::<f32>().ok();
    let (seconds_per_item, is_bytes) = if let Some(seconds) = number("s/it") {
        (Some(seconds), false)
    } else if let Some(rate) = number("it/s") {
        (Some(if rate > 0.0 { 1.0 / rate } else { 0.0 }), false)
    } else if number("MB/s").is_some() || number("GB/s").is_some() {
        (None, true)
    } else {
        return None;
    };
    Some(BarLine {
        step,
        total,
        seconds_per_item,
        is_bytes,
    })
}

/// Splits raw output into lines at `\n` and `\r`, keeping an unfinished piece for the
/// next chunk.
#[derive(Debug, Default)]
pub struct LineSplitter {
    pending: String,
}

/// What sd prints at the end of every progress bar redraw.
const BAR_END: &str = "\x1b[K";

/// Longest piece kept without a line end: a program that never ends a line cannot
/// grow memory without bound.
const MAX_LINE_CHARS: usize = 16 * 1024;

impl LineSplitter {
    pub fn push(&mut self, chunk: &str) -> Vec<String> {
        let mut lines = Vec::new();
        for ch in chunk.chars() {
            if ch == '\n' || ch == '\r' {
                if !self.pending.is_empty() {
                    lines.push(std::mem::take(&mut self.pending));
                }
            } else if self.pending.len() < MAX_LINE_CHARS {
                self.pending.push(ch);
                // A bar redraw ends with "erase to end of line" and waits for the next
                // step's `\r`: deliver it now, not one step late.
                if self.pending.ends_with(BAR_END) {
                    lines.push(std::mem::take(&mut self.pending));
                }
            }
        }
        lines
    }

    /// What is left when the stream ends.
    pub fn finish(&mut self) -> Option<String> {
        (!self.pending.is_empty()).then(|| std::mem::take(&mut self.pending))
    }
}

/// Turns sd's lines into [`Progress`].
#[derive(Debug, Clone)]
pub struct ProgressParser {
    current: Progress,
    /// The persistent server prints no loading lines per request.
    loads_model: bool,
    /// How far the loading bar and the tiled-decoding bar are, 0 to 1.
    loading_fraction: f32,
    decoding_fraction: f32,
}

impl ProgressParser {
    /// For a job of `images` images of `steps` steps; `loads_model` when the process
    /// reads the model first (sd-cli) rather than having it loaded (sd-server).
    pub fn new(images: u32, steps: u32, loads_model: bool) -> Self {
        Self {
            current: Progress::queued(images, steps),
            loads_model,
            loading_fraction: 0.0,
            decoding_fraction: 0.0,
        }
    }

    pub fn current(&self) -> Progress {
        self.current
    }

    /// The job started running.
    pub fn start(&mut self) -> Progress {
        self.current.stage = if self.loads_model {
            Stage::Loading
        } else {
            Stage::Sampling
        };
        self.current.step = 0;
        self.update_percent();
        self.current
    }

    /// The job ended with its images.
    pub fn finish(&mut self) -> Progress {
        self.current.stage = Stage::Done;
        self.current.percent = 100.0;
        self.current
    }

    /// Reads one line; returns the new progress when it changed.
    pub fn feed(&mut self, line: &str) -> Option<Progress> {
        let before = self.current;
        if let Some(bar) = parse_bar(line) {
            self.apply_bar(bar);
        } else if line.contains("loading model from") {
            self.enter(Stage::Loading);
        } else if let Some(rest) = after(line, "generating image: ") {
            // `generating image: 2/3 - seed 43`
            if let Some((image, images)) = rest
                .split_whitespace()
                .next()
                .and_then(|counts| counts.split_once('/'))
            {
                if let (Ok(image), Ok(images)) = (image.parse::<u32>(), images.parse::<u32>()) {
                    self.current.images = images.max(1);
                    self.current.image = image.clamp(1, self.current.images);
                }
            }
            self.enter(Stage::Sampling);
        } else if line.contains("sampling completed") {
            self.current.step = self.current.total_steps;
        } else if line.contains("decoding ") && line.contains(" latents") {
            self.enter(Stage::Decoding);
        } else if line.contains("decode_first_stage completed")
            || line.contains("generate_image completed")
            || line.contains("save result image")
        {
            self.enter(Stage::Saving);
        }
        self.update_percent();
        (self.current != before).then_some(self.current)
    }

    fn enter(&mut self, stage: Stage) {
        if self.current.stage != stage {
            self.current.stage = stage;
            if stage != Stage::Sampling {
                self.current.step = 0;
            }
        }
        if stage == Stage::Sampling {
            self.current.step = 0;
        }
    }

    fn apply_bar(&mut self, bar: BarLine) {
        match self.current.stage {
            _ if bar.is_bytes => {
                self.current.stage = Stage::Loading;
                self.loading_fraction = bar.step as f32 / bar.total as f32;
            }
            Stage::Decoding | Stage::Saving => {
                // Tiled VAE decoding redraws the bar per tile.
                self.current.stage = Stage::Decoding;
                self.decoding_fraction = bar.step as f32 / bar.total as f32;
            }
            _ => {
                if self.current.stage == Stage::Sampling
                    && bar.step < self.current.step
                    && self.current.image < self.current.images
                {
                    // A new bar without a `generating image` line (older sd): next image.
                    self.current.image += 1;
                }
                self.current.stage = Stage::Sampling;
                self.current.step = bar.step;
                self.current.total_steps = bar.total;
                self.current.seconds_per_step = bar.seconds_per_item;
            }
        }
    }

    fn update_percent(&mut self) {
        let progress = &self.current;
        let percent = match progress.stage {
            Stage::Queued => 0.0,
            Stage::Loading => LOADING_END * self.loading_fraction,
            Stage::Sampling => {
                let start = if self.loads_model { LOADING_END } else { 0.0 };
                let per_image = (SAMPLING_END - start) / progress.images as f32;
                let done_images = progress.image.saturating_sub(1) as f32;
                let within = progress.step as f32 / progress.total_steps.max(1) as f32;
                start + per_image * (done_images + within.min(1.0))
            }
            Stage::Decoding => {
                SAMPLING_END + (DECODING_END - SAMPLING_END) * self.decoding_fraction
            }
            Stage::Saving => DECODING_END,
            Stage::Done => 100.0,
        };
        // Never backwards: a redraw or a late line must not make the bar jump back.
        self.current.percent = percent.max(self.current.percent).min(100.0);
    }
}

fn after<'a>(line: &'a str, marker: &str) -> Option<&'a str> {
    line.split_once(marker).map(|(_, rest)| rest)
}
