//! A local HTTP/1.1 file server for download and range tests: `Range`, `ETag`,
//! `If-Range`, CDN-style redirects, and faults on demand (a cut connection at byte
//! N, error statuses, wrong bytes, slow or range-less answers). Every request is
//! counted so tests can assert what was fetched.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use sha2::Digest as _;
use switchyard_engine::models::download::hex;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// Misbehaviour for one file, applied to every request for it until cleared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Close the connection once the body reaches this byte of the file (once: the
    /// fault clears itself, as a dropped connection would).
    CutAt(u64),
    /// Answer with this status (e.g. 500) the next `times` requests.
    Status { code: u16, times: u32 },
    /// Send the right length with the byte at this offset changed.
    WrongByteAt(u64),
    /// Send at most this many body bytes per second.
    Slow { bytes_per_second: u64 },
    /// Ignore `Range` and always send the whole file (200).
    IgnoreRange,
    /// Answer a `Range` with 206 and everything from its start to the end of the
    /// file (its `Content-Range` saying so): far more than was asked for.
    OverlongRange,
    /// Send the file and then this many more bytes, without a `Content-Length`
    /// (the body ends when the connection closes): a server that never stops.
    Oversized { extra_bytes: u64 },
}

#[derive(Debug, Clone)]
struct File {
    bytes: Arc<Vec<u8>>,
    etag: String,
    fault: Option<Fault>,
}

/// What the server saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Traffic {
    pub requests: u32,
    /// Body bytes sent, over all requests.
    pub body_bytes: u64,
    /// The `Range` header of each request (`None` when absent).
    pub ranges: Vec<Option<String>>,
}

/// A file the fake Hub lists for a repository.
#[derive(Debug, Clone)]
struct HubEntry {
    repo: String,
    path: String,
    size: u64,
    sha256: String,
}

#[derive(Debug, Default)]
struct State {
    files: HashMap<String, File>,
    hub: Vec<HubEntry>,
    traffic: Traffic,
    /// Bumped by `reset_traffic`: bytes of requests from before are not counted.
    epoch: u64,
}

/// A running fixture server; it stops when dropped.
#[derive(Debug)]
pub struct FixtureServer {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FixtureServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FixtureServer {
    pub async fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State::default()));
        let task = tokio::spawn({
            let state = state.clone();
            async move {
                while let Ok((stream, _)) = listener.accept().await {
                    tokio::spawn(serve_connection(stream, state.clone()));
                }
            }
        });
        Ok(Self { addr, state, task })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Serves `bytes` at `/files/{name}` (and through `/redirect/{name}`).
    pub fn add_file(&self, name: &str, bytes: Vec<u8>) {
        let etag = format!("\"{:016x}-{}\"", fnv1a(&bytes), bytes.len());
        self.state().files.insert(
            name.to_owned(),
            File {
                bytes: Arc::new(bytes),
                etag,
                fault: None,
            },
        );
    }

    /// Publishes a file in a fake Hugging Face repository: listed by
    /// `/api/models/{repo}/tree/{revision}` (with its LFS SHA-256, or `claimed_sha256`
    /// to make the Hub lie) and served by `/{repo}/resolve/{revision}/{path}` through a
    /// redirect, as the Hub does. Its fault name is `{repo}/{path}`.
    pub fn add_hub_file(
        &self,
        repo: &str,
        path: &str,
        bytes: Vec<u8>,
        claimed_sha256: Option<&str>,
    ) {
        let sha256 =
            claimed_sha256.map_or_else(|| hex(&sha2::Sha256::digest(&bytes)), str::to_owned);
        let entry = HubEntry {
            repo: repo.to_owned(),
            path: path.to_owned(),
            size: bytes.len() as u64,
            sha256,
        };
        self.add_file(&format!("{repo}/{path}"), bytes);
        let mut state = self.state();
        state.hub.retain(|e| !(e.repo == repo && e.path == path));
        state.hub.push(entry);
    }

    /// The base URL to use as the Hub address.
    pub fn hub_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set_fault(&self, name: &str, fault: Option<Fault>) {
        if let Some(file) = self.state().files.get_mut(name) {
            file.fault = fault;
        }
    }

    pub fn url(&self, name: &str) -> String {
        format!("http://{}/files/{name}", self.addr)
    }

    /// A URL that answers 302 to [`FixtureServer::url`], as the Hub's CDN does.
    pub fn redirect_url(&self, name: &str) -> String {
        format!("http://{}/redirect/{name}", self.addr)
    }

    pub fn traffic(&self) -> Traffic {
        self.state().traffic.clone()
    }

    /// Forgets the traffic so far. A request still being answered (a slow body
    /// into a connection the client dropped) no longer counts.
    pub fn reset_traffic(&self) {
        let mut state = self.state();
        state.traffic = Traffic::default();
        state.epoch += 1;
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

struct Request {
    method: String,
    path: String,
    headers: HashMap<String, String>,
}

async fn read_request(stream: &mut TcpStream) -> Option<Request> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 16 * 1024 || stream.read(&mut byte).await.ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head);
    let mut lines = text.split("\r\n");
    let mut request_line = lines.next()?.split_whitespace();
    let method = request_line.next()?.to_owned();
    let path = request_line.next()?.to_owned();
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    Some(Request {
        method,
        path,
        headers,
    })
}

