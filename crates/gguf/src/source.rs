//! Where header bytes come from: a local file or an HTTP server answering range
//! requests. The loop asks the parser what it needs and fetches only that (growing
//! by half of what it has, so the total stays within 1.5× the header).

use std::path::Path;

use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};

use super::parser::{parse, Stop};
use super::GgufFile;
use switchyard_base::errors::{EngineError, Result};

/// The first read: enough for a small model's whole header.
const FIRST_READ: u64 = 64 * 1024;
/// No real header is this large (a 256k-token vocabulary is ~8 MiB).
const MAX_HEADER_LEN: u64 = 256 * 1024 * 1024;

/// Bytes and requests spent reading a header.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FetchStats {
    pub requests: u32,
    pub bytes: u64,
}

/// Something that can give bytes `[start, end)` of a file.
#[allow(async_fn_in_trait)] // used with concrete types only
pub trait RangeSource {
    /// A name for messages (path or URL).
    fn describe(&self) -> String;
    /// The file's length once known.
    fn file_len(&self) -> Option<u64>;
    /// Bytes from `start` up to `end` (fewer only at the end of the file).
    async fn read(&mut self, start: u64, end: u64) -> Result<Vec<u8>>;
    fn stats(&self) -> FetchStats;
}

/// Reads the header, fetching more until the parser is satisfied.
pub async fn read_header(source: &mut impl RangeSource) -> Result<GgufFile> {
    let mut bytes = source.read(0, FIRST_READ).await?;
    loop {
        match parse(&bytes, source.file_len()) {
            Ok(file) => return Ok(file),
            Err(Stop::Invalid(problem)) => {
                return Err(EngineError::InvalidGguf {
                    source_name: source.describe(),
                    problem,
                })
            }
            Err(Stop::Incomplete { needed_len }) => {
                let have = bytes.len() as u64;
                if needed_len > MAX_HEADER_LEN {
                    return Err(EngineError::InvalidGguf {
                        source_name: source.describe(),
                        problem: format!(
                            "its header would be larger than {} MiB",
                            MAX_HEADER_LEN >> 20
                        ),
                    });
                }
                let want_end = needed_len.max(have + have / 2);
                let want_end = source.file_len().map_or(want_end, |len| want_end.min(len));
                let more = source.read(have, want_end).await?;
                if more.is_empty() {
                    return Err(EngineError::InvalidGguf {
                        source_name: source.describe(),
                        problem: format!("the file ends at byte {have}, inside its header"),
                    });
                }
                bytes.extend_from_slice(&more);
            }
        }
    }
}

/// A local file, read from the start only as far as the header goes.
#[derive(Debug)]
pub struct LocalSource {
    path: std::path::PathBuf,
    file: tokio::fs::File,
    len: u64,
    stats: FetchStats,
}

impl LocalSource {
    pub async fn open(path: &Path) -> Result<Self> {
        let io_error = |source| EngineError::FileUnreadable {
            path: path.to_path_buf(),
            source,
        };
        let file = tokio::fs::File::open(path).await.map_err(io_error)?;
        let len = file.metadata().await.map_err(io_error)?.len();
        Ok(Self {
            path: path.to_path_buf(),
            file,
            len,
            stats: FetchStats::default(),
        })
    }
}

impl RangeSource for LocalSource {
    fn describe(&self) -> String {
        self.path.display().to_string()
    }

    fn file_len(&self) -> Option<u64> {
        Some(self.len)
    }

    async fn read(&mut self, start: u64, end: u64) -> Result<Vec<u8>> {
        let io_error = |source| EngineError::FileUnreadable {
            path: self.path.clone(),
            source,
        };
        let end = end.min(self.len);
        let mut buffer = vec![0; usize::try_from(end.saturating_sub(start)).unwrap_or(0)];
        self.file
            .seek(std::io::SeekFrom::Start(start))
            .await
            .map_err(io_error)?;
        self.file.read_exact(&mut buffer).await.map_err(io_error)?;
        self.stats.requests += 1;
        self.stats.bytes += buffer.len() as u64;
        Ok(buffer)
    }

    fn stats(&self) -> FetchStats {
        self.stats
    }
}

/// Reads a local GGUF file's header.
pub async fn read_local(path: &Path) -> Result<GgufFile> {
    read_header(&mut LocalSource::open(path).await?).await
}

