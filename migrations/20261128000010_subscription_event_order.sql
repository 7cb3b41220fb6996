-- Billing events apply in the order Polar created them, not the order they arrive (a retried
-- older event must not undo a newer one): the time of the event that set the tier.
ALTER TABLE users ADD COLUMN subscription_event_at timestamptz;
