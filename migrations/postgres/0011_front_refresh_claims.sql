-- The provider's user claims the gateway's own tokens copy ([front] claims,
-- issue 30), kept with the refresh family so that refreshed tokens carry
-- them too: a JSON object, or NULL for none.
ALTER TABLE front_refresh_families ADD COLUMN claims TEXT;