/// A file on an HTTP server. Each read is a `Range` request; a server that ignores
/// ranges (answers 200) is read as one stream, stopping once the header is complete.
#[derive(Debug)]
pub struct HttpSource {
    client: reqwest::Client,
    url: String,
    len: Option<u64>,
    whole_body: Option<reqwest::Response>,
    stats: FetchStats,
}

impl HttpSource {
    pub fn new(client: reqwest::Client, url: impl Into<String>) -> Self {
        Self {
            client,
            url: url.into(),
            len: None,
            whole_body: None,
            stats: FetchStats::default(),
        }
    }

    fn network_error(&self, problem: impl std::fmt::Display) -> EngineError {
        EngineError::Network {
            url: self.url.clone(),
            problem: problem.to_string(),
        }
    }

    async fn read_at_most(&self, mut response: reqwest::Response, wanted: u64) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        while (out.len() as u64) < wanted {
            match response.chunk().await {
                Ok(Some(chunk)) => out.extend_from_slice(&chunk),
                Ok(None) => break,
                Err(error) => return Err(self.network_error(error)),
            }
        }
        out.truncate(usize::try_from(wanted).unwrap_or(usize::MAX));
        Ok(out)
    }

    async fn read_from_stream(&mut self, wanted: u64) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        while (out.len() as u64) < wanted {
            let Some(response) = self.whole_body.as_mut() else {
                break;
            };
            match response.chunk().await {
                Ok(Some(chunk)) => out.extend_from_slice(&chunk),
                Ok(None) => break,
                Err(error) => return Err(self.network_error(error)),
            }
        }
        self.stats.bytes += out.len() as u64;
        Ok(out)
    }
}

impl RangeSource for HttpSource {
    fn describe(&self) -> String {
        self.url.clone()
    }

    fn file_len(&self) -> Option<u64> {
        self.len
    }

    async fn read(&mut self, start: u64, end: u64) -> Result<Vec<u8>> {
        if self.whole_body.is_some() {
            // The stream is read in order, and the loop only ever asks for what
            // follows what it has.
            return self.read_from_stream(end.saturating_sub(start)).await;
        }
        let response = self
            .client
            .get(&self.url)
            .header(
                reqwest::header::RANGE,
                format!("bytes={start}-{}", end.saturating_sub(1)),
            )
            .send()
            .await
            .map_err(|error| self.network_error(error))?;
        self.stats.requests += 1;
        match response.status() {
            reqwest::StatusCode::PARTIAL_CONTENT => {
                let (first, total) = content_range(response.headers()).ok_or_else(|| {
                    self.network_error("the server sent a range without Content-Range")
                })?;
                if first != start {
                    return Err(self.network_error(format!(
                        "asked for bytes from {start}, the server sent bytes from {first}"
                    )));
                }
                self.len = total.or(self.len);
                // A server may answer with more than the range asked for (up to the
                // whole file): only what was asked is read, the rest is dropped
                // with the connection.
                let body = self
                    .read_at_most(response, end.saturating_sub(start))
                    .await?;
                self.stats.bytes += body.len() as u64;
                Ok(body)
            }
            reqwest::StatusCode::OK if start == 0 => {
                self.len = response.content_length();
                self.whole_body = Some(response);
                self.read_from_stream(end).await
            }
            reqwest::StatusCode::RANGE_NOT_SATISFIABLE => Ok(Vec::new()),
            status => Err(self.network_error(format!("the server answered {status}"))),
        }
    }

    fn stats(&self) -> FetchStats {
        self.stats
    }
}

/// The first byte and the total from `Content-Range: bytes 0-99/12345` (the total
/// may be `*`, unknown).
pub fn content_range(headers: &reqwest::header::HeaderMap) -> Option<(u64, Option<u64>)> {
    let value = headers.get(reqwest::header::CONTENT_RANGE)?.to_str().ok()?;
    let (range, total) = value.strip_prefix("bytes ")?.split_once('/')?;
    let first = range.split_once('-')?.0.trim().parse().ok()?;
    Some((first, total.trim().parse().ok()))
}

/// Reads a remote GGUF file's header; returns it with what the reading cost.
pub async fn read_remote(client: reqwest::Client, url: &str) -> Result<(GgufFile, FetchStats)> {
    let mut source = HttpSource::new(client, url);
    let file = read_header(&mut source).await?;
    Ok((file, source.stats()))
}
