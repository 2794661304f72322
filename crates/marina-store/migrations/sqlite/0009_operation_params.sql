-- What an operation was asked to do beyond its type (e.g. where a reseed copies from).
ALTER TABLE operations ADD COLUMN params TEXT;
