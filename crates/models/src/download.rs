//! One file from the network into a `.part` file: resumable (`Range` with
//! `If-Range` on the ETag, also after an app restart), hashed with SHA-256 while
//! it streams, retried after a dropped connection, cancellable, and honest about a
//! full disk. The `.part` becomes the real file only after the caller verified it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_util::sync::CancellationToken;

use switchyard_base::errors::{EngineError, Result};
use switchyard_base::fs_atomic;
use switchyard_gguf::content_range;

/// Consecutive failures without progress before a download gives up.
const MAX_RETRIES: u32 = 5;
const FIRST_RETRY_DELAY: Duration = Duration::from_millis(250);
/// Writes are batched: fewer system calls, full disk speed.
const WRITE_BUFFER: usize = 1024 * 1024;

/// What the resume needs to know about a `.part` file, kept beside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct PartMeta {
    url: String,
    etag: Option<String>,
    total: Option<u64>,
}

/// The finished `.part`: its size and SHA-256 (lowercase hex).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub size: u64,
    pub sha256: String,
}

/// Bytes so far and the total when known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub bytes: u64,
    pub total: Option<u64>,
}

pub fn part_path(final_path: &Path) -> PathBuf {
    let name = final_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    final_path.with_file_name(format!("{name}.part"))
}

fn meta_path(part: &Path) -> PathBuf {
    let name = part
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    part.with_file_name(format!("{name}.json"))
}

/// Removes a `.part` and its resume data.
pub fn discard_part(part: &Path) {
    let _ = std::fs::remove_file(part);
    let _ = std::fs::remove_file(meta_path(part));
}

/// Downloads `url` into `part`, resuming what is there. Returns `Cancelled` (part
/// kept) when `cancel` fires. Never writes more than the server said the file
/// holds.
pub async fn fetch(
    client: &reqwest::Client,
    url: &str,
    part: &Path,
    cancel: &CancellationToken,
    on_progress: impl FnMut(Progress),
) -> Result<Fetched> {
    fetch_expecting(client, url, part, None, cancel, on_progress).await
}

/// [`fetch`] of a file whose size is known beforehand (the Hub lists it): a server
/// that says or sends more is stopped at that size (`CHECKSUM_MISMATCH`), before
/// it fills the disk.
pub async fn fetch_expecting(
    client: &reqwest::Client,
    url: &str,
    part: &Path,
    expected_size: Option<u64>,
    cancel: &CancellationToken,
    mut on_progress: impl FnMut(Progress),
) -> Result<Fetched> {
    let mut failures = 0;
    loop {
        let before = std::fs::metadata(part).map_or(0, |m| m.len());
        match fetch_once(client, url, part, expected_size, cancel, &mut on_progress).await {
            Ok(fetched) => return Ok(fetched),
            Err(error) if error.is_transient() => {
                let after = std::fs::metadata(part).map_or(0, |m| m.len());
                failures = if after > before { 1 } else { failures + 1 };
                if failures > MAX_RETRIES {
                    return Err(error);
                }
                tracing::info!(%error, failures, "download interrupted; resuming");
                let delay = FIRST_RETRY_DELAY * 2u32.pow(failures - 1);
                tokio::select! {
                    () = cancel.cancelled() => return Err(EngineError::Cancelled),
                    () = tokio::time::sleep(delay) => {}
                }
            }
            Err(error) => return Err(error),
        }
    }
}