async fn serve_connection(mut stream: TcpStream, state: Arc<Mutex<State>>) {
    while let Some(request) = read_request(&mut stream).await {
        if !respond(&mut stream, &request, &state).await {
            return;
        }
    }
}

/// Answers one request; `false` closes the connection.
async fn respond(stream: &mut TcpStream, request: &Request, state: &Mutex<State>) -> bool {
    let range_header = request.headers.get("range").cloned();
    let (name, file, epoch) = match route(request, range_header.clone(), state) {
        Route::Redirect(location) => {
            let head =
                format!("HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n");
            return stream.write_all(head.as_bytes()).await.is_ok();
        }
        Route::Status(code) => return send_status(stream, code).await,
        Route::Json(body) => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            return stream.write_all(head.as_bytes()).await.is_ok()
                && stream.write_all(body.as_bytes()).await.is_ok();
        }
        Route::File(name, file, epoch) => (name, file, epoch),
    };
    let total = file.bytes.len() as u64;
    let if_range_matches = request
        .headers
        .get("if-range")
        .is_none_or(|tag| *tag == file.etag);
    let range = range_header
        .filter(|_| if_range_matches && file.fault != Some(Fault::IgnoreRange))
        .and_then(|header| parse_range(&header, total));
    let (status, start, end) = match range {
        Some(Err(())) => {
            let head = format!("HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{total}\r\nContent-Length: 0\r\n\r\n");
            return stream.write_all(head.as_bytes()).await.is_ok();
        }
        Some(Ok((start, _))) if file.fault == Some(Fault::OverlongRange) => (206, start, total),
        Some(Ok((start, end))) => (206, start, end),
        None => (200, 0, total),
    };
    let extra_bytes = match file.fault {
        Some(Fault::Oversized { extra_bytes }) => Some(extra_bytes),
        _ => None,
    };
    let length = match extra_bytes {
        Some(_) => "Connection: close".to_owned(),
        None => format!("Content-Length: {}", end - start),
    };
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\n{length}\r\nETag: {}\r\nAccept-Ranges: bytes\r\nContent-Type: application/octet-stream\r\n",
        if status == 206 { "Partial Content" } else { "OK" },
        file.etag
    );
    if status == 206 {
        head.push_str(&format!(
            "Content-Range: bytes {start}-{}/{total}\r\n",
            end - 1
        ));
    }
    head.push_str("\r\n");
    if stream.write_all(head.as_bytes()).await.is_err() || request.method == "HEAD" {
        return request.method == "HEAD";
    }
    let sent = send_body(stream, &name, &file, (start, end), epoch, state).await;
    match extra_bytes {
        Some(extra_bytes) if sent => {
            send_zeros(stream, extra_bytes, epoch, state).await;
            let _ = stream.shutdown().await;
            false
        }
        _ => sent,
    }
}

/// `len` zero bytes after a body, counted as body bytes.
async fn send_zeros(stream: &mut TcpStream, len: u64, epoch: u64, state: &Mutex<State>) {
    const CHUNK: usize = 64 * 1024;
    let zeros = vec![0u8; CHUNK];
    let mut left = len;
    while left > 0 {
        let chunk = &zeros[..usize::try_from(left).unwrap_or(CHUNK).min(CHUNK)];
        if stream.write_all(chunk).await.is_err() {
            return;
        }
        let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.epoch == epoch {
            state.traffic.body_bytes += chunk.len() as u64;
        }
        left -= chunk.len() as u64;
    }
}

enum Route {
    Json(String),
    Redirect(String),
    Status(u16),
    File(String, File, u64),
}

