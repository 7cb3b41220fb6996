-- Targeting rules of a link (issue 15): an ordered JSON array in the form the edge's cache record
-- carries (`smo1_core::targeting::Rule`), written only by the links API, which validates them
-- and bounds their count (20) and size (16 KiB). A constant default adds the column without
-- rewriting the table; a change of rules is a change of the row, so the update trigger queues
-- the link's cache invalidation like any other edit. The CHECK is a backstop for writes from
-- elsewhere; NOT VALID because existing rows hold the default, so nothing needs a scan.
ALTER TABLE links ADD COLUMN rules jsonb NOT NULL DEFAULT '[]'::jsonb;
ALTER TABLE links ADD CONSTRAINT links_rules_bounded
    CHECK (jsonb_typeof(rules) = 'array' AND pg_column_size(rules) <= 65536) NOT VALID;
