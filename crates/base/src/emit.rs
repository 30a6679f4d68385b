//! How a part below the engine announces what happened without knowing the
//! engine: each part has its own event type and is handed an [`Emitter`] for it;
//! the engine's emitter wraps the part's event into its one event enum and
//! broadcasts it. A test can collect the events or drop them.

use std::fmt;
use std::sync::Arc;

/// Sends one part's events on; cheap to clone.
pub struct Emitter<E> {
    send: Arc<dyn Fn(E) + Send + Sync>,
}

impl<E> Emitter<E> {
    pub fn new(send: impl Fn(E) + Send + Sync + 'static) -> Self {
        Self {
            send: Arc::new(send),
        }
    }

    /// One that drops every event (a tool that only wants the work done).
    pub fn silent() -> Self {
        Self::new(|_| {})
    }

    pub fn emit(&self, event: E) {
        (self.send)(event);
    }
}

impl<E> Clone for Emitter<E> {
    fn clone(&self) -> Self {
        Self {
            send: Arc::clone(&self.send),
        }
    }
}

impl<E> fmt::Debug for Emitter<E> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("Emitter")
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[test]
    fn every_clone_sends_to_the_same_place() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&seen);
        let emitter = Emitter::new(move |event: u32| {
            sink.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(event);
        });
        emitter.emit(1);
        emitter.clone().emit(2);
        Emitter::<u32>::silent().emit(3);
        let seen = seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        assert_eq!(*seen, vec![1, 2]);
    }
}
