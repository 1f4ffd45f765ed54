//! Trigger use cases: listing with effective state, switches, firing, events, webhook secrets.
