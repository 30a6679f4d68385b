//! Downloads against the fixture server: cut connections, restarts, changed files,
//! server errors and a full disk.

#![allow(clippy::expect_used)]

use std::path::Path;

use sha2::{Digest as _, Sha256};
use switchyard_engine::models::download::{fetch, hex, part_path, Fetched, Progress};
use switchyard_engine::ErrorCode;
use switchyard_testkit::random::XorShift;
use switchyard_testkit::{Fault, FixtureServer};
use tokio_util::sync::CancellationToken;

fn payload(len: usize, seed: u64) -> Vec<u8> {
    XorShift::new(seed).bytes(len)
}

fn sha256(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

async fn download(url: &str, part: &Path) -> switchyard_engine::errors::Result<Fetched> {
    fetch(
        &reqwest::Client::new(),
        url,
        part,
        &CancellationToken::new(),
        |_| {},
    )
    .await
}

#[tokio::test]
async fn a_plain_download_is_hashed_while_it_streams() {
    let server = FixtureServer::start().await.expect("server");
    let data = payload(3_000_000, 1);
    server.add_file("m.gguf", data.clone());
    let dir = tempfile::tempdir().expect("dir");
    let part = part_path(&dir.path().join("m.gguf"));
    let mut reports = Vec::new();
    let fetched = fetch(
        &reqwest::Client::new(),
        &server.url("m.gguf"),
        &part,
        &CancellationToken::new(),
        |p| {
            reports.push(p);
        },
    )
    .await
    .expect("downloaded");
    assert_eq!(
        fetched,
        Fetched {
            size: data.len() as u64,
            sha256: sha256(&data)
        }
    );
    assert_eq!(std::fs::read(&part).expect("part"), data);
    assert_eq!(
        reports.first(),
        Some(&Progress {
            bytes: 0,
            total: Some(3_000_000)
        })
    );
    assert_eq!(
        reports.last(),
        Some(&Progress {
            bytes: 3_000_000,
            total: Some(3_000_000)
        })
    );
    assert!(reports.windows(2).all(|w| w[0].bytes <= w[1].bytes));
    assert_eq!(server.traffic().requests, 1);
}

#[tokio::test]
async fn twenty_downloads_cut_at_random_offsets_end_with_the_right_hash() {
    let server = FixtureServer::start().await.expect("server");
    let dir = tempfile::tempdir().expect("dir");
    let mut offsets = payload(20 * 8, 7)
        .chunks(8)
        .map(|c| u64::from_le_bytes(c.try_into().expect("8")))
        .collect::<Vec<_>>();
    let len = 1_500_000u64;
    for (round, offset) in offsets.iter_mut().enumerate() {
        let cut = *offset % (len - 1) + 1;
        let name = format!("m{round}.gguf");
        let data = payload(usize::try_from(len).expect("len"), round as u64 + 100);
        server.add_file(&name, data.clone());
        server.set_fault(&name, Some(Fault::CutAt(cut)));
        server.reset_traffic();
        let fetched = download(&server.url(&name), &part_path(&dir.path().join(&name)))
            .await
            .expect("resumed");
        assert_eq!(fetched.sha256, sha256(&data), "cut at {cut}");
        let traffic = server.traffic();
        assert_eq!(traffic.requests, 2, "one resume after the cut at {cut}");
        assert_eq!(
            traffic.ranges[1],
            Some(format!("bytes={cut}-")),
            "resumed where it was cut"
        );
        assert_eq!(traffic.body_bytes, len, "nothing downloaded twice");
    }
}

#[tokio::test]
async fn a_restart_resumes_from_the_part_file() {
    let server = FixtureServer::start().await.expect("server");
    let data = payload(2_000_000, 3);
    server.add_file("m.gguf", data.clone());
    server.set_fault(
        "m.gguf",
        Some(Fault::Slow {
            bytes_per_second: 2_000_000,
        }),
    );
    let dir = tempfile::tempdir().expect("dir");
    let part = part_path(&dir.path().join("m.gguf"));

    // The "app" stops (cancels) once some bytes have arrived.
    let cancel = CancellationToken::new();
    let stopped = fetch(
        &reqwest::Client::new(),
        &server.url("m.gguf"),
        &part,
        &cancel,
        |p| {
            if p.bytes >= 400_000 {
                cancel.cancel();
            }
        },
    )
    .await;
    assert_eq!(stopped.expect_err("cancelled").code(), ErrorCode::Cancelled);
    let kept = std::fs::metadata(&part).expect("part kept").len();
    assert!((400_000..2_000_000).contains(&kept), "kept {kept}");

    // A new "app" (a new client, nothing in memory) finishes it.
    server.set_fault("m.gguf", None);
    server.reset_traffic();
    let fetched = download(&server.url("m.gguf"), &part)
        .await
        .expect("resumed");
    assert_eq!(fetched.sha256, sha256(&data));
    let traffic = server.traffic();
    assert_eq!(traffic.ranges, [Some(format!("bytes={kept}-"))]);
    assert_eq!(traffic.body_bytes, 2_000_000 - kept);
}

#[tokio::test]
async fn a_changed_file_on_the_server_restarts_the_download() {
    let server = FixtureServer::start().await.expect("server");
    let old = payload(1_000_000, 4);
    server.add_file("m.gguf", old);
    server.set_fault("m.gguf", Some(Fault::CutAt(300_000)));
    let dir = tempfile::tempdir().expect("dir");
    let part = part_path(&dir.path().join("m.gguf"));
    let cancel = CancellationToken::new();
    let _ = fetch(
        &reqwest::Client::new(),
        &server.url("m.gguf"),
        &part,
        &cancel,
        |p| {
            if p.bytes >= 300_000 {
                cancel.cancel();
            }
        },
    )
    .await;

    let new = payload(1_200_000, 5);
    server.add_file("m.gguf", new.clone()); // a new ETag
    let fetched = download(&server.url("m.gguf"), &part)
        .await
        .expect("downloaded");
    assert_eq!(fetched.sha256, sha256(&new), "old bytes were not mixed in");
}

#[tokio::test]
async fn passing_server_errors_are_retried_and_missing_files_are_not() {
    let server = FixtureServer::start().await.expect("server");
    let data = payload(100_000, 6);
    server.add_file("m.gguf", data.clone());
    server.set_fault(
        "m.gguf",
        Some(Fault::Status {
            code: 503,
            times: 2,
        }),
    );
    let dir = tempfile::tempdir().expect("dir");
    let fetched = download(
        &server.url("m.gguf"),
        &part_path(&dir.path().join("m.gguf")),
    )
    .await
    .expect("retried");
    assert_eq!(fetched.sha256, sha256(&data));

    server.reset_traffic();
    let error = download(
        &server.url("nope.gguf"),
        &part_path(&dir.path().join("nope.gguf")),
    )
    .await
    .expect_err("404");
    assert_eq!(error.code(), ErrorCode::NetworkError);
    assert!(error.to_string().contains("404"), "{error}");
    assert_eq!(
        server.traffic().requests,
        1,
        "a missing file is not retried"
    );
}

/// A 1 MiB tmpfs: the download must stop with DISK_FULL and keep what it wrote.
#[tokio::test]
async fn a_full_disk_is_a_clear_error_and_keeps_the_part() {
    let dir = tempfile::tempdir().expect("dir");
    let mount = dir.path().join("small");
    std::fs::create_dir(&mount).expect("mount point");
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(&mount)
        .status()
        .expect("mount runs");
    assert!(
        mounted.success(),
        "this test mounts a small tmpfs and needs root (as CI has)"
    );
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(self.0).status();
        }
    }
    let _unmount = Unmount(&mount);

    let server = FixtureServer::start().await.expect("server");
    server.add_file("big.gguf", payload(3_000_000, 8));
    let part = part_path(&mount.join("big.gguf"));
    let error = download(&server.url("big.gguf"), &part)
        .await
        .expect_err("disk full");
    assert_eq!(error.code(), ErrorCode::DiskFull, "{error}");
    assert!(error.to_string().contains("big.gguf.part"), "{error}");
    let kept = std::fs::metadata(&part).expect("part kept").len();
    assert!(kept > 500_000, "kept {kept} bytes");
}
