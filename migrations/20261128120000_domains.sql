-- Custom domains (issue 15): an account's own hostnames, verified by a DNS TXT record at
-- `_smo1-challenge.<hostname>`, each serving its own links. Links without a domain belong to the
-- default domain (SHORT_DOMAINS) and keep their slugs.

-- pending: never verified (yet); verified: serving; failed: was verified, then lost its record
-- for DOMAIN_FAILURES_BEFORE_UNVERIFIED checks in a row.
CREATE TYPE domain_status AS ENUM ('pending', 'verified', 'failed');

CREATE TABLE domains (
    id                   uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    user_id              uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- Normalised by the origin (smo1_core::domain::normalise_hostname): lower case ASCII (IDNA),
    -- no trailing dot, at least two labels.
    hostname             text NOT NULL CHECK (
        length(hostname) <= 253
        AND hostname ~ '^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'),
    status               domain_status NOT NULL DEFAULT 'pending',
    verification_token   text NOT NULL CHECK (length(verification_token) BETWEEN 16 AND 128),
    -- Why the last check failed (kept while a verified domain is still inside its grace).
    failure_reason       text CHECK (length(failure_reason) <= 500),
    consecutive_failures integer NOT NULL DEFAULT 0 CHECK (consecutive_failures >= 0),
    last_checked_at      timestamptz,
    verified_at          timestamptz,
    root_redirect        text CHECK (length(root_redirect) BETWEEN 1 AND 2048),
    not_found_redirect   text CHECK (length(not_found_redirect) BETWEEN 1 AND 2048),
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);
-- Anyone may claim a hostname, but only one claim can be verified at a time: whoever proves
-- control of its DNS.
CREATE UNIQUE INDEX domains_user_hostname_key ON domains (user_id, hostname);
CREATE UNIQUE INDEX domains_verified_hostname_key ON domains (hostname) WHERE status = 'verified';
CREATE INDEX domains_hostname_idx ON domains (hostname);
CREATE TRIGGER domains_set_updated_at BEFORE UPDATE ON domains
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Removing a domain removes its links.
ALTER TABLE links ADD COLUMN domain_id uuid REFERENCES domains (id) ON DELETE CASCADE;
CREATE INDEX links_domain_id_idx ON links (domain_id) WHERE domain_id IS NOT NULL;

-- Custom slugs become unique per domain. The replacement for the default domain keeps the old
-- index's name (error mapping and tooling keep working) and covers every existing row, which all
-- belong to the default domain, so it builds without conflicts; this transaction holds the table
-- for the build, a moment at today's sizes. uids stay unique across all domains.
DROP INDEX links_custom_slug_key;
CREATE UNIQUE INDEX links_custom_slug_key ON links (custom_slug)
    WHERE custom_slug IS NOT NULL AND domain_id IS NULL;
CREATE UNIQUE INDEX links_domain_custom_slug_key ON links (domain_id, custom_slug)
    WHERE custom_slug IS NOT NULL AND domain_id IS NOT NULL;

-- Invalidations of the per-domain entries (`link:{domain}:{slug}`, `domain:{hostname}`): domain
-- NULL is the default domain, a row without a slug invalidates the domain's own entry. Queued by
-- the triggers below in the transaction of the change, deleted once Redis took it, like
-- link_cache_invalidations, which keeps queueing default-domain slugs for the `link:{slug}` keys
-- of origins and workers of before this migration (both tables are drained by new origins; old
-- origins drain only the old one, so a change they make still reaches the new keys through the
-- new origins' retry pass: docs/OPERATIONS.md, "Rolling out custom domains").
CREATE TABLE cache_invalidations (
    id         bigserial PRIMARY KEY,
    domain     text,
    slug       text,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT cache_invalidations_names_something CHECK (slug IS NOT NULL OR domain IS NOT NULL)
);
CREATE INDEX cache_invalidations_slug_idx ON cache_invalidations (slug);
CREATE INDEX cache_invalidations_domain_idx ON cache_invalidations (domain);

CREATE OR REPLACE FUNCTION links_queue_cache_invalidation() RETURNS trigger AS $$
DECLARE
    hosts text[] := '{}';
    slugs text[] := '{}';
    default_slugs text[] := '{}';
    old_domain text;
BEGIN
    IF TG_OP <> 'INSERT' THEN
        old_domain := (SELECT hostname FROM domains WHERE id = OLD.domain_id);
        -- A link removed with its domain: the domain's own trigger queued its slugs already.
        IF OLD.domain_id IS NULL OR old_domain IS NOT NULL THEN
            hosts := hosts || ARRAY[old_domain, old_domain];
            slugs := slugs || ARRAY[OLD.uid, OLD.custom_slug];
        END IF;
        IF OLD.domain_id IS NULL THEN
            default_slugs := default_slugs || ARRAY[OLD.uid, OLD.custom_slug];
        END IF;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        hosts := hosts || array_fill((SELECT hostname FROM domains WHERE id = NEW.domain_id), ARRAY[2]);
        slugs := slugs || ARRAY[NEW.uid, NEW.custom_slug];
        IF NEW.domain_id IS NULL THEN
            default_slugs := default_slugs || ARRAY[NEW.uid, NEW.custom_slug];
        END IF;
    END IF;
    INSERT INTO cache_invalidations (domain, slug)
    SELECT DISTINCT d, s FROM unnest(hosts, slugs) AS queued (d, s) WHERE s IS NOT NULL;
    INSERT INTO link_cache_invalidations (slug)
    SELECT DISTINCT s FROM unnest(default_slugs) AS s WHERE s IS NOT NULL;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

-- A change of what a domain serves (its status, targets or existence) makes its own entry stale;
-- a change of status or its removal also makes every entry of its links stale.
CREATE FUNCTION domains_queue_cache_invalidation() RETURNS trigger AS $$
DECLARE
    d domains%ROWTYPE;
BEGIN
    IF TG_OP = 'DELETE' THEN
        d := OLD;
    ELSE
        d := NEW;
    END IF;
    INSERT INTO cache_invalidations (domain, slug) VALUES (d.hostname, NULL);
    IF TG_OP = 'DELETE' OR OLD.status IS DISTINCT FROM NEW.status THEN
        INSERT INTO cache_invalidations (domain, slug)
        SELECT DISTINCT d.hostname, s
          FROM links, unnest(ARRAY[links.uid, links.custom_slug]) AS s
         WHERE links.domain_id = d.id AND s IS NOT NULL;
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

-- BEFORE DELETE: the domain's links still exist (the cascade deletes them afterwards).
CREATE TRIGGER domains_queue_cache_invalidation_on_delete BEFORE DELETE ON domains
    FOR EACH ROW EXECUTE FUNCTION domains_queue_cache_invalidation();
CREATE TRIGGER domains_queue_cache_invalidation_on_update AFTER UPDATE ON domains
    FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status
          OR OLD.root_redirect IS DISTINCT FROM NEW.root_redirect
          OR OLD.not_found_redirect IS DISTINCT FROM NEW.not_found_redirect)
    EXECUTE FUNCTION domains_queue_cache_invalidation();
