-- Lockouts now count a link's recent failures across all addresses (and an address's with its
-- IPv6 /64), newest first: an index by link and time serves both without reading old rows.
CREATE INDEX protection_attempts_link_created_idx ON protection_attempts (link_id, created_at DESC);
