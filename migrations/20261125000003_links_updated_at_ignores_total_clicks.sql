-- links.updated_at is the link's version (the edge cache record's `version`, and part of the MAC
-- of protected links' unlock cookies). The total_clicks sync is not a change of the link: it must
-- neither move updated_at nor invalidate unlock cookies every sync interval.
CREATE FUNCTION links_set_updated_at() RETURNS trigger AS $$
BEGIN
    IF (to_jsonb(NEW) - 'total_clicks' - 'updated_at') IS DISTINCT FROM
       (to_jsonb(OLD) - 'total_clicks' - 'updated_at') THEN
        NEW.updated_at = now();
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER links_set_updated_at ON links;
CREATE TRIGGER links_set_updated_at BEFORE UPDATE ON links
    FOR EACH ROW EXECUTE FUNCTION links_set_updated_at();
