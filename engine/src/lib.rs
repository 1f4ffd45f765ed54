//! weft-engine: the workflow model, validation, DAG, templating and (later) the executor.

pub mod template;
pub mod yaml;
