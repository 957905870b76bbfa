//! The overlay's reconciler in the agent: brings the kernel to what the members want,
//! and keeps what it last programmed for the API.

use std::sync::RwLock;

use hawser_dataplane::overlay::Programmed;

/// What the rest of the agent can see of the overlay's kernel state.
#[derive(Default)]
pub struct OverlayStatus {
    /// What the kernel held after the last successful pass; `None` before the first.
    programmed: RwLock<Option<Programmed>>,
}

impl OverlayStatus {
    /// What the kernel held after the last successful pass.
    pub fn programmed(&self) -> Option<Programmed> {
        self.programmed
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn set(&self, p: Programmed) {
        *self.programmed.write().unwrap_or_else(|e| e.into_inner()) = Some(p);
    }
}
