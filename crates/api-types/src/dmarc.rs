//! DMARC reports: upload answers and the summary of `GET /api/v1/dmarc/summary`.
