-- Passwordless sign-in for the dashboard (SPEC §9): single-use, short-lived links stored only as
-- hashes, and the invitations that let new people in when REGISTRATION=invite.

CREATE TABLE sign_in_tokens (
    id           bigserial PRIMARY KEY,
    -- SHA-256 of the 256-bit token in the emailed link; the token itself is never stored.
    token_hash   bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    email        text NOT NULL CHECK (length(email) BETWEEN 3 AND 320),
    -- NULL: nobody has this email yet; redeeming creates the user if registration allows it then.
    user_id      uuid REFERENCES users (id) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    used_at      timestamptz,
    requested_ip inet
);
CREATE INDEX sign_in_tokens_user_id_idx ON sign_in_tokens (user_id);
-- Old rows are pruned by age.
CREATE INDEX sign_in_tokens_expires_at_idx ON sign_in_tokens (expires_at);

CREATE TABLE invites (
    id          uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    email       text NOT NULL CHECK (length(email) BETWEEN 3 AND 320),
    created_at  timestamptz NOT NULL DEFAULT now(),
    -- Set when the invited person first signs in.
    accepted_at timestamptz
);
CREATE UNIQUE INDEX invites_email_lower_key ON invites (lower(email));
