//! How fast this machine streams memory: the figure that bounds how fast a language
//! model generates (every token reads every active weight once). RAM is measured
//! with a short read probe; a GPU's is its specification, from NVML (bus width ×
//! memory clock × 2, double data rate).

use std::sync::Barrier;
use std::time::{Duration, Instant};

const MIB: usize = 1024 * 1024;

/// The probe's buffer: several times the largest last-level caches of desktop and
/// workstation CPUs (a 96 MiB L3 on X3D parts), so what it reads comes from RAM.
pub const RAM_PROBE_BYTES: usize = 512 * MIB;
/// Reads of the whole buffer; the fastest counts (the first may still meet page
/// faults or a core that has not clocked up).
const PASSES: usize = 4;

/// RAM read bandwidth in bytes per second, measured with one reading thread per
/// core over a buffer of `buffer_bytes` (about a quarter of a second for
/// [`RAM_PROBE_BYTES`] on a desktop). `None` when the buffer cannot be had or the
/// clock says nothing.
pub fn measure_ram_bandwidth(buffer_bytes: usize, threads: usize) -> Option<u64> {
    let threads = threads.max(1);
    let words_per_thread = buffer_bytes / size_of::<u64>() / threads;
    if words_per_thread == 0 {
        return None;
    }
    // Each thread fills (so the kernel backs it with real pages, not the shared
    // zero page) and then reads its own part: memory close to the core that uses
    // it, as llama.cpp's threads use their rows.
    let mut parts: Vec<Vec<u64>> = Vec::with_capacity(threads);
    for _ in 0..threads {
        let mut part = Vec::new();
        part.try_reserve_exact(words_per_thread).ok()?;
        parts.push(part);
    }
    let start = Barrier::new(threads + 1);
    let done = Barrier::new(threads + 1);
    let best = std::thread::scope(|scope| {
        for part in &mut parts {
            let (start, done) = (&start, &done);
            scope.spawn(move || {
                part.extend((0..words_per_thread as u64).map(|word| word | 1));
                for _ in 0..PASSES {
                    start.wait();
                    std::hint::black_box(read_all(part));
                    done.wait();
                }
            });
        }
        let mut best = Duration::MAX;
        for _ in 0..PASSES {
            // Read before the start, not after: a busy machine may run the readers
            // before this thread runs again, and a clock read after they began
            // measured 23 TB/s on two loaded cores (CI). The barrier's wake-up is
            // counted instead, which only makes the figure a little low.
            let began = Instant::now();
            start.wait();
            done.wait();
            best = best.min(began.elapsed());
        }
        best
    });
    let bytes = (words_per_thread * threads * size_of::<u64>()) as f64;
    let seconds = best.as_secs_f64();
    (seconds > 0.0).then(|| (bytes / seconds) as u64)
}

/// Sums the words in eight independent lanes so the loop is bound by loads, not
/// by one chain of additions. Written out lane by lane: the release profile
/// optimizes for size, and a zipped iterator there ran at half the speed of RAM.
fn read_all(words: &[u64]) -> u64 {
    let mut lanes = [0u64; 8];
    let chunks = words.chunks_exact(8);
    let rest = chunks.remainder();
    for chunk in chunks {
        lanes[0] = lanes[0].wrapping_add(chunk[0]);
        lanes[1] = lanes[1].wrapping_add(chunk[1]);
        lanes[2] = lanes[2].wrapping_add(chunk[2]);
        lanes[3] = lanes[3].wrapping_add(chunk[3]);
        lanes[4] = lanes[4].wrapping_add(chunk[4]);
        lanes[5] = lanes[5].wrapping_add(chunk[5]);
        lanes[6] = lanes[6].wrapping_add(chunk[6]);
        lanes[7] = lanes[7].wrapping_add(chunk[7]);
    }
    lanes
        .iter()
        .chain(rest)
        .fold(0u64, |sum, word| sum.wrapping_add(*word))
}

/// A GPU's memory bandwidth from its bus width in bits and its highest memory
/// clock in MHz, as NVML gives them. The clock NVML reports is the command clock:
/// data moves on both edges (GDDR6X and HBM report it that way too: an H100 SXM,
/// 5120 bits at 2619 MHz, gives its published 3.35 TB/s).
pub fn gpu_bandwidth(bus_width_bits: u32, memory_clock_mhz: u32) -> Option<u64> {
    let bytes_per_clock = u64::from(bus_width_bits) / 8;
    let per_second = bytes_per_clock
        .checked_mul(u64::from(memory_clock_mhz))?
        .checked_mul(1_000_000 * 2)?;
    (per_second > 0).then_some(per_second)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ram_probe_measures_a_plausible_bandwidth() {
        // Small enough for an unoptimized test build; the figure only has to be
        // one a memory system can have (the slowest laptop DDR3 channel to the
        // fastest server sockets), and positive.
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        let bandwidth = measure_ram_bandwidth(64 * MIB, threads).expect("a measurement");
        assert!(bandwidth > 100_000_000, "{bandwidth} B/s");
        assert!(bandwidth < 20_000_000_000_000, "{bandwidth} B/s");
    }

    #[test]
    fn an_empty_probe_measures_nothing() {
        assert_eq!(measure_ram_bandwidth(0, 4), None);
    }

    #[test]
    fn gpu_bandwidth_follows_the_published_figures() {
        // H100 SXM: 3.35 TB/s; RTX 4090: 1008 GB/s.
        let h100 = gpu_bandwidth(5120, 2619).expect("a figure");
        assert!((h100 as f64 / 3.35e12 - 1.0).abs() < 0.01, "{h100}");
        let rtx4090 = gpu_bandwidth(384, 10_501).expect("a figure");
        assert!((rtx4090 as f64 / 1.008e12 - 1.0).abs() < 0.01, "{rtx4090}");
        assert_eq!(gpu_bandwidth(0, 2619), None);
    }
}
