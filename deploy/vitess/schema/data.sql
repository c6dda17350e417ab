-- Rows the schema needs, sent through vtgate once the tables exist. Running it again changes
-- nothing.

-- The first user gets ID 1.
INSERT IGNORE INTO usergraph_global.users_seq (id, next_id, cache) VALUES (0, 1, 1000);

-- These files are the service's schema up to version 2 (migrations[MySQL] in
-- database/migrate.go: users, then idempotency_keys), laid out for Vitess; a new migration needs
-- its Vitess form here, and its version recorded below. Recording them makes the service find
-- its schema in place at start-up, so that it creates no tables of its own: on the sharded
-- keyspace it would create them on every shard, without the vschema they need.
INSERT IGNORE INTO usergraph_global.schema_migrations (version, applied_at) VALUES
	(1, DATE_FORMAT(UTC_TIMESTAMP(6), '%Y-%m-%dT%H:%i:%s.%fZ')),
	(2, DATE_FORMAT(UTC_TIMESTAMP(6), '%Y-%m-%dT%H:%i:%s.%fZ'));
