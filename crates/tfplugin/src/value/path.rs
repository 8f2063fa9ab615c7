//! Attribute paths (where a value sits in a resource), and decode errors that carry one.

use std::fmt;

/// One step of an attribute path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathStep {
    /// `.name`
    Attr(String),
    /// `[3]` in a list, tuple or (by position) a set.
    Index(i64),
    /// `["key"]` in a map.
    Key(String),
}

/// A path from the root of a resource to one of its values, as Terraform's diagnostics carry it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AttrPath(pub Vec<PathStep>);

impl AttrPath {
    /// The empty path: the whole object.
    pub fn root() -> AttrPath {
        AttrPath(Vec::new())
    }
    /// A path of one attribute.
    pub fn attr(name: &str) -> AttrPath {
        AttrPath(vec![PathStep::Attr(name.to_string())])
    }
    /// This path followed by an attribute.
    pub fn then(&self, name: &str) -> AttrPath {
        self.with(PathStep::Attr(name.to_string()))
    }
    /// This path followed by an index.
    pub fn index(&self, i: usize) -> AttrPath {
        self.with(PathStep::Index(i as i64))
    }
    /// This path followed by a map key.
    pub fn key(&self, k: &str) -> AttrPath {
        self.with(PathStep::Key(k.to_string()))
    }
    fn with(&self, step: PathStep) -> AttrPath {
        let mut p = self.clone();
        p.0.push(step);
        p
    }
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, step) in self.0.iter().enumerate() {
            match step {
                PathStep::Attr(n) if i == 0 => write!(f, "{n}")?,
                PathStep::Attr(n) => write!(f, ".{n}")?,
                PathStep::Index(i) => write!(f, "[{i}]")?,
                PathStep::Key(k) => write!(f, "[{k:?}]")?,
            }
        }
        Ok(())
    }
}

/// A value could not be decoded: what was wrong, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}{}", if path.0.is_empty() { String::new() } else { format!(" at {path}") })]
pub struct DecodeError {
    /// Where in the value the problem is.
    pub path: AttrPath,
    /// What is wrong.
    pub message: String,
}

/// An error at the value being decoded; each enclosing level adds its step as it travels up
/// ([`DecodeError::within`]), so a path is built only when something is wrong.
pub(crate) fn fail<T>(message: impl Into<String>) -> Result<T, DecodeError> {
    Err(DecodeError { path: AttrPath::root(), message: message.into() })
}

impl DecodeError {
    /// The same error, seen from one level further out: `step` leads to where it was.
    pub(crate) fn within(mut self, step: PathStep) -> DecodeError {
        self.path.0.insert(0, step);
        self
    }
}