/// Counts the request and decides what to answer (without holding the lock across
/// any await).
fn route(request: &Request, range_header: Option<String>, state: &Mutex<State>) -> Route {
    let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
    state.traffic.requests += 1;
    state.traffic.ranges.push(range_header);
    if let Some(name) = request.path.strip_prefix("/redirect/") {
        return Route::Redirect(format!("/files/{name}"));
    }
    if let Some(rest) = request.path.strip_prefix("/api/models/") {
        // {owner}/{repo}/tree/{revision}[?query]
        let rest = rest.split('?').next().unwrap_or_default();
        let parts: Vec<&str> = rest.splitn(4, '/').collect();
        if let [owner, repo, "tree", _revision] = parts.as_slice() {
            let repo = format!("{owner}/{repo}");
            let listing: Vec<String> = state
                .hub
                .iter()
                .filter(|entry| entry.repo == repo)
                .map(|entry| {
                    format!(
                        r#"{{"type":"file","oid":"0000","size":135,"path":"{}","lfs":{{"oid":"{}","size":{},"pointerSize":135}}}}"#,
                        entry.path, entry.sha256, entry.size
                    )
                })
                .collect();
            if listing.is_empty() {
                return Route::Status(404);
            }
            return Route::Json(format!("[{}]", listing.join(",")));
        }
    }
    // {owner}/{repo}/resolve/{revision}/{path}
    let parts: Vec<&str> = request
        .path
        .trim_start_matches('/')
        .splitn(5, '/')
        .collect();
    if let [owner, repo, "resolve", _revision, path] = parts.as_slice() {
        return Route::Redirect(format!("/files/{owner}/{repo}/{path}"));
    }
    let name = request.path.strip_prefix("/files/").unwrap_or_default();
    let Some(file) = state.files.get_mut(name) else {
        return Route::Status(404);
    };
    if let Some(Fault::Status { code, times }) = &mut file.fault {
        let code = *code;
        *times = times.saturating_sub(1);
        if *times == 0 {
            file.fault = None;
        }
        return Route::Status(code);
    }
    let file = file.clone();
    Route::File(name.to_owned(), file, state.epoch)
}

async fn send_body(
    stream: &mut TcpStream,
    name: &str,
    file: &File,
    (start, end): (u64, u64),
    epoch: u64,
    state: &Mutex<State>,
) -> bool {
    const CHUNK: u64 = 64 * 1024;
    let mut position = start;
    while position < end {
        let mut chunk_end = (position + CHUNK).min(end);
        let mut cut = false;
        match &file.fault {
            Some(Fault::CutAt(at)) if *at < chunk_end && *at >= position => {
                chunk_end = *at;
                cut = true;
            }
            Some(Fault::Slow { bytes_per_second }) => {
                chunk_end = (position + (*bytes_per_second / 10).max(1)).min(end);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            _ => {}
        }
        let range = usize::try_from(position).unwrap_or(0)..usize::try_from(chunk_end).unwrap_or(0);
        let mut chunk = file.bytes.get(range).unwrap_or_default().to_vec();
        if let Some(Fault::WrongByteAt(at)) = file.fault {
            if (position..chunk_end).contains(&at) {
                let index = usize::try_from(at - position).unwrap_or(0);
                chunk[index] = chunk[index].wrapping_add(1);
            }
        }
        if stream.write_all(&chunk).await.is_err() {
            return false;
        }
        {
            let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
            if state.epoch == epoch {
                state.traffic.body_bytes += chunk.len() as u64;
            }
        }
        if cut {
            if let Some(file) = state
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .files
                .get_mut(name)
            {
                file.fault = None;
            }
            let _ = stream.shutdown().await;
            return false;
        }
        position = chunk_end;
    }
    true
}

async fn send_status(stream: &mut TcpStream, code: u16) -> bool {
    let head = format!("HTTP/1.1 {code} Fault\r\nContent-Length: 0\r\n\r\n");
    stream.write_all(head.as_bytes()).await.is_ok()
}

/// `bytes=a-b`, `bytes=a-` or `bytes=-n` → `[start, end)`; `Err` when unsatisfiable.
fn parse_range(header: &str, total: u64) -> Option<Result<(u64, u64), ()>> {
    let spec = header.strip_prefix("bytes=")?;
    let (first, last) = spec.split_once('-')?;
    let (start, end) = if first.is_empty() {
        let suffix: u64 = last.parse().ok()?;
        (total.saturating_sub(suffix), total)
    } else {
        let start: u64 = first.parse().ok()?;
        let end = if last.is_empty() {
            total
        } else {
            last.parse::<u64>().ok()?.saturating_add(1).min(total)
        };
        (start, end)
    };
    Some(if start >= total || start >= end {
        Err(())
    } else {
        Ok((start, end))
    })
}
