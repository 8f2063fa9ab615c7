//! Provider-defined functions (protocol 6, Terraform 1.8 and later): a [`Function`] declares its
//! parameters and return type, and is called with decoded arguments. Terraform itself refuses null
//! arguments where a parameter does not allow them, and does not call a function whose arguments
//! are not wholly known (the result is then unknown), as the protocol documents.

use crate::proto::tfplugin6 as pb;
use crate::value::{Type, Value};

/// One positional parameter.
pub struct Param {
    /// Its name, shown in errors and docs.
    pub name: &'static str,
    /// Its type constraint.
    pub ty: Type,
    /// What it is.
    pub description: &'static str,
}

/// Why a call failed: the text Terraform shows, and the argument it is about (0-based), if one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FunctionError {
    /// The argument, if the error is about one.
    pub argument: Option<usize>,
    /// What went wrong, and what to do.
    pub text: String,
}

impl FunctionError {
    /// An error about argument `index`.
    pub fn argument(index: usize, text: impl Into<String>) -> FunctionError {
        FunctionError { argument: Some(index), text: text.into() }
    }

    /// The protocol message.
    pub fn to_proto(&self) -> pb::FunctionError {
        pb::FunctionError {
            text: self.text.clone(),
            function_argument: self.argument.map(|i| i as i64),
        }
    }
}

/// A provider-defined function.
pub trait Function: Send + Sync + 'static {
    /// Its name (called as `provider::NAME::this`).
    fn name(&self) -> &'static str;
    /// One line.
    fn summary(&self) -> &'static str;
    /// Markdown documentation.
    fn description(&self) -> &'static str;
    /// The parameters, in order.
    fn params(&self) -> Vec<Param>;
    /// The return type.
    fn returns(&self) -> Type;
    /// Calls it with wholly known, non-null arguments of the declared types.
    fn call(&self, args: &[Value]) -> Result<Value, FunctionError>;
}

/// The protocol declaration of `f`.
pub fn to_proto(f: &dyn Function) -> pb::Function {
    let parameters = f.params().into_iter().map(|p| pb::function::Parameter {
        name: p.name.to_string(),
        r#type: p.ty.to_json().to_string().into_bytes(),
        allow_null_value: false,
        allow_unknown_values: false,
        description: p.description.to_string(),
        description_kind: pb::StringKind::Markdown as i32,
    });
    pb::Function {
        parameters: parameters.collect(),
        variadic_parameter: None,
        r#return: Some(pb::function::Return {
            r#type: f.returns().to_json().to_string().into_bytes(),
        }),
        summary: f.summary().to_string(),
        description: f.description().to_string(),
        description_kind: pb::StringKind::Markdown as i32,
        deprecation_message: String::new(),
    }
}
