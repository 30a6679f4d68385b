//! The accept loop every listener runs instead of `axum::serve`, which has no
//! limits: at most `max_connections` at once (more wait in the kernel's queue, so a
//! flood cannot take every file descriptor the app needs to spawn servers), and a
//! client has `header_timeout` to send each request's headers (a connection idle
//! between requests is closed after it too: slow-loris clients hold nothing).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// What one listener allows a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    pub header_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_connections: 256,
            header_timeout: Duration::from_secs(10),
        }
    }
}

/// Serves `router` on `listener` until `shutdown`; then waits up to `grace` for
/// the answers under way and ends the rest.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: CancellationToken,
    grace: Duration,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut connections: JoinSet<()> = JoinSet::new();
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            () = shutdown.cancelled() => break,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.cancelled() => break,
            // Reap finished connections meanwhile, so the set does not grow.
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(error) => {
                // Out of descriptors, say: wait a moment rather than spin.
                tracing::warn!(%error, "a listener could not accept a connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout)
            .serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        connections.spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "a connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::debug!("answers still under way after the grace: ended");
    }
    connections.abort_all();
    while connections.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::TcpStream;

    use super::*;

    async fn listening(limits: ConnectionLimits) -> (std::net::SocketAddr, CancellationToken) {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let address = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let router = Router::new().route("/", axum::routing::get(|| async { "hi" }));
        let stop = CancellationToken::new();
        tokio::spawn(serve(
            listener,
            router,
            limits,
            stop.clone(),
            Duration::from_millis(100),
        ));
        (address, stop)
    }

    async fn get(stream: &mut TcpStream) -> String {
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let mut answer = vec![0_u8; 1024];
        let read = stream
            .read(&mut answer)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        String::from_utf8_lossy(&answer[..read]).into_owned()
    }

    #[tokio::test]
    async fn connections_past_the_cap_wait_for_a_free_one() {
        let (address, stop) = listening(ConnectionLimits {
            max_connections: 1,
            header_timeout: Duration::from_secs(30),
        })
        .await;
        let mut first = TcpStream::connect(address)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(get(&mut first).await.contains("200 OK"));
        // The kernel accepts the second, but nobody serves it while the first is open.
        let mut second = TcpStream::connect(address)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let waiting = tokio::time::timeout(Duration::from_millis(300), get(&mut second)).await;
        assert!(waiting.is_err(), "served past the cap: {waiting:?}");
        drop(first);
        let mut answer = vec![0_u8; 1024];
        let read = tokio::time::timeout(Duration::from_secs(10), second.read(&mut answer))
            .await
            .unwrap_or_else(|_| panic!("never served"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(String::from_utf8_lossy(&answer[..read]).contains("200 OK"));
        stop.cancel();
    }

    #[tokio::test]
    async fn a_client_slow_with_its_headers_or_idle_is_closed() {
        let (address, stop) = listening(ConnectionLimits {
            max_connections: 8,
            header_timeout: Duration::from_millis(200),
        })
        .await;
        for opening in [&b"GET / HTTP/1.1\r\nHost: loc"[..], b""] {
            let mut slow = TcpStream::connect(address)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            slow.write_all(opening)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let mut rest = Vec::new();
            // Closed by the server (EOF or reset), well before this deadline.
            let ended =
                tokio::time::timeout(Duration::from_secs(10), slow.read_to_end(&mut rest)).await;
            assert!(ended.is_ok(), "still open after 10 s");
        }
        stop.cancel();
    }
}
