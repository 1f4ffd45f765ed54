//! Parity: sync use cases through the CLI and the API end the same way (see `parity`).
