//! The directory sync with Autotask: preview, apply, settings, exclusions and approvals.
