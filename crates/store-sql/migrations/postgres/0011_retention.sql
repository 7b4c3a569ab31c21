-- Issue 13: retention deletes old history daily; these find it without a scan.
CREATE INDEX message_ids_created ON message_ids (created_at);
CREATE INDEX dmarc_reports_end ON dmarc_reports (end_at);
CREATE INDEX dmarc_broken_reports_received ON dmarc_broken_reports (received_at);
