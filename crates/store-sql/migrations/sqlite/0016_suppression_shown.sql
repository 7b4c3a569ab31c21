-- Issue 18: a suppressed address as it was given (its local part's case
-- kept, the domain lower-cased), shown in lists and exports; `address` stays
-- the lower-cased key every lookup compares with. NULL: the same as address.
ALTER TABLE suppressions ADD COLUMN shown TEXT;
