//! Rows grouped by kind: the unit a backend writes in one go (one ClickHouse insert, one
//! append to one JSONL file) and the content of one spool segment.

use serde::Serialize;

use super::metrics::kind_index;
use super::{AuditEvent, Event, EventKind, RequestEvent, UsageEvent};

/// Rows of a single kind, typed so backends can write them without matching per row.
#[derive(Debug, Clone, PartialEq)]
pub enum Rows {
    Request(Vec<RequestEvent>),
    Usage(Vec<UsageEvent>),
    Audit(Vec<AuditEvent>),
}

impl Rows {
    /// No rows of `kind`.
    pub fn empty(kind: EventKind) -> Self {
        match kind {
            EventKind::Request => Rows::Request(Vec::new()),
            EventKind::Usage => Rows::Usage(Vec::new()),
            EventKind::Audit => Rows::Audit(Vec::new()),
        }
    }

    pub fn kind(&self) -> EventKind {
        match self {
            Rows::Request(_) => EventKind::Request,
            Rows::Usage(_) => EventKind::Usage,
            Rows::Audit(_) => EventKind::Audit,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Rows::Request(rows) => rows.len(),
            Rows::Usage(rows) => rows.len(),
            Rows::Audit(rows) => rows.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds `event` if it is of this kind; otherwise leaves the rows alone and returns the
    /// event's kind.
    pub fn push(&mut self, event: Event) -> Result<(), EventKind> {
        match (self, event) {
            (Rows::Request(rows), Event::Request(e)) => rows.push(e),
            (Rows::Usage(rows), Event::Usage(e)) => rows.push(e),
            (Rows::Audit(rows), Event::Audit(e)) => rows.push(e),
            (_, other) => return Err(other.kind()),
        }
        Ok(())
    }

    /// Appends each row as the tagged [`Event`] JSON (`{"kind":"request",...}`) plus `\n`,
    /// without cloning rows into `Event`s.
    pub fn write_tagged_jsonl(&self, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        fn each<'a, T>(
            rows: &'a [T],
            out: &mut Vec<u8>,
            wrap: impl Fn(&'a T) -> EventRef<'a>,
        ) -> Result<(), serde_json::Error> {
            for row in rows {
                serde_json::to_writer(&mut *out, &wrap(row))?;
                out.push(b'\n');
            }
            Ok(())
        }
        match self {
            Rows::Request(rows) => each(rows, out, EventRef::Request),
            Rows::Usage(rows) => each(rows, out, EventRef::Usage),
            Rows::Audit(rows) => each(rows, out, EventRef::Audit),
        }
    }
}

/// Borrowing twin of [`Event`]: serializes to exactly the same JSON.
#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum EventRef<'a> {
    Request(&'a RequestEvent),
    Usage(&'a UsageEvent),
    Audit(&'a AuditEvent),
}

impl<'a> From<&'a Event> for EventRef<'a> {
    fn from(event: &'a Event) -> Self {
        match event {
            Event::Request(e) => EventRef::Request(e),
            Event::Usage(e) => EventRef::Usage(e),
            Event::Audit(e) => EventRef::Audit(e),
        }
    }
}

/// The rows collected by the writer since its last dispatch, one [`Rows`] per kind (a batch
/// is per kind, so every insert carries up to `batch_size` rows of its table).
#[derive(Debug)]
pub(crate) struct Batch {
    by_kind: [Rows; 3],
}

impl Batch {
    pub(crate) fn new() -> Self {
        Self {
            by_kind: EventKind::ALL.map(Rows::empty),
        }
    }

    /// Adds `event`; returns how many rows of its kind the batch now holds.
    pub(crate) fn push(&mut self, event: Event) -> usize {
        let slot = &mut self.by_kind[kind_index(event.kind())];
        // Cannot fail: the slot was chosen by the event's kind.
        let _ = slot.push(event);
        slot.len()
    }

    /// Empties the rows of `kind`.
    pub(crate) fn take_kind(&mut self, kind: EventKind) -> Rows {
        std::mem::replace(&mut self.by_kind[kind_index(kind)], Rows::empty(kind))
    }

    /// Empties the batch, returning its non-empty parts in [`EventKind::ALL`] order.
    pub(crate) fn take(&mut self) -> Vec<Rows> {
        EventKind::ALL
            .iter()
            .map(|&kind| self.take_kind(kind))
            .filter(|rows| !rows.is_empty())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tagged_jsonl_matches_event_serialization() {
        let event = RequestEvent {
            event_id: "e1".into(),
            tenant_id: "acme".into(),
            status: 200,
            ..Default::default()
        };
        let mut out = Vec::new();
        Rows::Request(vec![event.clone()])
            .write_tagged_jsonl(&mut out)
            .unwrap();
        let expected = serde_json::to_string(&Event::Request(event)).unwrap() + "\n";
        assert_eq!(String::from_utf8(out).unwrap(), expected);
    }

    #[test]
    fn batch_groups_by_kind_and_empties() {
        let mut batch = Batch::new();
        assert_eq!(batch.push(Event::Audit(AuditEvent::default())), 1);
        assert_eq!(batch.push(Event::Request(RequestEvent::default())), 1);
        assert_eq!(batch.push(Event::Audit(AuditEvent::default())), 2);
        let parts = batch.take();
        let shape: Vec<_> = parts.iter().map(|r| (r.kind(), r.len())).collect();
        assert_eq!(shape, [(EventKind::Request, 1), (EventKind::Audit, 2)]);
        assert!(batch.take().is_empty());
        batch.push(Event::Usage(UsageEvent::default()));
        assert_eq!(batch.take_kind(EventKind::Usage).len(), 1);
        assert!(batch.take_kind(EventKind::Usage).is_empty());
    }

    #[test]
    fn push_refuses_other_kind() {
        let mut rows = Rows::empty(EventKind::Usage);
        let back = rows.push(Event::Request(RequestEvent::default()));
        assert_eq!(back, Err(EventKind::Request));
        assert!(rows.is_empty());
    }
}
