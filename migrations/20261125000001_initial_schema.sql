-- SMO1 data model (SPEC §2): PostgreSQL is the source of truth.

CREATE EXTENSION IF NOT EXISTS "uuid-ossp";
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TYPE subscription_tier AS ENUM ('free', 'pro', 'business');
CREATE TYPE link_status AS ENUM ('active', 'disabled', 'expired');
CREATE TYPE protection_type AS ENUM ('none', 'pin', 'password');
CREATE TYPE achievement_category AS ENUM ('links', 'clicks', 'protection', 'utm', 'streak');
CREATE TYPE xp_event_type AS ENUM ('link_created', 'click_milestone', 'achievement_unlocked', 'streak', 'adjustment');

-- Keeps updated_at current on every table that has it.
CREATE FUNCTION set_updated_at() RETURNS trigger AS $$
BEGIN
    NEW.updated_at = now();
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TABLE users (
    id                uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    email             text NOT NULL CHECK (length(email) BETWEEN 3 AND 320),
    display_name      text CHECK (length(display_name) <= 100),
    subscription_tier subscription_tier NOT NULL DEFAULT 'free',
    xp                bigint NOT NULL DEFAULT 0 CHECK (xp >= 0),
    level             integer NOT NULL DEFAULT 1 CHECK (level >= 1),
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
-- Emails are unique regardless of case.
CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email));
CREATE TRIGGER users_set_updated_at BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE links (
    id              uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    uid             text NOT NULL CHECK (uid ~ '^[A-Za-z0-9]{7}$'),
    custom_slug     text CHECK (custom_slug ~ '^[A-Za-z0-9_-]{3,64}$'),
    user_id         uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    destination     text NOT NULL CHECK (length(destination) BETWEEN 1 AND 2048),
    title           text CHECK (length(title) <= 200),
    utm_source      text CHECK (length(utm_source) <= 200),
    utm_medium      text CHECK (length(utm_medium) <= 200),
    utm_campaign    text CHECK (length(utm_campaign) <= 200),
    utm_term        text CHECK (length(utm_term) <= 200),
    utm_content     text CHECK (length(utm_content) <= 200),
    redirect_type   smallint NOT NULL DEFAULT 302 CHECK (redirect_type IN (301, 302, 307, 308)),
    protection_type protection_type NOT NULL DEFAULT 'none',
    protection_hash text,
    expires_at      timestamptz,
    status          link_status NOT NULL DEFAULT 'active',
    total_clicks    bigint NOT NULL DEFAULT 0 CHECK (total_clicks >= 0),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    -- A protected link always has a hash; an unprotected one never keeps a stale one.
    CONSTRAINT links_protection_hash_matches CHECK ((protection_type = 'none') = (protection_hash IS NULL))
);
CREATE UNIQUE INDEX links_uid_key ON links (uid);
CREATE UNIQUE INDEX links_custom_slug_key ON links (custom_slug) WHERE custom_slug IS NOT NULL;
CREATE INDEX links_user_id_idx ON links (user_id);
CREATE INDEX links_created_at_idx ON links (created_at);
CREATE INDEX links_total_clicks_idx ON links (total_clicks);
CREATE INDEX links_slug_trgm_idx ON links
    USING gin ((coalesce(custom_slug, '') || ' ' || uid || ' ' || coalesce(title, '')) gin_trgm_ops);
CREATE TRIGGER links_set_updated_at BEFORE UPDATE ON links
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE api_keys (
    id           uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    prefix       text NOT NULL,
    key_hash     bytea NOT NULL CHECK (length(key_hash) = 32),
    scopes       text[] NOT NULL DEFAULT ARRAY['links:read', 'links:write'],
    last_used_at timestamptz,
    revoked_at   timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX api_keys_key_hash_key ON api_keys (key_hash);
CREATE INDEX api_keys_user_id_idx ON api_keys (user_id);

CREATE TABLE achievements (
    id          uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    code        text NOT NULL UNIQUE,
    name        text NOT NULL,
    description text NOT NULL,
    category    achievement_category NOT NULL,
    threshold   bigint NOT NULL CHECK (threshold > 0),
    xp_reward   integer NOT NULL CHECK (xp_reward >= 0),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX achievements_category_idx ON achievements (category);

CREATE TABLE user_achievements (
    user_id        uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    achievement_id uuid NOT NULL REFERENCES achievements (id) ON DELETE CASCADE,
    progress       bigint NOT NULL DEFAULT 0 CHECK (progress >= 0),
    unlocked_at    timestamptz,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, achievement_id)
);
CREATE TRIGGER user_achievements_set_updated_at BEFORE UPDATE ON user_achievements
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE xp_events (
    id         uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    type       xp_event_type NOT NULL,
    amount     integer NOT NULL,
    -- What earned it (a link id, achievement code, …); unique per user and type so an event that
    -- arrives twice is awarded once.
    reference  text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, type, reference)
);
CREATE INDEX xp_events_user_id_created_at_idx ON xp_events (user_id, created_at);

CREATE TABLE webhook_events (
    id           uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    event_id     text NOT NULL UNIQUE,
    type         text NOT NULL,
    payload      jsonb NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    processed_at timestamptz,
    last_error   text
);

CREATE TABLE protection_attempts (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    link_id    uuid NOT NULL REFERENCES links (id) ON DELETE CASCADE,
    ip_address inet NOT NULL,
    succeeded  boolean NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX protection_attempts_link_ip_idx ON protection_attempts (link_id, ip_address, created_at);

CREATE TABLE click_outbox (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    click_id    text NOT NULL UNIQUE,
    payload     jsonb NOT NULL,
    enqueued_at timestamptz NOT NULL DEFAULT now(),
    attempts    integer NOT NULL DEFAULT 0
);
