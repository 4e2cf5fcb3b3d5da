//! Semantic validation, after serde has checked types: every problem is collected with the
//! path of the field, so one start-up error lists them all.

/// Implemented by every config section.
pub trait Validate {
    fn validate(&self, v: &mut Validator);
}

/// Collects `(field path, message)` problems.
#[derive(Debug, Default)]
pub struct Validator {
    prefix: Vec<String>,
    errors: Vec<(String, String)>,
}

impl Validator {
    /// Validates a nested section under `name`.
    pub fn section<T: Validate + ?Sized>(&mut self, name: &str, section: &T) {
        self.prefix.push(name.to_owned());
        section.validate(self);
        self.prefix.pop();
    }

    /// Records a problem with the field `field` of the current section unless `ok`.
    pub fn check(&mut self, ok: bool, field: &str, message: impl Into<String>) {
        if !ok {
            self.error(field, message);
        }
    }

    pub fn error(&mut self, field: &str, message: impl Into<String>) {
        let mut path = self.prefix.join(".");
        if !field.is_empty() {
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(field);
        }
        self.errors.push((path, message.into()));
    }

    /// Adopts a `Result<(), String>` from a backend config's own `validate()`.
    pub fn adopt(&mut self, field: &str, result: Result<(), String>) {
        if let Err(message) = result {
            self.error(field, message);
        }
    }

    pub fn finish(self) -> Result<(), Vec<(String, String)>> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(self.errors)
        }
    }
}
