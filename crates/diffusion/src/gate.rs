//! The one seam every generation passes: the image worker asks the gate before a run
//! of queued jobs starts and tells it when the queue has drained. The orchestrator
//! (LLM offload and reload) is a gate; nothing runs sd around it, because only the
//! worker holds a runner and every request (HTTP, window, engine API) is a job in the
//! same queue. Several queued images share one window, so the LLM is not bounced per
//! image.

use std::future::Future;
use std::pin::Pin;

use switchyard_base::errors::Result;
use switchyard_estimate::diffusion::DiffusionEstimate;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The job about to run, as the gate sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct GateRequest {
    pub job_id: String,
    pub width: u32,
    pub height: u32,
    pub count: u32,
    pub steps: u32,
    /// What sd will need for this job, where the placement puts it.
    pub estimate: DiffusionEstimate,
    /// Jobs still waiting behind this one.
    pub queued_after: usize,
}

/// What the gate decided when it opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GateDecision {
    /// Free sd's memory (stop a persistent sd-server) before [`GenerationGate::close`]:
    /// the gate wants the memory back (e.g. to reload the LLM it offloaded).
    pub release_after: bool,
}

/// How a window ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GateOutcome {
    pub completed: usize,
    pub failed: usize,
    pub cancelled: usize,
    /// sd's processes had ended and freed their memory before `close` was called.
    pub sd_memory_released: bool,
}

/// Called around every generation. Implementations must not block the runtime.
pub trait GenerationGate: Send + Sync + std::fmt::Debug {
    /// Before the first job of a run (the worker was idle). An error fails that job
    /// with it (e.g. `INSUFFICIENT_RESOURCES`); the next job asks again.
    fn open<'a>(&'a self, first: &'a GateRequest) -> BoxFuture<'a, Result<GateDecision>>;

    /// Before every job inside an open window, the first included (memory may have
    /// changed since the window opened). An error fails that job only.
    fn before_job<'a>(&'a self, _job: &'a GateRequest) -> BoxFuture<'a, Result<()>> {
        Box::pin(async { Ok(()) })
    }

    /// Between two jobs of an open window, while more jobs wait: whether to close
    /// the window now and open a new one for the rest (e.g. so an offloaded LLM can
    /// answer the requests waiting for it before the queue goes on).
    fn should_yield(&self) -> bool {
        false
    }

    /// The queue drained (or the service stopped): the window closes. Called exactly
    /// once after every successful `open`, whatever happened to the jobs.
    fn close<'a>(&'a self, outcome: &'a GateOutcome) -> BoxFuture<'a, ()>;
}

/// Lets everything through: the gate until the orchestrator sets its own.
#[derive(Debug, Default, Clone, Copy)]
pub struct OpenGate;

impl GenerationGate for OpenGate {
    fn open<'a>(&'a self, _first: &'a GateRequest) -> BoxFuture<'a, Result<GateDecision>> {
        Box::pin(async { Ok(GateDecision::default()) })
    }

    fn close<'a>(&'a self, _outcome: &'a GateOutcome) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }
}
