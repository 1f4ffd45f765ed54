//! Crates: listing, installing, upgrading and detaching prebuilt bundles of workflows.
