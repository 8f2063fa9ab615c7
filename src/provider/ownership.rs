//! The rules every resource keeps about the remote objects it makes, written once:
//!
//! - **A name held by an object this apply did not create is never taken over** (rules
//!   `adopt-cluster`, `adopt-software`): a create checks the name first and refuses with
//!   [`refuse_taken_name`]; only an object that appears under the name after that check, while this
//!   apply's create was under way, is its own.
//! - **A create whose object exists but whose wait did not end is a warning** ([`unfinished`]): an
//!   error would mark the object tainted, and the next apply would replace an object that is on its
//!   way; after an update it is an error, and state keeps what was there before.
//! - **Gone means gone by Coiled's word**: a read reports [`Read::Gone`](tfplugin::framework::Read)
//!   only for a 404 the client has confirmed is Coiled's (`ApiError::NotFound`, see
//!   `Client::confirm_not_found`), never for any 404.

use tfplugin::diag::Diagnostics;
use tfplugin::value::AttrPath;

/// A kind of remote object, as the rules' diagnostics name it.
pub(crate) struct Kind {
    /// The title of the error for a name someone else's object holds.
    pub name_taken: &'static str,
    /// As a sentence names one: "running cluster", "software environment".
    pub noun: &'static str,
    /// Why the object is left alone, beyond its not being this apply's (empty, or a clause).
    pub why_left_alone: &'static str,
    /// What the user may do instead of importing it.
    pub instead: &'static str,
    /// Under `create_before_destroy`: why the new object cannot take the name, and what to do.
    pub when_replacing: &'static str,
}

/// The error for a create whose name an object this apply did not create holds (`id`, when known).
pub(crate) fn refuse_taken_name(
    diags: &mut Diagnostics,
    kind: &Kind,
    ws: &str,
    name: &str,
    id: Option<i64>,
) {
    let Kind { name_taken, noun, why_left_alone, instead, when_replacing } = kind;
    let id = id.map(|id| format!(" (id {id})")).unwrap_or_default();
    diags.error_at(
        AttrPath::attr("name"),
        *name_taken,
        format!(
            "A {noun} named {name:?} already exists in workspace {ws:?}{id}, and this apply did \
                not create it, so Terraform leaves it alone{why_left_alone}. {instead}, or manage \
                it with this resource by importing it: `terraform import` with this resource's \
                address (in the `with` line above) and the ID `{ws}/{name}`.\n\nIf this is a \
                replacement under `create_before_destroy`, {when_replacing}."
        ),
    );
}

/// Reports a wait that ended before the object it waited for did: a warning after a create (the
/// object is kept in state untainted, and the next apply finishes it in place), an error after an
/// update.
pub(crate) fn unfinished(diags: &mut Diagnostics, creating: bool, summary: &str, detail: String) {
    if creating {
        diags.warning(summary, detail);
    } else {
        diags.error(summary, detail);
    }
}
