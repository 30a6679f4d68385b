//! Ports are checked before anything is spawned: llama-server only says
//! `couldn't bind HTTP server socket` after it has started loading.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};

use switchyard_base::errors::{EngineError, Result};

pub(crate) fn address(host: &str, port: u16) -> Result<SocketAddr> {
    let ip: IpAddr = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .map_err(|_| EngineError::InvalidInput {
            field: "host",
            problem: format!("`{host}` is not an IP address"),
        })?;
    Ok(SocketAddr::new(ip, port))
}

/// Whether llama-server could listen on `host:port` now.
pub fn is_free(host: &str, port: u16) -> Result<bool> {
    Ok(TcpListener::bind(address(host, port)?).is_ok())
}

/// A port nobody listens on right now, from the system's ephemeral range.
pub fn pick_free(host: &str) -> Result<u16> {
    let listener = TcpListener::bind(address(host, 0)?)
        .or_else(|_| TcpListener::bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0)))
        .map_err(|error| EngineError::Internal {
            problem: format!("no free port: {error}"),
        })?;
    listener
        .local_addr()
        .map(|addr| addr.port())
        .map_err(|error| EngineError::Internal {
            problem: format!("no free port: {error}"),
        })
}

/// The fixed port if it is free, else `PORT_IN_USE`; with none, a free one.
pub fn claim(host: &str, wanted: Option<u16>) -> Result<u16> {
    match wanted {
        Some(port) if is_free(host, port)? => Ok(port),
        Some(port) => Err(EngineError::PortInUse {
            host: host.to_owned(),
            port,
        }),
        None => pick_free(host),
    }
}

/// Where Switchyard itself reaches a server listening on `host` (a wildcard
/// address is reached over loopback).
pub fn connect_base(host: &str, port: u16) -> String {
    match host {
        "0.0.0.0" => format!("http://127.0.0.1:{port}"),
        "::" | "[::]" => format!("http://[::1]:{port}"),
        host if host.contains(':') && !host.starts_with('[') => format!("http://[{host}]:{port}"),
        host => format!("http://{host}:{port}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listening_port_is_in_use() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        assert!(!is_free("127.0.0.1", port).unwrap());
        let error = claim("127.0.0.1", Some(port)).unwrap_err();
        assert_eq!(error.code(), switchyard_base::errors::ErrorCode::PortInUse);
        drop(listener);
        assert_eq!(claim("127.0.0.1", Some(port)).unwrap(), port);
        assert_ne!(claim("127.0.0.1", None).unwrap(), 0);
    }

    #[test]
    fn hosts_that_are_not_addresses_are_refused() {
        assert!(is_free("localhost; rm -rf", 80).is_err());
        assert_eq!(connect_base("0.0.0.0", 9), "http://127.0.0.1:9");
        assert_eq!(connect_base("::1", 9), "http://[::1]:9");
    }
}
