//! The application: the HTTP routes, the pipeline that joins the dispatcher to the upstream
//! pools, configuration and the command line.

pub mod cli;
pub mod config;
pub mod pipeline;
pub mod routes;
