//! Domain errors to GraphQL errors, once: every error carries `extensions.code`, and an
//! INTERNAL one says nothing of its cause (the log has it).

use async_graphql::ErrorExtensions;

use crate::service::AppError;

pub fn to_graphql(e: &AppError) -> async_graphql::Error {
    let message = match e.internal_detail() {
        Some(detail) => {
            tracing::error!(error = %detail, "internal error");
            "internal error: the server could not complete this request (quote the requestId when reporting it)".to_string()
        }
        None => e.message(),
    };
    let code = e.code();
    async_graphql::Error::new(message).extend_with(|_, ext| ext.set("code", code))
}

impl From<AppError> for async_graphql::Error {
    fn from(e: AppError) -> Self {
        to_graphql(&e)
    }
}

pub fn forbidden(message: impl Into<String>) -> async_graphql::Error {
    to_graphql(&AppError::Forbidden(message.into()))
}
