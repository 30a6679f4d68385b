//! Progress parsed from real sd-cli 0.4.7 output, captured into fixtures:
//! - `sd-cli-64px-3steps-batch2.txt`: `-W 64 -H 64 --steps 3 -b 2 -s 42` (two images);
//! - `sd-cli-512px-2steps-vae-tiling.txt`: `-W 512 -H 512 --steps 2 --vae-tiling`
//!   (the bar also counts the nine VAE tiles).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use switchyard_engine::diffusion::progress::{parse_bar, LineSplitter};
use switchyard_engine::diffusion::{Progress, ProgressParser, Stage};

fn run(fixture: &str, images: u32, steps: u32) -> Vec<Progress> {
    let mut splitter = LineSplitter::default();
    let mut parser = ProgressParser::new(images, steps, true);
    let mut seen = vec![parser.start()];
    // Fed in odd-sized chunks, as a pipe delivers it.
    let bytes = fixture.as_bytes();
    let mut lines = Vec::new();
    for chunk in bytes.chunks(37) {
        lines.extend(splitter.push(&String::from_utf8_lossy(chunk)));
    }
    lines.extend(splitter.finish());
    for line in lines {
        if let Some(progress) = parser.feed(&line) {
            seen.push(progress);
        }
    }
    seen.push(parser.finish());
    seen
}

#[test]
fn a_real_batch_goes_through_every_stage_image_by_image() {
    let seen = run(include_str!("fixtures/sd-cli-64px-3steps-batch2.txt"), 2, 3);
    let stages: Vec<Stage> = seen.iter().map(|progress| progress.stage).collect();
    let mut distinct = stages.clone();
    distinct.dedup();
    assert_eq!(
        distinct,
        [
            Stage::Loading,
            Stage::Sampling,
            Stage::Decoding,
            Stage::Saving,
            Stage::Done
        ],
        "{seen:#?}"
    );
    let sampling: Vec<(u32, u32, u32)> = seen
        .iter()
        .filter(|progress| progress.stage == Stage::Sampling && progress.step > 0)
        .map(|progress| (progress.image, progress.step, progress.total_steps))
        .collect();
    for expected in [
        (1, 1, 3),
        (1, 2, 3),
        (1, 3, 3),
        (2, 1, 3),
        (2, 2, 3),
        (2, 3, 3),
    ] {
        assert!(sampling.contains(&expected), "{expected:?} in {sampling:?}");
    }
    assert!(seen.iter().all(|progress| progress.images == 2));
    // The overall percent only grows, and sampling image 2 starts past halfway.
    for pair in seen.windows(2) {
        assert!(pair[1].percent >= pair[0].percent, "{pair:?}");
    }
    let second_image_start = seen
        .iter()
        .find(|progress| progress.image == 2 && progress.step == 1)
        .unwrap();
    assert!(
        (50.0..90.0).contains(&second_image_start.percent),
        "{second_image_start:?}"
    );
    assert_eq!(seen.last().unwrap().percent, 100.0);
    // `1.06it/s` is a step every 0.94 s.
    let first_step = seen.iter().find(|progress| progress.step == 1).unwrap();
    let per_step = first_step.seconds_per_step.unwrap();
    assert!((per_step - 1.0 / 1.06).abs() < 0.01, "{per_step}");
}

#[test]
fn tiled_decoding_counts_its_tiles_and_slow_steps_read_as_seconds_per_step() {
    let seen = run(
        include_str!("fixtures/sd-cli-512px-2steps-vae-tiling.txt"),
        1,
        2,
    );
    let last_sampling = seen
        .iter()
        .rfind(|progress| progress.stage == Stage::Sampling)
        .unwrap();
    assert_eq!((last_sampling.step, last_sampling.total_steps), (2, 2));
    assert!((last_sampling.seconds_per_step.unwrap() - 4.64).abs() < 1e-3);
    let decoding: Vec<f32> = seen
        .iter()
        .filter(|progress| progress.stage == Stage::Decoding)
        .map(|progress| progress.percent)
        .collect();
    // Entering decoding, then one update per tile of nine.
    assert!(decoding.len() >= 9, "{decoding:?}");
    assert!(
        decoding.windows(2).all(|pair| pair[1] > pair[0]),
        "{decoding:?}"
    );
    // The sampling bar said nothing about decoding tiles.
    assert_eq!(last_sampling.image, 1);
}

#[test]
fn bars_are_read_with_and_without_their_escape() {
    let bar = parse_bar("  |=====>      | 3/20 - 1.23s/it\x1b[K").unwrap();
    assert_eq!((bar.step, bar.total, bar.is_bytes), (3, 20, false));
    assert_eq!(bar.seconds_per_item, Some(1.23));
    let loading = parse_bar("  |====| 610/610 - 2.05GB/s").unwrap();
    assert!(loading.is_bytes);
    assert!(parse_bar("[INFO ] main.cpp:441  - save result image 0").is_none());
    assert!(
        parse_bar("  |===| 9/3 - 1.00s/it").is_none(),
        "step past total"
    );
}

#[test]
fn a_bar_is_delivered_when_drawn_not_when_the_next_step_starts() {
    let mut splitter = LineSplitter::default();
    // sd draws step 1 and then computes step 2 for seconds before its next `\r`.
    let lines = splitter.push(
        "[INFO ] x.cpp:1 - generating image: 1/1 - seed 1\n\r  |==>   | 1/3 - 1.00s/it\x1b[K",
    );
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(parse_bar(&lines[1]).unwrap().step, 1);
    assert!(splitter.push("\r").is_empty());
}
