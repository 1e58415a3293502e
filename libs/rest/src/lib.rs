//! The JSON of the REST API (API.md §2): what the gateway answers and what a webhook delivers
//! (API.md §5.3) are the same views of the control plane's replies, defined once here.

pub mod pricing;
pub mod schema;
pub mod view;
