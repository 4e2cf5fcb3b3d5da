//! Tasks in memory, each with a broadcast of its events (for streams and blocking sends)
//! and a token that stops its driver when the task is canceled. Every state change happens
//! under one lock, so a cancel and a driver step can never both win.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::jsonrpc::RpcError;
use super::model::{
    Artifact, Message, Part, Task, TaskArtifactUpdateEvent, TaskEvent, TaskState, TaskStatus,
    TaskStatusUpdateEvent,
};
use super::script::Step;

/// Far more than one task emits; a lagging reader falls back to the task snapshot.
const EVENT_BUFFER: usize = 64;

/// Bounds memory when the binary serves a long load test.
const CAPACITY: usize = 10_000;

struct Entry {
    task: Task,
    events: broadcast::Sender<TaskEvent>,
    stop: CancellationToken,
}

/// What a caller needs to follow a task it just started or resumed.
pub struct Started {
    pub task: Task,
    pub events: broadcast::Receiver<TaskEvent>,
    pub stop: CancellationToken,
}

#[derive(Default)]
pub struct TaskStore {
    tasks: Mutex<HashMap<String, Entry>>,
    order: Mutex<std::collections::VecDeque<String>>,
}

impl std::fmt::Debug for TaskStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskStore")
            .field("tasks", &self.tasks.lock().expect("task lock").len())
            .finish()
    }
}

impl TaskStore {
    /// A new `submitted` task whose history starts with `message`.
    pub fn create(&self, mut message: Message) -> Started {
        let id = uuid::Uuid::new_v4().to_string();
        let context_id = message
            .context_id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        message.task_id = Some(id.clone());
        message.context_id = Some(context_id.clone());
        let task = Task {
            id: id.clone(),
            context_id,
            status: TaskStatus::new(TaskState::Submitted, None),
            history: vec![message],
            artifacts: Vec::new(),
            kind: "task",
        };
        let (events, rx) = broadcast::channel(EVENT_BUFFER);
        let stop = CancellationToken::new();
        let mut tasks = self.tasks.lock().expect("task lock");
        let mut order = self.order.lock().expect("order lock");
        if order.len() == CAPACITY
            && let Some(old) = order.pop_front()
        {
            tasks.remove(&old);
        }
        order.push_back(id.clone());
        tasks.insert(
            id,
            Entry {
                task: task.clone(),
                events,
                stop: stop.clone(),
            },
        );
        Started {
            task,
            events: rx,
            stop,
        }
    }

    /// Appends `message` to a task waiting for input and hands it back to a driver.
    pub fn resume(&self, task_id: &str, mut message: Message) -> Result<Started, RpcError> {
        let mut tasks = self.tasks.lock().expect("task lock");
        let entry = tasks
            .get_mut(task_id)
            .ok_or_else(|| RpcError::task_not_found(task_id))?;
        let state = entry.task.status.state;
        if !state.is_interrupted() {
            return Err(RpcError::invalid_params(format!(
                "task {task_id} is {} and does not take new messages",
                serde_json::to_value(state).unwrap_or_default()
            )));
        }
        message.context_id = Some(entry.task.context_id.clone());
        entry.task.history.push(message);
        entry.task.status = TaskStatus::new(TaskState::Submitted, None);
        entry.stop = CancellationToken::new();
        Ok(Started {
            task: entry.task.clone(),
            events: entry.events.subscribe(),
            stop: entry.stop.clone(),
        })
    }

    /// Applies one driver step; false once the task is over (finished or canceled).
    pub fn apply(&self, task_id: &str, step: &Step) -> bool {
        let mut tasks = self.tasks.lock().expect("task lock");
        let Some(entry) = tasks.get_mut(task_id) else {
            return false;
        };
        let task = &mut entry.task;
        if task.status.state.is_terminal() {
            return false;
        }
        let event = match step {
            Step::Artifact(text) => {
                let artifact = Artifact {
                    artifact_id: uuid::Uuid::new_v4().to_string(),
                    name: "echo".into(),
                    parts: vec![Part::text(text.clone())],
                };
                task.artifacts.push(artifact.clone());
                TaskEvent::Artifact(TaskArtifactUpdateEvent {
                    task_id: task.id.clone(),
                    context_id: task.context_id.clone(),
                    artifact,
                    append: false,
                    last_chunk: true,
                    kind: "artifact-update",
                })
            }
            Step::Working => status_change(task, TaskState::Working, None),
            Step::Complete(text) => status_change(task, TaskState::Completed, Some(text)),
            Step::Fail(text) => status_change(task, TaskState::Failed, Some(text)),
            Step::Reject(text) => status_change(task, TaskState::Rejected, Some(text)),
            Step::InputRequired(text) => status_change(task, TaskState::InputRequired, Some(text)),
        };
        // No subscriber is fine: nobody is streaming this task.
        let _ = entry.events.send(event);
        true
    }

    pub fn get(&self, task_id: &str, history_length: Option<usize>) -> Result<Task, RpcError> {
        let tasks = self.tasks.lock().expect("task lock");
        tasks
            .get(task_id)
            .map(|e| e.task.with_history_limit(history_length))
            .ok_or_else(|| RpcError::task_not_found(task_id))
    }

    pub fn cancel(&self, task_id: &str) -> Result<Task, RpcError> {
        let mut tasks = self.tasks.lock().expect("task lock");
        let entry = tasks
            .get_mut(task_id)
            .ok_or_else(|| RpcError::task_not_found(task_id))?;
        let state = entry.task.status.state;
        if state.is_terminal() {
            return Err(RpcError::task_not_cancelable(task_id, state));
        }
        let event = status_change(&mut entry.task, TaskState::Canceled, None);
        let _ = entry.events.send(event);
        entry.stop.cancel();
        Ok(entry.task.clone())
    }

    /// The task now and its later events, for `tasks/resubscribe`.
    pub fn subscribe(
        &self,
        task_id: &str,
    ) -> Result<(Task, broadcast::Receiver<TaskEvent>), RpcError> {
        let tasks = self.tasks.lock().expect("task lock");
        let entry = tasks
            .get(task_id)
            .ok_or_else(|| RpcError::task_not_found(task_id))?;
        Ok((entry.task.clone(), entry.events.subscribe()))
    }

    pub fn all(&self) -> Vec<Task> {
        let tasks = self.tasks.lock().expect("task lock");
        let order = self.order.lock().expect("order lock");
        order
            .iter()
            .filter_map(|id| tasks.get(id).map(|e| e.task.clone()))
            .collect()
    }
}

/// Moves `task` to `state`; an agent message goes both into the status and the history.
fn status_change(task: &mut Task, state: TaskState, text: Option<&String>) -> TaskEvent {
    let message = text.map(|t| Message::agent(t.clone(), Some(&task.id), &task.context_id));
    if let Some(m) = &message {
        task.history.push(m.clone());
    }
    task.status = TaskStatus::new(state, message);
    TaskEvent::Status(TaskStatusUpdateEvent {
        task_id: task.id.clone(),
        context_id: task.context_id.clone(),
        status: task.status.clone(),
        r#final: state.is_terminal() || state.is_interrupted(),
        kind: "status-update",
    })
}