async fn fetch_once(
    client: &reqwest::Client,
    url: &str,
    part: &Path,
    expected_size: Option<u64>,
    cancel: &CancellationToken,
    on_progress: &mut impl FnMut(Progress),
) -> Result<Fetched> {
    let network = |problem: String| EngineError::Network {
        url: url.to_owned(),
        problem,
    };
    let storage = |source: std::io::Error| EngineError::writing(part, source);

    // What is already there counts only if it came from this URL and the server can
    // prove it has not changed (ETag).
    let meta: Option<PartMeta> = std::fs::read(meta_path(part))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .filter(|meta: &PartMeta| meta.url == url && meta.etag.is_some());
    let mut have = match &meta {
        Some(_) => std::fs::metadata(part).map_or(0, |m| m.len()),
        None => 0,
    };

    let mut request = client.get(url);
    if let (Some(meta), true) = (&meta, have > 0) {
        request = request
            .header(reqwest::header::RANGE, format!("bytes={have}-"))
            .header(
                reqwest::header::IF_RANGE,
                meta.etag.clone().unwrap_or_default(),
            );
    }
    let mut response = tokio::select! {
        () = cancel.cancelled() => return Err(EngineError::Cancelled),
        sent = request.send() => sent.map_err(|error| network(error.to_string()))?,
    };

    let status = response.status();
    let etag = response
        .headers()
        .get(reqwest::header::ETAG)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let total = match status {
        reqwest::StatusCode::PARTIAL_CONTENT => {
            let (first, total) = content_range(response.headers())
                .ok_or_else(|| network("a partial answer without Content-Range".into()))?;
            if first != have {
                return Err(network(format!(
                    "asked to resume at byte {have}, got bytes from {first}"
                )));
            }
            total
        }
        reqwest::StatusCode::OK => {
            // The file changed (or ranges are not supported): start over.
            have = 0;
            response.content_length()
        }
        reqwest::StatusCode::RANGE_NOT_SATISFIABLE
            if meta.as_ref().and_then(|m| m.total) == Some(have) =>
        {
            // Everything was already there.
            return finish(part, have).await;
        }
        status => {
            return Err(EngineError::HttpStatus {
                url: url.to_owned(),
                status: status.as_u16(),
            })
        }
    };

    // What may arrive: the size expected, else what the server said; a body
    // without a length (ended by closing) is otherwise unbounded.
    let limit = match (expected_size, total) {
        (Some(expected), Some(said)) if said != expected => {
            return Err(too_long(part, expected, &format!("{said} bytes")));
        }
        (expected, said) => expected.or(said),
    };
    let file = tokio::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(have == 0)
        .open(part)
        .await
        .map_err(storage)?;
    let mut hasher = Sha256::new();
    if have > 0 {
        hash_prefix(part, have, &mut hasher)
            .await
            .map_err(storage)?;
        file.set_len(have).await.map_err(storage)?;
    }
    fs_atomic::write_json(
        &meta_path(part),
        &PartMeta {
            url: url.to_owned(),
            etag,
            total,
        },
    )
    .map_err(storage)?;

    let mut writer = tokio::io::BufWriter::with_capacity(WRITE_BUFFER, file);
    use tokio::io::AsyncSeekExt as _;
    writer
        .seek(std::io::SeekFrom::Start(have))
        .await
        .map_err(storage)?;
    let mut written = have;
    on_progress(Progress {
        bytes: written,
        total,
    });
    loop {
        let chunk = tokio::select! {
            () = cancel.cancelled() => {
                writer.flush().await.map_err(storage)?;
                return Err(EngineError::Cancelled);
            }
            chunk = response.chunk() => chunk,
        };
        match chunk {
            Ok(Some(bytes)) => {
                if let Some(limit) = limit {
                    if written.saturating_add(bytes.len() as u64) > limit {
                        writer.flush().await.map_err(storage)?;
                        return Err(too_long(part, limit, &format!("more than {limit} bytes")));
                    }
                }
                writer.write_all(&bytes).await.map_err(storage)?;
                hasher.update(&bytes);
                written += bytes.len() as u64;
                on_progress(Progress {
                    bytes: written,
                    total,
                });
            }
            Ok(None) => break,
            Err(error) => {
                // Keep what arrived: the next attempt resumes after it.
                writer.flush().await.map_err(storage)?;
                return Err(network(error.to_string()));
            }
        }
    }
    writer.flush().await.map_err(storage)?;
    writer.get_ref().sync_all().await.map_err(storage)?;
    if let Some(total) = total {
        if written != total {
            return Err(network(format!(
                "the connection ended at byte {written} of {total}"
            )));
        }
    }
    Ok(Fetched {
        size: written,
        sha256: hex(&hasher.finalize()),
    })
}

/// The server's file is not the size it should be: not the file expected.
fn too_long(part: &Path, expected: u64, actual: &str) -> EngineError {
    let name = part
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    EngineError::SizeMismatch {
        file: name.strip_suffix(".part").unwrap_or(&name).to_owned(),
        expected,
        actual: actual.to_owned(),
    }
}

/// The part is complete already (resumed after everything had arrived).
async fn finish(part: &Path, size: u64) -> Result<Fetched> {
    let mut hasher = Sha256::new();
    hash_prefix(part, size, &mut hasher)
        .await
        .map_err(|source| EngineError::writing(part, source))?;
    Ok(Fetched {
        size,
        sha256: hex(&hasher.finalize()),
    })
}

async fn hash_prefix(path: &Path, len: u64, hasher: &mut Sha256) -> std::io::Result<()> {
    let mut file = tokio::fs::File::open(path).await?.take(len);
    let mut buffer = vec![0u8; WRITE_BUFFER];
    loop {
        let read = file.read(&mut buffer).await?;
        if read == 0 {
            return Ok(());
        }
        hasher.update(&buffer[..read]);
    }
}

/// SHA-256 of a whole file, for `verify`.
pub async fn sha256_file(path: &Path) -> Result<(u64, String)> {
    let len = tokio::fs::metadata(path)
        .await
        .map_err(|source| EngineError::FileUnreadable {
            path: path.to_path_buf(),
            source,
        })?
        .len();
    let mut hasher = Sha256::new();
    hash_prefix(path, len, &mut hasher)
        .await
        .map_err(|source| EngineError::FileUnreadable {
            path: path.to_path_buf(),
            source,
        })?;
    Ok((len, hex(&hasher.finalize())))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Download speed over a sliding window, and when progress is worth reporting.
#[derive(Debug)]
pub struct RateMeter {
    window: Duration,
    samples: std::collections::VecDeque<(Instant, u64)>,
    last_report: Option<Instant>,
    report_every: Duration,
}

impl RateMeter {
    pub fn new(report_every: Duration) -> Self {
        Self {
            window: Duration::from_secs(5),
            samples: Default::default(),
            last_report: None,
            report_every,
        }
    }

    /// Records `bytes` at `now`; returns the speed (bytes/s) when a report is due.
    pub fn record(&mut self, now: Instant, bytes: u64, force: bool) -> Option<u64> {
        self.samples.push_back((now, bytes));
        while self
            .samples
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) > self.window)
        {
            self.samples.pop_front();
        }
        let due = force
            || self
                .last_report
                .is_none_or(|last| now.duration_since(last) >= self.report_every);
        if !due {
            return None;
        }
        self.last_report = Some(now);
        let (first_at, first_bytes) = *self.samples.front()?;
        let seconds = now.duration_since(first_at).as_secs_f64();
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        Some(if seconds > 0.0 {
            ((bytes - first_bytes) as f64 / seconds) as u64
        } else {
            0
        })
    }
}
