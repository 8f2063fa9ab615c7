//! Diagnostics: what Terraform shows the user. A short Title Case summary, a detail that says what
//! failed and what to do next, and, where it applies, the attribute path it is about.

use crate::proto::tfplugin6 as pb;

use super::value::{AttrPath, PathStep};

/// Error or warning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// Stops the operation.
    Error,
    /// Shown, but the operation goes on.
    Warning,
}

/// One diagnostic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// Short Title Case summary.
    pub summary: String,
    /// What failed, why, and what to do.
    pub detail: String,
    /// The attribute it is about, if any.
    pub path: Option<AttrPath>,
}

/// A list of diagnostics collected during one operation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// No diagnostics.
    pub fn new() -> Diagnostics {
        Diagnostics(Vec::new())
    }
    /// Adds a diagnostic of `severity`, about the attribute at `path` when there is one.
    pub fn push(
        &mut self,
        severity: Severity,
        path: Option<AttrPath>,
        summary: impl Into<String>,
        detail: impl Into<String>,
    ) {
        let (summary, detail) = (summary.into(), detail.into());
        self.0.push(Diagnostic { severity, summary, detail, path });
    }
    /// Adds an error.
    pub fn error(&mut self, summary: impl Into<String>, detail: impl Into<String>) {
        self.push(Severity::Error, None, summary, detail);
    }
    /// Adds an error about one attribute.
    pub fn error_at(
        &mut self,
        at: AttrPath,
        summary: impl Into<String>,
        detail: impl Into<String>,
    ) {
        self.push(Severity::Error, Some(at), summary, detail);
    }
    /// Adds a warning.
    pub fn warning(&mut self, summary: impl Into<String>, detail: impl Into<String>) {
        self.push(Severity::Warning, None, summary, detail);
    }
    /// Adds a warning about one attribute.
    pub fn warning_at(
        &mut self,
        at: AttrPath,
        summary: impl Into<String>,
        detail: impl Into<String>,
    ) {
        self.push(Severity::Warning, Some(at), summary, detail);
    }
    /// Reports a provider bug: something that must never happen whatever the user does.
    pub fn bug(&mut self, summary: impl Into<String>, what: impl std::fmt::Display) {
        self.error(
            summary,
            format!(
                "{what}\n\nThis is always a problem with the provider. Please \
            report it to the provider developers."
            ),
        );
    }
    /// Whether any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.0.iter().any(|d| d.severity == Severity::Error)
    }
    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// The tfplugin6 messages.
    pub fn to_proto(&self) -> Vec<pb::Diagnostic> {
        self.0.iter().map(Diagnostic::to_proto).collect()
    }
}

impl Diagnostic {
    /// The tfplugin6 message.
    pub fn to_proto(&self) -> pb::Diagnostic {
        pb::Diagnostic {
            severity: match self.severity {
                Severity::Error => pb::diagnostic::Severity::Error,
                Severity::Warning => pb::diagnostic::Severity::Warning,
            } as i32,
            summary: printable(&self.summary),
            detail: printable(&self.detail),
            attribute: self.path.as_ref().filter(|p| !p.0.is_empty()).map(path_to_proto),
        }
    }
}

/// Text as a terminal may show it: control characters (ANSI escape sequences, carriage returns, C1
/// controls, …) a server's message may carry become `\u{..}` escapes, so nothing in a diagnostic
/// can move the cursor, recolour or rewrite Terraform's output; line breaks and tabs stay.
pub fn printable(text: &str) -> String {
    let escaped = |c: char| c.is_control() && c != '\n' && c != '\t';
    if !text.chars().any(escaped) {
        return text.to_string();
    }
    text.chars()
        .map(|c| if escaped(c) { c.escape_unicode().to_string() } else { c.to_string() })
        .collect()
}

/// Converts an attribute path to its tfplugin6 form.
pub fn path_to_proto(path: &AttrPath) -> pb::AttributePath {
    use pb::attribute_path::step::Selector;
    let selector = |s: &PathStep| match s {
        PathStep::Attr(n) => Selector::AttributeName(n.clone()),
        PathStep::Index(i) => Selector::ElementKeyInt(*i),
        PathStep::Key(k) => Selector::ElementKeyString(k.clone()),
    };
    let steps = path.0.iter().map(|s| pb::attribute_path::Step { selector: Some(selector(s)) });
    pb::AttributePath { steps: steps.collect() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_from_a_server_are_escaped() {
        assert_eq!(printable("plain\ntext\tok"), "plain\ntext\tok");
        let hostile = "reason \u{1b}[31mred\u{1b}[0m\r overwritten \u{9b}2J \u{7}";
        let shown = printable(hostile);
        assert!(!shown.chars().any(|c| c.is_control() && c != '\n' && c != '\t'), "{shown:?}");
        assert!(shown.contains("\\u{1b}[31mred") && shown.contains("\\u{d}"), "{shown}");
        let mut diags = Diagnostics::new();
        diags.error(hostile, hostile);
        let proto = diags.to_proto();
        assert_eq!(proto[0].summary, shown);
        assert_eq!(proto[0].detail, shown);
    }

    #[test]
    fn path_and_severity_reach_the_wire() {
        let mut d = Diagnostics::new();
        d.error_at(AttrPath::attr("ingress").index(1).then("cidr"), "Invalid CIDR", "x");
        d.warning("Careful", "y");
        let p = d.to_proto();
        assert_eq!(p[0].severity, pb::diagnostic::Severity::Error as i32);
        assert_eq!(p[0].attribute.as_ref().unwrap().steps.len(), 3);
        assert!(p[1].attribute.is_none());
        assert!(d.has_errors());
    }
}
