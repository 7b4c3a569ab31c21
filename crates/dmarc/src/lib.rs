//! DMARC reports as a service.
