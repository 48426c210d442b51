//! Error classification: transient or permanent, HTTP status codes, I/O error kinds, server hints.
