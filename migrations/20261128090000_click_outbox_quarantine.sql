-- Outbox rows the replay cannot read as a click event. They are moved here, out of the replay's
-- way, so one bad row cannot hold back the clicks behind it; they stay for an operator to inspect
-- (smo1_click_outbox_quarantined, docs/OPERATIONS.md).
CREATE TABLE click_outbox_quarantine (
    id             bigint PRIMARY KEY,
    click_id       text NOT NULL,
    payload        jsonb NOT NULL,
    error          text NOT NULL,
    enqueued_at    timestamptz NOT NULL,
    quarantined_at timestamptz NOT NULL DEFAULT now()
);
