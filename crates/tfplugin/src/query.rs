//! The interfaces of Terraform 1.14's newer services: list resources (`terraform query`, `list`
//! blocks in `.tfquery.hcl` files) and actions (`action` blocks, `terraform apply -invoke=…`, and a
//! resource's `lifecycle { action_trigger { … } }`).

use async_trait::async_trait;

use crate::diag::Diagnostics;
use crate::framework::Ctx;
use crate::schema::Schema;
use crate::value::Value;

/// One instance a list resource found.
#[derive(Clone, Debug)]
pub struct Found {
    /// Its identity: an object of the managed resource's identity schema.
    pub identity: Value,
    /// A name for people.
    pub display_name: String,
    /// Its state, as the managed resource's read would give it, when asked for
    /// (`include_resource`).
    pub resource: Option<Value>,
}

/// A list resource: finds the instances of the managed resource type of the same name, including
/// ones Terraform does not manage.
#[async_trait]
pub trait ListResource: Send + Sync {
    /// The type name, the managed resource's.
    fn type_name(&self) -> &'static str;
    /// The schema of the list block's `config`.
    fn schema(&self) -> Schema;
    /// Checks a configuration that may hold unknown values.
    async fn validate(&self, _ctx: &Ctx, _config: &Value, _diags: &mut Diagnostics) {}
    /// Finds at most `limit` instances matching `config`; `include_resource` asks for each one's
    /// state.
    async fn list(
        &self,
        ctx: &Ctx,
        config: &Value,
        include_resource: bool,
        limit: usize,
        diags: &mut Diagnostics,
    ) -> Vec<Found>;
}

/// Messages an action prints while it runs.
#[derive(Clone, Debug)]
pub struct Progress(tokio::sync::mpsc::UnboundedSender<String>);

impl Progress {
    /// A progress reporter and the receiving end of its messages.
    pub fn channel() -> (Progress, tokio::sync::mpsc::UnboundedReceiver<String>) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        (Progress(tx), rx)
    }

    /// Prints `message` in Terraform's output (nothing when no one listens any more).
    pub fn say(&self, message: impl Into<String>) {
        let _ = self.0.send(crate::diag::printable(&message.into()));
    }
}

/// An action: one operation with a side effect, run on request, that changes no resource's state.
#[async_trait]
pub trait Action: Send + Sync {
    /// The type name.
    fn type_name(&self) -> &'static str;
    /// The schema of the action block's `config`.
    fn schema(&self) -> Schema;
    /// Checks a configuration that may hold unknown values.
    async fn validate(&self, _ctx: &Ctx, _config: &Value, _diags: &mut Diagnostics) {}
    /// Checks, when Terraform plans to invoke it, what can be checked before (the configuration may
    /// hold values known only at apply).
    async fn plan(&self, _ctx: &Ctx, _config: &Value, _diags: &mut Diagnostics) {}
    /// Runs it, telling its progress.
    async fn invoke(&self, ctx: &Ctx, config: &Value, progress: &Progress, diags: &mut Diagnostics);
}
