//! weft's filters beyond minijinja's built-ins.

use minijinja::Environment;

pub(super) fn register(_env: &mut Environment<'static>) {}
