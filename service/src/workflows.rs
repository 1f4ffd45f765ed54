//! Workflow use cases: deploying, validating and listing workflows.
