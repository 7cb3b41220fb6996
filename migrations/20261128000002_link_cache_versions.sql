-- Versioned invalidation of the edge cache (`link:{slug}` in Redis).
--
-- A cache refill takes a number from link_cache_version before it reads a link, and an
-- invalidation takes one after the change committed. Redis keeps the highest number it has seen
-- per slug and refuses a refill whose number is lower, so a refill that read the old state can
-- never overwrite an invalidation of a newer one. CACHE 1 (the default) matters: values are then
-- handed out in time order across sessions.
CREATE SEQUENCE link_cache_version CACHE 1;

-- Slugs whose cache entries still have to be invalidated: queued in the transaction of the change
-- (by the triggers below, whatever code or SQL made it), deleted once Redis has taken the
-- invalidation. A change whose invalidation failed is retried from here, by any origin.
CREATE TABLE link_cache_invalidations (
    id         bigserial PRIMARY KEY,
    slug       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX link_cache_invalidations_slug_idx ON link_cache_invalidations (slug);

CREATE FUNCTION links_queue_cache_invalidation() RETURNS trigger AS $$
DECLARE
    slugs text[] := '{}';
BEGIN
    IF TG_OP <> 'INSERT' THEN
        slugs := slugs || ARRAY[OLD.uid, OLD.custom_slug];
    END IF;
    IF TG_OP <> 'DELETE' THEN
        slugs := slugs || ARRAY[NEW.uid, NEW.custom_slug];
    END IF;
    INSERT INTO link_cache_invalidations (slug)
    SELECT DISTINCT s FROM unnest(slugs) AS s WHERE s IS NOT NULL;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER links_queue_cache_invalidation AFTER INSERT OR DELETE ON links
    FOR EACH ROW EXECUTE FUNCTION links_queue_cache_invalidation();
-- The total_clicks sync is not a change of what the edge serves.
CREATE TRIGGER links_queue_cache_invalidation_on_update AFTER UPDATE ON links
    FOR EACH ROW
    WHEN ((to_jsonb(NEW) - 'total_clicks' - 'updated_at') IS DISTINCT FROM
          (to_jsonb(OLD) - 'total_clicks' - 'updated_at'))
    EXECUTE FUNCTION links_queue_cache_invalidation();
