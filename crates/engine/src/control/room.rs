//! The daemon's room for this process's images, as this process's orchestrator
//! asks for it (the server side is `server::room`).

use std::sync::Arc;

use super::client::ControlClient;
use super::link::DaemonLink;
use super::wire::RoomRequest;
use crate::diffusion::gate::BoxFuture;
use crate::errors::ErrorReport;
use crate::orchestrator::ServersElsewhere;

/// The daemon of a data folder, as this process's orchestrator sees it; nothing
/// when no daemon runs there, or when this process is that daemon.
#[derive(Debug)]
pub struct DaemonServers {
    link: Arc<DaemonLink>,
}

impl DaemonServers {
    pub fn new(link: Arc<DaemonLink>) -> Self {
        Self { link }
    }

    fn client(&self) -> Option<ControlClient> {
        self.link.other_process_client()
    }
}

impl ServersElsewhere for DaemonServers {
    fn make_room(
        &self,
        image_ram: u64,
        image_vram: u64,
    ) -> BoxFuture<'_, Result<bool, ErrorReport>> {
        Box::pin(async move {
            let Some(client) = self.client() else {
                return Ok(false);
            };
            client
                .make_room(RoomRequest {
                    ram_bytes: image_ram,
                    vram_bytes: image_vram,
                    pid: std::process::id(),
                })
                .await
                .map(|answer| answer.made)
        })
    }

    fn room_no_longer_needed(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if let Some(client) = self.client() {
                if let Err(error) = client.room_no_longer_needed(std::process::id()).await {
                    tracing::warn!(problem = %error.message, "could not tell the daemon the image is done");
                }
            }
        })
    }
}
