//! Walks a task through its steps, one every `step` (the agent's pace), until the steps
//! run out, the task is canceled, or the agent shuts down.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::script::Step;
use super::store::TaskStore;

pub fn spawn(
    store: Arc<TaskStore>,
    task_id: String,
    steps: Vec<Step>,
    step: Duration,
    stop: CancellationToken,
    shutdown: CancellationToken,
) {
    tokio::spawn(async move {
        for s in steps {
            if !step.is_zero() {
                tokio::select! {
                    _ = tokio::time::sleep(step) => {}
                    _ = stop.cancelled() => return,
                    _ = shutdown.cancelled() => return,
                }
            }
            if !store.apply(&task_id, &s) {
                return;
            }
        }
    });
}
