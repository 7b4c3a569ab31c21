//! The DNS linter's answer: `GET /api/v1/checks/dns/{domain}` and `herald check dns --json`.
