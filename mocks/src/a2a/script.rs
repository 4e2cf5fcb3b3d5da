//! What the agent does with a message, decided by its text so tests can steer it:
//! `[[message]]` answers with a Message and no task; `[[reject]]`, `[[fail]]` and
//! `[[input-required]]` end the task in that state; anything else is echoed back as an
//! artifact and the task completes.

pub const MESSAGE: &str = "[[message]]";
pub const REJECT: &str = "[[reject]]";
pub const FAIL: &str = "[[fail]]";
pub const INPUT_REQUIRED: &str = "[[input-required]]";

#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Working,
    Artifact(String),
    Complete(String),
    Fail(String),
    Reject(String),
    InputRequired(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Message(String),
    Task(Vec<Step>),
}

/// The text with steering markers removed: what the echo answers.
pub fn echo(text: &str) -> String {
    [MESSAGE, REJECT, FAIL, INPUT_REQUIRED]
        .iter()
        .fold(text.to_owned(), |t, m| t.replace(m, ""))
        .trim()
        .to_owned()
}

pub fn plan(text: &str) -> Reply {
    let echoed = echo(text);
    if text.contains(MESSAGE) {
        Reply::Message(echoed)
    } else if text.contains(REJECT) {
        Reply::Task(vec![Step::Reject(format!("rejected: {echoed}"))])
    } else if text.contains(FAIL) {
        Reply::Task(vec![Step::Working, Step::Fail(format!("failed: {echoed}"))])
    } else if text.contains(INPUT_REQUIRED) {
        Reply::Task(vec![
            Step::Working,
            Step::InputRequired(format!("more input needed for: {echoed}")),
        ])
    } else {
        Reply::Task(completion(echoed))
    }
}

/// The rest of a task once its missing input arrives (and of an ordinary one).
pub fn completion(echoed: String) -> Vec<Step> {
    vec![
        Step::Working,
        Step::Artifact(echoed.clone()),
        Step::Complete(echoed),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_pick_the_outcome_and_are_not_echoed() {
        assert_eq!(plan("hi [[message]]"), Reply::Message("hi".into()));
        assert_eq!(
            plan("do it [[fail]]"),
            Reply::Task(vec![Step::Working, Step::Fail("failed: do it".into())])
        );
        assert_eq!(plan("x"), Reply::Task(completion("x".into())));
        assert!(matches!(plan("[[reject]] no"), Reply::Task(s) if matches!(s[0], Step::Reject(_))));
    }
}
