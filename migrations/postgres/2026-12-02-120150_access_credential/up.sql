-- Identification by document (issue 14): every resolution entry of the
-- access log says what the clinic showed, `token` (a scanned QR) or
-- `document` (an ID number typed by a card reader). Expand only: a nullable
-- column that nodes of the previous release leave NULL (their resolutions
-- are all by token, and the views say so). Rows already written are not
-- touched: the append-only triggers refuse it, and their MACs stay as they
-- are because the chain encodes the column only when present.
ALTER TABLE access_log ADD COLUMN credential TEXT;
